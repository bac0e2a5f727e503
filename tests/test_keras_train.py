"""framework=keras: the MeliusNet recipe trains with tf.keras fit, resumes, and its weights load into PyTorch."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

import zoo  # noqa: E402
from bnnzoo.cli import main  # noqa: E402
from recipes.data import mnist_splits  # noqa: E402
from recipes.keras_train import STATE_FILE, RAdam  # noqa: E402

TINY = ["framework=keras", "tiny=true", "stages.epochs=2", "max_train_samples=256", "max_val_samples=64"]


def _rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_keras_run_resumes_and_its_weights_load_into_torch(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "meliusnet22_mnist", *TINY, f"out={out}", "--stop-after", "1"]) == 0
    stage_dir = out / "train"
    assert len(_rows(stage_dir / "metrics.csv")) == 1 and not (stage_dir / "final.json").exists()
    assert (stage_dir / STATE_FILE).is_file()

    assert main(["train", "meliusnet22_mnist", "--resume", str(out)]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    rows = _rows(stage_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    final = json.loads((stage_dir / "final.json").read_text())
    assert final["finished"] and final["framework"] == "keras"
    assert json.loads((out / "recipe.json").read_text())["framework"] == "keras"
    assert json.loads((stage_dir / "stage.json").read_text())["optimizer_impl"].endswith(".RAdam")
    loss = [float(r["train_loss"]) for r in rows]
    assert loss[1] < loss[0] or float(rows[1]["val_acc"]) > 0.2, rows  # it learns: chance is 10%

    # The trained Keras model (weights from its checkpoint) against PyTorch with model.safetensors.
    torch_model = zoo.load("meliusnet22", weights=str(stage_dir / "model.safetensors"))
    keras_model = zoo.build(torch_model.zoo_config, "keras")
    with np.load(stage_dir / STATE_FILE) as f:
        for i, v in enumerate(keras_model.weights):
            v.assign(f[f"w{i}"])
    _, val = mnist_splits(32)
    x, y = val.images[:64], val.labels[:64].numpy()  # the run's validation digits
    with torch.no_grad():
        logits_torch = torch_model(x).numpy()
    logits_keras = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    # Rounding just before a sign can flip an activation and move a few images' logits (on the
    # trained 12-epoch run: 4 of 1,000); a wrong weight mapping would move nearly all of them.
    close = np.abs(logits_torch - logits_keras).max(1) < 1e-3
    assert close.mean() >= 0.9, np.abs(logits_torch - logits_keras).max(1)
    assert (logits_torch.argmax(1) == logits_keras.argmax(1)).mean() >= 0.95
    assert abs((logits_torch.argmax(1) == y).mean() - float(rows[1]["val_acc"])) <= 2 / len(y)


def test_recipes_that_cannot_train_in_keras_fail_in_one_line(tmp_path, capsys):
    assert main(["train", "real2bin_mnist", "framework=keras", f"out={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "distilled from a teacher" in err
    assert "meliusnet22_mnist" in err and "meliusnet22_imagenet" in err
    assert main(["train", "meliusnet22_mnist", "framework=jax", f"out={tmp_path}"]) == 1
    assert "expected 'torch' or 'keras'" in capsys.readouterr().err
    assert not (tmp_path / "recipe.json").exists()


def test_radam_matches_torch():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    w_torch = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt_torch = torch.optim.RAdam([w_torch], lr=0.01)
    w_keras = tf.Variable(w0)
    opt_keras = RAdam(0.01)
    for _ in range(10):  # the first 5 steps are un-rectified, the rest rectified
        g = rng.normal(size=w0.shape).astype(np.float32)
        w_torch.grad = torch.from_numpy(g)
        opt_torch.step()
        opt_keras.apply_gradients([(tf.constant(g), w_keras)])
    np.testing.assert_allclose(w_keras.numpy(), w_torch.detach().numpy(), rtol=1e-4, atol=1e-5)
