"""The ``bnnzoo`` command line. Each subcommand lives beside the code it drives and
is imported only when used, so ``bnnzoo list`` never imports TensorFlow.

A subcommand ``cmd`` lives in a module exposing ``add_cmd_arguments(parser)`` and
``run_cmd(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Optional, Sequence

# name -> (module, one-line help)
COMMANDS = {
    "list": ("zoo.commands", "list the registered models and their figures"),
    "demo": ("zoo.commands", "build, convert and compare the default models (what `make demo` runs)"),
    "convert": ("converters.cli", "export a model to TFLite (LCE) or ONNX, verified against the source"),
    "verify": ("converters.cli", "re-check an exported .tflite/.onnx against its source model, layer by layer"),
    "eval": ("eval.cli", "accuracy, size, ops and latency against MobileNet-v1, as a report with plots"),
    "train": ("recipes.cli", "train a recipe (the papers' procedures): bnnzoo train RECIPE [key=value ...] [--resume [RUN_DIR]]"),
    "detect": ("eval.detect", "find license plates in images with a plate detector (torch, onnx or tflite), drawn into PNGs"),
    "deploy": ("converters.deploy", "write a self-contained device bundle (--target rpi: LCE .tflite + bit-packed ONNX + run.py), verified"),
    "download": ("zoo.commands", "download registered or hf-hub: weights into the Hugging Face cache (for offline use)"),
    "data": ("recipes.plates.generate", "generate a synthetic data set (plates: Korean license plates with YOLO labels)"),
    "pack": ("zoo.commands", "write a trained model.safetensors for inference (binary kernels as int8 signs) + its sha256"),
    "push": ("zoo.commands", "publish a saved model folder (model card included) to a Hugging Face Hub repo"),
}

# What an interrupted command left behind: every output is written atomically, so nothing half-written.
INTERRUPTED = {
    "train": "; the last finished epoch is saved: continue with bnnzoo train RECIPE --resume [RUN_DIR]",
    "data": "; the images written so far are complete: the same command resumes",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default (0 included), except where there is none to show: None, a flag's
    False, an empty value (``--data ""``: the help says what none means), or a help that names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if (default is None or default is False or default == "" or default == [] or default is argparse.SUPPRESS
                or "default" in (action.help or "")):
            return action.help or ""
        return super()._get_help_string(action)


def _needs_tensorflow(args: argparse.Namespace) -> bool:
    """Whether the command will import TensorFlow (then imported first, its start-up log discarded)."""
    if args.command in ("deploy", "demo"):
        return True
    if args.command == "convert":
        to = getattr(args, "to", None) or os.path.splitext(getattr(args, "output", None) or "")[1].lstrip(".")
        return to.lower() == "tflite"
    if args.command == "eval":
        return not getattr(args, "compare", None) and any(
            rt in str(getattr(args, "runtimes", "")) for rt in ("lce", "xnnpack"))
    if args.command == "detect":
        return getattr(args, "runtime", None) == "tflite" or str(getattr(args, "exported", "") or "").endswith(".tflite")
    if args.command == "verify":
        return str(getattr(args, "file", "")).lower().endswith(".tflite")
    if args.command == "train":
        return "framework=keras" in (getattr(args, "overrides", None) or [])
    return False


# --- the model argument every command takes (the grammar of zoo.refs) ---------------------------------

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


def model_reference(source: str, weights: Optional[str] = None,
                    arch: Optional[str] = None) -> tuple[str, Optional[str]]:
    """``(reference, weights)`` for :func:`zoo.load`: ``FILE --arch NAME`` is ``NAME`` with the weights ``FILE``.

    Raises:
        ValueError: ``--arch`` with ``--weights``, or with a model that is not a weights file.
    """
    if not arch:
        return source, weights
    from .refs import is_file_class

    if weights:
        raise ValueError(f"--arch names the architecture of weights given as MODEL: drop --weights {weights}, or "
                         f"give bnnzoo {arch} --weights {weights}")
    if is_file_class(source) or source.startswith(("hf-hub:", "hf_hub:")) or not (
            os.sep in source or "/" in source or source.endswith(".safetensors") or os.path.exists(source)):
        raise ValueError(f"--arch is for a .safetensors file without config.json beside it, not {source}")
    return arch, source


def load_model(args: argparse.Namespace, dest: str = "source", **options):
    """``zoo.load`` of a command's model argument (:func:`add_model_arguments`), with ``options``."""
    from . import load

    reference, weights = model_reference(getattr(args, dest), getattr(args, "weights", None),
                                         getattr(args, "arch", None))
    return load(reference, weights=weights, **options)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from zoo import __version__

    try:
        return version("bnnzoo")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``bnnzoo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(argv)
    # Read before parsing: the environment must be set before anything imports a framework.
    verbose = any(a in ("-v", "--verbose") for a in (argv[:argv.index(chosen)] if chosen else argv))
    from .console import quiet_startup

    quiet_startup(verbose)
    parser = argparse.ArgumentParser(prog="bnnzoo", description="Binary neural network zoo and export pipeline.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"bnnzoo {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show third-party start-up logs and warnings (TensorFlow, torch.onnx)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == chosen:
            getattr(importlib.import_module(module), f"add_{name}_arguments")(p)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if not verbose and _needs_tensorflow(args):
        from .console import import_tensorflow_quietly

        import_tensorflow_quietly()
    previous = _show_warnings(args.command)
    try:
        return int(getattr(importlib.import_module(COMMANDS[args.command][0]), f"run_{args.command}")(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: the exit status of SIGINT, one line, no traceback
        print(f"bnnzoo {args.command}: interrupted" + INTERRUPTED.get(args.command, ""), file=sys.stderr)
        return 130
    except MemoryError:
        print(f"bnnzoo {args.command}: error: out of memory: use smaller sizes or batches", file=sys.stderr)
        return 1
    except (KeyError, ValueError, TypeError, OSError, ImportError, RuntimeError) as e:
        if os.environ.get("BNNZOO_DEBUG"):
            raise
        print(f"bnnzoo {args.command}: error: {e}", file=sys.stderr)
        return 1
    finally:
        _show_warnings(previous)  # a command run by another (demo runs detect) gives the line back


class _Warnings(logging.Handler):
    """The library's warnings (what it assumed, what it changed) as one line each: ``bnnzoo CMD: warning: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)  # sys.stderr as it is now (tests replace it)


_HANDLER = _Warnings(logging.WARNING)
PACKAGES = ("zoo", "converters", "recipes", "eval")


def _show_warnings(command: Optional[str]) -> Optional[str]:
    """Prints the library's warnings while ``command`` runs (``None``: no longer); returns the previous command."""
    previous, _HANDLER.command = getattr(_HANDLER, "command", None), command
    _HANDLER.setFormatter(logging.Formatter(f"bnnzoo {command}: warning: %(message)s"))
    for name in PACKAGES:
        logger = logging.getLogger(name)
        if command is None:
            logger.removeHandler(_HANDLER)
        elif _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
    return previous


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The subcommand: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


if __name__ == "__main__":
    sys.exit(main())
