"""``bnnzoo list``: the registered models, their weights or their measured figures."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable

__all__ = ["add_arguments", "run", "figures_table", "weights_table"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo list`` to ``p``."""
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'meliusnet*'")
    p.add_argument("--figures", action="store_true", help="build each model and print its measured figures")
    p.add_argument("--weights", action="store_true",
                   help="list each model's weights: tag (the default first), source, metrics, file size")
    p.add_argument("--pretrained", action="store_true", help="only models with registered weights")
    p.add_argument("--include-stages", action="store_true",
                   help="also the recipes' training-stage variants (*_teacher, *_stageN)")


def figures_table(names: Iterable[str], input_size: int | None = None) -> str:
    """A Markdown table of what each model reports about itself (measured, not hard-coded)."""
    from zoo import load, measure
    from zoo.console import progress

    rows = ["| model | params | binary convs | binary MACs | size (MB, 1-bit binary) | FLOPs | BOPs | OPs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in progress(names, "bnnzoo list", describe=lambda n: f"measuring {n}"):
        f = measure(load(name, input_size=input_size))
        rows.append(f"| {name} | {f.params / 1e6:.2f} M | {f.binary_convs} | {f.binary_mac_share:.1%} | "
                    f"{f.size_bytes / 2**20:.2f} | {f.flops / 1e6:.0f} M | {f.bops / 1e9:.2f} G | "
                    f"{f.ops / 1e6:.0f} M |")
    return "\n".join(rows)


def weights_table(names: Iterable[str]) -> str:
    """A Markdown table of the registered weights of ``names`` (the default tag of each first)."""
    from zoo.weights import BUNDLED_DIR, list_weights

    rows = ["| weights | default | source | metrics | file |", "|---|:-:|---|---|---:|"]
    for name in names:
        for w in list_weights(name):
            metrics = ", ".join(f"{m.name} {m.value:g}% ({m.source.split(':')[0]}, {m.dataset.split(' ')[0]})"
                                for m in w.metrics)
            path = BUNDLED_DIR / w.filename
            size = f"{path.stat().st_size / 1e6:.2f} MB" if not w.hub_repo and path.is_file() else "download"
            rows.append(f"| {w.key} | {'yes' if w.default else ''} | {w.source} | {metrics} | {size} |")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo list``; returns the exit status (1: no model matches)."""
    from zoo import get_config, list_models

    names = list_models(args.pattern, pretrained=args.pretrained or args.weights, include_stages=args.include_stages)
    if not names:
        print(f"no model matches {args.pattern!r}; run `bnnzoo list` for all", file=sys.stderr)
        return 1
    if args.weights:
        print(weights_table(names))
    elif args.figures:
        print(figures_table(names))
    else:
        for name in names:
            print(f"{name:28s} {get_config(name).paper}")
    return 0
