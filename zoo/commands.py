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
                   help=f"binary models to compare with MobileNet-v1 (each needs weights tagged {DEMO_TAG!r})")
    p.add_argument("--models", nargs="+", dest="models_option", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("-o", "--output", "--out", dest="out", default="out/demo",
                   help="folder for the report and the detected plates")
    p.add_argument("--runs", type=int, default=None, help="most timed runs per model and runtime (default: eval --quick's)")
    p.add_argument("--limit", type=int, default=0, help="MNIST validation digits for the accuracy column (0: all 1,000)")
    p.add_argument("--plates", type=int, default=4, help="generated images the 1-bit plate detector runs on (0: none)")


def run_demo(args: argparse.Namespace) -> int:
    """The binary models against MobileNet-v1 at 224x224 (published ImageNet top-1, measured latency and size)
    with the MNIST accuracy of their shipped weights; then plates found by the 1-bit detector. (The figures of
    every model, which took most of a minute to measure, are `bnnzoo list --figures`.)"""
    from eval.cli import main as eval_main

    if args.models_option:
        args.models = args.models_option
    print(f"{', '.join(args.models)} against MobileNet-v1 (widths 0.25 to 1.0) at 224x224, the input size of their "
          "published ImageNet top-1: each exported to LCE TFLite at 224x224 (verified once, then cached) and timed in "
          "bnnzoo's kernels (LiteRT) and LCE, MobileNet-v1 in TFLite with XNNPACK. Beside it, the accuracy of the "
          f"weights that ship with bnnzoo (tag {DEMO_TAG!r}, trained on MNIST digits at 32x32, 64x64 for MobileNet-v1 "
          "0.25), exported at their own size and run on the held-out digits in PyTorch, LCE and bnnzoo's kernels.\n",
          flush=True)
    tagged = [f"{m}.{DEMO_TAG}" for m in (*args.models, DEMO_BASELINE)]
    runs = ["--runs", str(args.runs)] if args.runs else []
    rc = eval_main([*tagged, "--baseline", "mobilenet_v1", "--quick", *runs, "--data", "mnist",
                    "--limit", str(args.limit), "-o", args.out])
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
    (folder / "detected").mkdir(parents=True, exist_ok=True)  # a folder even for one image (detect's -o rule)
    # No --model: detect's default detector (eval.detect.DEFAULT_DETECTOR) with its shipped weights.
    return cli_main(["detect", *images, "--runtime", "tflite",
                     "--score-threshold", "0.5", "-o", str(folder / "detected")])


def add_pack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="a trained model.safetensors (config.json beside it names the architecture)")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="the .safetensors file to write (named model.safetensors: its config.json goes beside it)")


def run_pack(args: argparse.Namespace) -> int:
    """Saves trained weights for inference: binary kernels as int8 signs (same outputs, ~4x smaller)."""
    import json
    from pathlib import Path

    from . import load
    from .fileio import read_json, sha256_of
    from .weights import binary_weight_names, save

    config = Path(args.weights).parent / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing: pack the model.safetensors of a training run (its "
                                "config.json names the architecture)")
    saved = read_json(config, "config", "pack the model.safetensors of a training run")
    if not isinstance(saved.get("name"), str):
        raise ValueError(f"config {config} names no architecture (no \"name\"): pack the model.safetensors of a "
                         "training run")
    model = load(saved["name"], weights=args.weights)
    # A model.safetensors gets its config.json beside it; other names (zoo/pretrained/<arch>.<tag>.safetensors,
    # many per folder) are described by their WEIGHTS entry instead.
    with_config = Path(args.out).name == "model.safetensors"
    out = save(model.state_dict(), args.out, model.zoo_config if with_config else None,
               signs_of=binary_weight_names(model))
    cfg = model.zoo_config
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, sha256 {sha256_of(out)}, {cfg.name} num_classes="
          f"{cfg.num_classes} input_size={cfg.input_size} arch={json.dumps(cfg.arch)}")
    return 0


# --- bnnzoo download / push (the Hub client is zoo.hub) ----------------------------------------


