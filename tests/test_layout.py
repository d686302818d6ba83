"""The package layout shows the architecture: every import (module level or inside a function) goes
to the importer's own layer or a lower one, and no chain of imports comes back to where it started.

  0  damtui, config, records, events, errors, atomic,  the vocabulary every layer shares
     text
                                                      (`python -m damtui`'s __main__ is the CLI's)
  1  data                                             MedMNIST and synthetic sets
  2  train, store, analysis                           the engine, the run store, pure analysis
  3  sweeps                                           many `damtui train` processes
  4  cli, tui                                         the two front ends
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import damtui

PACKAGE = Path(damtui.__file__).parent
TOP_MODULES = {"__init__", "__main__", "config", "records", "events", "errors", "atomic", "text"}
RANK = {"data": 1, "train": 2, "store": 2, "analysis": 2, "sweeps": 3, "cli": 4, "tui": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def rank(module: str) -> int:
    parts = module.split(".")
    if module == "damtui.__main__":  # `python -m damtui`: an entry to the CLI
        return RANK["cli"]
    if len(parts) == 1 or parts[1] in TOP_MODULES:
        return 0
    return RANK[parts[1]]


def imports_of(module: str) -> set[str]:
    """The damtui modules `module` imports: `from damtui.x import y` names module damtui.x.y when
    that is a module, else damtui.x."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "damtui")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "damtui":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_layout_has_the_packages_and_few_top_modules():
    tops = {p.stem for p in PACKAGE.glob("*.py")}
    assert tops == TOP_MODULES
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders == set(RANK)
    prefixed = [m for m in MODULES if not m.startswith("damtui.tui.")  # run_view: a screen's name
                and m.rsplit(".", 1)[-1].startswith(("cli_", "run_"))]
    assert prefixed == []


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{m} (layer {rank(m)}) imports {d} (layer {rank(d)})"
                    for m, deps in GRAPH.items() for d in deps if rank(d) > rank(m))
    assert upward == []


def test_the_import_graph_has_no_circle():
    done: set[str] = set()
    path: list[str] = []

    def visit(m: str) -> None:
        if m in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(m):], m]))
        if m in done:
            return
        path.append(m)
        for d in sorted(GRAPH[m]):
            visit(d)
        path.pop()
        done.add(m)

    for m in sorted(GRAPH):
        visit(m)


def test_pyproject_lists_every_package_and_installs_the_top_level_presets():
    """The packages are listed by hand (presets/ sits outside damtui/): a new package folder that
    is not listed would be missing from a wheel."""
    setup = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert set(setup["packages"]) == folders | {"damtui.presets"}
    assert setup["package-dir"] == {"damtui.presets": "presets"}
    assert len(list((PACKAGE.parent / setup["package-dir"]["damtui.presets"]).glob("*.toml"))) >= 40


def test_the_graph_sees_function_level_and_aliased_imports():
    """The walker itself: imports inside functions and `from damtui.store import results as x`."""
    assert "damtui.store.results" in GRAPH["damtui.cli.runs"]  # inside cmd_runs, aliased
    assert "damtui.tui.app" in GRAPH["damtui.cli"]  # inside cmd_tui
    assert rank("damtui.tui.app") == 4 and rank("damtui.config") == 0 and rank("damtui") == 0
