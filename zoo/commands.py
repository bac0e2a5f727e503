"""``bnnzoo list`` and ``bnnzoo demo``."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

from . import get_config, list_models

DEMO_MODELS = ("meliusnet22", "realtobinary_resnet18", "mobilenet_v1")


def figures_table(names: Iterable[str], input_size: int | None = None) -> str:
    """A Markdown table of what each model reports about itself (measured, not hard-coded)."""
    from . import load, measure

    rows = ["| model | params | binary convs | binary MACs | size (MB, 1-bit binary) | FLOPs | BOPs | OPs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        f = measure(load(name, input_size=input_size))
        rows.append(f"| {name} | {f.params / 1e6:.2f} M | {f.binary_convs} | {f.binary_mac_share:.1%} | "
                    f"{f.size_bytes / 2**20:.2f} | {f.flops / 1e6:.0f} M | {f.bops / 1e9:.2f} G | {f.ops / 1e6:.0f} M |")
    return "\n".join(rows)


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'meliusnet*'")
    p.add_argument("--figures", action="store_true", help="build each model and print its measured figures")


def run_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}; run `bnnzoo list` for all", file=sys.stderr)
        return 1
    if args.figures:
        print(figures_table(names))
    else:
        for name in names:
            print(f"{name:28s} {get_config(name).paper}")
    return 0


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), help="models to convert and time")
    p.add_argument("--out", default="out/demo", help="folder for the exported files")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model and runtime")


def _median_ms(fn, runs: int) -> float:
    import statistics

    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def run_demo(args: argparse.Namespace) -> int:
    """Figures of every model, then export + verify + time the demo models."""
    import numpy as np

    from converters import to_onnx, to_tflite

    from . import load

    print("Figures of every registered model (measured from the PyTorch model, 1000 classes, 224x224):\n")
    print(figures_table(list_models()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nExports of {', '.join(args.models)} (initialised weights: no trained weights are registered yet), "
          f"verified against PyTorch; latency = median of {args.runs} runs, batch 1, 1 thread, this machine:\n")
    rows = ["| model | format | size (MB) | binary convs packed | max abs diff | top-1 agreement | latency (ms) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for name in args.models:
        model = load(name)
        size = model.zoo_config.input_size
        x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype(np.float32)
        for fmt, convert in (("tflite", to_tflite), ("onnx", to_onnx)):
            report = convert(model, out / f"{name}.{fmt}")
            ms = _median_ms(_runner(fmt, report.path, x), args.runs)
            rows.append(f"| {name} | {fmt} | {report.size_bytes / 2**20:.2f} | {report.lce_bconv2d if fmt == 'tflite' else report.binary_convs} | "
                        f"{report.max_abs_diff:.2e} | {report.top1_agreement:.0%} | {ms:.1f} |")
            print(rows[-1] if len(rows) > 3 else "\n".join(rows), flush=True)
    return 0


def _runner(fmt: str, path: Path, x_nhwc):
    if fmt == "tflite":
        from larq_compute_engine.tflite.python.interpreter import Interpreter

        interp = Interpreter(Path(path).read_bytes(), num_threads=1, use_indirect_bgemm=True)
        return lambda: interp.predict(x_nhwc)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x_nhwc.transpose(0, 3, 1, 2).copy()}
    return lambda: sess.run(None, feed)
