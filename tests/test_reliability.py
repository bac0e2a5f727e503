"""Faults and bad input, injected for real: crafted and truncated files, killed processes, Ctrl-C,
a clean environment, one numbered section per guarantee of docs/reliability.md. (Hub downloads: test_hub.py;
the export cache of bnnzoo detect: test_detect.py; deploy bundles and run.py: test_deploy.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from bnnzoo.cli import main as cli_main
from recipes import ConfigError, get_recipe, run_recipe
from recipes.common import RunError
from zoo import fileio

from helpers import error_lines

ROOT = Path(__file__).resolve().parents[1]
FAST = [("threads", 1), ("tensorboard", False), ("progress", False), ("max_train_samples", 64),
        ("max_val_samples", 32)]


def _one_line(text: str) -> str:
    lines = error_lines(text)  # progress lines ("... (1/2)") may come first
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _crafted_run(tmp_path: Path, name: str = "tiny_mnist", **fields) -> Path:
    """A run folder holding only the recipe.json a run of ``name`` writes (fields replaced)."""
    run = tmp_path / "run"
    run.mkdir()
    d = get_recipe(name, FAST + [("out", str(run))]).to_dict()
    d.update(fields)
    (run / "recipe.json").write_text(json.dumps(d))
    return run


# --- 1. no code runs from a run folder ------------------------------------------------------------

class _Payload:
    """Pickles as a call of open(marker, "w"): unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_state_pt_is_refused_and_its_payload_never_runs(tmp_path, capsys):
    run = _crafted_run(tmp_path)
    marker = tmp_path / "payload-ran"
    (run / "train").mkdir()
    torch.save({"model": _Payload(marker), "epoch": 1}, run / "train" / "state.pt")
    assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "cannot be loaded safely" in err and "state.pt" in err
    assert not marker.exists()
    # The same file under the unsafe loading the fix replaced does run the payload: the test is real.
    torch.load(run / "train" / "state.pt", weights_only=False)
    assert marker.exists()


def test_checkpoints_hold_only_what_weights_only_loading_takes(tmp_path):
    from recipes.train import load_checkpoint

    run_recipe(get_recipe("tiny_mnist", FAST + [("out", str(tmp_path)), ("stages.epochs", "2")]), stop_after=1,
               log=lambda s: None)
    state = load_checkpoint(tmp_path / "train" / "state.pt")  # torch.load(weights_only=True) inside
    assert state["epoch"] == 1 and {"torch", "numpy", "python"} <= set(state["rng"])
    assert state["optimizer"]["state"] and isinstance(state["rng"]["numpy"][1], torch.Tensor)


# ids: pytest-xdist workers must collect the same test names (each draws its own random bytes).
@pytest.mark.parametrize("content", [b"", os.urandom(64), b"PK\x03\x04 truncated zip"],
                         ids=["empty", "random", "truncated zip"])
def test_empty_or_random_state_pt_is_one_line(content, tmp_path, capsys):  # item 10
    run = _crafted_run(tmp_path)
    (run / "train").mkdir()
    (run / "train" / "state.pt").write_bytes(content)
    assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
    assert "cannot be loaded safely" in _one_line(capsys.readouterr().err)


# --- 2. names read from files never leave the output folder -----------------------------------------

@pytest.mark.parametrize("stage", ["../../escaped", "/tmp/abs", ".hidden", "a/b", ""])
def test_stage_names_that_leave_the_run_folder_are_refused(stage, tmp_path, capsys):
    run = _crafted_run(tmp_path)
    d = json.loads((run / "recipe.json").read_text())
    d["stages"][0]["name"] = stage
    (run / "recipe.json").write_text(json.dumps(d))
    before = _snapshot(tmp_path)
    assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "stage name" in err and "cannot be a file name" in err
    assert _snapshot(tmp_path) == before and not (tmp_path.parent / "escaped").exists()
    from recipes.config import from_dict

    with pytest.raises(ConfigError, match="cannot be a file name"):
        from_dict(d)


# --- 4. an explicit input size wins ----------------------------------------------------------------

