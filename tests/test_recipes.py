"""Recipes: typed configs and overrides, data, every recipe for one tiny epoch, resume, kill, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recipes import ConfigError, UnknownRecipeError, get_recipe, list_recipes, run_recipe  # noqa: E402
from recipes.common import lr_factor, pin_models  # noqa: E402
from recipes.config import from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = [("threads", 1), ("tensorboard", False), ("progress", False)]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """A tiny ImageNet-style folder: 3 classes, odd-sized JPEGs and PNGs, one corrupt file."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for c in ("cat", "dog", "eel"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 255, (40 + 3 * i, 50 - 2 * i, 3), dtype=np.uint8)
                Image.fromarray(a).save(d / f"{i}.{'jpg' if i % 2 else 'png'}")
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


@pytest.fixture(scope="module")
def plates_folder(tmp_path_factory) -> Path:
    """A tiny `bnnzoo data plates` folder (64x64 images) with one corrupt training JPEG."""
    from recipes.plates.generate import generate

    root = tmp_path_factory.mktemp("plates")
    generate(root, {"train": 12, "val": 6}, seed=0, size=(64, 64))
    (root / "images" / "train" / "000002a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


# --- configs -------------------------------------------------------------------------------------

def test_overrides_are_typed_and_scoped():
    r = get_recipe("real2bin_mnist", [("batch_size", "32"), ("stage2.lr", "5e-4"), ("stages.epochs", "3"),
                                      ("model.width", "16"), ("tensorboard", "false"), ("stage1.decay_epochs", "1,2")])
    assert r.batch_size == 32 and isinstance(r.batch_size, int) and r.tensorboard is False
    assert r.stage("stage2").lr == 5e-4 and r.stage("stage1").lr == 1e-3
    assert all(s.epochs == 3 and s.model_overrides["width"] == 16 for s in r.stages)
    assert r.stage("stage1").decay_epochs == (1, 2)


def test_recipe_json_round_trip():
    r = get_recipe("real2bin_imagenet", [("stages.epochs", "2"), ("tiny", "true")])
    assert r.stage("stage3").epochs == 2 and r.input_size == 32  # tiny first, explicit overrides win
    assert from_dict(json.loads(r.to_json())) == r


@pytest.mark.parametrize("key, hint", [("batch_sise", "batch_size"), ("stage1.lrr", "'lr'"), ("stage5.lr", "stage"),
                                       ("epochs", "stages.epochs")])
def test_unknown_keys_are_suggested(key, hint):
    with pytest.raises(ConfigError, match=hint):
        get_recipe("real2bin_mnist", [(key, "1")])


def test_wrong_types_and_names_fail_in_one_line():
    with pytest.raises(ConfigError, match="integer"):
        get_recipe("tiny_mnist", [("batch_size", "big")])
    with pytest.raises(UnknownRecipeError, match="real2bin_mnist"):
        get_recipe("real2bin_mnst")


def test_real2bin_records_the_papers_numbers():
    r = get_recipe("real2bin_imagenet")
    s0, s1, s2, s3 = r.stages
    assert (s0.model, s1.model, s2.model, s3.model) == ("realtobinary_resnet18_teacher", "realtobinary_resnet18_stage1",
                                                        "realtobinary_resnet18_stage2", "realtobinary_resnet18")
    assert (s1.teacher, s2.teacher, s3.teacher) == ("stage0", "stage1", "stage2")
    assert (s2.init_from, s3.init_from) == ("stage1", "stage2")
    assert s1.attention_weight == s2.attention_weight == 30 and s3.attention_weight == 0
    assert (s1.kd_weight, s3.kd_weight) == (3.0, 0.8) and s1.kd_temperature == 1.0
    assert s1.optimizer == "adam" and s1.lr == 1e-3 and s1.weight_decay == 1e-5 and s3.lr == 2e-4
    assert s1.decay_epochs == (40, 60, 70) and s1.epochs == 75
    m = get_recipe("meliusnet22_imagenet").stages[0]
    assert (m.optimizer, m.lr, m.schedule) == ("radam", 0.002, "cosine")


def test_reactnet_records_the_authors_numbers():
    """run.sh / train.py of github.com/liuzechun/ReActNet: Adam, linear decay, 128 epochs, the distributional
    loss alone in both steps, weight decay 1e-5 then 0; step 2 starts from step 1 (the paper)."""
    for name, model, lr, batch in (("reactnet_a_imagenet", "reactnet_a", 1.25e-3, 256),
                                   ("reactnet_18_imagenet", "reactnet_18", 2.5e-3, 512)):
        teacher, s1, s2 = get_recipe(name).stages
        assert {s.model for s in (teacher, s1, s2)} == {model}
        assert teacher.model_overrides == {"input_quantizer": None, "weight_quantizer": None}
        assert s1.model_overrides == {"weight_quantizer": None} and s2.model_overrides == {}
        for s in (s1, s2):
            assert (s.optimizer, s.lr, s.schedule, s.epochs, s.batch_size) == ("adam", lr, "linear", 128, batch)
            assert (s.teacher, s.ce_weight, s.kd_weight, s.kd_temperature, s.attention_weight) == (
                "teacher", 0.0, 1.0, 1.0, 0.0)
        assert (s1.weight_decay, s2.weight_decay, s2.init_from) == (1e-5, 0.0, "step1")


def test_schedules():
    s = get_recipe("real2bin_imagenet").stage("stage1")
    f = [lr_factor(e * 10, 10, s) for e in (0, 2.5, 5, 39, 40, 60, 70, 74)]
    assert f == pytest.approx([0, 0.5, 1, 1, 0.3, 0.09, 0.027, 0.027])
    c = get_recipe("meliusnet22_imagenet").stages[0]
    assert lr_factor(0, 10, c) == 1 and lr_factor(600, 10, c) == pytest.approx(0.5) and lr_factor(1200, 10, c) == 0
    r = get_recipe("reactnet_a_imagenet").stage("step2")  # linear: 1 - epoch / 128, per step
    assert [lr_factor(e * 10, 10, r) for e in (0, 32, 64, 96.5, 128, 130)] == pytest.approx(
        [1, 0.75, 0.5, 1 - 96.5 / 128, 0, 0])


# --- losses --------------------------------------------------------------------------------------

def test_attention_loss_and_block_hooks():
    import zoo
    from recipes.losses import FeatureHooks, attention_loss, attention_map, distillation_loss

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 4, 3, 3, generator=g)
    assert torch.allclose(attention_map(a).norm(dim=1), torch.ones(2))
    assert attention_loss([a], [a * 5]).item() == pytest.approx(0, abs=1e-6)  # scale-invariant
    logits = torch.randn(4, 10, generator=g)
    # KL(p || p) is 0 up to float32 rounding, scaled by T^2 = 16
    assert distillation_loss(logits, logits, 4.0).item() == pytest.approx(0, abs=1e-5)
    assert distillation_loss(logits, -logits, 4.0).item() > 0.01
    model = zoo.load("realtobinary_resnet18", width=8, input_size=32, num_classes=10)
    hooks = FeatureHooks(model, get_recipe("real2bin_mnist").stage("stage1").attention_blocks)
    assert hooks.names == [f"blocks.{i}" for i in range(8)]
    model(torch.randn(1, 3, 32, 32))
    assert [tuple(t.shape[1:]) for t in hooks.take()][::2] == [(8, 8, 8), (16, 4, 4), (32, 2, 2), (64, 1, 1)]
    hooks.enabled = False  # evaluation passes keep nothing
    model(torch.randn(1, 3, 32, 32))
    assert hooks.take() == []


