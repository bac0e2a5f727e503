"""``bnnzoo list`` and ``bnnzoo demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable

from . import get_config, list_models

DEMO_MODELS = ("meliusnet22",)


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
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), help="binary models to export and compare")
    p.add_argument("--out", default="out/demo", help="folder for the report and the exported files")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model and runtime")
    p.add_argument("--limit", type=int, default=100, help="MNIST images for the accuracy column")


def run_demo(args: argparse.Namespace) -> int:
    """Figures of every model, then export, verify, time and compare against MobileNet-v1."""
    from eval.cli import main as eval_main

    print("Figures of every registered model, measured from the PyTorch model at its input size:\n")
    print(figures_table(list_models()), flush=True)
    print(f"\nExporting {', '.join(args.models)} and MobileNet-v1 to LCE TFLite and bit-packed ONNX, "
          "verifying each export against PyTorch, timing every runtime (initialised weights: no trained "
          "weights are registered for them, so accuracy is chance level and says so).\n", flush=True)
    return eval_main([*args.models, "--baseline", "mobilenet_v1", "--data", "mnist", "--limit", str(args.limit),
                      "--threads", "1", "--runs", str(args.runs), "-o", args.out, "--keep-exports"])
