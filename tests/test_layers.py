"""The zoo's modules import down its floors only: no import cycles (function-level imports included),
weights metadata below the code that fetches weights, which is below the code that builds models."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "zoo"


def _modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                found = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[m].update(t for t in found if t in mods and t != m and t != "zoo")
    return graph


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str]:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return []


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_import_cycle(module):
    cycle = _cycle_from(_graph(), module)
    assert not cycle, " -> ".join(cycle)


def test_weights_metadata_imports_nothing_that_fetches_or_builds():
    graph = _graph()
    assert graph["zoo.weights"] <= {"zoo.registry", "zoo.fileio", "zoo.torch.layers"}
    assert "zoo.refs" not in graph["zoo.hub"] | graph["zoo.larq_import"] and "zoo.api" not in graph["zoo.hub"]
    assert "zoo.api" not in graph["zoo.refs"]  # the resolver: reference -> record and state; api builds