# --- data ----------------------------------------------------------------------------------------

def test_image_folder_augments_deterministically(image_folder):
    from recipes.data import ImageFolder

    train = ImageFolder(image_folder, "train", 24, seed=1)
    assert train.classes == ["cat", "dog", "eel"] and len(train) == 19
    train.set_epoch(3)
    x, y = train[0]
    assert x.shape == (3, 24, 24) and torch.equal(x, train[0][0])
    train.set_epoch(4)
    assert not torch.equal(x, train[0][0])
    assert train[[p.name for p, _ in train.samples].index("broken.jpg")] is None
    val = ImageFolder(image_folder, "val", 24, classes=train.classes)
    assert val[0][0].shape == (3, 24, 24) and len(val) == 6


def test_bad_data_fails_in_one_line(tmp_path, image_folder):
    from recipes.data import DataError, build_datasets

    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_datasets(str(tmp_path / "nope"), 32)
    with pytest.raises(DataError, match="needs data=PATH"):
        build_datasets("", 32)
    (tmp_path / "train" / "empty").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        build_datasets(str(tmp_path), 32)


def test_mnist_split_is_fixed():
    from recipes.data import mnist_splits

    train, val = mnist_splits(32)
    assert (len(train), len(val)) == (4000, 1000) and train[0][0].shape == (3, 32, 32)
    assert torch.equal(mnist_splits(32)[1].labels, val.labels)