def test_explicit_input_size_wins_over_the_weights_config(tmp_path, capsys):
    import onnx

    assert zoo.load("meliusnet22.mnist").zoo_config.input_size == 32
    assert zoo.load("meliusnet22.mnist", input_size=64).zoo_config.input_size == 64
    out = tmp_path / "m.onnx"
    assert zoo.load("mobilenet_v1_025.mnist").zoo_config.input_size == 64
    assert cli_main(["convert", "mobilenet_v1_025.mnist", "--to", "onnx", "--input-size", "32", "-o", str(out)]) == 0
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[-2:] == [32, 32]
    with pytest.raises(ValueError, match="a detector's output depends on its input size"):
        zoo.load("plates_detector_1bit.plates", input_size=64)


# --- 5. sizes and counts are checked at the door ------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(num_classes=-1), dict(input_size=0), dict(input_size=-32),
                                dict(input_size="32"), dict(num_classes=2.5), dict(input_size=True)])
def test_model_sizes_must_be_positive_integers(kw):
    """num_classes=0 is a headless model (tests/test_records.py); below 0, or not an integer, it is refused."""
    with pytest.raises(ValueError, match="takes a (positive|non-negative) integer"):
        zoo.load("meliusnet22", **kw)


@pytest.mark.parametrize("override, message", [
    ("stages.epochs=0", "train.epochs must be >= 1"), ("batch_size=0", "batch_size must be >= 1"),
    ("input_size=0", "input_size must be >= 1"), ("num_classes=-1", "num_classes must be >= 0"),
    ("stages.lr=0", "train.lr must be > 0"), ("val_fraction=1", "val_fraction must be < 1"),
    ("stages.optimizer=adamw", "unknown train.optimizer 'adamw'"), ("framework=jax", "unknown framework 'jax'"),
    ("seed=-1", "seed must be >= 0"), ("stages.decay_epochs=x", "train.decay_epochs[0] must be >= 0.0, not 'x'"),
    ("stages.attention_blocks=(", "train.attention_blocks must be a regular expression"),
])
def test_recipe_values_are_checked_before_anything_is_written(override, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "tiny_mnist", override, f"out={out}", "threads=1"]) == 1
    assert message in _one_line(capsys.readouterr().err)
    assert not out.exists()


# --- 6. no framework switch on resume -----------------------------------------------------------------

@pytest.mark.parametrize("saved, asked, checkpoint", [("keras", "torch", "state.keras.npz"),
                                                      ("torch", "keras", "state.pt")])
