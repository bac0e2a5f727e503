"""The model argument every command takes (the grammar of :mod:`zoo.refs`) and its loading."""

from __future__ import annotations

import argparse

__all__ = ["MODEL_HELP", "add_model_arguments", "model_reference", "load_model"]

MODEL_HELP = ("NAME[.TAG] (a registered model, `bnnzoo list`), a folder or .safetensors file saved with zoo.save "
              "(its config.json names the architecture), hf-hub:OWNER/NAME[@REV], or FILE.py:CLASS (a torch.nn.Module "
              "class of yours)")


def add_model_arguments(parser: argparse.ArgumentParser, dest: str = "source", *, optional: bool = False,
                        help: str = MODEL_HELP) -> None:
    """Adds the model argument of a command (positional ``dest``), ``--weights`` and ``--arch``."""
    parser.add_argument(dest, metavar="MODEL", nargs="?" if optional else None, help=help)
    parser.add_argument("--weights", metavar="W", help="weights of a NAME or FILE.py:CLASS: TAG, a folder, a "
                        ".safetensors file or hf-hub:OWNER/NAME[@REV]")
    parser.add_argument("--arch", metavar="NAME", help="the architecture of a .safetensors file that has no "
                        "config.json beside it (older files)")


def model_reference(args: argparse.Namespace, dest: str = "source") -> tuple[str, "str | None"]:
    """``(reference, weights)`` of a command's model argument (:func:`zoo.refs.with_arch`)."""
    from zoo.refs import with_arch

    return with_arch(getattr(args, dest), getattr(args, "weights", None), getattr(args, "arch", None))


def load_model(args: argparse.Namespace, dest: str = "source", **options):
    """``zoo.load`` of a command's model argument (:func:`add_model_arguments`), with ``options``."""
    from zoo import load

    reference, weights = model_reference(args, dest)
    return load(reference, weights=weights, **options)