# --- every recipe, one tiny epoch ----------------------------------------------------------------

@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_runs_one_tiny_epoch(name, tmp_path, image_folder, plates_folder):
    overrides = [("tiny", "true"), ("out", str(tmp_path / name))] + FAST
    if get_recipe(name).task == "detect":
        overrides.append(("data", str(plates_folder)))
    elif get_recipe(name).data != "mnist":
        overrides.append(("data", str(image_folder)))
    if name == "strongbaseline_imagenet":  # DataLoader worker processes decode (and skip) the images
        overrides.append(("workers", "2"))
    if name == "real2bin_mnist":  # a second epoch after an evaluation pass, with both distillation losses
        overrides.append(("stage2.epochs", "2"))
    recipe = get_recipe(name, overrides)
    results = run_recipe(recipe, log=lambda s: None)
    assert list(results) == [s.name for s in recipe.stages]
    metric = "val_ap50" if recipe.task == "detect" else "val_acc"
    for stage in recipe.stages:
        d = tmp_path / name / stage.name
        assert results[stage.name]["finished"] and 0 <= results[stage.name][metric] <= 1
        assert {"model.safetensors", "config.json", "state.pt", "metrics.csv", "stage.json", "final.json"} <= {
            p.name for p in d.iterdir()}
    if recipe.data != "mnist":  # the corrupt JPEG is skipped and counted, not fatal
        assert sum(r["skipped_images"] for r in results.values()) == len(recipe.stages)
    saved = from_dict(json.loads((tmp_path / name / "recipe.json").read_text()))
    import zoo

    last = saved.stages[-1]  # pinned: every architecture option written out, not just the overrides
    assert saved == pin_models(recipe) and set(last.model_overrides) == set(zoo.get_config(last.model).arch)
    # The final model loads back through the zoo.
    import zoo

    last = recipe.stages[-1]
    zoo.load(last.model, weights=str(tmp_path / name / last.name / "model.safetensors"))


def test_wrong_teacher_fails_in_one_line(tmp_path):
    base = [("tiny", "true"), ("out", str(tmp_path / "r")), ("only", "stage0")] + FAST
    run_recipe(get_recipe("real2bin_mnist", base), log=lambda s: None)
    other = get_recipe("meliusnet22_mnist", [("tiny", "true"), ("out", str(tmp_path / "m"))] + FAST)
    run_recipe(other, log=lambda s: None)
    wrong = str(tmp_path / "m" / "train" / "model.safetensors")
    with pytest.raises(ConfigError, match="is a 'meliusnet22'.*teacher_weights=PATH") as e:
        run_recipe(get_recipe("real2bin_mnist", base + [("only", "stage1"), ("stage1.teacher_weights", wrong)]),
                   resume=True, log=lambda s: None)
    assert "\n" not in str(e.value)
    wider = get_recipe("real2bin_mnist", base + [("only", "stage1"), ("stage0.model.width", "16")])
    with pytest.raises(ConfigError, match="width=8 .expected 16"):
        run_recipe(wider, resume=True, log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="run stage stage1 first"):
        run_recipe(get_recipe("real2bin_mnist", base + [("only", "stage2")]), resume=True, log=lambda s: None)


