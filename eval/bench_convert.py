"""Benchmark: our LCE/ONNX exports against larq-zoo's models through the same converter.

For each model: convert with LCE's converter (``converters.tflite.convert_keras``, target "arm"),
time batch-1 224x224 inference in LCE's interpreter (threads 1 and 2; default flags
and ``use_indirect_bgemm=True``; median and spread of ``--runs`` runs after
``--warmup``), time our ONNX exports (bit-packed) in onnxruntime, print a table with
ratios to the larq-zoo counterpart, and a per-op-type profile of each TFLite file.

The profile times every operator alone: the file is re-packed once with every
intermediate tensor as an output (giving real inputs), then once per operator as
a one-op sub-graph, timed in the same interpreter. Sums of op times are close to,
not equal to, the whole-model time (no fusion across ops changes, but caches do).

Usage::

    python eval/bench_convert.py [--runs 20] [--warmup 3] [--models ours_r2b,lqz_r2b,...]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from eval.timing import lce_runner, onnx_runner, sample_input, time_runs  # noqa: E402

FLAG_SETS = {"default": dict(use_indirect_bgemm=False), "indirect_bgemm": dict(use_indirect_bgemm=True)}


def _lqz(*names: str):
    import larq_zoo as lqz

    for module in (lqz.sota, lqz.literature):
        for name in names:
            if hasattr(module, name):
                return getattr(module, name)(weights=None, input_shape=(224, 224, 3))
    raise AttributeError(f"larq-zoo has none of {names}")


def _ours(name: str):
    import zoo

    return zoo.load(name)


MODELS: dict[str, tuple[str, Callable]] = {
    "ours_r2b": ("realtobinary_resnet18", lambda: _ours("realtobinary_resnet18")),
    "lqz_r2b": ("larq_zoo RealToBinaryNet", lambda: _lqz("RealToBinaryNet")),
    "ours_melius22": ("meliusnet22", lambda: _ours("meliusnet22")),
    "lqz_melius22": ("larq_zoo MeliusNet22", lambda: _lqz("MeliusNet22")),
}
PAIRS = {"ours_r2b": "lqz_r2b", "ours_melius22": "lqz_melius22"}


def time_tflite(flatbuffer: bytes, threads: int, flags: dict, runs: int, warmup: int):
    """Median, min and max ms of LCE's interpreter on a 224x224 input (``flags`` override ``LCE_FLAGS``)."""
    return time_runs(lce_runner(flatbuffer, threads, sample_input(224, "nhwc"), **flags), runs, warmup)


def time_onnx(path: str, threads: int, runs: int, warmup: int):
    """Median, min and max ms of onnxruntime on a 224x224 input."""
    return time_runs(onnx_runner(path, threads, sample_input(224)), runs, warmup)


