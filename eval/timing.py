"""Latency measurement shared by ``bnnzoo eval`` and ``eval/bench_convert.py``.

Every runtime is wrapped as a zero-argument callable running one batch-1 inference;
:func:`time_runs` / :func:`latency` time it after a warm-up. Runners build their
session once (outside the timing) with an explicit thread count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Latency", "latency", "time_runs", "lce_runner", "stock_tflite_runner", "onnx_runner", "torch_runner",
           "LCE_FLAGS", "sample_input"]

# Flags of LCE's interpreter for latency (indirect BGEMM is LCE's faster binary conv kernel).
LCE_FLAGS = dict(use_reference_bconv=False, use_indirect_bgemm=True, use_xnnpack=False)


@dataclass(frozen=True)
class Latency:
    """Wall time of one inference, in milliseconds, over ``runs`` timed runs after ``warmup``."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    runs: int
    warmup: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _samples(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def time_runs(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, float, float]:
    """Median, min and max wall time (ms) of ``fn`` over ``runs`` runs after ``warmup``."""
    times = _samples(fn, runs, warmup)
    return statistics.median(times), min(times), max(times)


def latency(fn: Callable[[], object], runs: int, warmup: int) -> Latency:
    """Median, quartiles and range (ms) of ``fn`` over ``runs`` runs after ``warmup`` untimed ones."""
    times = _samples(fn, runs, warmup)
    p25, p75 = (float(v) for v in np.percentile(times, [25, 75]))
    return Latency(statistics.median(times), p25, p75, min(times), max(times), runs, warmup)


def sample_input(input_size: int, layout: str = "nchw", seed: int = 0) -> np.ndarray:
    """A batch-1 float32 standard-normal input in ``"nchw"`` or ``"nhwc"`` layout."""
    x = np.random.default_rng(seed).standard_normal((1, 3, input_size, input_size)).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" else x


def lce_runner(flatbuffer: bytes, threads: int, x_nhwc: np.ndarray, **flags: Any) -> Callable[[], object]:
    """One inference in LCE's interpreter (``LCE_FLAGS`` unless overridden)."""
    from zoo.tfenv import use_legacy_keras

    use_legacy_keras()  # importing LCE imports TensorFlow
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    from converters.litert.flatbuffer import verify

    verify(flatbuffer, "the model")  # LCE's interpreter follows the file's offsets unchecked
    it = Interpreter(flatbuffer, num_threads=threads, **{**LCE_FLAGS, **flags})
    feed = [x_nhwc]
    return lambda: it.interpreter.predict(feed)


def stock_tflite_runner(flatbuffer: bytes, threads: int, x_nhwc: np.ndarray) -> Callable[[], object]:
    """One inference in TensorFlow's own ``tf.lite.Interpreter`` as a user runs it: default op
    resolver, which applies the XNNPACK delegate to float models. Fails on LCE custom ops."""
    import tensorflow as tf

    from converters.litert.flatbuffer import verify
    from zoo.console import stderr_discarded

    verify(flatbuffer, "the model")  # TFLite follows the file's offsets unchecked
    with stderr_discarded():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from its C++ side
        it = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
        it.allocate_tensors()
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run() -> object:
        it.set_tensor(inp, x_nhwc)
        it.invoke()
        return it.get_tensor(out)

    return run


def onnx_runner(path: str, threads: int, x_nchw: np.ndarray) -> Callable[[], object]:
    """One inference in onnxruntime (CPU provider, ``threads`` intra-op threads, 1 inter-op)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x_nchw}
    return lambda: sess.run(None, feed)


def torch_runner(model, threads: int, x_nchw: np.ndarray) -> Callable[[], object]:
    """One eager PyTorch inference (``no_grad``) with ``torch.set_num_threads(threads)``.

    The thread count is set when the runner is built and stays set: time it right away.
    """
    import torch

    torch.set_num_threads(threads)
    model.eval()
    x = torch.from_numpy(x_nchw)

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run
