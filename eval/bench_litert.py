"""Benchmark: bnnzoo's LCE kernels in LiteRT (converters.litert) against LCE's interpreter.

Batch 1, 224x224, ``--threads`` threads (default 1), the same LCE TFLite file in each
runtime, timed side by side in one run: median of ``--runs`` runs after ``--warmup``.

Columns:
- ``model ms``: the whole inference. LiteRT runs the builtin (float) ops with its
  default XNNPACK delegate; LCE's interpreter is timed without XNNPACK (its default, and
  ``eval.timing.LCE_FLAGS``) and with it, so the float ops are compared fairly too.
- ``bconv ms``: the file's ``LceBconv2d`` ops only, each run alone as a one-op graph on
  its real input (the same harness for both runtimes), summed: the binary kernels
  side by side. (``in-model`` gives ours as its own per-op timers saw them inside the
  whole inference, ``bnn_profile``.)
- Runtimes are timed round-robin, one run of each per round, so a load swing on a shared
  machine hits all of them alike.
- ``GMAC/s``: binary multiply-accumulates of the file's LceBconv2d ops (``OH*OW*Cout*
  KH*KW*Cin/groups``) per second of ``bconv ms``.
- ``ceiling``: that rate as a share of this core's popcount ceiling: 512 binary MACs per
  cycle (one 512-bit VPOPCNTQ per cycle) on AVX-512 VPOPCNTDQ, 256 on AVX2, 128 on NEON,
  at the clock ``/proc/cpuinfo`` reports (a nominal figure, not a measured turbo clock).

The machine this runs on may be shared: quote its table with that caveat, and prefer
ratios from one run over absolute times.

Usage::

    python -m eval.bench_litert [--runs 5] [--warmup 2] [--threads 1] [--models realtobinary_resnet18,meliusnet22,reactnet_a]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from eval.timing import lce_runner, sample_input, time_runs  # noqa: E402

MODELS = ("realtobinary_resnet18", "meliusnet22", "reactnet_a")
SIZE = 224
POPCOUNT_BITS_PER_CYCLE = {"avx512": 512, "avx2": 256, "popcnt": 64, "portable": 64, "neon": 128}


def tflite_file(name: str, folder: Path) -> bytes:
    """The model's LCE file at 224x224 (random weights; converted once, then cached in ``folder``).

    Randomised as a trained model's (``randomize``): initialised, ReActNet's learned shifts are 0 and
    LCE's converter drops their ``ADD`` s, which a trained model keeps.
    """
    import converters
    import zoo
    from zoo.torch.random_weights import randomize

    path = folder / f"{name}-{SIZE}-random.tflite"
    if not path.exists():
        print(f"converting {name} at {SIZE}x{SIZE} (once) ...", flush=True)
        converters.to_tflite(randomize(zoo.load(name)), str(path), input_size=SIZE, verify=False)
    return path.read_bytes()


def binary_macs(flatbuffer: bytes) -> int:
    """Binary MACs of the file's LceBconv2d ops."""
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    codes = [c.customCode for c in model.operatorCodes]
    total = 0
    for op in graph.operators:
        if codes[op.opcodeIndex] == b"LceBconv2d":
            cout, kh, kw, depth = graph.tensors[op.inputs[1]].shape
            _, oh, ow, _ = graph.tensors[op.outputs[0]].shape
            cin = flexbuffers.Loads(bytes(op.customOptions))["channels_in"]
            in_words = graph.tensors[op.inputs[0]].shape[-1]
            cin_g = cin if depth == in_words else 32 * depth
            total += oh * ow * cout * kh * kw * cin_g
    return total


def cpu_ghz() -> float:
    """The clock /proc/cpuinfo reports (GHz), NaN where it reports none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return float(line.split(":")[1]) / 1e3
    except OSError:
        pass
    return float("nan")


def interleaved(runners: dict, runs: int, warmup: int) -> dict:
    """Median ms of each runner, timed round-robin (one run of each per round), so that a load
    change on a shared machine slows every runtime alike instead of whichever ran then."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    times: dict = {k: [] for k in runners}
    for _ in range(runs):
        for k, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def ours_runner(flatbuffer: bytes, threads: int, x: np.ndarray):
    """(one inference of our runtime, its code path)."""
    from converters import litert

    it = litert.Interpreter(flatbuffer, num_threads=threads)
    return (lambda: it.predict(x)), it.path


def profile_calls():
    """A function returning (and resetting) the seconds the library spent in LceBconv2d."""
    from converters import litert

    lib = litert.library()
    lib.bnn_profile.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_long), ctypes.c_int]

    def take() -> float:
        seconds = (ctypes.c_double * 4)()
        lib.bnn_profile(seconds, None, 1)
        return seconds[2]

    return take


