"""``bnnzoo deploy NAME --target rpi``: a self-contained, verified bundle for a 64-bit Raspberry Pi.

Examples::

    bnnzoo deploy meliusnet22 --target rpi -o meliusnet22-rpi/
    python3 meliusnet22-rpi/run.py --runtime litert meliusnet22-rpi/sample.png

What the bundle holds: :mod:`converters.deploy`.
"""

from __future__ import annotations

import argparse

from bnnzoo.arguments import add_model_arguments, load_model, model_reference
from converters.deploy import TARGETS

__all__ = ["add_arguments", "run", "needs_tensorflow"]


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """The bundle's LCE file imports TensorFlow."""
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo deploy`` to ``parser``."""
    add_model_arguments(parser)
    parser.add_argument("--target", required=True, choices=TARGETS, help="rpi: 64-bit Raspberry Pi OS (aarch64)")
    parser.add_argument("-o", "--output", metavar="DIR", help="bundle folder (default: NAME-TARGET here)")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input side (default: the weights')")
    parser.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                        help="input mean (default: the weights' record; needed for a class of yours without one)")
    parser.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="input std (as --mean)")
    parser.add_argument("--crop-pct", type=float, metavar="F",
                        help="share of the resized shorter side the centre crop keeps (default: the weights')")
    parser.add_argument("--pad-value", type=float, choices=(0.0, 1.0), metavar="0|1",
                        help="padding value of binary convs' inputs (an architecture option)")
    parser.add_argument("--tiny", action="store_true", help="the architecture's small test variant (cfg.tiny)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle folder")


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo deploy``; prints the bundle summary. Returns the exit status."""
    import zoo
    from converters.deploy import deploy
    from zoo.refs import short_name

    overrides: dict = {} if args.pad_value is None else {"pad_value": args.pad_value}
    reference, _ = model_reference(args)
    if args.tiny:
        if reference not in zoo.list_models(include_stages=True):
            raise ValueError(f"--tiny builds a registered architecture's test size: give a bare NAME, not {reference}")
        overrides = {**zoo.get_config(reference).tiny, **overrides}
    if args.input_size is not None:
        overrides["input_size"] = args.input_size
    model = load_model(args, **overrides)
    if model.zoo_weights is None and getattr(model, "zoo_config", None) is not None:
        print(f"bnnzoo deploy: note: {args.source} has no weights given: the bundle holds randomly initialised weights")
    name = short_name(args.source)
    report = deploy(model, args.output or f"{name}-{args.target}", target=args.target, name=name,
                    mean=args.mean, std=args.std, crop_pct=args.crop_pct, overwrite=args.force, log=print)
    print(report.summary())
    return 0
