"""``bnnzoo data plates``: the synthetic Korean license-plate data set (YOLO labels), resumable."""

from __future__ import annotations

import argparse
import os

from recipes.plates.generate import SPLITS, generate, parse_size

__all__ = ["add_arguments", "run", "INTERRUPTED"]

# What Ctrl-C leaves: every image is written atomically.
INTERRUPTED = "; the images written so far are complete: the same command resumes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo data plates`` to ``parser``."""
    parser.add_argument("dataset", choices=["plates"], help="data set to generate")
    parser.add_argument("-o", "--output", "--out", dest="out", default="data/plates",
                        help="output folder (resumed if it exists)")
    parser.add_argument("--train", type=int, default=20000, help="training images")
    parser.add_argument("--val", type=int, default=2000, help="validation images")
    parser.add_argument("--test", type=int, default=0, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="base seed (image i uses seed, split, i)")
    parser.add_argument("--size", default="160x160", help="WIDTHxHEIGHT of every image")
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"], help="image file format")
    parser.add_argument("--font", default=None, help="Hangul .ttf (default: NanumGothic from koreanize-matplotlib)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="rendering processes")


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo data plates``."""
    counts = {s: getattr(args, s) for s in SPLITS if getattr(args, s)}
    m = generate(args.out, counts, seed=args.seed, size=parse_size(args.size), image_format=args.format,
                 font=args.font, workers=args.workers, progress=True)
    total = sum(v["images"] for v in m["splits"].values())
    rate = (f"{m['_written'] / m['_seconds']:.0f} images/s" if m["_written"] and m["_seconds"] > 0
            else "the rest were already there")
    print(f"{args.out}: {total} images ({m['_written']} written now, {rate}), "
          + ", ".join(f"{s}: {v['images']} images / {v['plates']} plates" for s, v in m["splits"].items()))
    return 0