def _one_op_graphs(flatbuffer: bytes, op_name: str = "LceBconv2d"):
    """(flatbuffer of one op, its input) for each ``op_name`` op, inputs from a full run of ours."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from converters import litert

    probe, _ = litert.with_outputs(flatbuffer, litert.LCE_OPS)
    it = litert.Interpreter(probe)
    values = dict(zip(it.output_names, it.predict(sample_input(SIZE, "nhwc"))))
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    codes = [c.customCode for c in model.operatorCodes]
    ops = list(graph.operators)
    for op in ops:
        if codes[op.opcodeIndex] != op_name.encode():
            continue
        graph.operators, graph.inputs, graph.outputs = [op], [op.inputs[0]], list(op.outputs)
        b = flatbuffers.Builder(len(flatbuffer) + 1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        yield bytes(b.Output()), values[graph.tensors[op.inputs[0]].name.decode()]


def bconv_ms(flatbuffer: bytes, threads: int, runs: int, warmup: int) -> tuple[float, float]:
    """Summed median ms of the LceBconv2d ops alone: (ours, LCE indirect_bgemm)."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter as LCE

    ours_total = lce_total = 0.0
    for graph, x in _one_op_graphs(flatbuffer):
        mine, _ = ours_runner(graph, threads, x)
        lce, feed = LCE(graph, num_threads=threads, use_indirect_bgemm=True), [x]
        t = interleaved({"ours": mine, "lce": lambda: lce.interpreter.predict(feed)}, runs, warmup)
        ours_total, lce_total = ours_total + t["ours"], lce_total + t["lce"]
    return ours_total, lce_total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "bnnzoo" / "bench_litert"),
                        help="folder for the converted files")
    args = parser.parse_args(argv)

    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    x = sample_input(SIZE, "nhwc")
    ghz = cpu_ghz()
    rows = []
    for name in args.models.split(","):
        flatbuffer = tflite_file(name, folder)
        macs = binary_macs(flatbuffer)
        mine, path = ours_runner(flatbuffer, args.threads, x)
        runners = {"ours": mine}
        for label, flags in (("LCE indirect_bgemm", dict(use_indirect_bgemm=True)),
                             ("LCE indirect_bgemm+xnnpack", dict(use_indirect_bgemm=True, use_xnnpack=True)),
                             ("LCE default", dict(use_indirect_bgemm=False))):
            runners[label] = lce_runner(flatbuffer, args.threads, x, **flags)
        take = profile_calls()
        take()  # reset
        timed = interleaved(runners, args.runs, args.warmup)
        in_model_ms = take() * 1e3 / (args.runs + args.warmup)
        model_ms = timed.pop("ours")
        ours_bconv, lce_bconv = bconv_ms(flatbuffer, args.threads, args.runs, args.warmup)
        ceiling = POPCOUNT_BITS_PER_CYCLE[path] * ghz * 1e9 * args.threads
        rows.append((name, f"bnnzoo litert ({path})", model_ms, ours_bconv, in_model_ms, macs, ceiling))
        rows.append((name, "LCE indirect_bgemm", timed["LCE indirect_bgemm"], lce_bconv, float("nan"), macs, ceiling))
        for label in ("LCE indirect_bgemm+xnnpack", "LCE default"):
            rows.append((name, label, timed[label], float("nan"), float("nan"), macs, ceiling))
        print(f"{name}: ours {model_ms:.1f} ms; LCE " + ", ".join(f"{k} {v:.1f} ms ({v / model_ms:.2f}x)"
                                                               for k, v in timed.items())
              + f"; bconv alone ours {ours_bconv:.1f} ms, LCE indirect {lce_bconv:.1f} ms "
              f"({lce_bconv / ours_bconv:.2f}x)", flush=True)
    print(f"\nbatch 1, {SIZE}x{SIZE}, {args.threads} thread(s), median of {args.runs} runs after {args.warmup}; "
          f"clock {ghz:.2f} GHz (/proc/cpuinfo)")
    print(f"{'model':22s} {'runtime':28s} {'model ms':>9s} {'x ours':>7s} {'bconv ms':>9s} {'in-model':>9s} "
          f"{'GMAC/s':>7s} {'ceiling':>8s}")
    ours_ms = {}
    for name, runtime, ms, bms, in_model, macs, ceiling in rows:
        ours_ms.setdefault(name, ms)
        rate = macs / (bms * 1e-3) if bms == bms else float("nan")
        print(f"{name:22s} {runtime:28s} {ms:9.1f} {ms / ours_ms[name]:7.2f} {bms:9.1f} {in_model:9.1f} "
              f"{rate / 1e9:7.0f} {rate / ceiling:8.1%}")
    print("binary MACs per inference: " + ", ".join(f"{r[0]} {r[5] / 1e9:.2f} G" for r in rows[::4]))


if __name__ == "__main__":
    main()