def test_existing_run_needs_resume(tmp_path):
    recipe = get_recipe("tiny_mnist", [("tiny", "true"), ("out", str(tmp_path))] + FAST)
    run_recipe(recipe, log=lambda s: None)
    with pytest.raises(RuntimeError, match="--resume"):
        run_recipe(recipe, log=lambda s: None)


# --- resume --------------------------------------------------------------------------------------

def _final(run: Path, stage: str = "train") -> tuple[dict, dict]:
    from zoo.weights import read_safetensors

    rows = (run / stage / "metrics.csv").read_text().splitlines()
    return read_safetensors(run / stage / "model.safetensors"), rows


def test_resume_matches_an_unbroken_run(tmp_path):
    over = FAST + [("max_train_samples", 96), ("max_val_samples", 32)]
    run_recipe(get_recipe("tiny_mnist", over + [("out", str(tmp_path / "a"))]), log=lambda s: None)
    broken = get_recipe("tiny_mnist", over + [("out", str(tmp_path / "b"))])
    first = run_recipe(broken, stop_after=1, log=lambda s: None)
    assert first["train"]["epochs"] == 1 and not first["train"]["finished"]
    run_recipe(broken, resume=True, log=lambda s: None)
    (wa, rows_a), (wb, rows_b) = _final(tmp_path / "a"), _final(tmp_path / "b")
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    cols = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")

    def strip(rows):  # timing columns differ, everything else must not
        import csv

        return [{k: r[k] for k in cols} for r in csv.DictReader(rows)]
    assert strip(rows_a) == strip(rows_b)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bnnzoo", "train", *args]


# Run in a child process that SIGKILLs itself after a given number of optimizer steps: the kill lands
# at a known point (mid-epoch 2, after epoch 1's state was saved), however fast the machine is.
_KILLED_AT_STEP = """
import os, signal, sys
from torch.optim.optimizer import register_optimizer_step_post_hook
steps = 0
def kill_at(optimizer, args, kwargs):
    global steps
    steps += 1
    if steps == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
register_optimizer_step_post_hook(kill_at)
from bnnzoo.cli import main
sys.exit(main(["train", *sys.argv[2:]]))
"""


