"""Imports flow one way (DESIGN.md: strategy or corpus -> Case -> worker -> Result -> compare ->
results file -> report): a module imports only from its own layer or the layers below it, and no
modules import each other in a cycle.

Every `import` counts, at module level or inside a function: a function-level import only
delays an edge (it keeps a framework, or a command's module, out of a process), it does not
remove it. The edges come from the source (ast), so a module that is not imported in this
process is checked too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "harness"

# Lowest first. "name" is that module (or package); "name.*" every module below it. The most
# specific entry places a module (harness.impls is the registry, data; harness.impls.* adapters).
LAYERS: list[tuple[str, list[str]]] = [
    ("data", ["harness", "harness.spec", "harness.vocabulary", "harness.results", "harness.impls", "harness.tolerances"]),
    ("cases", ["harness.strategies"]),
    ("reference", ["harness.reference", "harness.reference.*"]),
    ("labels", ["harness.features"]),  # the reference's forward pass labels what a case exercises
    ("adapters", ["harness.impls.*"]),
    ("worker", ["harness.worker"]),
    ("engine", ["harness.compare", "harness.compare_gradients", "harness.compare_observations"]),
    ("records", ["harness.resultsfile", "harness.judging"]),
    ("driver", ["harness.driver", "harness.bench", "harness.bench_naive", "harness.coverage", "harness.selection", "harness.changelog", "harness.migrate", "harness.bisect", "harness.fingerprint"]),
    ("report", ["harness.report", "harness.report.*", "harness.same_report"]),
    ("commands", ["harness.commands", "harness.commands.*", "harness.cli", "harness.__main__"]),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None  # (specificity, index, layer name)
    for index, (name, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if pattern.endswith(".*"):
                hit = module.startswith(pattern[:-1])
                score = len(pattern) - 2
            else:
                hit = module == pattern
                score = len(pattern) + 1  # an exact name beats a prefix of the same length
            if hit and (best is None or score > best[0]):
                best = (score, index, name)
    return None if best is None else (best[1], best[2])


def edges() -> list[tuple[str, str, Path, int]]:
    """(importer, imported module of harness, file, line) for every import in harness/."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    out = []
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from harness.reference import rules` imports the module harness.reference.rules
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in mods else source for a in node.names]
            for target in targets:
                if target == "harness" or target.startswith("harness."):
                    resolved = resolve(target)
                    if resolved and resolved != module:
                        out.append((module, resolved, path, node.lineno))
    return out


def test_every_module_has_a_layer():
    missing = [m for m in modules() if layer_of(m) is None]
    assert not missing, f"modules in no layer of LAYERS (tests/test_layering.py): {missing}"


def test_no_module_imports_from_a_layer_above_it():
    wrong = []
    for importer, imported, path, line in edges():
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and high[0] > low[0]:
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {importer} (layer {low[1]}) imports {imported} "
                         f"(layer {high[1]}, above it)")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    where: dict[tuple[str, str], str] = {}
    for importer, imported, path, line in edges():
        graph[importer].add(imported)
        where.setdefault((importer, imported), f"{path.relative_to(ROOT)}:{line}")
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    described = ["; ".join(f"{a} -> {b} ({where[a, b]})" for a in c for b in sorted(graph[a]) if b in c)
                 for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def test_the_edges_are_found():
    found = {(a, b) for a, b, _, _ in edges()}
    assert ("harness.compare_gradients", "harness.compare") in found  # module level
    assert ("harness.cli", "harness.commands.run") not in found  # importlib by name: not an import statement
    assert ("harness.commands.run", "harness.driver") in found  # inside a function


def test_importing_the_case_imports_no_reference():
    """An adapter process imports spec, vocabulary and results: none of them loads the reference."""
    code = ("import sys, harness.spec, harness.vocabulary, harness.results, harness.impls, harness.strategies; "
            "print(sorted(m for m in sys.modules if m.startswith('harness.reference') or m == 'harness.compare'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout
