#!/usr/bin/python3
"""check_calls.py [--report] BUILD_DIR

The static direct-call graph between the daemon's source files.

Reads the .ci files that gcc's -fcallgraph-info wrote beside the objects of
BUILD_DIR/bridged/** (configure with -DDOKU_CALLGRAPH=ON), keeps those of
sources in the project's bridged/, and collapses the function graph to a file
graph: A -> B when a function defined in A calls one defined in B. Calls
through function pointers are not in it (which is the point: a callback is
how a lower file calls back up). Prints the file graph, the pairs of files
calling each other and the cycles (strongly connected components of more
than one file). Exit status: 1 when there is a cycle (0 with --report).
"""
import argparse
import os
import re
import sys

from check_includes import sccs

QUOTED = r'"((?:[^"\\]|\\.)*)"'
GRAPH = re.compile(r'^graph: \{ title: ' + QUOTED)
NODE = re.compile(r'^node: \{ title: ' + QUOTED + r' label: ' + QUOTED + r'(.*)\}$')
EDGE = re.compile(r'^edge: \{ sourcename: ' + QUOTED + r' targetname: ' + QUOTED)
CLONE = re.compile(r'(\.(part|isra|constprop|cold)(\.\d+)?)+$')  # gcc's copies of a function


def source_dir(build):
    """The source tree BUILD_DIR was configured from (its CMakeCache.txt)."""
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_HOME_DIRECTORY:"):
                return line.split("=", 1)[1].strip()
    sys.exit("check_calls: %s has no CMAKE_HOME_DIRECTORY" % build)


def read_ci(path):
    """(translation unit, defined functions, [(caller, callee)]) of one .ci."""
    tu, defined, calls = None, set(), []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = GRAPH.match(line)
            if m:
                tu = m.group(1)
                continue
            m = NODE.match(line)
            if m:
                if "ellipse" not in m.group(3):  # ellipses are declared, not defined
                    defined.add(m.group(1))
                continue
            m = EDGE.match(line)
            if m:
                calls.append((m.group(1), m.group(2)))
    return tu, defined, calls


def fn_name(title):
    """A function's name from its title ("TU:name" for a static)."""
    return CLONE.sub("", title.rsplit(":", 1)[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--report", action="store_true", help="print only, exit 0")
    ap.add_argument("build", metavar="BUILD_DIR")
    a = ap.parse_args()
    bridged = os.path.realpath(os.path.join(source_dir(a.build), "bridged"))

    # The newest .ci of each existing source of bridged/ (an old build tree
    # keeps the .ci of files since moved or of targets since renamed).
    units = {}
    for top, _, names in os.walk(os.path.join(a.build, "bridged")):
        for name in names:
            if not name.endswith(".ci"):
                continue
            path = os.path.join(top, name)
            tu, defined, calls = read_ci(path)
            src = os.path.realpath(tu or "")
            if not src.startswith(bridged + os.sep) or not os.path.exists(src):
                continue
            mtime = os.path.getmtime(path)
            rel = os.path.relpath(src, bridged)
            if rel not in units or units[rel][0] < mtime:
                units[rel] = (mtime, defined, calls)
    if not units:
        sys.exit("check_calls: no .ci files of bridged/ under %s "
                 "(configure with -DDOKU_CALLGRAPH=ON and gcc, then build)" % a.build)

    # Global functions by name; a static's title is "TU:name", unique already.
    where = {}
    for rel, (_, defined, _) in units.items():
        for fn in defined:
            where.setdefault(fn, rel)
    graph = {rel: set() for rel in units}
    examples = {}   # (file, file) -> ["caller -> callee"]
    for rel, (_, defined, calls) in sorted(units.items()):
        for caller, callee in calls:
            dst = rel if callee in defined else where.get(callee)
            if dst is None or dst == rel:
                continue  # a library's function, or a call within the file
            graph[rel].add(dst)
            examples.setdefault((rel, dst), []).append("%s -> %s" % (fn_name(caller), fn_name(callee)))

    print("# file graph (%d files of bridged/): file -> files it calls directly" % len(graph))
    for rel in sorted(graph):
        print(("%s -> %s" % (rel, " ".join(sorted(graph[rel])))).rstrip())

    pairs = sorted((x, y) for x in graph for y in graph[x] if x < y and x in graph[y])
    print("\n# files calling each other: %d" % len(pairs))
    for x, y in pairs:
        print("%s <-> %s" % (x, y))
        for s, d in ((x, y), (y, x)):
            print("    %s: %s" % (s, ", ".join(sorted(set(examples[(s, d)])))))

    cycles = [c for c in sccs(graph) if len(c) > 1]
    print("\n# call cycles between files: %d" % len(cycles))
    for c in cycles:
        print("cycle (%d files): %s" % (len(c), " ".join(c)))
    return 0 if a.report or not cycles else 1


if __name__ == "__main__":
    sys.exit(main())
