"""Weights that ship inside the package (zoo/pretrained/): present, small, checked, and as accurate as recorded.

Driven by the registry: every ``WEIGHTS`` entry without a Hub repo is a bundled file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402
from zoo import hub  # noqa: E402
from zoo import weights as zw  # noqa: E402

BUNDLED = sorted(k for k, w in zw.WEIGHTS.items() if not w.hub_repo)
CLASSIFIERS = [k for k in BUNDLED if zw.WEIGHTS[k].metrics[0].name == "top1"]
MAX_BYTES = 5 * 10**6
SOURCE_DIR = Path(zw.__file__).resolve().parent / "pretrained"


def _val(key: str):
    """The held-out split the metric was measured on, at the weights' input size."""
    w = zw.WEIGHTS[key]
    if w.metrics[0].dataset.startswith("mnist"):
        from recipes.data import mnist_splits

        _, val = mnist_splits(w.input_size)
        return val.images, val.labels
    pytest.fail(f"no evaluation data known for {key}: {w.metrics[0].dataset}")


def test_some_weights_are_bundled():
    archs = {zw.WEIGHTS[k].arch for k in BUNDLED}
    assert {"realtobinary_resnet18", "meliusnet22", "mobilenet_v1_025"} <= archs


@pytest.mark.parametrize("key", BUNDLED)
def test_bundled_file_is_small_and_matches_its_sha256(key):
    w = zw.WEIGHTS[key]
    path = zw.BUNDLED_DIR / w.filename
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    assert hub.fetch_registered(key, w) == path  # sha256 checked on the way


@pytest.mark.parametrize("key", CLASSIFIERS)
def test_bundled_weights_reach_their_recorded_accuracy(key):
    w = zw.WEIGHTS[key]
    model = zoo.load(key)
    assert model.zoo_config.input_size == w.input_size and model.zoo_config.num_classes == w.num_classes
    x, y = _val(key)
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 250]).argmax(1) for i in range(0, len(y), 250)])
    top1 = 100.0 * float((pred == y).float().mean())
    assert top1 == pytest.approx(w.metrics[0].value, abs=0.15), f"{key}: measured {top1:.2f}"
    assert top1 > 50.0  # trained: far above the 10% of chance


@pytest.mark.parametrize("key", CLASSIFIERS)
def test_bundled_weights_give_the_same_classes_in_keras(key):
    x, _ = _val(key)
    x = x[:16]
    model = zoo.load(key)
    with torch.no_grad():
        ref = model(x).numpy()
    out = zoo.to_keras(model)(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), training=False).numpy()
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 15 / 16


def test_corrupt_or_missing_bundled_file_is_one_line(tmp_path, monkeypatch):
    key = BUNDLED[0]
    w = zw.WEIGHTS[key]
    monkeypatch.setattr(zw, "BUNDLED_DIR", tmp_path)
    with pytest.raises(hub.HubError, match="missing: reinstall bnnzoo") as e:
        zoo.load(key)
    assert "\n" not in str(e.value)
    shutil.copy(SOURCE_DIR / w.filename, tmp_path / w.filename)
    with open(tmp_path / w.filename, "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(hub.HubError, match="corrupt") as e:
        zoo.load(key)
    assert "\n" not in str(e.value)


def test_binary_kernels_saved_as_signs_keep_the_outputs(tmp_path):
    from helpers import randomize, tiny

    model = randomize(tiny("realtobinary_resnet18"))
    names = zw.binary_weight_names(model)
    assert len(names) == 16 and all(n.endswith(".weight") for n in names)
    (tmp_path / "full").mkdir()
    full = zw.save(model.state_dict(), tmp_path / "full" / "model.safetensors", model.zoo_config)
    signs = zw.save(model.state_dict(), tmp_path / "model.safetensors", model.zoo_config, signs_of=names)
    assert signs.stat().st_size < 0.5 * full.stat().st_size
    again = zoo.load("realtobinary_resnet18", weights=str(signs), **zoo.get_config("realtobinary_resnet18").tiny)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    kernel = again.state_dict()[names[0]]
    assert kernel.dtype == torch.float32 and set(kernel.unique().tolist()) <= {-1.0, 1.0}
    with pytest.raises(KeyError, match="signs_of names"):
        zw.save(model.state_dict(), tmp_path / "x.safetensors", signs_of=["nope.weight"])


def test_demo_accuracy_holds_through_every_export(tmp_path):
    """What `make demo` shows: trained binary weights, exported and verified, score the same in each runtime."""
    import json

    from eval import cli

    rc = cli.main(["realtobinary_resnet18", "--baseline", "none", "--weights", "realtobinary_resnet18=mnist",
                   "--runtimes", "lce,onnx,torch", "--threads", "1", "--runs", "2", "--warmup", "0", "--data",
                   "mnist", "--limit", "200", "--no-progress", "-o", str(tmp_path)])
    assert rc == 0
    row = json.loads((tmp_path / "results.json").read_text())["models"][0]
    assert row["size"]["lce_bconv2d"] == 16
    by = row["accuracy"]["by_runtime"]
    assert set(by) == {"torch", "onnx", "lce"} and by["torch"] > 80.0
    assert abs(by["onnx"] - by["torch"]) <= 1.0 and abs(by["lce"] - by["torch"]) <= 1.0
    cell = " / ".join(f"{by[k]:.1f}" for k in ("torch", "onnx", "lce"))
    assert f"| {cell} |" in (tmp_path / "report.md").read_text()
