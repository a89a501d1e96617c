#!/usr/bin/python3
"""check_includes.py [--root DIR] [--dot FILE] [--report]

The include graph of the daemon's modules (bridged/**/*.c|h).

A module is a .c/.h pair sharing a basename (call.c + call.h = "call"); its
layer is its folder under bridged/ ("flat" for files directly in bridged/).
Every `#include "x.h"` is resolved by basename to a file of bridged/; any
other include (system, generated "doku/...pb-c.h") is outside the graph.

Prints the module graph, its cycles (strongly connected components of more
than one module) and, between layer folders, every include that goes up a
layer or sideways between state and io. Flat modules are only cycle-checked.
Exit status: 1 when there is a cycle or a layer violation (0 with --report).
"""
import argparse
import os
import re
import sys

# The layers, lowest first; folders of one rank must not see each other.
LAYERS = {"snap": 0, "base": 1, "state": 2, "io": 2, "rpc": 3, "daemon": 4}
FLAT = "flat"
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def scan(bridged):
    """{relative path: [(line number, included name)]} of bridged/**/*.c|h."""
    files = {}
    for top, dirs, names in os.walk(bridged):
        dirs.sort()
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(top, name)
            incs = []
            with open(path, encoding="utf-8", errors="replace") as f:
                for no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m:
                        incs.append((no, m.group(1)))
            files[os.path.relpath(path, bridged)] = incs
    return files


def layer_of(rel):
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else FLAT


def module_of(rel):
    return os.path.splitext(os.path.basename(rel))[0]


def sccs(graph):
    """Tarjan's strongly connected components of {node: set(nodes)}."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--root", default=os.path.join(here, "..", ".."),
                    help="the project's source tree (default: this script's ../..)")
    ap.add_argument("--dot", metavar="FILE", help="also write the graph for Graphviz")
    ap.add_argument("--report", action="store_true", help="print only, exit 0")
    a = ap.parse_args()
    bridged = os.path.join(a.root, "bridged")
    files = scan(bridged)
    problems = 0

    by_name = {}
    for rel in files:
        by_name.setdefault(os.path.basename(rel), []).append(rel)
    layer = {}   # module -> layer
    for rel in files:
        m, lay = module_of(rel), layer_of(rel)
        if layer.setdefault(m, lay) != lay:
            print("ambiguous module %s: files in %s and %s" % (m, layer[m], lay))
            problems += 1
    for name, rels in sorted(by_name.items()):
        if len(rels) > 1:
            print("ambiguous include name %s: %s" % (name, " ".join(rels)))
            problems += 1

    def label(m):
        return m if layer[m] == FLAT else "%s/%s" % (layer[m], m)

    graph = {m: set() for m in layer}
    violations = []
    for rel, incs in sorted(files.items()):
        src = module_of(rel)
        for no, inc in incs:
            target = by_name.get(os.path.basename(inc))
            if not target:
                continue  # system or generated header: outside the graph
            dst = module_of(target[0])
            if dst == src:
                continue
            graph[src].add(dst)
            ls, ld = layer[src], layer[dst]
            if FLAT in (ls, ld) or ls == ld or ls not in LAYERS or ld not in LAYERS:
                continue
            if LAYERS[ld] > LAYERS[ls]:
                why = "up"
            elif LAYERS[ld] == LAYERS[ls]:
                why = "sideways"
            else:
                continue
            violations.append("%s:%d: #include \"%s\": %s -> %s (%s)"
                              % (rel, no, inc, ls, ld, why))
    for lay in sorted({layer[m] for m in layer} - set(LAYERS) - {FLAT}):
        print("note: folder bridged/%s is no known layer; only cycle-checked" % lay)

    print("# module graph (%d modules): module -> modules it includes" % len(graph))
    for m in sorted(graph, key=label):
        print(("%s -> %s" % (label(m), " ".join(sorted(map(label, graph[m]))))).rstrip())

    cycles = [c for c in sccs(graph) if len(c) > 1]
    print("\n# cycles: %d" % len(cycles))
    for c in cycles:
        print("cycle (%d modules): %s" % (len(c), " ".join(sorted(map(label, c)))))
        problems += 1

    if any(layer[m] != FLAT for m in layer):
        print("\n# layer violations: %d" % len(violations))
        print("\n".join(violations) if violations else "", end="\n" if violations else "")
        problems += len(violations)
    else:
        print("\n# layer violations: none checked (no layer folders)")

    if a.dot:
        write_dot(a.dot, graph, layer, cycles)
    return 0 if a.report or not problems else 1


def write_dot(path, graph, layer, cycles):
    in_cycle = {m for c in cycles for m in c}
    with open(path, "w") as f:
        f.write("digraph includes {\n  rankdir=BT;\n  node [shape=box];\n")
        for lay in sorted(set(layer.values())):
            f.write('  subgraph "cluster_%s" {\n    label="%s";\n' % (lay, lay))
            for m in sorted(x for x in graph if layer[x] == lay):
                color = ' color=red' if m in in_cycle else ''
                f.write('    "%s" [label="%s"%s];\n' % (m, m, color))
            f.write("  }\n")
        for m in sorted(graph):
            for d in sorted(graph[m]):
                color = ' [color=red]' if m in in_cycle and d in in_cycle else ''
                f.write('  "%s" -> "%s"%s;\n' % (m, d, color))
        f.write("}\n")


if __name__ == "__main__":
    sys.exit(main())
