"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import zoo
from zoo.torch.random_weights import randomize  # noqa: F401  (the tests' import of it)


def tiny(name: str, framework: str = "torch", **overrides):
    """The registered model at its fast ``tiny`` size (overrides win)."""
    return zoo.load(name, framework=framework, **{**zoo.get_config(name).tiny, **overrides})


def killed_when(argv: Sequence[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Runs ``argv`` (from the repository root) and SIGKILLs it as soon as ``ready()`` holds, polled on the files
    it writes (no sleep racing the process); fails if it ends or ``timeout`` passes first."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines (``bnnzoo convert: step (i/n)``) printed before an error."""
    return [line for line in stderr.strip().splitlines() if not re.search(r"\(\d+/\d+\)$", line)]


# --- one TFLite file per registered model, shared by the test modules and xdist workers -----------

# Set by conftest.py for the whole session (the workers inherit it); a process of its own otherwise.
EXPORTS_ENV = "BNNZOO_TEST_EXPORTS"


def _exports_folder() -> Path:
    folder = os.environ.get(EXPORTS_ENV)
    if not folder:
        folder = os.environ[EXPORTS_ENV] = tempfile.mkdtemp(prefix="bnnzoo-test-exports-")
    return Path(folder)


@contextlib.contextmanager
def _locked(name: str):
    """Holds the session's lock on one model's file (another worker converting it waits)."""
    with open(_exports_folder() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _exports_folder() / f"{name}.tflite"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tiny_tflite(name: str, int8: bool = False) -> Path:
    """The LCE TFLite file of ``randomize(tiny(name))``, converted once per test session.

    The first test that needs it converts it (``verify=False``: the tests that read it check it
    themselves), unless test_converters.py's verified conversion of the same model came first
    (:func:`share_tiny_tflite`). ``int8``: its int8 file (``to_tflite(..., int8=True)``).
    Read-only: copy it before editing.
    """
    import converters

    with _locked(f"{name}.int8" if int8 else name) as path:
        if not path.exists():
            tmp = path.with_suffix(".part.tflite")
            converters.to_tflite(randomize(tiny(name)), str(tmp), verify=False, int8=int8)
            os.replace(tmp, path)
        return path


def share_tiny_tflite(name: str, converted: str) -> None:
    """Offers a file converted from ``randomize(tiny(name))`` as the session's (kept if there is one)."""
    with _locked(name) as path:
        if not path.exists():
            shutil.copyfile(converted, path.with_suffix(".part.tflite"))
            os.replace(path.with_suffix(".part.tflite"), path)


# --- a Hugging Face Hub on 127.0.0.1 (tests/hub_server.py) --------------------------------------------

def serve_hub(tmp_path: Path, monkeypatch):
    """Starts a fake Hub serving ``tmp_path/hub`` and points the real huggingface_hub client at it (its
    configuration only: endpoint, an empty cache, online, a token). The caller stops it."""
    from huggingface_hub import constants

    from hub_server import HubServer

    srv = HubServer(tmp_path / "hub").start()
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return srv


# --- larq-zoo's Keras models, served release files and crafted images -------------------------------------

def randomize_keras(model, rng: np.random.Generator) -> None:
    """Keras model: non-default values for every weight larq-zoo leaves at a constant (BN, PReLU, biases)."""
    for layer in model.layers:
        for var in layer.weights:
            short = var.name.split("/")[-1].split(":")[0]
            shape = tuple(var.shape)
            if layer.name.endswith("scaling_dense_expand"):
                # Gates around 0.05-0.3, like trained binary-conv scale factors: with gates near 0.5 a
                # random Real-to-Bin stream grows to hundreds and float32 rounding swamps 1e-4.
                value = rng.normal(-2.0, 0.5, shape) / shape[0]
            elif short == "moving_variance":
                value = rng.uniform(0.5, 2.0, shape)
            elif short in ("gamma", "alpha"):
                value = rng.uniform(0.5, 1.5, shape)
            elif short in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.5, shape)
            else:
                continue
            var.assign(value.astype(np.float32))


@contextlib.contextmanager
def keras_float64():
    """Keras' float type is float64 inside the block (restored after): larq-zoo's models and our
    Keras twins built there compute without float32 drift, which can flip a binary activation."""
    import tensorflow as tf

    tf.keras.backend.set_floatx("float64")
    try:
        yield
    finally:
        tf.keras.backend.set_floatx("float32")


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder without a log line per request."""

    def log_message(self, *args) -> None:
        pass


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid PNG header announcing side x side pixels (over Pillow's decompression-bomb limit) with a
    tiny body: the file is a few dozen bytes, opening it is what must be refused."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path
