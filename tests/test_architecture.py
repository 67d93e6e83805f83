"""The package's shape: layers that import downward only, no cycles between packages, one rendering path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "langfield"

#: lowest first; a package may import its own layer or lower ones, never a higher one
LAYERS = [
    (
        "foundation",
        {"errors", "checks", "atomic", "resources", "hub", "ui", "configio", "tensorfile", "__init__"},
    ),
    ("geometry", {"cameras"}),
    ("data", {"data", "world"}),
    ("fields and rendering", {"fields", "render"}),
    ("core types", {"core"}),
    ("backbones and outputs", {"encoders", "guidance", "export"}),
    ("training", {"train"}),
    ("methods", {"methods"}),
    ("runs", {"run", "packed"}),
    ("applications", {"apps", "batch", "process", "viewer"}),
    ("command line", {"cli", "__main__"}),
]
LEVEL = {package: level for level, (_, packages) in enumerate(LAYERS) for package in packages}


def _package(relative: Path) -> str:
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported langfield module, line) of every import in ``path``, inside functions too."""
    relative = path.relative_to(ROOT)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(relative.parts[:-1])[: len(relative.parts) - node.level]
                found.append((".".join(base + ([node.module] if node.module else [])), node.lineno))
            elif node.module and (node.module == "langfield" or node.module.startswith("langfield.")):
                found.append((node.module.removeprefix("langfield").removeprefix("."), node.lineno))
        elif isinstance(node, ast.Import):
            found += [
                (a.name.removeprefix("langfield."), node.lineno) for a in node.names if a.name.startswith("langfield.")
            ]
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """package → imported package → ["file:line", ...] for imports between different packages."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        source = _package(path.relative_to(ROOT))
        for module, line in _imports(path):
            target = module.split(".")[0] if module else "__init__"
            if target != source:
                graph.setdefault(source, {}).setdefault(target, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if node not in index:
            visit(node)
    return groups


def test_every_package_has_a_layer():
    packages = {_package(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")}
    assert packages - set(LEVEL) == set(), "add new packages to LAYERS"


def test_imports_go_downward_only():
    upward = [
        f"{where} ({source}, layer '{LAYERS[LEVEL[source]][0]}') imports {target} (layer '{LAYERS[LEVEL[target]][0]}')"
        for source, targets in import_graph().items()
        for target, places in targets.items()
        if LEVEL[target] > LEVEL[source]
        for where in places
    ]
    assert upward == []


def test_no_cycles_between_packages():
    assert cycles(import_graph()) == []


def test_the_checker_sees_upward_imports_and_cycles(tmp_path):
    # the checks above could pass by not seeing anything: they must see a planted upward import and cycle
    graph = import_graph()
    assert "methods" in graph.get("cli", {}) and "core" in graph.get("train", {})
    planted = {**graph, "render": {**graph.get("render", {}), "methods": ["planted"]}}
    assert ["methods", "render"] in cycles(planted) or any({"methods", "render"} <= set(c) for c in cycles(planted))
    assert LEVEL["methods"] > LEVEL["render"]


@pytest.mark.parametrize("package", ["render", "fields", "core", "train", "methods"])
def test_lower_packages_hold_no_command_line(package):
    for path in (ROOT / package).rglob("*.py"):
        modules = [m for m, _ in _imports(path)]
        text = path.read_text(encoding="utf-8")
        assert not any(m.startswith("cli") for m in modules), path
        assert "import argparse" not in text and "sys.argv" not in text, path


def test_methods_render_through_the_one_rendering_function():
    """Marching, weights and compositing are written once (render/rendering.py): no method calls the pieces."""
    pieces = {"packed_weights", "march_uniform", "render_weights"}
    for path in (ROOT / "methods").rglob("*.py"):
        names = {
            alias.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert not names & pieces, f"{path.relative_to(ROOT)} imports {sorted(names & pieces)}"
    users = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "methods").rglob("model.py")
        if "render_samples" in p.read_text() or "march_and_render" in p.read_text()
    }
    assert users >= {
        "methods/nerf/model.py",
        "methods/dreamfusion/model.py",
        "methods/clipnerf/model.py",
        "methods/vanilla_nerf/model.py",
    }
