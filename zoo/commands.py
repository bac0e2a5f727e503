"""``bnnzoo list`` and ``bnnzoo demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable

from . import get_config, list_models

# Binary models with weights trained on the embedded MNIST digits (shipped in zoo/pretrained/),
# and the float reference trained the same way.
DEMO_MODELS = ("realtobinary_resnet18", "meliusnet22")
DEMO_BASELINE = "mobilenet_v1_025"
DEMO_TAG = "mnist"


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
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS),
                   help=f"binary models to export and compare (each needs weights tagged {DEMO_TAG!r})")
    p.add_argument("--out", default="out/demo", help="folder for the report and the exported files")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model and runtime")
    p.add_argument("--limit", type=int, default=0, help="MNIST validation digits for the accuracy column (0: all 1,000)")
    p.add_argument("--plates", type=int, default=4, help="generated images the 1-bit plate detector runs on (0: none)")


def run_demo(args: argparse.Namespace) -> int:
    """Figures of every model, then export, verify, time and compare trained models against MobileNet-v1."""
    from eval.cli import main as eval_main

    print("Figures of every registered model, measured from the PyTorch model at its input size:\n")
    print(figures_table(list_models()), flush=True)
    models = [*args.models, DEMO_BASELINE]
    print(f"\nExporting {', '.join(models)} with their MNIST-trained weights (shipped with bnnzoo, tag "
          f"{DEMO_TAG!r}) to LCE TFLite and bit-packed ONNX, verifying each export against PyTorch, measuring "
          "accuracy on the held-out MNIST digits through PyTorch, ONNX and LCE, and timing every runtime.\n",
          flush=True)
    weights = [a for m in models for a in ("--weights", f"{m}={DEMO_TAG}")]
    rc = eval_main([*models, "--baseline", "none", *weights, "--data", "mnist", "--limit", str(args.limit),
                    "--threads", "1", "--runs", str(args.runs), "-o", args.out, "--keep-exports"])
    return max(rc, _demo_plates(args.out, args.plates))


def _demo_plates(out: str, count: int) -> int:
    """Plates found by the shipped 1-bit detector in LCE's interpreter, on generated held-out images."""
    from pathlib import Path

    from recipes.plates.generate import generate

    from .cli import main as cli_main

    if count <= 0:
        return 0
    print(f"\nFinding license plates in {count} generated test images (not seen in training) with the 1-bit "
          f"detector that ships with bnnzoo, exported to LCE TFLite (verified) and run in LCE's interpreter:\n",
          flush=True)
    folder = Path(out) / "plates"
    generate(folder, {"test": count}, seed=0)
    images = sorted(str(p) for p in (folder / "images" / "test").iterdir())
    # No --model: detect's default detector (eval.detect.DEFAULT_DETECTOR) with its shipped weights.
    return cli_main(["detect", *images, "--runtime", "tflite",
                     "--score-threshold", "0.5", "-o", str(folder / "detected")])


def add_pack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="a trained model.safetensors (config.json beside it names the architecture)")
    p.add_argument("-o", "--out", required=True,
                   help="the .safetensors file to write (named model.safetensors: its config.json goes beside it)")


def run_pack(args: argparse.Namespace) -> int:
    """Saves trained weights for inference: binary kernels as int8 signs (same outputs, ~4x smaller)."""
    import json
    from pathlib import Path

    from . import load
    from .fileio import sha256_of
    from .weights import binary_weight_names, save

    config = Path(args.weights).parent / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing: pack the model.safetensors of a training run (its "
                                "config.json names the architecture)")
    model = load(json.loads(config.read_text())["name"], weights=args.weights)
    # A model.safetensors gets its config.json beside it; other names (zoo/pretrained/<arch>.<tag>.safetensors,
    # many per folder) are described by their WEIGHTS entry instead.
    with_config = Path(args.out).name == "model.safetensors"
    out = save(model.state_dict(), args.out, model.zoo_config if with_config else None,
               signs_of=binary_weight_names(model))
    cfg = model.zoo_config
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, sha256 {sha256_of(out)}, {cfg.name} num_classes="
          f"{cfg.num_classes} input_size={cfg.input_size} arch={json.dumps(cfg.arch)}")
    return 0
