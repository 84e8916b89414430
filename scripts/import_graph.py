"""The import graph of the project, by package (folder): `python scripts/import_graph.py [--png PATH]`.

Reads every module's imports with `ast` (imports inside functions count too: a lazy import is still a
dependency), maps each `essop.X...` module to its package (the folder that holds it: essop/, golden/, hdl/,
sim/, training/, synth/, app/, formal/), prints the edges with the modules that make them, any cycle, and with --png
draws the graph bottom-up by layer (a package sits above everything it imports). tests/test_layers.py
holds the rules this graph must keep."""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

from essop.plotting import pyplot, save_figure

ROOT = Path(__file__).resolve().parent.parent
#: Folder -> package name, as pyproject.toml maps them.
PACKAGES = {"essop": "essop", "golden": "essop.golden", "hdl": "essop.hdl", "sim": "essop.sim",
            "training": "essop.training", "synth": "essop.synth", "app": "essop.app",
            "formal": "essop.formal"}


def package_of(module: str) -> str | None:
    """The folder of an essop module name ('essop.training.layers' -> 'training'), None outside essop."""
    if module != "essop" and not module.startswith("essop."):
        return None
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in PACKAGES and parts[1] != "essop":
        return parts[1]
    return "essop"


def module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def graph(root: Path = ROOT) -> dict[tuple[str, str], set[str]]:
    """(importer package, imported package) -> the importer's files that make the edge."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for folder in PACKAGES:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            for mod in module_imports(path):
                pkg = package_of(mod)
                if pkg and pkg != folder and (root / pkg).is_dir():
                    edges[(folder, pkg)].add(str(path.relative_to(root)))
    return edges


def cycles(edges) -> list[list[str]]:
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
    found, seen = [], set()

    def dfs(node, stack):
        for nxt in sorted(adj[node]):
            if nxt in stack:
                cyc = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    found.append(cyc)
            else:
                dfs(nxt, stack + [nxt])
    for start in sorted(adj):
        dfs(start, [start])
    return found


def layers(edges) -> dict[str, int]:
    """Layer of each package: 0 for those importing nothing of the project, else 1 + the highest below."""
    nodes = {p for e in edges for p in e} | {f for f in PACKAGES if (ROOT / f).is_dir()}
    level = {n: 0 for n in nodes}
    for _ in nodes:
        for a, b in edges:
            level[a] = max(level[a], level[b] + 1)
    return level


def draw(edges, path: Path) -> None:
    plt = pyplot()

    level = layers(edges)
    rows = defaultdict(list)
    for n, lv in sorted(level.items()):
        rows[lv].append(n)
    pos = {n: ((i + 1) / (len(rows[lv]) + 1), lv) for lv in rows for i, n in enumerate(rows[lv])}
    fig, ax = plt.subplots(figsize=(8, 1.6 + 1.4 * len(rows)))
    for (a, b), files in sorted(edges.items()):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1, y1 + 0.12), xytext=(x0, y0 - 0.12),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=0.8 + 0.25 * len(files)))
    for n, (x, y) in pos.items():
        ax.text(x, y, f"{n}/", ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.4", fc="#e8f0fe" if n != "app" else "#fde8e8", ec="#335"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(rows) + 0.6)
    ax.axis("off")
    ax.set_title("essop: imports between packages (arrow: A imports B; width: files importing)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--png", type=Path, help="draw the graph here")
    a = p.parse_args(argv)
    edges = graph()
    for (src, dst), files in sorted(edges.items()):
        print(f"{src:9s} -> {dst:9s}  ({', '.join(sorted(files))})")
    found = cycles(edges)
    print("cycles:", "none" if not found else "; ".join(" -> ".join(c) for c in found))
    if a.png:
        draw(edges, a.png)
        print(f"wrote {a.png}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