def build_repo_folder(folder, repo_id: str, metrics: tuple = ()):
    """Makes ``folder`` (``model.safetensors`` + ``config.json``) a Hub repo folder: adds ``README.md``.

    The card's metrics are ``metrics``, plus those of ``metrics.json`` in the folder (a list of
    ``{"name", "value", "dataset", "source"}``), plus those of a registered ``Weights`` entry
    pointing at ``repo_id``. The weights are loaded into the architecture first, so weights
    that do not fit never reach the Hub.

    Returns:
        The path of the README.md written.

    Raises:
        FileNotFoundError: A file is missing.
        WeightMismatchError: The weights do not fit the architecture in ``config.json``.
    """
    from . import api
    from .cards import model_card
    from .fetch import check_config
    from pathlib import Path

    from .fileio import read_json, sha256_of
    from .hub import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE
    from .registry import get_config
    from .weights import WEIGHTS, Metric, read_safetensors

    folder = Path(folder)
    for f in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder / f} does not exist: write the folder with "
                                    f"zoo.weights.save(model.state_dict(), '{folder}/{WEIGHTS_FILE}', cfg)")
    saved = read_json(folder / CONFIG_FILE, "config", "write the folder with zoo.weights.save")
    cfg = check_config(get_config(saved.get("name", "?")), folder / CONFIG_FILE)
    model = api.build(cfg, "torch")
    api._load_state(model, read_safetensors(folder / WEIGHTS_FILE), "torch")
    extra = list(metrics)
    if (folder / METRICS_FILE).is_file():
        rows = read_json(folder / METRICS_FILE, "metrics", "a list of {\"name\", \"value\", \"dataset\", \"source\"}",
                         kind=list)
        try:
            extra += [Metric(**m) for m in rows]
        except TypeError:
            raise ValueError(f"{folder / METRICS_FILE} must be a list of {{\"name\", \"value\", \"dataset\", "
                             f"\"source\"}} objects") from None
    registered = next((w for w in WEIGHTS.values() if w.hub_repo == repo_id), None)
    if registered is not None:
        extra = list(registered.metrics) + [m for m in extra if m not in registered.metrics]
    readme = folder / "README.md"
    readme.write_text(model_card(registered or cfg, tuple(extra), repo_id=repo_id,
                                 sha256=sha256_of(folder / WEIGHTS_FILE)))
    return readme


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """``bnnzoo download NAME[.TAG] | hf-hub:owner/repo[@revision] [--force]``."""
    parser.add_argument("name", metavar="NAME[.TAG]",
                        help="registered weights (arch or arch.tag; see zoo.weights.WEIGHTS) or hf-hub:owner/repo[@rev]")
    parser.add_argument("--force", action="store_true", help="download again even if cached (replaces a corrupt file)")


def run_download(args: argparse.Namespace) -> int:
    """Warms the Hub cache with one set of weights and prints where the files are."""
    from .fetch import fetch_registered
    from .hub import HUB_PREFIX, fetch_hub_ref
    from .registry import get_config
    from .weights import lookup

    if args.name.startswith(HUB_PREFIX):
        weights_path, config_path = fetch_hub_ref(args.name, force=args.force)
        print(weights_path)
        print(config_path)
        return 0
    arch, _, tag = args.name.partition(".")
    cfg = get_config(arch)
    key, w = lookup(cfg, tag or "default")
    path = fetch_registered(key, w, force=args.force)
    print(f"{key}: {path} (sha256 ok)")
    return 0


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """``bnnzoo push FOLDER --repo owner/name [--revision REV] [--dry-run] [--private] [--message MSG]``."""
    parser.add_argument("folder", metavar="FOLDER", help="folder holding model.safetensors and config.json "
                        "(zoo.weights.save), optionally metrics.json")
    parser.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repo to push to")
    parser.add_argument("--revision", default="main", help="branch to commit to (created if missing)")
    parser.add_argument("--dry-run", action="store_true", help="write README.md into FOLDER and stop before uploading")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")


def run_push(args: argparse.Namespace) -> int:
    """Builds the repo folder (model card included) and uploads it, then prints a ``Weights`` entry to register."""
    from pathlib import Path

    from .fileio import read_json, sha256_of
    from .hub import _REPO_ID, CONFIG_FILE, WEIGHTS_FILE, _endpoint, push_folder

    if not _REPO_ID.fullmatch(args.repo):
        raise ValueError(f"bad repo {args.repo!r}: expected owner/name")
    folder = Path(args.folder)
    readme = build_repo_folder(folder, args.repo)
    sha = sha256_of(folder / WEIGHTS_FILE)
    if args.dry_run:
        print(f"dry run: {folder} is ready ({WEIGHTS_FILE}, {CONFIG_FILE}, {readme.name}); nothing uploaded")
        revision = args.revision
    else:
        revision = push_folder(folder, args.repo, revision=args.revision, private=args.private, message=args.message)
        print(f"pushed {folder} to {_endpoint()}/{args.repo} at commit {revision}")
    cfg = read_json(folder / CONFIG_FILE, "config")
    print(f"register it in zoo/weights.py WEIGHTS as {cfg['name']}.<tag>: Weights(arch={cfg['name']!r}, tag=..., "
          f"hub_repo={args.repo!r}, revision={revision!r}, filename={WEIGHTS_FILE!r}, sha256={sha!r}, "
          f"num_classes={cfg['num_classes']}, input_size={cfg['input_size']}, mean=..., std=..., "
          f"arch_overrides=...)")
    return 0
