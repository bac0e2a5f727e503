"""What a user sees: each command prints its own lines only (subprocesses with a user's environment:
no TF_* variables set), defaults in every --help, --version, and the one NAME[.TAG] grammar."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from bnnzoo.cli import COMMANDS, command_parser

ROOT = Path(__file__).resolve().parents[1]


def bnnzoo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TORCH_", "GRPC_"))}
    return subprocess.run([sys.executable, "-m", "bnnzoo", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)


# How TFLite's and TensorFlow's C++ loggers and absl start their lines ("INFO: Created TensorFlow Lite XNNPACK
# delegate for CPU.", "2026-12-06 18:21:59.061009: E external/.../cuda_platform.cc:51] failed call to cuInit").
THIRD_PARTY = re.compile(r"^(INFO|WARNING|ERROR): |^[EWIF]\d{4} |^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWIF] ")


def _foreign(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("bnnzoo ")]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_convert_prints_only_its_own_lines(fmt, tmp_path):
    result = bnnzoo("convert", "meliusnet22.mnist", "--to", fmt, "-o", str(tmp_path / f"m.{fmt}"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _foreign(result.stderr) == [], "third-party lines on stderr:\n" + "\n".join(_foreign(result.stderr))
    # not a terminal: one plain progress line per step, no tqdm redraws
    assert len(result.stderr.splitlines()) == 2 and "\r" not in result.stderr
    lines = result.stdout.splitlines()
    # the report: 5 lines, then one layer-wise line per runtime (LCE: optimized, indirect-bgemm, reference)
    layerwise = 3 if fmt == "tflite" else 1
    assert lines[0].split() == ["format", fmt] and len(lines) == 5 + layerwise
    assert all("checks passed on" in line for line in lines[-layerwise:])
    if fmt == "tflite":  # verify imports TensorFlow too (for LCE's interpreter): as quiet
        checked = bnnzoo("verify", "meliusnet22.mnist", str(tmp_path / f"m.{fmt}"), cwd=tmp_path)
        assert checked.returncode == 0 and "matches its source layer by layer" in checked.stdout, checked.stderr[-2000:]
        assert checked.stderr == "", "third-party lines on stderr:\n" + checked.stderr


def test_verbose_lets_third_party_logs_through(tmp_path):
    """What test_convert_prints_only_its_own_lines[onnx] silences is there with --verbose."""
    loud = bnnzoo("--verbose", "convert", "mobilenet_v1_025", "--input-size", "32", "--to", "onnx",
                  "-o", str(tmp_path / "l.onnx"))
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert "torchvision is not installed" in loud.stderr


def test_list_figures_shows_progress_lines_when_not_a_terminal():
    result = bnnzoo("list", "mobilenet_v1_0*", "--figures")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [f"bnnzoo list: measuring {n} ({i}/3)"
                                          for i, n in enumerate(zoo.list_models("mobilenet_v1_0*"), 1)]
    assert result.stdout.count("| mobilenet_v1_0") == 3


def test_version():
    result = bnnzoo("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"bnnzoo {zoo.__version__}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_help_shows_defaults(command):
    import argparse

    parser = command_parser(command)
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        default = action.default
        if not (default is None or default is False or default in ("", [], argparse.SUPPRESS)) and action.help:
            assert "default" in action.help or f"(default: {default}" in text, f"{command} {action.dest}"
        outputs = [o for o in action.option_strings if o in ("-o", "--output", "--out")]
        if outputs:
            assert "-o" in action.option_strings and "--output" in action.option_strings, f"{command}: {outputs}"


def test_list_weights_and_stages():
    result = bnnzoo("list", "--weights")
    assert result.returncode == 0
    for name in zoo.list_models(pretrained=True):
        assert f"| {name}.{zoo.list_weights(name)[0].tag} | yes |" in result.stdout
    plain = bnnzoo("list").stdout
    staged = bnnzoo("list", "--include-stages").stdout
    assert "_teacher" not in plain and "realtobinary_resnet18_teacher" in staged


def test_eval_prints_only_its_own_lines(tmp_path):
    """What `make demo` runs (eval --quick: bnnzoo's kernels in LiteRT, LCE, MobileNet-v1 in TFLite + XNNPACK) with
    a user's environment: the table on stdout, bnnzoo's progress lines on stderr, and nothing else: no "INFO:
    Created TensorFlow Lite XNNPACK delegate for CPU." (written by TFLite's C++ logger when LiteRT or TensorFlow's
    interpreter applies XNNPACK) and no TensorFlow start-up lines, from the conversion processes (--jobs) either."""
    result = bnnzoo("eval", "meliusnet22", "mobilenet_v1_025", "--tiny", "--baseline", "none", "--quick", "--runs", "2",
                    "--warmup", "0", "--jobs", "2", "--cache", str(tmp_path / "cache"), "-o", str(tmp_path / "rep"),
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _foreign(result.stderr) == [], "third-party lines on stderr:\n" + "\n".join(_foreign(result.stderr))
    assert "\r" not in result.stderr and (tmp_path / "rep" / "results.json").is_file()
    foreign_out = [line for line in result.stdout.splitlines() if THIRD_PARTY.match(line)]
    assert foreign_out == [], "third-party lines on stdout:\n" + "\n".join(foreign_out)
    assert result.stdout.startswith("| model |") and "- Accuracy against latency" in result.stdout
    rows = json.loads((tmp_path / "rep" / "results.json").read_text())["models"]
    assert set(rows[1]["latency_ms"]) == {"litert", "lce", "xnnpack"}  # LiteRT and TFLite applied XNNPACK


def _parser(command: str):
    return command_parser(command)


def _takes_a_model(action) -> bool:
    """A MODEL reference or a registered model's NAME (not a Hub repo's OWNER/NAME)."""
    import re

    return bool(re.search(r"(?<!/)\b(NAME|MODEL)\b", str(action.metavar))) or action.dest in ("model", "models",
                                                                                             "source")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_takes_a_model_as_positional_name_tag(command):
    """A model is a positional MODEL (zoo.refs: NAME[.TAG], a folder, hf-hub:REPO, FILE.py:CLASS) wherever a
    command takes one; weights are --weights, which takes a Hub repo too."""
    import argparse

    parser = _parser(command)
    shown = [a for a in parser._actions if a.help is not argparse.SUPPRESS]  # hidden: old spellings
    for action in shown:
        if _takes_a_model(action) and action.option_strings and action.option_strings[0] not in ("--arch", "--weights"):
            pytest.fail(f"bnnzoo {command} takes a model as {action.option_strings[0]}, not as a positional")
    for action in shown:
        if "--weights" in action.option_strings and action.nargs != 0:  # `list --weights` is a flag
            assert "hf-hub:" in f"{action.metavar} {action.help}", f"bnnzoo {command} --weights {action.help}"


def test_the_commands_that_take_a_model_are_found():
    """The rule above is not vacuous: these commands take a model."""
    import argparse

    takes = {c for c in COMMANDS if any(_takes_a_model(a) and not a.option_strings and a.help is not argparse.SUPPRESS
                                        for a in _parser(c)._actions)}
    assert {"convert", "verify", "eval", "detect", "deploy", "download", "demo", "push", "pack"} <= takes, takes


def test_detect_takes_the_detector_first(tmp_path):
    result = bnnzoo("detect", "meliusnet22", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png"))
    assert result.returncode == 1 and "not a detector" in result.stderr and len(result.stderr.splitlines()) == 1


def test_progress_is_a_bar_on_a_terminal():
    import fcntl
    import pty
    import struct
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TORCH_"))}
    proc = subprocess.Popen([sys.executable, "-m", "bnnzoo", "list", "mobilenet_v1_0*", "--figures"],
                            stdout=subprocess.PIPE, stderr=child_fd, env={**env, "TERM": "xterm"})
    os.close(child_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=600)
    os.close(main_fd)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0 and out.decode().count("| mobilenet_v1_0") == 3
    assert "\r" in terminal and "bnnzoo list" in terminal and "measuring mobilenet_v1_025" in terminal
    assert "(1/3)" not in terminal  # the bar, not the plain lines


@pytest.mark.slow
def test_demo_prints_only_its_own_lines(tmp_path):
    """`make demo` with one binary model: its lines only (no XNNPACK INFO line, no TensorFlow C++ log), a Pareto
    table of published ImageNet top-1 against latency at 224x224, never the MNIST models' own input size."""
    from helpers import EXPORTS_ENV

    env_cache = os.path.join(os.environ[EXPORTS_ENV], "eval")  # the exports test_bundled_weights converts too
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TORCH_", "GRPC_"))}
    result = subprocess.run([sys.executable, "-m", "bnnzoo", "demo", "realtobinary_resnet18", "--limit", "100",
                             "--plates", "1", "-o", str(tmp_path / "demo")], capture_output=True, text=True,
                            cwd=tmp_path, env={**env, "BNNZOO_CACHE": env_cache}, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _foreign(result.stderr) == [], "third-party lines on stderr:\n" + "\n".join(_foreign(result.stderr))
    foreign_out = [line for line in result.stdout.splitlines() if THIRD_PARTY.match(line)]
    assert foreign_out == [], "third-party lines on stdout:\n" + "\n".join(foreign_out)
    assert "XNNPACK delegate" not in result.stdout + result.stderr
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert {r["model"] for r in res["models"]} == {"realtobinary_resnet18", "mobilenet_v1_025", "mobilenet_v1_050",
                                                   "mobilenet_v1_075", "mobilenet_v1"}
    assert all(r["input_size"] == 224 for r in res["models"])  # latency at the published figures' size
    assert {r["accuracy"]["input_size"] for r in res["models"] if r.get("accuracy")} == {32, 64}
    assert "- Accuracy against latency at 224x224" in result.stdout
    assert (tmp_path / "demo" / "plates" / "detected").is_dir()
