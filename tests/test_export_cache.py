"""The export cache's key: a change to bnnzoo's own converter or model code is a new key."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KEY = """
import torch, zoo
torch.manual_seed(0)
from converters.cache import export_key
model = zoo.load("mobilenet_v1", **zoo.get_config("mobilenet_v1").tiny)
print(export_key(model, "onnx", {"bitpack": True}))
"""


def _key(root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", KEY], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_a_changed_converter_source_is_a_new_export_key(tmp_path):
    for package in ("zoo", "converters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    before = _key(tmp_path)
    assert _key(tmp_path) == before  # the same code and weights: the same key
    onnx_py = tmp_path / "converters" / "onnx.py"
    onnx_py.write_text(onnx_py.read_text() + "\n# a fix\n")
    assert _key(tmp_path) != before
