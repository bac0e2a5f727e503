"""Latency measurement shared by ``bnnzoo eval`` and the benchmarks under ``eval/``.

Every runtime is wrapped as a zero-argument callable running one batch-1 inference;
:func:`time_runs` / :func:`latency` time it after a warm-up. Runners build their
session once (outside the timing) with an explicit thread count.

:func:`interleaved` times several runners of one model round-robin (one run of each per
round), so that a load change on a shared machine slows every runtime alike, and stops
each one early once its timings agree: after ``min_runs`` runs, when the interquartile
range is within ``rel_iqr`` of the median (or when its time ``budget_s`` is spent).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

__all__ = ["Latency", "latency", "interleaved", "time_runs", "lce_runner", "stock_tflite_runner", "litert_runner",
           "litert_interpreter", "litert_bconv_ms",
           "onnx_runner", "torch_runner", "LCE_FLAGS", "LCE_DEFAULT_FLAGS", "sample_input"]

# Flags of LCE's interpreter for latency (indirect BGEMM is LCE's faster binary conv kernel).
LCE_FLAGS = dict(use_reference_bconv=False, use_indirect_bgemm=True, use_xnnpack=False)
# LCE's interpreter as it comes (its default binary conv kernels).
LCE_DEFAULT_FLAGS = dict(use_reference_bconv=False, use_indirect_bgemm=False, use_xnnpack=False)


@dataclass(frozen=True)
class Latency:
    """Wall time of one inference, in milliseconds, over ``runs`` timed runs after ``warmup``.

    ``stopped`` says why the runs ended: ``"runs"`` (all of them), ``"iqr"`` (the interquartile
    range was tight) or ``"budget"`` (its time budget was spent).
    """

    median: float
    p25: float
    p75: float
    min: float
    max: float
    runs: int
    warmup: int
    stopped: str = "runs"

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


def _summary(times: list[float], warmup: int, stopped: str = "runs") -> Latency:
    p25, p75 = (float(v) for v in np.percentile(times, [25, 75]))
    return Latency(statistics.median(times), p25, p75, min(times), max(times), len(times), warmup, stopped)


def latency(fn: Callable[[], object], runs: int, warmup: int) -> Latency:
    """Median, quartiles and range (ms) of ``fn`` over ``runs`` runs after ``warmup`` untimed ones."""
    return _summary(_samples(fn, runs, warmup), warmup)


def _tight(times: list[float], rel_iqr: float) -> bool:
    p25, p50, p75 = np.percentile(times, [25, 50, 75])
    return bool(p75 - p25 <= rel_iqr * p50)


def interleaved(runners: Mapping[str, Callable[[], object]], runs: int, warmup: int, min_runs: Optional[int] = None,
                rel_iqr: float = 0.05, budget_s: Optional[float] = None) -> dict[str, Latency]:
    """Times several runners round-robin, each until its timings agree.

    Args:
        runners: Name -> one inference.
        runs: Most timed runs of each.
        warmup: Untimed runs of each before them.
        min_runs: Fewest timed runs before one may stop early (default ``runs``: no early stop).
        rel_iqr: Early stop once (75th - 25th percentile) <= ``rel_iqr`` x median.
        budget_s: Early stop (after ``min_runs``) once a runner's timed runs took this many seconds.

    Returns:
        Name -> its :class:`Latency`.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    floor = runs if min_runs is None else max(1, min(min_runs, runs))
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in runners}
    stopped: dict[str, str] = {}
    while len(stopped) < len(runners):
        for k, fn in runners.items():
            if k in stopped:
                continue
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
            n = len(times[k])
            if n >= runs:
                stopped[k] = "runs"
            elif n >= floor and _tight(times[k], rel_iqr):
                stopped[k] = "iqr"
            elif n >= floor and budget_s is not None and sum(times[k]) >= budget_s * 1e3:
                stopped[k] = "budget"
    return {k: _summary(times[k], warmup, stopped[k]) for k in runners}


def sample_input(input_size: int, layout: str = "nchw", seed: int = 0) -> np.ndarray:
    """A batch-1 float32 standard-normal input in ``"nchw"`` or ``"nhwc"`` layout."""
    x = np.random.default_rng(seed).standard_normal((1, 3, input_size, input_size)).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" else x


def lce_runner(flatbuffer: bytes, threads: int, x_nhwc: np.ndarray, **flags: Any) -> Callable[[], object]:
    """One inference in LCE's interpreter (``LCE_FLAGS`` unless overridden; ``LCE_DEFAULT_FLAGS``: its defaults)."""
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


def litert_interpreter(flatbuffer: bytes, threads: int):
    """``converters.litert.Interpreter`` (LiteRT with bnnzoo's LCE kernels), created quietly.

    LiteRT applies its XNNPACK delegate to the float ops when the interpreter allocates its
    tensors and says so on file descriptor 2 ("INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU.", from TFLite's C++ logger, whose level no option of the Python interpreter sets): the
    interpreter is created with that descriptor redirected (and replayed if creation fails).
    """
    from converters import litert
    from zoo.console import stderr_discarded

    with stderr_discarded():
        return litert.Interpreter(flatbuffer, num_threads=threads)


def litert_runner(flatbuffer: bytes, threads: int, x_nhwc: np.ndarray) -> Callable[[], object]:
    """One inference of the LCE file in LiteRT with bnnzoo's kernels (see :func:`litert_interpreter`)."""
    it = litert_interpreter(flatbuffer, threads)
    return lambda: it.predict(x_nhwc)


def litert_bconv_ms(run: Callable[[], object], runs: int = 3) -> Optional[float]:
    """Milliseconds one inference of ``run`` (a :func:`litert_runner`) spends in ``LceBconv2d``, by the
    kernels' own per-op timers (``bnn_profile``), averaged over ``runs``; ``None`` where the library has none."""
    import ctypes

    from converters import litert

    lib = litert.library()
    if not hasattr(lib, "bnn_profile"):
        return None
    lib.bnn_profile.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_long), ctypes.c_int]
    seconds = (ctypes.c_double * 4)()
    lib.bnn_profile(seconds, None, 1)  # reset
    for _ in range(runs):
        run()
    lib.bnn_profile(seconds, None, 1)
    return seconds[2] * 1e3 / runs  # op index 2: LceBconv2d


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