def test_killed_run_resumes_to_the_same_result(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["tiny_mnist", "threads=1", "max_train_samples=384", "max_val_samples=32"]
    unbroken = [tuple(a.split("=")) for a in args[1:]] + [("out", str(tmp_path / "a"))]
    run_recipe(get_recipe("tiny_mnist", unbroken), log=lambda s: None)  # in-process: one start-up less
    steps_per_epoch = 384 // get_recipe("tiny_mnist").batch_size
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_STEP, str(steps_per_epoch + 3), *args,
                             f"out={tmp_path / 'b'}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = tmp_path / "b" / "train" / "state.pt"
    assert torch.load(state, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "b" / "train" / "final.json").exists()
    out = subprocess.run(_cli("tiny_mnist", "--resume", str(tmp_path / "b")), cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resuming after epoch 1" in out.stdout
    (wa, rows_a), (wb, rows_b) = _final(tmp_path / "a"), _final(tmp_path / "b")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert [r.split(",")[:9] for r in rows_a] == [r.split(",")[:9] for r in rows_b]


def test_cli_errors_are_one_line(tmp_path, capsys):
    from bnnzoo.cli import main

    assert main(["train", "tiny_mnist", "batch_sise=3"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "did you mean 'batch_size'" in err
    assert main(["train", "real2bin_imagenet", f"data={tmp_path / 'missing'}", f"out={tmp_path / 'o'}"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and err.strip().count("\n") == 0
    assert main(["train", "tiny_mnist", "--resume", str(tmp_path / "none")]) == 1
    assert "no run to resume" in capsys.readouterr().err


# --- detection -----------------------------------------------------------------------------------

def _rows(run: Path, stage: str) -> list[dict]:
    import csv

    timing = ("images_per_s", "seconds")
    return [{k: v for k, v in r.items() if k not in timing}
            for r in csv.DictReader((run / stage / "metrics.csv").read_text().splitlines())]


def test_detection_logs_ap_and_resumes_to_the_same_result(tmp_path, plates_folder):
    over = [("tiny", "true"), ("data", str(plates_folder)), ("stages.epochs", "2"), ("batch_size", "4"),
            ("stages.batch_size", "4")] + FAST
    run_recipe(get_recipe("plates_detector_1bit", over + [("out", str(tmp_path / "a"))]), log=lambda s: None)
    broken = get_recipe("plates_detector_1bit", over + [("out", str(tmp_path / "b"))])
    # Killed in the float stage, then in the 1-bit stage that starts from the float weights.
    first = run_recipe(broken, stop_after=1, log=lambda s: None)
    assert list(first) == ["float"] and first["float"]["epochs"] == 1 and not first["float"]["finished"]
    second = run_recipe(broken, resume=True, stop_after=1, log=lambda s: None)
    assert second["float"]["finished"] and second["improved"]["epochs"] == 1 and not second["improved"]["finished"]
    run_recipe(broken, resume=True, log=lambda s: None)
    for stage in ("float", "improved"):
        (wa, _), (wb, _) = _final(tmp_path / "a", stage), _final(tmp_path / "b", stage)
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
        rows = _rows(tmp_path / "a", stage)
        assert rows == _rows(tmp_path / "b", stage) and len(rows) == 2
    assert {"train_box", "train_obj", "train_noobj", "val_loss", "val_ap50", "val_plate_accuracy", "val_precision",
            "val_recall"} <= set(rows[0])
    final = json.loads((tmp_path / "b" / "improved" / "final.json").read_text())
    assert final["finished"] and 0 <= final["val_ap50"] <= 1 and final["skipped_images"] == 2  # once an epoch


def test_detection_distils_the_float_stage_when_asked(tmp_path, plates_folder):
    over = [("tiny", "true"), ("data", str(plates_folder)), ("out", str(tmp_path / "kd")),
            ("improved.teacher", "float"), ("improved.kd_weight", "1")] + FAST
    results = run_recipe(get_recipe("plates_detector_1bit", over), log=lambda s: None)
    assert results["improved"]["finished"]
    (row,) = _rows(tmp_path / "kd", "improved")
    assert float(row["train_kd"]) > 0 and float(_rows(tmp_path / "kd", "float")[0]["train_kd"]) == 0
    teacher = [("improved.teacher", "float")]
    for k, (extra, message) in enumerate(((teacher, "has a teacher but kd_weight=0"),
                                          (teacher + [("improved.kd_weight", "1"), ("improved.attention_weight", "1")],
                                           "distil outputs only"))):
        with pytest.raises(ConfigError, match=message):
            run_recipe(get_recipe("plates_detector_1bit", [("tiny", "true"), ("data", str(plates_folder)),
                                                            ("out", str(tmp_path / f"bad{k}"))] + extra + FAST),
                       log=lambda s: None)


def test_detection_bad_data_fails_in_one_line(tmp_path, capsys):
    from bnnzoo.cli import main

    (tmp_path / "empty" / "images" / "train").mkdir(parents=True)
    for extra, message in ((f"data={tmp_path / 'empty'}", "holds no image"),
                           (f"data={tmp_path / 'missing'}", "does not exist"), ("data=", "needs data=PATH"),
                           ("framework=keras", "trains classifiers only")):
        assert main(["train", "plates_detector_1bit", extra, f"out={tmp_path / 'o'}"]) == 1
        err = capsys.readouterr().err
        assert message in err and err.strip().count("\n") == 0, err


# --- torchrun ------------------------------------------------------------------------------------

def test_torchrun_two_processes_on_cpu(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m",
           "bnnzoo", "train", "tiny_mnist", "tiny=true", "stages.epochs=2", "max_train_samples=96",
           f"out={tmp_path}"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    stage = json.loads((tmp_path / "train" / "stage.json").read_text())
    assert stage["world_size"] == 2 and stage["steps_per_epoch"] == 3  # 96 images: 48 a rank, 16 a step
    rows = (tmp_path / "train" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and out.stdout.count("epoch 1/2") == 1  # only rank 0 writes and logs
    final = json.loads((tmp_path / "train" / "final.json").read_text())
    assert final["finished"] and 0 <= final["val_acc"] <= 1
