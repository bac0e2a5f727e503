"""The floors import downward only: zoo -> recipes -> converters -> eval -> bnnzoo (the command line), with no
import circle between modules (imports inside functions count), weights metadata below the code that fetches
weights, which is below the code that builds models; ``import zoo`` and ``bnnzoo --help`` stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bnnzoo.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
# Each package may import those before it, never those after it.
FLOORS = ("zoo", "recipes", "converters", "eval", "bnnzoo")


def _modules() -> dict[str, Path]:
    out = {}
    for floor in FLOORS:
        for f in (ROOT / floor).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """Every module of ours that ``module`` imports, at the top or inside a function."""
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            found.update(subs if len(subs) == len(node.names) else [target, *subs])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {t for t in found if t in MODULES and t != module}


IMPORTS = {m: _imports(m, f) for m, f in MODULES.items()}
# For circles: a floor's __init__ (``import zoo``, ``from zoo import fileio``) re-exports its modules; an edge to
# it would close a loop with every module it names.
GRAPH = {m: {t for t in targets if t not in FLOORS} for m, targets in IMPORTS.items()}


def _floor(module: str) -> int:
    return FLOORS.index(module.split(".")[0])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_floors(module):
    upward = sorted(t for t in IMPORTS[module] if _floor(t) > _floor(module))
    assert not upward, f"{module} imports {', '.join(upward)}: a floor above it ({' -> '.join(FLOORS)})"


def _cycle_from(start: str) -> list[str]:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(GRAPH[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_cycle(module):
    cycle = _cycle_from(module)
    assert not cycle, " -> ".join(cycle)


def test_the_rules_see_imports_inside_functions():
    """Not vacuous: a function-level import is an edge (bnnzoo.commands.demo imports the generator in one)."""
    assert "recipes.plates.generate" in GRAPH["bnnzoo.commands.demo"]
    assert "zoo.weights" in GRAPH["bnnzoo.commands.pack"]


def test_converters_never_import_the_plates_generator():
    assert not [m for m in MODULES if m.startswith("converters") and "recipes.plates.generate" in GRAPH[m]]


def test_weights_metadata_imports_nothing_that_fetches_or_builds():
    assert GRAPH["zoo.weights"] <= {"zoo.registry", "zoo.fileio", "zoo.labels", "zoo.torch.layers"}
    assert "zoo.refs" not in GRAPH["zoo.hub"] | GRAPH["zoo.larq_import"] and "zoo.api" not in GRAPH["zoo.hub"]
    assert "zoo.api" not in GRAPH["zoo.refs"]  # the resolver: reference -> record and state; api builds


def _frameworks_after(code: str) -> list[str]:
    probe = code + "\nprint(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", "import sys\n" + probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_import_zoo_imports_no_framework():
    assert _frameworks_after("import zoo\nzoo.list_models()") == []


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_imports_no_framework(command):
    """``bnnzoo --help`` and every ``bnnzoo CMD --help`` answer without importing torch or TensorFlow."""
    argv = [command, "--help"] if command else ["--help"]
    code = f"from bnnzoo.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _frameworks_after(code) == []
