"""A family is two files: its facts (``zoo/families/<family>.py``) and its PyTorch model (``zoo/torch/<family>.py``).

The worked example of docs/adding-an-architecture.md is written into a copy of the package and
must be listed, built, saved, reloaded, carded and translated with nothing else edited.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from zoo import families

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-an-architecture.md"
# What a facts file may import: no framework, nothing that fetches or builds.
FACTS_IMPORTS = {"__future__", "dataclasses", "typing", "zoo.registry", "zoo.weights", "zoo.labels"}


def test_every_registered_model_is_of_a_family_whose_builder_resolves():
    for name in zoo.list_models(include_stages=True):
        assert zoo.get_config(name).family in families.names(), name
    for family in families.names():
        assert callable(families.builder(family)), family


def test_every_weights_record_sits_in_its_architectures_family_file():
    declared = families.facts("WEIGHTS")
    assert sum(len(records) for records in declared.values()) == len(zoo.weights.WEIGHTS)
    for family, records in declared.items():
        for w in records:
            assert zoo.get_config(w.arch).family == family, w.key
            assert zoo.weights.WEIGHTS[w.key] is w


def _imports(path: Path, package: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}".startswith("zoo.families."))
    return found


FACTS_FILES = sorted(p.name for p in (ROOT / "zoo" / "families").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", FACTS_FILES)
def test_facts_files_import_no_framework(path):
    found = _imports(ROOT / "zoo" / "families" / path, "zoo.families")
    assert {m for m in found if m not in FACTS_IMPORTS and not m.startswith("zoo.families")} == set(), path


def _family_tests(path: Path, names: list[str]) -> list[str]:
    """The family names ``path`` compares a ``.family`` with (``cfg.family == "detector"``, ``... in (...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "family" for s in sides):
                values = [e for s in sides for e in (s.elts if isinstance(s, (ast.Tuple, ast.List, ast.Set)) else [s])]
                found += [v.value for v in values if isinstance(v, ast.Constant) and v.value in names]
    return found


def test_no_generic_module_names_a_family():
    """Only a family's own two files (and other families' files) import its facts or its model, or test for its
    name: the registry, the importers, the translator and the cards reach a family through ``zoo.families``,
    and tell detectors apart by ``ModelConfig.task``."""
    names = families.names()
    family_module = re.compile(r"zoo\.(families|torch)\.(%s)$" % "|".join(map(re.escape, names)))
    for path in sorted((ROOT / "zoo").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "families" or (rel.parts[1] == "torch" and path.stem in names):
            continue
        package = ".".join(rel.with_suffix("").parts[:-1] if path.name != "__init__.py" else rel.parts[:-1])
        hits = sorted(m for m in _imports(path, package) if family_module.match(m))
        assert not hits, f"{rel} imports {hits}"
        assert not _family_tests(path, names), f"{rel} tests cfg.family against {_family_tests(path, names)}"


def _doc_files() -> dict[str, str]:
    """The code blocks of docs/adding-an-architecture.md whose first line names their file."""
    blocks = re.findall(r"```python\n(# (zoo/\S+\.py)\n.*?)```", DOC.read_text(), flags=re.S)
    return {name: code for code, name in blocks}


def test_adding_an_architecture_takes_its_two_files(tmp_path):
    files = _doc_files()
    assert sorted(files) == ["zoo/families/tinynet.py", "zoo/torch/tinynet.py"]
    shutil.copytree(ROOT / "zoo", tmp_path / "zoo", ignore=shutil.ignore_patterns("__pycache__", "pretrained"))
    for name, code in files.items():
        assert not (tmp_path / name).exists()
        (tmp_path / name).write_text(code)
    check = textwrap.dedent(f"""
        import numpy as np, torch, zoo
        from zoo.cards import model_card
        assert zoo.__file__.startswith({str(tmp_path)!r}), zoo.__file__
        assert zoo.list_models("tinynet*") == ["tinynet_s"] and "tinynet_s" in zoo.list_models()
        cfg = zoo.get_config("tinynet_s")
        assert cfg.family == "tinynet" and "tinynet" in zoo.families.names()
        torch.manual_seed(0)
        model = zoo.load("tinynet_s").eval()
        x = torch.randn(2, 3, 32, 32)
        y = model(x)
        assert y.shape == (2, 10) and zoo.build(cfg.replace(**cfg.tiny))(x).shape == (2, 10)
        zoo.save(model, {str(tmp_path / "saved")!r})
        assert torch.equal(zoo.load({str(tmp_path / "saved")!r}).eval()(x), y)
        assert "tinynet_s" in model_card(cfg) and "BinaryConnect" in model_card(cfg)
        keras = zoo.to_keras(model)
        np.testing.assert_allclose(keras(x.permute(0, 2, 3, 1).numpy()).numpy(), y.detach().numpy(), atol=1e-4)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
