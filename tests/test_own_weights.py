"""Your own weights and models, end to end, as a user runs them: nothing loses the preprocessing or the labels.

1. A tiny MNIST training run -> ``zoo.save`` -> ``zoo.push_to_hub`` to a Hub on 127.0.0.1 ->
   ``zoo.load("hf-hub:...")`` in a fresh process, no architecture named -> ``zoo.transforms`` equal to the
   training run's preprocessing -> a deploy bundle -> its ``run.py`` on MNIST digits saved as PNG files,
   whose top-1 must be PyTorch's on the same files.
2. The documentation page "Your own PyTorch BNN on LCE" (docs/own-models.md): its code (a ``FILE.py:CLASS`` of
   the user's, saved with its record) and its commands (``convert``, ``verify``, ``deploy``, ``run.py``), the
   same check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from recipes import get_recipe
from recipes.data import mnist_splits
from recipes.train import run_recipe

from helpers import serve_hub

ROOT = Path(__file__).resolve().parents[1]
DIGITS = 40  # held-out digits, PNG files
FAST = [("threads", 1), ("tensorboard", False), ("progress", False), ("max_train_samples", 512),
        ("max_val_samples", 200), ("stages.epochs", 2)]
ENV = {"PYTHONPATH": str(ROOT), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    """The first held-out MNIST digits (recipes.data's validation split) as 28x28 greyscale PNG files."""
    from PIL import Image

    from recipes.data import mnist_arrays

    x, y = mnist_arrays()
    order = np.random.default_rng(0).permutation(len(y))[:DIGITS]  # mnist_splits' validation digits, in order
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for n, i in enumerate(order):
        paths.append(folder / f"{n:03d}_{y[i]}.png")
        Image.fromarray(np.asarray(x[i], np.uint8).reshape(28, 28), "L").save(paths[-1])
    return paths, np.asarray(y[order])


def _torch_top1(model, paths) -> np.ndarray:
    """PyTorch's classes for the files, each read with the weights' own preprocessing (zoo.transforms)."""
    pre = zoo.transforms(model)
    with torch.no_grad():
        x = torch.stack([torch.from_numpy(pre.read(p)[0].transpose(2, 0, 1)) for p in paths])
        return model(x).argmax(1).numpy()


def _bundle_top1(bundle: Path, paths, tmp_path: Path) -> np.ndarray:
    out = tmp_path / f"{bundle.name}-logits.npy"
    run = subprocess.run([sys.executable, str(bundle / "run.py"), "--runtime", "lce", "--dump-logits", str(out),
                          *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return np.load(out).argmax(1)


def _same_answers(bundle_top1: np.ndarray, torch_top1: np.ndarray, labels: np.ndarray) -> None:
    """The bundle gives PyTorch's top-1 on the files; binary activations near 0 may flip one image at most."""
    differ = int((bundle_top1 != torch_top1).sum())
    assert differ <= 1, f"{differ} of {len(labels)} digits classified differently by the bundle"
    assert abs(int((bundle_top1 == labels).sum()) - int((torch_top1 == labels).sum())) <= 1


def test_trained_weights_travel_from_training_to_the_hub_to_a_pi_bundle(tmp_path, monkeypatch, digits):
    from converters.deploy import deploy

    paths, labels = digits
    # 1. Train: the run records its data pipeline's preprocessing, labels and validation accuracy.
    recipe = get_recipe("tiny_mnist", FAST + [("out", str(tmp_path / "run"))])
    final = run_recipe(recipe, log=lambda line: None)["train"]
    train_ds = mnist_splits(recipe.input_size)[0]
    trained = zoo.load(str(tmp_path / "run" / "train"))
    record = trained.zoo_weights
    assert record.labels == tuple(train_ds.classes) and record.metrics[0].value == round(final["val_acc"] * 100, 2)
    assert (record.mean, record.std, record.crop_pct) == (train_ds.preprocess["mean"], train_ds.preprocess["std"], 1.0)
    # 2. Save, 3. push.
    zoo.save(trained, tmp_path / "mine")
    srv = serve_hub(tmp_path, monkeypatch)
    try:
        pushed = zoo.push_to_hub(tmp_path / "mine", "me/tiny-mnist")
        # 4. A fresh process, the reference alone: config.json names the architecture.
        script = ("import json, sys, zoo\n"
                  f"m = zoo.load({pushed.reference!r})\n"
                  "print(json.dumps({'arch': m.zoo_config.name, 'pre': zoo.transforms(m).to_dict(), "
                  "'labels': list(m.zoo_weights.labels)}))\n")
        fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                               env={**os.environ, **ENV})
        assert fresh.returncode == 0, fresh.stderr[-2000:]
        loaded = json.loads(fresh.stdout.splitlines()[-1])
        hub_model = zoo.load(pushed.reference)
    finally:
        srv.stop()
    # 5. The preprocessing is the training run's: MNIST's mean and std, the whole digit, its size.
    expected = zoo.transforms(zoo.Weights(arch=recipe.stages[0].model, num_classes=10, input_size=recipe.input_size,
                                          **train_ds.preprocess)).to_dict()
    assert loaded == {"arch": "realtobinary_resnet18", "pre": expected, "labels": list("0123456789")}
    assert all(torch.equal(a, b) for a, b in zip(hub_model.state_dict().values(), trained.state_dict().values()))
    card = (tmp_path / "hub" / "me" / "tiny-mnist" / "README.md").read_text()
    assert f"| Top-1 accuracy | {record.metrics[0].value:g} | {record.dataset} | measured |" in card
    # 6. A deploy bundle from the record alone, 7. run.py on the PNG digits.
    report = deploy(hub_model, tmp_path / "bundle")
    bundle = Path(report.folder)
    pre = json.loads((bundle / "preprocess.json").read_text())
    assert pre["mean"] == list(train_ds.preprocess["mean"]) and pre["resize"] == recipe.input_size
    assert json.loads((bundle / "labels.json").read_text()) == list("0123456789")
    _same_answers(_bundle_top1(bundle, paths, tmp_path), _torch_top1(hub_model, paths), labels)


def _readme_section() -> tuple[str, list[str]]:
    """The code block and the command lines of the documentation page "Your own PyTorch BNN on LCE"."""
    section = (ROOT / "docs" / "own-models.md").read_text()
    code = re.search(r"```python\n(# my_models.py\n.*?)```", section, re.S).group(1)
    commands = re.search(r"```\n(bnnzoo convert my_models.py.*?)```", section, re.S).group(1)
    return code, [line.split("#")[0].strip() for line in commands.strip().splitlines()]


def test_readme_own_bnn_converts_verifies_and_deploys_like_a_registered_model(tmp_path, digits):
    from converters.tflite import op_counts

    paths, labels = digits
    code, commands = _readme_section()
    (tmp_path / "my_models.py").write_text(code)
    env = {**os.environ, **ENV}
    run = subprocess.run([sys.executable, "my_models.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"binary convs +2 in the model, 2 LceBconv2d ops", run.stdout), run.stdout
    assert json.loads((tmp_path / "run7" / "config.json").read_text())["module_class"] == "MyBNN"
    assert [c.split()[:2] for c in commands] == [["bnnzoo", "convert"], ["bnnzoo", "verify"], ["bnnzoo", "deploy"],
                                                 ["python3", "my-rpi/run.py"]]
    for command in commands[:3]:  # the input size, mean, std and labels come from run7/config.json
        done = subprocess.run([sys.executable, "-m", "bnnzoo", *shlex.split(command)[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        if "verify" in command:
            assert "my.tflite matches its source layer by layer" in done.stdout
    assert op_counts((tmp_path / "my.tflite").read_bytes())["LceBconv2d"] == 2
    bundle = tmp_path / "my-rpi"
    pre = json.loads((bundle / "preprocess.json").read_text())
    assert (pre["input_size"], pre["mean"], pre["crop"]) == (96, [0.1307] * 3, "center") and pre["resize"] == 96
    assert json.loads((bundle / "labels.json").read_text()) == [str(d) for d in range(10)]
    sys.path.insert(0, str(tmp_path))
    try:
        model = zoo.load(f"{tmp_path / 'my_models.py'}:MyBNN", weights=str(tmp_path / "run7"))
    finally:
        sys.path.pop(0)
    _same_answers(_bundle_top1(bundle, paths, tmp_path), _torch_top1(model, paths), labels)
