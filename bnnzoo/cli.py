"""The ``bnnzoo`` command line: a table of subcommands, each a module of :mod:`bnnzoo.commands`.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int``, and may define
``needs_tensorflow(args) -> bool`` (TensorFlow is then imported first, its C++ start-up log
discarded) and ``INTERRUPTED`` (what Ctrl-C leaves behind, appended to the one-line message).
Only the chosen command's module is imported, so ``bnnzoo --help`` and ``bnnzoo list`` import
neither torch nor TensorFlow.

Exit status: 0 done, 1 an error (one line on stderr, ``bnnzoo CMD: error: ...``), 2 a usage
error, 130 interrupted. ``BNNZOO_DEBUG=1`` shows the traceback instead of the line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType
from typing import Optional, Sequence

__all__ = ["COMMANDS", "HelpFormatter", "command_module", "command_parser", "main"]

# name -> one-line help; the module is bnnzoo.commands.<name>
COMMANDS = {
    "list": "list the registered models and their figures",
    "demo": "build, convert and compare the default models (what `make demo` runs)",
    "convert": "export a model to TFLite (LCE) or ONNX, verified against the source",
    "verify": "re-check an exported .tflite/.onnx against its source model, layer by layer",
    "eval": "accuracy, size, ops and latency against MobileNet-v1, as a report with plots",
    "train": "train a recipe (the papers' procedures): bnnzoo train RECIPE [key=value ...] [--resume [RUN_DIR]]",
    "detect": "find license plates in images with a plate detector (torch, onnx or tflite), drawn into PNGs",
    "deploy": "write a self-contained device bundle (--target rpi: LCE .tflite + bit-packed ONNX + run.py), verified",
    "download": "download registered or hf-hub: weights into the Hugging Face cache (for offline use)",
    "data": "generate a synthetic data set (plates: Korean license plates with YOLO labels)",
    "pack": "write a trained model.safetensors for inference (binary kernels as int8 signs) + its sha256",
    "push": "publish a saved model folder (model card included) to a Hugging Face Hub repo",
}

# The library's loggers whose records the command line shows (INFO: progress of long jobs).
PACKAGES = ("zoo", "recipes", "converters", "eval", "bnnzoo")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default (0 included), except where there is none to show: None, a flag's
    False, an empty value (``--data ""``: the help says what none means), or a help that names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if (default is None or default is False or default == "" or default == [] or default is argparse.SUPPRESS
                or "default" in (action.help or "")):
            return action.help or ""
        return super()._get_help_string(action)


def command_module(name: str) -> ModuleType:
    """The module of the subcommand ``name`` (imported now)."""
    return importlib.import_module(f"bnnzoo.commands.{name}")


def command_parser(name: str, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """A stand-alone parser of the subcommand ``name`` (its ``--help``, what its arguments parse to)."""
    parser = argparse.ArgumentParser(prog=prog or f"bnnzoo {name}", description=COMMANDS[name],
                                     formatter_class=HelpFormatter)
    command_module(name).add_arguments(parser)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from zoo import __version__

    try:
        return version("bnnzoo")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``bnnzoo`` console script and of ``python -m bnnzoo``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(argv)
    # Read before parsing: the environment must be set before anything imports a framework.
    verbose = any(a in ("-v", "--verbose") for a in (argv[:argv.index(chosen)] if chosen else argv))
    from zoo.console import quiet_startup

    quiet_startup(verbose)
    parser = argparse.ArgumentParser(prog="bnnzoo", description="Binary neural network zoo and export pipeline.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"bnnzoo {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show third-party start-up logs and warnings (TensorFlow, torch.onnx)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module = chosen_parser = None
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == chosen:
            module, chosen_parser = command_module(name), p
            module.add_arguments(p)
    if getattr(module, "INTERMIXED", False):
        # key=value words after options (argparse's intermixed parsing takes no subcommands: parsed apart)
        args = parser.parse_args(argv[:argv.index(chosen)])
        vars(args).update(vars(chosen_parser.parse_intermixed_args(argv[argv.index(chosen) + 1:])), command=chosen)
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.command_argv = argv[argv.index(chosen) + 1:]  # as typed, for what a report records
    needs_tensorflow = getattr(module, "needs_tensorflow", None)
    if not verbose and needs_tensorflow is not None and needs_tensorflow(args):
        from zoo.console import import_tensorflow_quietly

        import_tensorflow_quietly()
    previous = _show_logs(args.command)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: the exit status of SIGINT, one line, no traceback
        print(f"bnnzoo {args.command}: interrupted" + getattr(module, "INTERRUPTED", ""), file=sys.stderr)
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
        _show_logs(previous)  # a command run by another (demo runs detect) gives the line back


class _Lines(logging.Handler):
    """The library's log records as one line each on stderr: ``bnnzoo CMD: ...`` for progress (INFO),
    ``bnnzoo CMD: warning: ...`` for what it assumed or changed."""

    command: Optional[str] = None

    def emit(self, record: logging.LogRecord) -> None:
        kind = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        print(f"bnnzoo {self.command}: {kind}{record.getMessage()}", file=sys.stderr,  # sys.stderr as it is now
              flush=True)


_HANDLER = _Lines(logging.INFO)
_SAVED: dict[str, tuple[int, bool]] = {}  # logger name -> (level, propagate) before the command


def _show_logs(command: Optional[str]) -> Optional[str]:
    """Prints the library's INFO and above while ``command`` runs (``None``: no longer); returns the previous
    command. The records go to this line only, not on to the root logger, which a third-party library may
    have given a handler of its own (one line, not two)."""
    previous, _HANDLER.command = _HANDLER.command, command
    for name in PACKAGES:
        logger = logging.getLogger(name)
        if command is None:
            logger.removeHandler(_HANDLER)
            level, logger.propagate = _SAVED.pop(name, (logging.NOTSET, True))
            logger.setLevel(level)
        elif _HANDLER not in logger.handlers:
            _SAVED[name] = (logger.level, logger.propagate)
            logger.addHandler(_HANDLER)
            logger.setLevel(logging.INFO)
            logger.propagate = False
    return previous


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The subcommand: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)