def test_resume_refuses_a_framework_switch_before_writing(saved, asked, checkpoint, tmp_path, capsys):
    run = _crafted_run(tmp_path, framework=saved)
    (run / "train").mkdir()
    (run / "train" / checkpoint).write_bytes(b"a checkpoint")
    (run / "train" / "metrics.csv").write_text("epoch\n1\n")
    before = _snapshot(run)
    assert cli_main(["train", "tiny_mnist", "--resume", str(run), f"framework={asked}"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert f"framework={saved} run" in err and f"drop framework={asked}" in err
    assert _snapshot(run) == before
    # The API refuses too, from the folder's checkpoints, before recipe.json is rewritten.
    recipe = get_recipe("tiny_mnist", FAST + [("out", str(run)), ("framework", asked)])
    with pytest.raises(RunError, match=f"holds a framework={saved} run"):
        run_recipe(recipe, resume=True, log=lambda s: None)
    assert _snapshot(run) == before


# --- 9. temporaries of killed writers are cleaned, a live writer's are not -------------------------------

_SLOW_WRITER = """
import sys, time
from pathlib import Path
from zoo import fileio
def write(tmp):
    Path(tmp).write_bytes(b"half")
    time.sleep(600)
fileio.atomic_write(sys.argv[1], write)
"""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.onnx"
    procs = [subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)], cwd=ROOT) for _ in range(2)]
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.glob(".model.onnx.*.tmp"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        temps = {p.name: p for p in tmp_path.glob(".model.onnx.*.tmp")}
        assert len(temps) == 2  # SIGKILL leaves the dead writer's temporary behind
        killed = next(p for n, p in temps.items() if f".{procs[0].pid}." in n)
        live = next(p for n, p in temps.items() if f".{procs[1].pid}." in n)
        other = tmp_path / f".other.onnx.{_dead_pid()}.abc.tmp"  # any target's, once its writer is gone
        other.write_text("another target's, dead writer")
        fileio.write_text(target, "complete")
        assert target.read_text() == "complete"
        assert not killed.exists() and not other.exists() and live.exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# --- 10. damaged files are one line naming the file ------------------------------------------------

def _checkpoint(tmp_path: Path, config) -> Path:
    from zoo.weights import save

    folder = tmp_path / "ckpt"
    folder.mkdir(exist_ok=True)
    m = zoo.load("meliusnet22", **zoo.get_config("meliusnet22").tiny)
    save(m.state_dict(), folder / "model.safetensors", m.zoo_config)
    if config is not None:
        (folder / "config.json").write_text(config)
    return folder / "model.safetensors"


@pytest.mark.parametrize("config, message", [
    ("[1, 2]", "holds a JSON list, expected an object"), ('{"name": "meliusnet22",', "is not valid JSON (line 1"),
    ("\xff\xfe", "is not valid JSON"),
])
def test_bad_config_json_is_one_line_naming_the_file(config, message, tmp_path, capsys):
    path = _checkpoint(tmp_path, None)
    (path.parent / "config.json").write_bytes(config.encode("latin-1"))
    with pytest.raises(ValueError) as e:
        zoo.load("meliusnet22", weights=str(path))
    assert message in str(e.value) and str(path.parent / "config.json") in str(e.value)
    for argv in (["convert", str(path), "--arch", "meliusnet22", "--to", "onnx", "-o", str(tmp_path / "x.onnx")],
                 ["pack", str(path), "-o", str(tmp_path / "p.safetensors")],
                 ["push", str(path.parent), "--repo", "me/x", "--dry-run"]):
        assert cli_main(argv) == 1
        err = _one_line(capsys.readouterr().err)
        assert message in err and "config.json" in err, argv


def test_config_with_a_word_for_a_size_is_one_line(tmp_path):
    path = _checkpoint(tmp_path, None)
    cfg = json.loads((path.parent / "config.json").read_text())
    (path.parent / "config.json").write_text(json.dumps({**cfg, "input_size": "big"}))
    with pytest.raises(ValueError) as e:
        zoo.load("meliusnet22", weights=str(path))
    assert "input_size takes a positive integer, not 'big'" in _one_line(str(e.value))
    assert str(path.parent / "config.json") in str(e.value)


def test_recipe_json_that_is_not_a_recipe_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for text, message in (("[]", "holds a JSON list"), ("{", "is not valid JSON"),
                          ('{"name": "tiny_mnist", "stages": 3}', "'stages' is a list")):
        (run / "recipe.json").write_text(text)
        assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
        err = _one_line(capsys.readouterr().err)
        assert message in err and "recipe.json" in err


def test_truncated_keras_checkpoint_is_one_line(tmp_path, capsys):
    run = _crafted_run(tmp_path, framework="keras")
    (run / "train").mkdir()
    np.savez(run / "train" / "state.keras.npz", meta=np.array("{}"), w0=np.zeros(1000))
    data = (run / "train" / "state.keras.npz").read_bytes()
    (run / "train" / "state.keras.npz").write_bytes(data[: len(data) // 2])
    assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "state.keras.npz is damaged" in err and "BadZipFile" in err


# --- 12. a decompression bomb in an image folder is skipped and counted --------------------------------

def test_decompression_bomb_in_an_image_folder_is_skipped_and_counted(tmp_path):
    from PIL import Image

    from eval.harness import EvalImages
    from recipes.data import ImageFolder

    from helpers import bomb_png

    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (20, 20), (10, 200, 30)).save(tmp_path / split / c / "ok.png")
    bomb_png(tmp_path / "train" / "a" / "zbomb.png")
    bomb_png(tmp_path / "val" / "b" / "zbomb.png")
    train = ImageFolder(tmp_path, "train", 16)
    assert [train[i] is None for i in range(len(train))] == [False, True, False]
    from helpers import tiny

    x, y, _, what = EvalImages(str(tmp_path), 0).get(tiny("meliusnet22"))
    assert len(y) == 2 and "1 unreadable image(s) skipped" in what
    from recipes.data import collate_skip

    batch, labels, skipped = collate_skip([train[i] for i in range(len(train))])
    assert skipped == 1 and len(labels) == 2


# --- 13. bad command-line values and Ctrl-C ------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["data", "plates", "--size", "100000x100000", "--train", "1", "--val", "0"], "too large"),
    (["data", "plates", "--font", "{tmp}/font.ttf", "--train", "1", "--val", "0"], "not a TrueType/OpenType font"),
    (["eval", "meliusnet22", "--batch-size", "0", "--baseline", "none"], "--batch-size must be >= 1"),
    (["eval", "meliusnet22", "--limit", "-1", "--baseline", "none"], "--limit >= 0"),
])
def test_bad_command_line_values_are_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "font.ttf").write_text("not a font")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + (["--out", str(tmp_path / "d")] if argv[0] == "data"
                                                                 else ["-o", str(tmp_path / "r")])
    assert cli_main(argv) == 1
    assert message in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "d" / "images").exists() and not (tmp_path / "r").exists()


