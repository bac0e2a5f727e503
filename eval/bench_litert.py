"""Benchmark: bnnzoo's LCE kernels in LiteRT (converters.litert) against LCE's interpreter.

Batch 1, ``--size`` (default 224) square inputs, ``--threads`` threads (default 1), the same LCE TFLite file in each
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
- A file without ``LceBconv2d`` (DoReFa-Net, the float MobileNets) has ``-`` in the three
  binary columns: only whole inferences are compared.

``--int8`` times the models' int8 files instead (``to_tflite(..., int8=True)``: int8 input and
output, the float ops in int8 over LCE's default range), fed the same input quantized.

Converted files are cached in ``--cache`` under a name that carries a hash of the converter's
and the zoo's sources, so a changed conversion is measured on a new file.

The machine this runs on may be shared: quote its table with that caveat, and prefer
ratios from one run over absolute times.

``--layers`` times each ``LceBconv2d`` op alone instead and prints one line per op (its input,
channels, kernel, binary MACs, both runtimes' ms, and from the library's own timer inside the
op, without the one-op graph's tensor copies, our GMAC/s and share of the ceiling).

Usage::

    python -m eval.bench_litert [--runs 5] [--warmup 2] [--threads 1] [--size 224]
                                [--models realtobinary_resnet18,meliusnet22,reactnet_a]
    python -m eval.bench_litert --layers --models quicknet
    python -m eval.bench_litert --int8 --models quicknet     # the int8 files
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

from eval.timing import lce_runner, sample_input  # noqa: E402

MODELS = ("realtobinary_resnet18", "meliusnet22", "reactnet_a")
SIZE = 224
POPCOUNT_BITS_PER_CYCLE = {"avx512": 512, "avx2": 256, "popcnt": 64, "portable": 64, "neon": 128}


def tflite_file(name: str, folder: Path, size: int = SIZE, int8: bool = False) -> bytes:
    """The model's LCE file at ``size`` (random weights; converted once, then cached in ``folder``);
    ``int8``: its int8 file (``to_tflite(..., int8=True)``: int8 input and output, float ops in int8).

    Randomised as a trained model's (``randomize``): initialised, ReActNet's learned shifts are 0 and
    LCE's converter drops their ``ADD`` s, which a trained model keeps.
    """
    import converters
    import zoo
    from zoo.torch.random_weights import randomize

    path = folder / f"{name}-{size}-random{'-int8' if int8 else ''}-{_sources_key()}.tflite"
    if not path.exists():
        print(f"converting {name} at {size}x{size}{' (int8)' if int8 else ''} (once) ...", flush=True)
        converters.to_tflite(randomize(zoo.load(name, input_size=size)), str(path), verify=False, int8=int8)
    return path.read_bytes()


def _sources_key() -> str:
    """12 hex digits of the SHA-256 of the Python sources a conversion runs (``converters/``, ``zoo/``)."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("converters/**/*.py"), *root.glob("zoo/**/*.py")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


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


def model_input(flatbuffer: bytes, size: int) -> np.ndarray:
    """The seeded standard-normal NHWC input, quantized with the file's input scale and zero point
    where the file takes int8."""
    from ai_edge_litert import schema_py_generated as schema

    x = sample_input(size, "nhwc")
    graph = schema.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    tensor = graph.Tensors(graph.Inputs(0))
    if tensor.Type() != schema.TensorType.INT8:
        return x
    scale, zero_point = float(tensor.Quantization().Scale(0)), int(tensor.Quantization().ZeroPoint(0))
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


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
    values = dict(zip(it.output_names, it.predict(sample_input(it.input_details[0]["shape"][1], "nhwc"))))
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


