"""``bnnzoo detect``: license plates found by a zoo detector in any runtime, drawn and printed.

Examples::

    bnnzoo detect car.jpg -o car_plates.png            # DEFAULT_DETECTOR with the weights that ship with bnnzoo
    bnnzoo detect plates_detector_1bit car.jpg --weights run/1bit/model.safetensors -o car_plates.png
    bnnzoo detect plates_detector_1bit.tag photos/*.jpg --runtime tflite -o detections/
    bnnzoo detect plates_detector_1bit car.jpg --weights w.safetensors --runtime onnx --exported m.onnx -o c.png

The library is :mod:`converters.detect` (preprocessing, runtimes, the export cache, decoding).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from converters.detect import (
    DEFAULT_DETECTOR,
    RUNTIMES,
    ImageDetections,
    default_weights,
    detect,
    draw_boxes,
    load_detector,
    predictor,
    read_display,
    save_png,
)
from zoo.transforms import UnreadableImageError

__all__ = ["add_arguments", "run", "needs_tensorflow", "output_paths"]


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """LCE's interpreter (a .tflite file) imports TensorFlow."""
    return args.runtime == "tflite" or str(args.exported or "").endswith(".tflite")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo detect`` to ``p``."""
    import zoo

    detectors = ", ".join(n for n in zoo.list_models() if zoo.get_config(n).family == "detector")
    p.add_argument("images", nargs="+", metavar="[MODEL] IMG",
                   help=f"optionally a detector: a registered one ({detectors}) with an optional weights tag, a "
                        f"folder or .safetensors file saved from one, or hf-hub:OWNER/NAME (default: "
                        f"{DEFAULT_DETECTOR}, the 1-bit detector with the most AP@0.5 per 32-bit MAC), then image "
                        "files (any format Pillow reads)")
    # the old spelling: all positionals are images
    p.add_argument("--model", metavar="NAME[.TAG]", help=argparse.SUPPRESS)
    p.add_argument("--weights", metavar="W", help="weights of a NAME: a tag, a folder, a .safetensors file or "
                                                  "hf-hub:OWNER/NAME[@REV]")
    p.add_argument("--runtime", choices=RUNTIMES, help="what runs the model (default: torch, or what --exported is)")
    p.add_argument("--exported", metavar="FILE", help="an .onnx or .tflite export of the model to run as it is")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a .png file for one image; a folder (created if missing) for several")
    p.add_argument("--score-threshold", type=float, default=0.25, help="minimum objectness kept")
    p.add_argument("--iou-threshold", type=float, default=0.45, help="NMS overlap threshold")
    p.add_argument("--no-cache", action="store_true", help="convert into a temporary folder, not the export cache")


def output_paths(images: Sequence[str], output: str) -> list[Path]:
    """The PNG to write per image; one-line errors for an -o that cannot work."""
    out = Path(output)
    folder = out.is_dir() or output.endswith(os.sep) or (len(images) > 1 and out.suffix.lower() != ".png")
    if not folder:
        if len(images) > 1:
            raise ValueError(f"{len(images)} images need a folder for -o, not the file {output}")
        if out.suffix.lower() != ".png":
            raise ValueError(f"-o {output}: give a .png file name, or a folder (existing, or ending in {os.sep})")
        if not out.parent.resolve().is_dir():
            raise FileNotFoundError(f"output folder {out.parent} does not exist; create it first")
        targets = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        targets, seen = [], set()
        for image in images:
            stem, n = Path(image).stem, 1
            while (name := f"{stem}.png" if n == 1 else f"{stem}-{n}.png") in seen:
                n += 1
            seen.add(name)
            targets.append(out / name)
    inputs = {Path(i).resolve() for i in images}
    for target in targets:
        if target.resolve() in inputs:
            raise ValueError(f"-o would overwrite the input {target}: choose another output")
    return targets


def _check_thresholds(score: float, iou: float) -> None:
    if not (0 <= score <= 1 and 0 <= iou <= 1):
        raise ValueError(f"--score-threshold and --iou-threshold are in [0, 1] (got {score}, {iou})")


def _names_a_model(arg: str) -> bool:
    """A model reference (a detector or not: load_detector says), not an image: ``NAME[.TAG]``, ``hf-hub:REPO``, a
    folder or ``.safetensors`` file of weights."""
    from zoo import list_models
    from zoo.hub import is_hub_ref

    path = Path(arg)
    if path.is_dir() or path.suffix == ".safetensors" or is_hub_ref(arg):
        return True
    return not path.exists() and arg.partition(".")[0] in list_models(include_stages=True)


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo detect``: prints one line per box, writes one PNG per image.

    Returns:
        0, or 1 when an image could not be read (the others are still written).
    """
    _check_thresholds(args.score_threshold, args.iou_threshold)
    if args.model is None:
        args.model = DEFAULT_DETECTOR
        if _names_a_model(args.images[0]):
            args.model, args.images = args.images[0], args.images[1:]
        if not args.images:
            raise ValueError("no image given: bnnzoo detect [NAME[.TAG]] IMG [IMG ...]")
    runtime = args.runtime or ("torch" if not args.exported else
                               "onnx" if str(args.exported).endswith(".onnx") else "tflite")
    targets = output_paths(args.images, args.output)
    name = args.model
    if name in _registered() and not args.weights:
        default = default_weights(name)
        if default:
            from zoo.weights import WEIGHTS

            name = default
            where = "that ship with bnnzoo" if not WEIGHTS[default].hub_repo else "registered"
            print(f"bnnzoo detect: using the weights {where}, {default}; --weights FILE for others", file=sys.stderr)
        else:
            print(f"bnnzoo detect: warning: no --weights, {name} has initialised (untrained) weights; "
                  "its boxes mean nothing", file=sys.stderr)
    model = load_detector(name, args.weights)
    label = next(iter(model.zoo_weights.labels), "object") if model.zoo_weights else "object"  # what a box holds
    with tempfile.TemporaryDirectory(prefix="bnnzoo-detect-") as tmp:
        predict = predictor(model, runtime, args.exported, tmp if args.no_cache else None)
        results = detect(args.images, model, predict, args.score_threshold, args.iou_threshold)
    failed = 0
    print("# image score x0 y0 x1 y1 (pixels of the image)")
    for result, target in zip(results, targets):
        if isinstance(result, ImageDetections):
            try:
                canvas, scale = read_display(result.path)
                draw_boxes(canvas, result.boxes, result.scores, scale=scale)
                save_png(canvas, target)
            except UnreadableImageError as e:
                result = e
        if not isinstance(result, ImageDetections):
            failed += 1
            print(f"bnnzoo detect: skipped: {result}", file=sys.stderr)
            continue
        for box, score in zip(result.boxes, result.scores):
            print(f"{result.path} {score:.3f} " + " ".join(f"{v:.1f}" for v in box))
        print(f"bnnzoo detect: {result.path}: {len(result.scores)} {label}(s) -> {target}", file=sys.stderr)
    return 1 if failed else 0


def _registered() -> list[str]:
    from zoo import list_models

    return list_models(include_stages=True)