def op_profile(flatbuffer: bytes, runs: int = 5) -> dict[str, float]:
    """Milliseconds per op type (threads 1, default flags), each op timed as a one-op sub-graph."""
    import flatbuffers
    from larq_compute_engine.mlir.python import tflite_schema as schema
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    import tflite

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    sg = model.subgraphs[0]
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op) -> str:
        oc = model.operatorCodes[op.opcodeIndex]
        if oc.customCode:
            return oc.customCode.decode() if isinstance(oc.customCode, bytes) else str(oc.customCode)
        return names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "?")

    def pack() -> bytes:
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def is_const(t: int) -> bool:
        buf = model.buffers[sg.tensors[t].buffer]
        return buf.data is not None and len(buf.data) > 0

    ops, inputs, outputs = list(sg.operators), list(sg.inputs), list(sg.outputs)
    produced = [t for op in ops for t in op.outputs]
    sg.outputs = produced
    x = np.random.default_rng(0).standard_normal(tuple(sg.tensors[inputs[0]].shape)).astype(np.float32)
    values = dict(zip(produced, Interpreter(pack()).interpreter.predict([x])))
    values[inputs[0]] = x
    per_type: dict[str, float] = defaultdict(float)
    try:
        for op in ops:
            feeds = [t for t in op.inputs if t >= 0 and not is_const(t)]
            sg.operators, sg.inputs, sg.outputs = [op], feeds, list(op.outputs)
            it = Interpreter(pack())
            args = [values[t] for t in feeds]
            per_type[op_name(op)] += time_runs(lambda: it.interpreter.predict(args), runs, 1)[0]
    finally:
        sg.operators, sg.inputs, sg.outputs = ops, inputs, outputs
    return dict(sorted(per_type.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="/tmp/bench_convert")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    import zoo

    from converters.onnx import bitpack_binary_convs, export_proto, strip_metadata
    from converters.tflite import convert_keras, op_counts

    os.makedirs(args.out, exist_ok=True)
    rows, profiles = {}, {}
    for key in args.models.split(","):
        label, make = MODELS[key]
        model = make()
        t = time.perf_counter()
        keras_model = zoo.to_keras(model) if key.startswith("ours") else model
        flatbuffer = convert_keras(keras_model, target="arm")
        row = {"label": label, "convert_s": time.perf_counter() - t, "tflite_mb": len(flatbuffer) / 1e6,
               "bconv": op_counts(flatbuffer)["LceBconv2d"]}
        for threads in (1, 2):
            for flag_name, flags in FLAG_SETS.items():
                row[f"tfl_{flag_name}_t{threads}"] = time_tflite(flatbuffer, threads, flags, args.runs, args.warmup)
        if key.startswith("ours"):
            import onnx

            proto = export_proto(model, 224)
            strip_metadata(proto)
            bitpack_binary_convs(proto, model)
            path = os.path.join(args.out, f"{key}.onnx")
            onnx.save_model(proto, path)
            row["onnx_mb"] = os.path.getsize(path) / 1e6
            for threads in (1, 2):
                row[f"onnx_t{threads}"] = time_onnx(path, threads, args.runs, args.warmup)
        rows[key] = row
        if not args.no_profile:
            profiles[key] = op_profile(flatbuffer)
        print(f"# done {key}: {row}", flush=True)

    cols = [c for c in next(iter(rows.values())) if c.startswith(("tfl_", "onnx_t"))]
    print("\nLCE interpreter / onnxruntime, batch 1, 224x224, ms: median [min-max]; "
          f"{args.runs} runs after {args.warmup} warm-up; flags: {FLAG_SETS}")
    print(f"{'model':28s} {'conv s':>6s} {'tflite MB':>9s} {'bconv':>5s} " + " ".join(f"{c:>24s}" for c in cols))
    for key, row in rows.items():
        cells = []
        for c in cols:
            if c in row:
                med, lo, hi = row[c]
                ratio = ""
                if key in PAIRS and PAIRS[key] in rows and c in rows[PAIRS[key]]:
                    ratio = f" x{med / rows[PAIRS[key]][c][0]:.2f}"
                cells.append(f"{med:.1f} [{lo:.1f}-{hi:.1f}]{ratio}".rjust(24))
            else:
                cells.append("-".rjust(24))
        print(f"{row['label']:28s} {row['convert_s']:6.1f} {row['tflite_mb']:9.2f} {row['bconv']:5d} " + " ".join(cells))
    for key, row in rows.items():
        if "onnx_mb" in row:
            print(f"{row['label']}: bit-packed ONNX {row['onnx_mb']:.2f} MB = {row['onnx_mb'] / row['tflite_mb']:.2f}x TFLite")
    for key, prof in profiles.items():
        total = sum(prof.values())
        print(f"\nper-op-type time, {MODELS[key][0]} (threads 1, default flags; sum {total:.1f} ms):")
        for op, ms in prof.items():
            print(f"  {op:24s} {ms:8.2f} ms {100 * ms / total:5.1f}%")


if __name__ == "__main__":
    main()