def bconv_layers(flatbuffer: bytes, threads: int, runs: int, warmup: int) -> list[dict]:
    """Each LceBconv2d op alone: its shape, binary MACs and median ms in ours and LCE indirect_bgemm."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter as LCE

    layers = []
    take = profile_calls()
    for graph, x in _one_op_graphs(flatbuffer):
        mine, _ = ours_runner(graph, threads, x)
        lce, feed = LCE(graph, num_threads=threads, use_indirect_bgemm=True), [x]
        kernel: list[float] = []

        def timed(run=mine):  # the library's own seconds inside the op, per run
            take()
            run()
            kernel.append(take() * 1e3)

        t = interleaved({"ours": timed, "lce": lambda: lce.interpreter.predict(feed)}, runs, warmup)
        cout, kh, kw, _ = _bconv_filter_shape(graph)
        layers.append({"input": tuple(int(d) for d in x.shape[1:3]), "words_in": int(x.shape[-1]), "out_c": cout,
                       "kernel": (kh, kw), "macs": binary_macs(graph), "ours_ms": t["ours"], "lce_ms": t["lce"],
                       "kernel_ms": statistics.median(kernel[warmup:])})
    return layers


def _bconv_filter_shape(graph_flatbuffer: bytes) -> tuple[int, int, int, int]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(graph_flatbuffer, 0)
    g = model.subgraphs[0]
    return tuple(int(d) for d in g.tensors[g.operators[0].inputs[1]].shape)


def bconv_ms(flatbuffer: bytes, threads: int, runs: int, warmup: int) -> tuple[float, float]:
    """Summed median ms of the LceBconv2d ops alone: (ours, LCE indirect_bgemm); NaN for a file without one."""
    layers = bconv_layers(flatbuffer, threads, runs, warmup)
    if not layers:
        return float("nan"), float("nan")
    return sum(r["ours_ms"] for r in layers), sum(r["lce_ms"] for r in layers)


def _cell(value: float, spec: str) -> str:
    """``value`` formatted, or ``-`` right-aligned to the same width where it is NaN."""
    width = int(spec.split(".")[0])
    return format(value, spec) if value == value else "-".rjust(width)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--size", type=int, default=SIZE, help="input side")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "bnnzoo" / "bench_litert"),
                        help="folder for the converted files")
    parser.add_argument("--layers", action="store_true",
                        help="only time each LceBconv2d op alone and print one line per op")
    parser.add_argument("--int8", action="store_true",
                        help="the models' int8 files (int8 input and output, float ops in int8), as LCE's users "
                             "convert for ARM")
    args = parser.parse_args(argv)
    if args.layers:
        return print_layers(args)

    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    ghz = cpu_ghz()
    rows = []
    for name in args.models.split(","):
        flatbuffer = tflite_file(name, folder, args.size, args.int8)
        x = model_input(flatbuffer, args.size)
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
        in_model_ms = take() * 1e3 / (args.runs + args.warmup) if macs else float("nan")
        model_ms = timed.pop("ours")
        ours_bconv, lce_bconv = bconv_ms(flatbuffer, args.threads, args.runs, args.warmup)
        ceiling = POPCOUNT_BITS_PER_CYCLE[path] * ghz * 1e9 * args.threads
        rows.append((name, f"bnnzoo litert ({path})", model_ms, ours_bconv, in_model_ms, macs, ceiling))
        rows.append((name, "LCE indirect_bgemm", timed["LCE indirect_bgemm"], lce_bconv, float("nan"), macs, ceiling))
        for label in ("LCE indirect_bgemm+xnnpack", "LCE default"):
            rows.append((name, label, timed[label], float("nan"), float("nan"), macs, ceiling))
        print(f"{name}: ours {model_ms:.1f} ms; LCE " + ", ".join(f"{k} {v:.1f} ms ({v / model_ms:.2f}x)"
                                                               for k, v in timed.items())
              + (f"; bconv alone ours {ours_bconv:.1f} ms, LCE indirect {lce_bconv:.1f} ms "
                 f"({lce_bconv / ours_bconv:.2f}x)" if macs else "; no LceBconv2d in the file"), flush=True)
    print(f"\n{'int8 files, ' if args.int8 else ''}batch 1, {args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {args.runs} runs after "
          f"{args.warmup}; "
          f"clock {ghz:.2f} GHz (/proc/cpuinfo)")
    print(f"{'model':22s} {'runtime':28s} {'model ms':>9s} {'x ours':>7s} {'bconv ms':>9s} {'in-model':>9s} "
          f"{'GMAC/s':>7s} {'ceiling':>8s}")
    ours_ms = {}
    for name, runtime, ms, bms, in_model, macs, ceiling in rows:
        ours_ms.setdefault(name, ms)
        rate = macs / (bms * 1e-3) if macs and bms == bms else float("nan")
        print(f"{name:22s} {runtime:28s} {ms:9.1f} {ms / ours_ms[name]:7.2f} {_cell(bms, '9.1f')} "
              f"{_cell(in_model, '9.1f')} {_cell(rate / 1e9, '7.0f')} {_cell(rate / ceiling, '8.1%')}")
    print("binary MACs per inference: " + ", ".join(f"{r[0]} {r[5] / 1e9:.2f} G" for r in rows[::4]))


def print_layers(args) -> None:
    """``--layers``: one line per LceBconv2d op of each model, ours against LCE indirect_bgemm."""
    ghz = cpu_ghz()
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{'model':22s} {'op':>3s} {'input':>9s} {'Cin':>5s} {'Cout':>5s} {'k':>3s} {'MMAC':>7s} {'ours ms':>8s} "
          f"{'LCE ms':>7s} {'LCE/ours':>8s} {'kernel ms':>9s} {'GMAC/s':>7s} {'ceiling':>8s}")
    for name in args.models.split(","):
        flatbuffer = tflite_file(name, folder, args.size, args.int8)
        path = ours_runner(flatbuffer, args.threads, model_input(flatbuffer, args.size))[1]
        ceiling = POPCOUNT_BITS_PER_CYCLE[path] * ghz * 1e9 * args.threads
        for i, r in enumerate(bconv_layers(flatbuffer, args.threads, args.runs, args.warmup)):
            rate = r["macs"] / (r["kernel_ms"] * 1e-3)
            print(f"{name:22s} {i:3d} {r['input'][0]:4d}x{r['input'][1]:<4d} {32 * r['words_in']:5d} {r['out_c']:5d} "
                  f"{r['kernel'][0]}x{r['kernel'][1]} {r['macs'] / 1e6:7.1f} {r['ours_ms']:8.3f} {r['lce_ms']:7.3f} "
                  f"{r['lce_ms'] / r['ours_ms']:8.2f} {r['kernel_ms']:9.3f} {rate / 1e9:7.0f} {rate / ceiling:8.1%}",
                  flush=True)
    print(f"batch 1, {args.size}x{args.size} model input, {args.threads} thread(s), each op alone as a one-op graph "
          f"(ms: median of {args.runs} runs after {args.warmup}, round-robin, tensor copies in and out included); "
          f"kernel ms: the "
          f"library's own timer inside the op (median of the same runs), what GMAC/s and the ceiling share use; "
          f"ceiling: {path} popcount at {ghz:.2f} GHz (/proc/cpuinfo); Cin: input words x 32")


if __name__ == "__main__":
    main()
