#!/bin/bash
# Prints fstore's module graph and fails when it has a cycle.
#
# A module is a folder under src/ (src/online, src/cache, ...); src/fstore.c
# is its own module, "top".  Module A depends on module B when an object
# file of A has an undefined symbol that an object file of B defines (read
# with nm from the built objects, so run `make` first).  The script prints
# one line per edge, "A -> B: n symbols (sym1, sym2, ...)", then either
# "acyclic" with the modules in dependency order (each line uses only the
# ones below it), or every strongly connected component of more than one
# module with one cycle through it, and exits 1.
#
#   scripts/modgraph.sh          the graph, then the verdict
#   scripts/modgraph.sh -v       every symbol of every edge, not the first few
#   scripts/modgraph.sh -f       file-level graph (src/x/y.o) instead of folders
set -euo pipefail
cd "$(dirname "$0")/.."

verbose=0
files=0
while getopts vf opt; do
	case $opt in
		v) verbose=1 ;;
		f) files=1 ;;
		*) echo "usage: $0 [-v] [-f]" >&2; exit 2 ;;
	esac
done

# the objects the Makefile links, each one built
objs=$(make -s --no-print-directory -f Makefile -f - print-objs <<'EOF' 2>/dev/null
print-objs:
	@echo $(OBJS)
EOF
) || true
if [ -z "$objs" ]; then
	objs=$(find src -name '*.o' | sort)
fi
for o in $objs; do
	if [ ! -f "$o" ]; then
		echo "modgraph: $o is not built; run make first" >&2
		exit 2
	fi
done

# "module object kind symbol" for every defined (D) and undefined (U) symbol
for o in $objs; do
	if [ "$files" = 1 ]; then
		mod=${o%.o}; mod=${mod#src/}
	elif [ "$o" = src/fstore.o ]; then
		mod=top
	else
		mod=${o#src/}; mod=${mod%%/*}
	fi
	nm -g --defined-only "$o" | awk -v m="$mod" 'NF >= 3 { print m, "D", $3 }'
	nm -g --undefined-only "$o" | awk -v m="$mod" '{ print m, "U", $NF }'
done | python3 -c '
import sys
verbose = int(sys.argv[1])
defs, uses = {}, {}
for line in sys.stdin:
    mod, kind, sym = line.split()
    if kind == "D":
        defs[sym] = mod
    else:
        uses.setdefault(mod, set()).add(sym)
edges = {}
for mod, syms in uses.items():
    for sym in syms:
        to = defs.get(sym)
        if to is not None and to != mod:
            edges.setdefault(mod, {}).setdefault(to, []).append(sym)
mods = sorted(set(defs.values()) | set(uses))
# an fs_ symbol no object defines: an object missing from OBJS
missing = sorted((sym, mod) for mod, syms in uses.items() for sym in syms
                 if sym.startswith("fs_") and sym not in defs)
for sym, mod in missing:
    print("UNRESOLVED %s (used by %s): is its object in the Makefile\x27s OBJS?" % (sym, mod))
for a in mods:
    for b in sorted(edges.get(a, {})):
        syms = sorted(edges[a][b])
        shown = syms if verbose or len(syms) <= 4 else syms[:4] + ["..."]
        print("%s -> %s: %d (%s)" % (a, b, len(syms), ", ".join(shown)))

# Tarjan: strongly connected components
index, low, on, stack, comps = {}, {}, set(), [], []
def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in sorted(edges.get(v, {})):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        comps.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index:
        visit(v)
cyclic = [c for c in comps if len(c) > 1]
if missing:
    sys.exit(2)
if not cyclic:
    # Tarjan emits components callee-first: a dependency order
    print("acyclic; from the leaves up:")
    for c in comps:
        print("  " + c[0])
    sys.exit(0)
def shortest_cycle(start, inside):
    prev, queue, found = {start: None}, [start], None
    while queue and found is None:
        nxt = []
        for v in queue:
            for w in sorted(edges.get(v, {})):
                if w not in inside:
                    continue
                if w == start:
                    found = v
                    break
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
            if found is not None:
                break
        queue = nxt
    path = [start]
    v = found
    while v is not None and v != start:
        path.append(v); v = prev[v]
    return [start] + list(reversed(path[1:])) + [start]
for c in cyclic:
    print("CYCLE among %s:" % ", ".join(c))
    seen = set()
    for start in c:
        path = shortest_cycle(start, set(c))
        key = frozenset(zip(path, path[1:]))
        if key not in seen:
            seen.add(key)
            print("  " + " -> ".join(path))
sys.exit(1)
' "$verbose"