def test_ctrl_c_is_exit_130_and_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bnnzoo", "train", "tiny_mnist", "threads=1",
                             "stages.epochs=100000", "max_train_samples=256", "max_val_samples=32", "progress=false",
                             f"out={tmp_path}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "train" / "state.pt"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = _one_line(err)
    assert line.startswith("bnnzoo train: interrupted") and "--resume" in line


# --- 14. messages that say what was wrong ------------------------------------------------------------

@pytest.mark.parametrize("name, kw, error, message", [
    ("x.h5", {}, ValueError, "'x.h5' is a .h5 file: bnnzoo reads weights from a folder or a .safetensors file"),
    ("/some/folder/x", {}, FileNotFoundError, "/some/folder/x does not exist: give NAME[.TAG]"),
    ("meliusnet22.", {}, ValueError, "has an empty weights tag: write 'meliusnet22' or 'meliusnet22.TAG'"),
    ("meliusnet22", dict(weights=123), TypeError, "weights takes a str (NAME[.TAG], a folder or file"),
    ("meliusnet22.mnist", dict(weights="default"), ValueError, "names its weights already"),
])
def test_misleading_names_get_messages_that_say_what_is_wrong(name, kw, error, message):
    with pytest.raises(error) as e:
        zoo.load(name, **kw)
    assert message in _one_line(str(e.value))


# --- 15. the Python API selects Keras 2 itself ------------------------------------------------------------

def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTEST_CURRENT_TEST")}


