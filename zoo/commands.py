"""``bnnzoo list``, ``demo``, ``pack``, ``download`` and ``push``."""

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

    from .console import progress

    rows = ["| model | params | binary convs | binary MACs | size (MB, 1-bit binary) | FLOPs | BOPs | OPs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in progress(names, "bnnzoo list", describe=lambda n: f"measuring {n}"):
        f = measure(load(name, input_size=input_size))
        rows.append(f"| {name} | {f.params / 1e6:.2f} M | {f.binary_convs} | {f.binary_mac_share:.1%} | "
                    f"{f.size_bytes / 2**20:.2f} | {f.flops / 1e6:.0f} M | {f.bops / 1e9:.2f} G | {f.ops / 1e6:.0f} M |")
    return "\n".join(rows)


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'meliusnet*'")
    p.add_argument("--figures", action="store_true", help="build each model and print its measured figures")
    p.add_argument("--weights", action="store_true",
                   help="list each model's weights: tag (the default first), source, metrics, file size")
    p.add_argument("--pretrained", action="store_true", help="only models with registered weights")
    p.add_argument("--include-stages", action="store_true",
                   help="also the recipes' training-stage variants (*_teacher, *_stageN)")


def weights_table(names: Iterable[str]) -> str:
    """A Markdown table of the registered weights of ``names`` (the default tag of each first)."""
    from .weights import BUNDLED_DIR, list_weights

    rows = ["| weights | default | source | metrics | file |", "|---|:-:|---|---|---:|"]
    for name in names:
        for w in list_weights(name):
            metrics = ", ".join(f"{m.name} {m.value:g}% ({m.source.split(':')[0]}, {m.dataset.split(' ')[0]})"
                                for m in w.metrics)
            path = BUNDLED_DIR / w.filename
            size = f"{path.stat().st_size / 1e6:.2f} MB" if not w.hub_repo and path.is_file() else "download"
            rows.append(f"| {w.key} | {'yes' if w.default else ''} | {w.source} | {metrics} | {size} |")
    return "\n".join(rows)


def run_list(args: argparse.Namespace) -> int:
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


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="*", metavar="NAME", default=list(DEMO_MODELS),
                   help=f"binary models to export and compare (each needs weights tagged {DEMO_TAG!r})")
    p.add_argument("--models", nargs="+", dest="models_option", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("-o", "--output", "--out", dest="out", default="out/demo",
                   help="folder for the report and the exported files")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model and runtime")
    p.add_argument("--limit", type=int, default=0, help="MNIST validation digits for the accuracy column (0: all 1,000)")
    p.add_argument("--plates", type=int, default=4, help="generated images the 1-bit plate detector runs on (0: none)")


def run_demo(args: argparse.Namespace) -> int:
    """Figures of every model, then export, verify, time and compare trained models against MobileNet-v1."""
    from eval.cli import main as eval_main

    print("Figures of every registered model, measured from the PyTorch model at its input size:\n")
    print(figures_table(list_models()), flush=True)
    if args.models_option:
        args.models = args.models_option
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
    from .cli import add_model_arguments

    add_model_arguments(p, "weights_source", help="the trained weights: a training run's stage folder or its "
                        "model.safetensors (config.json beside it names the architecture), or any MODEL reference")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="the .safetensors file to write (named model.safetensors: its config.json goes beside it)")


def run_pack(args: argparse.Namespace) -> int:
    """Saves trained weights for inference: binary kernels as int8 signs (same outputs, ~4x smaller)."""
    import json
    from pathlib import Path

    from .cli import load_model
    from .fileio import sha256_of
    from .weights import WEIGHTS_FILE, binary_weight_names, save

    model = load_model(args, "weights_source")
    # A model.safetensors gets its config.json (the record) beside it; other names (zoo/pretrained/<arch>.<tag>
    # .safetensors, many per folder) are described by their WEIGHTS entry instead.
    record = model.zoo_weights if Path(args.out).name == WEIGHTS_FILE else None
    out = save(model.state_dict(), args.out, record, signs_of=binary_weight_names(model))
    cfg = model.zoo_config
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, sha256 {sha256_of(out)}, {cfg.name} num_classes="
          f"{cfg.num_classes} input_size={cfg.input_size} arch={json.dumps(cfg.arch)}")
    return 0


# --- bnnzoo download / push (the Hub client is zoo.hub) ----------------------------------------


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """``bnnzoo download MODEL [--weights W] [--force]``."""
    from .cli import add_model_arguments

    add_model_arguments(parser, "name", help="the weights to fetch: NAME[.TAG] (a bare NAME: its default weights), "
                        "hf-hub:OWNER/NAME[@REV], or FILE.py:CLASS with --weights")
    parser.add_argument("--force", action="store_true", help="download again even if cached (replaces a corrupt file)")


def run_download(args: argparse.Namespace) -> int:
    """Warms the caches with one set of weights (checked) and prints where the files are."""
    from .cli import model_reference
    from .refs import locate

    import os

    reference, weights = model_reference(args.name, getattr(args, "weights", None), getattr(args, "arch", None))
    local = os.path.exists(os.path.expanduser(weights or reference))  # nothing to fetch or check
    for path in locate(reference, weights=weights, force=args.force):
        print(f"{path} (sha256 ok)" if path.suffix != ".json" and not local else str(path))
    return 0


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """``bnnzoo push MODEL --repo OWNER/NAME [--revision REV] [--dry-run] [--private] [--message MSG]``."""
    from .cli import add_model_arguments

    add_model_arguments(parser, "folder", help="what to publish: a folder saved with zoo.save or a training run's "
                        "stage folder (model.safetensors + config.json), or any MODEL reference")
    parser.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repo to push to")
    parser.add_argument("--revision", default="main", help="branch to commit to (created if missing)")
    parser.add_argument("--dry-run", action="store_true", help="write README.md into FOLDER and stop before uploading")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--overwrite-card", action="store_true",
                        help="replace a README.md that was edited on the Hub (kept otherwise)")


def run_push(args: argparse.Namespace) -> int:
    """Publishes the model (``zoo.push_to_hub``): weights, config.json (the record) and a model card."""
    from pathlib import Path

    from .api import push_to_hub
    from .cli import load_model
    from .hub import _endpoint
    from .weights import CONFIG_FILE, WEIGHTS_FILE

    folder = Path(args.folder)
    if folder.is_file() and folder.name == WEIGHTS_FILE:
        folder = folder.parent
    saved = folder.is_dir() and (folder / CONFIG_FILE).is_file() and not (args.weights or args.arch)
    if not saved and args.dry_run:
        raise ValueError(f"--dry-run writes the card into a saved folder; {args.folder} is not one (model.safetensors "
                         "+ config.json): zoo.save the model first")
    options = dict(revision=args.revision, private=args.private, message=args.message,
                   overwrite_card=getattr(args, "overwrite_card", False))
    result = push_to_hub(folder if saved else load_model(args, "folder"), args.repo, dry_run=args.dry_run, **options)
    if result.commit is None:
        print(f"dry run: {result.folder} is ready ({WEIGHTS_FILE}, {CONFIG_FILE}, README.md); nothing uploaded")
        return 0
    print(f"pushed {result.folder if saved else args.folder} to {_endpoint()}/{args.repo} at commit {result.commit}"
          + ("" if result.card_uploaded else "; README.md was edited on the Hub and is kept (--overwrite-card "
             "replaces it)"))
    print(f"load it with zoo.load({result.reference!r}), or any command: bnnzoo convert {result.reference} "
          "--to tflite")
    return 0
