#!/usr/bin/python3
"""trace_files.py [--window N[=NAME]]... TRACE BINARY

The daemon's source files one traced window passes through.

TRACE is a file written by tests/arch/trace_hook.c ("FN SITE" lines in hex,
"mark N" lines between windows), BINARY the doku-bridged that wrote it. The
window N is what was entered between "mark N-1" and "mark N" (default: every
window after the first mark). For each window: the distinct files of bridged/
entered, in first-entry order: the daemon's layers (io/, state/, rpc/,
daemon/), and apart the libraries under them that every layer uses (base/:
configuration, log, clock, counters, lists; snap/: the protocol), and the number
of calls from a function of one file to one of another. Addresses become
files with one run of addr2line -f over all of them.
"""
import argparse
import os
import subprocess
import sys

from check_calls import source_dir


def layer(f):
    """"base" or "snap" for the libraries under the daemon's layers, else None."""
    top = f.split(os.sep, 1)[0]
    return top if top in ("base", "snap") else None


def windows(path):
    """{N: [(fn, site)]}: the entries written before "mark N" and after "mark N-1"."""
    out, cur, lost = {}, [], {}
    with open(path) as f:
        for line in f:
            word = line.split()
            if not word:
                continue
            if word[0] == "mark":
                out[int(word[1])] = cur
                cur = []
            elif word[0] == "lost":
                lost[len(out) + 1] = int(word[1])
            else:
                cur.append((int(word[0], 16), int(word[1], 16)))
    return out, lost


def locate(binary, addrs):
    """{address: (function, file)} through one addr2line run."""
    addrs = sorted(addrs)
    text = "".join("%x\n" % a for a in addrs)
    res = subprocess.run(["addr2line", "-f", "-e", binary], input=text, text=True,
                         capture_output=True, check=True)
    lines = res.stdout.splitlines()
    if len(lines) != 2 * len(addrs):
        sys.exit("trace_files: addr2line gave %d lines for %d addresses" % (len(lines), len(addrs)))
    return {a: (lines[2 * i], lines[2 * i + 1].rsplit(":", 1)[0]) for i, a in enumerate(addrs)}


def find_build(binary):
    d = os.path.dirname(os.path.abspath(binary))
    while not os.path.exists(os.path.join(d, "CMakeCache.txt")):
        if d == os.path.dirname(d):
            sys.exit("trace_files: %s is in no CMake build tree" % binary)
        d = os.path.dirname(d)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--window", action="append", default=[], metavar="N[=NAME]",
                    help="the window ending at mark N (repeatable)")
    ap.add_argument("trace")
    ap.add_argument("binary")
    a = ap.parse_args()
    bridged = os.path.realpath(os.path.join(source_dir(find_build(a.binary)), "bridged"))
    wins, lost = windows(a.trace)
    chosen = [w.partition("=") for w in a.window] or [(str(n), "", "") for n in sorted(wins) if n > 1]
    for n, _, _ in chosen:
        if int(n) not in wins or int(n) < 2:
            sys.exit("trace_files: %s has no window ending at mark %s" % (a.trace, n))

    # Call sites are return addresses: look up the byte before, inside the call.
    addrs = {x for n, _, _ in chosen for fn, site in wins[int(n)] for x in (fn, site - 1) if x > 0}
    where = locate(a.binary, addrs)

    def file_of(addr):
        path = os.path.realpath(where[addr][1]) if addr in where else ""
        return os.path.relpath(path, bridged) if path.startswith(bridged + os.sep) else None

    for n, _, name in chosen:
        entries = wins[int(n)]
        first = {}          # file -> [entries, first function], in first-entry order
        cross = into_snap = callbacks = 0
        for fn, site in entries:
            f = file_of(fn)
            if f is None:
                continue
            first.setdefault(f, [0, where[fn][0]])[0] += 1
            caller = file_of(site - 1) if site else None
            if not site:
                callbacks += 1
            elif caller and caller != f:
                cross += 1
                into_snap += f.startswith("snap" + os.sep)
        print("%s (window mark %d .. mark %s): %d functions entered, %d distinct%s"
              % (name or "window %s" % n, int(n) - 1, n, len(entries),
                 len({fn for fn, _ in entries}),
                 ", %d LOST before it" % lost[int(n)] if int(n) in lost else ""))
        for title, below in (("the daemon's files (io/, state/, rpc/, daemon/)", None),
                             ("its base library (bridged/base/)", "base"),
                             ("the SNAP library (bridged/snap/)", "snap")):
            files = [f for f in first if layer(f) == below]
            print("  %s, in first-entry order: %d" % (title, len(files)))
            for f in files:
                print("    %-24s %6d entries, first %s" % (f, first[f][0], first[f][1]))
        print("  cross-file calls: %d (%d of them into bridged/snap/); "
              "entries called from outside the executable (callbacks): %d\n"
              % (cross, into_snap, callbacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