def test_python_api_converts_to_tflite_without_tf_use_legacy_keras(tmp_path):
    script = ("import zoo, converters; r = converters.convert(zoo.load('meliusnet22.mnist'), 'x.tflite', 'tflite'); "
              "print('LceBconv2d', r.lce_bconv2d)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_clean_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "x.tflite").is_file() and int(proc.stdout.split("LceBconv2d")[-1]) > 0


def test_tensorflow_with_keras_3_first_is_refused_in_one_line(tmp_path):
    script = ("import tensorflow as tf; tf.keras.layers.Dense\n"  # TensorFlow picks Keras 3 here
              "import zoo, converters\n"
              "for f in (lambda: converters.convert(zoo.load('meliusnet22.mnist'), 'x.tflite', 'tflite'),\n"
              "          lambda: zoo.load('meliusnet22', framework='keras')):\n"
              "    try:\n        f()\n    except ImportError as e:\n        print('refused:', e)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_clean_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("refused:")]
    assert len(lines) == 2 and all("TF_USE_LEGACY_KERAS=1" in line for line in lines), proc.stdout
    assert not (tmp_path / "x.tflite").exists()


# --- the documentation's examples work ------------------------------------------------------------------

def test_documented_detect_examples_do_not_overwrite_their_input(tmp_path, monkeypatch):
    from bnnzoo.cli import command_parser
    from bnnzoo.commands.detect import output_paths

    lines = [line.split("#")[0] for line in (ROOT / "docs" / "plates.md").read_text().splitlines()
             if line.startswith("bnnzoo detect ")]
    assert lines
    monkeypatch.chdir(tmp_path)
    parser = command_parser("detect")
    for line in lines:
        args = parser.parse_args(shlex.split(line)[2:])
        if args.model is None:  # bnnzoo detect NAME[.TAG] IMG ...: the first positional is the detector
            args.images = args.images[1:]
        for image in args.images:
            Path(image).touch()
        output_paths(args.images, args.output)  # raises "would overwrite the input" for a bad example


# --- the documentation states these guarantees ----------------------------------------------------------------

def test_reliability_page_lists_the_guarantees_these_tests_check():
    section = (ROOT / "docs" / "reliability.md").read_text()
    for phrase in ("weights_only", "sha256", "atomic", "--resume", "130"):
        assert phrase in section.lower(), phrase
    assert re.search(r"tests/test_reliability\.py", section)


# --- round two: run folders, batches of one, resume and stop-after, concurrent runs ---------------------

def test_a_stage_folder_that_is_a_symlink_out_of_the_run_is_refused(tmp_path, capsys):
    """r/train -> another folder: --resume refuses in one line and writes nothing there (nor in r)."""
    run = _crafted_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "canary.txt").write_text("keep me")
    (run / "train").symlink_to(elsewhere, target_is_directory=True)
    before, run_before = _snapshot(elsewhere), _snapshot(run)
    assert cli_main(["train", "tiny_mnist", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "outside" in err and str(run / "train") in err, err
    assert _snapshot(elsewhere) == before and _snapshot(run) == run_before


def test_a_final_batch_of_one_is_dropped_not_a_crash(tmp_path, capsys):
    """65 training images in batches of 64: the image left alone would crash BatchNorm; it is left out of
    that epoch and the run says how many images each epoch trains on."""
    out = tmp_path / "run"
    assert cli_main(["train", "tiny_mnist", "threads=1", "tensorboard=false", "progress=false", "max_train_samples=65",
                       "max_val_samples=32", "stages.batch_size=64", f"out={out}"]) == 0, capsys.readouterr().err
    out_text = capsys.readouterr().out
    assert "65 training" in out_text and "64 used per epoch" in out_text, out_text
    assert json.loads((out / "train" / "final.json").read_text())["finished"]


def test_unreadable_images_that_leave_one_in_a_batch_do_not_crash(tmp_path, capsys):
    """3 readable images and 1 unreadable in batches of 2: whichever batch the unreadable one lands in
    holds a single readable image, which is not trained on (counted), every epoch."""
    from PIL import Image

    for split in ("train", "val"):
        for c, colour in (("a", (200, 10, 10)), ("b", (10, 10, 200))):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(2 if split == "val" else 1 + (c == "a")):
                Image.new("RGB", (32, 32), colour).save(tmp_path / "data" / split / c / f"{i}.png")
    (tmp_path / "data" / "train" / "b" / "broken.png").write_bytes(b"\x89PNG not an image")
    out = tmp_path / "run"
    assert cli_main(["train", "tiny_mnist", f"data={tmp_path / 'data'}", "input_size=32", "threads=1", "workers=0",
                       "tensorboard=false", "progress=false", "stages.batch_size=2", "stages.epochs=2",
                       f"out={out}"]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "1 image left alone in its batch by unreadable ones, not trained on" in text, text
    assert json.loads((out / "train" / "final.json").read_text())["skipped_images"] == 2


def test_resume_of_a_checkpoint_past_the_recipe_is_one_line(tmp_path, capsys):
    from recipes.train import load_checkpoint

    out = tmp_path / "run"
    args = ["tiny_mnist", *[f"{k}={v}" for k, v in FAST], "stages.epochs=2"]
    assert cli_main(["train", *args, f"out={out}", "--stop-after", "1"]) == 0
    state = load_checkpoint(out / "train" / "state.pt")
    torch.save({**state, "epoch": 99}, out / "train" / "state.pt")
    capsys.readouterr()
    before = _snapshot(out)
    assert cli_main(["train", "tiny_mnist", "--resume", str(out)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "99 epochs" in err and "2" in err and "state.pt" in err, err
    assert _snapshot(out) == before and not (out / "train" / "final.json").exists()


@pytest.mark.parametrize("value", ["-1", "0"])
def test_stop_after_below_one_is_one_line(value, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "tiny_mnist", *[f"{k}={v}" for k, v in FAST], f"out={out}", "--stop-after", value]) == 1
    assert "--stop-after" in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_run_folder_held_by_another_process_is_refused_before_anything_is_written(tmp_path, capsys):
    """The lock a running training holds: a second training into the folder is refused in one line and
    writes nothing (deterministic: this process holds the lock the first run would)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with fileio.lock(out / ".lock"):
        before = _snapshot(out)
        assert cli_main(["train", "tiny_mnist", *[f"{k}={v}" for k, v in FAST], f"out={out}"]) == 1
        err = _one_line(capsys.readouterr().err)
        assert "in use by another process" in err and str(os.getpid()) in err, err
        assert _snapshot(out) == before


def test_two_trainings_started_together_into_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bnnzoo", "train", "tiny_mnist", *[f"{k}={v}" for k, v in FAST], f"out={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd + [f"seed={s}"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for s in (0, 1)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert sorted(r[0] for r in results) == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert re.search(r"in use by another process|already holds a run", _one_line(loser[2])), loser[2]
    winner = results.index(next(r for r in results if r[0] == 0))
    assert json.loads((out / "recipe.json").read_text())["seed"] == winner  # the folder holds one run, whole


# --- round two: every value is checked at the door, one line naming it ----------------------------------

@pytest.mark.parametrize("override, message", [
    ("model.width=big", "option 'width' takes an integer >= 1, not 'big'"),
    ("model.width=-1", "option 'width' takes an integer >= 1, not -1"),
    ("model.width=2.5", "option 'width' takes an integer >= 1, not 2.5"),
    ("model.pad_value=high", "option 'pad_value' takes a number, not 'high'"),
    ("model.scaling=3", "option 'scaling' takes a name (a string) or None, not 3"),
])
def test_model_overrides_of_the_wrong_type_are_one_line_naming_the_option(override, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "tiny_mnist", override, *[f"{k}={v}" for k, v in FAST], f"out={out}"]) == 1
    assert message in _one_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("kw, message", [
    (dict(num_blocks=(4, 5)), "option 'num_blocks' takes 4 values"),
    (dict(num_blocks=(4, 5, "x", 4)), "option 'num_blocks[2]' takes an integer >= 1, not 'x'"),
    (dict(input_size=100_000), "input_size takes a positive integer up to 8192"),
])
def test_architecture_options_are_checked_by_zoo_load(kw, message):
    with pytest.raises(ValueError) as e:
        zoo.load("meliusnet22", **kw)
    assert message in _one_line(str(e.value))


def test_a_config_json_asking_for_a_billion_classes_is_one_line(tmp_path):
    """Before: a one-terabyte allocation error (or, on a machine that overcommits, the OOM killer)."""
    path = _checkpoint(tmp_path, None)
    cfg = json.loads((path.parent / "config.json").read_text())
    (path.parent / "config.json").write_text(json.dumps({**cfg, "num_classes": 10 ** 9}))
    with pytest.raises(ValueError) as e:
        zoo.load("meliusnet22", weights=str(path))
    line = _one_line(str(e.value))
    assert "num_classes=1000000000" in line and "parameters" in line and "config.json" in line, line


def test_deploy_of_a_path_that_is_no_model_says_so(capsys):
    assert cli_main(["deploy", "../../x", "--target", "rpi"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "../../x does not exist" in line and "NAME[.TAG]" in line and "unknown model ''" not in line


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe not utf-8", "is not valid JSON (not UTF-8)"),
    (b"[1, 2]", "holds a JSON list"),
    (b'{"schema": "bnnzoo-eval", "schema_version": %d, "machine": {"cpu": "x"}, "models": {"a": 1}}',
     "'models' is not a list"),
    (b'{"schema": "bnnzoo-eval", "schema_version": %d, "machine": {"cpu": "x"}, "models": [1, 2]}',
     "models[0] is not an object with a 'model' name"),
    (b'{"schema": "bnnzoo-eval", "schema_version": %d, "machine": {"cpu": "x"}, '
     b'"models": [{"model": "m", "latency_ms": {"lce": [1]}}]}', "models[0].latency_ms.lce is not an object"),
    (b'{"schema": "bnnzoo-eval", "schema_version": %d, "machine": {"cpu": "x"}, '
     b'"models": [{"model": "m", "size": {"tflite_bytes": "big"}}]}', "models[0].size.tflite_bytes is not a number"),
    (b'{"schema": "bnnzoo-eval", "schema_version": %d, "machine": [], "models": []}', "'machine' is not an object"),
], ids=["not utf-8", "a list", "models an object", "models of numbers", "latency a list", "size a word",
        "machine a list"])
def test_eval_compare_of_a_results_file_of_the_wrong_shape_is_one_line(content, message, tmp_path, capsys):
    from eval.harness import SCHEMA_VERSION

    good = {"schema": "bnnzoo-eval", "schema_version": SCHEMA_VERSION, "machine": {"cpu": "x"},
            "models": [{"model": "m"}]}
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_bytes(content.replace(b"%d", str(SCHEMA_VERSION).encode()))
    for pair in (["good.json", "bad.json"], ["bad.json", "good.json"]):
        assert cli_main(["eval", "--compare", *[str(tmp_path / p) for p in pair]]) == 1
        line = _one_line(capsys.readouterr().err)
        assert message in line and str(tmp_path / "bad.json") in line, line
    assert cli_main(["eval", "--compare", str(tmp_path / "good.json"), str(tmp_path / "good.json")]) == 0
