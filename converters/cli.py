"""``bnnzoo convert``: export a registered model or a checkpoint, verified.

Examples::

    bnnzoo convert meliusnet22 --to tflite
    bnnzoo convert realtobinary_resnet18 --to onnx --bitpack -o r2b.onnx
    bnnzoo convert run/best.safetensors --arch meliusnet22 --to tflite --pad-value 0
    bnnzoo convert my_models.py:MyBNN --weights run7/model.safetensors --input-size 96 --to tflite

``FILE.py:CLASS`` imports the Python file you name (it runs as any import does) and builds
``CLASS()``: any PyTorch module made of the zoo's layers and plain torch ops converts,
registered or not (``zoo.keras.translate``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from .formats import FORMATS, get_format
from .verify import ConversionError

__all__ = ["add_convert_arguments", "run_convert", "load_module_from_file"]

_FILE_CLASS = re.compile(r"(?P<file>.+\.py):(?P<cls>[A-Za-z_]\w*)")


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo convert`` to ``parser``."""
    parser.add_argument("source", metavar="SOURCE",
                        help="a registered model (`bnnzoo list`), NAME.TAG, a .safetensors file (needs --arch), or "
                             "FILE.py:CLASS, a PyTorch module of yours built from the zoo's layers (needs --input-size)")
    parser.add_argument("--to", required=True, metavar="FORMAT",
                        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()))
    parser.add_argument("-o", "--output", metavar="PATH", help="output file (default: NAME.SUFFIX here)")
    parser.add_argument("--arch", metavar="NAME", help="architecture of a .safetensors checkpoint")
    parser.add_argument("--weights", metavar="PATH",
                        help="a .safetensors file of weights for FILE.py:CLASS or a registered model")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input side (default: the model's)")
    parser.add_argument("--bitpack", action="store_true", help="onnx: store binary conv weights at 1 bit")
    parser.add_argument("--pad-value", type=float, choices=(0.0, 1.0), metavar="0|1",
                        help="padding value of binary convs' inputs (an architecture option)")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing the file with the source model")


def load_module_from_file(spec: str, weights: "str | None" = None):
    """``CLASS()`` of ``FILE.py:CLASS``, with the weights of a ``.safetensors`` file when given.

    Raises:
        FileNotFoundError: The file or the weights do not exist.
        ImportError: The file does not import.
        ValueError: No such module class, it needs constructor arguments, or the weights do not fit.
    """
    import importlib.util

    import torch

    m = _FILE_CLASS.fullmatch(spec)
    if m is None:
        raise ValueError(f"{spec!r} is not FILE.py:CLASS")
    path, name = m["file"], m["cls"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (FILE.py:CLASS names a Python file and a module class in it)")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"_bnnzoo_user_{stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own sibling imports
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ImportError(f"cannot import {path} ({type(e).__name__}: {' '.join(str(e).split())})") from None
    finally:
        sys.path.pop(0)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module_name)
        raise ValueError(f"{path} has no torch.nn.Module class {name!r} (it defines: {', '.join(found) or 'none'})")
    try:
        model = cls()
    except TypeError as e:
        raise ValueError(f"{name} cannot be built without arguments ({e}): give its arguments defaults, or add a "
                         f"subclass that passes them") from None
    if weights is not None:
        _load_weights(model, weights)
    return model.eval()


def _load_weights(model, weights: str) -> None:
    import torch

    from zoo.weights import WeightMismatchError, read_safetensors

    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights {weights} do not exist")
    state = {k: torch.as_tensor(v) for k, v in read_safetensors(weights).items()}
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.endswith("num_batches_tracked")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise WeightMismatchError(f"{weights} does not fit {type(model).__name__} ({len(missing)} missing, "
                                  f"{len(unexpected)} unexpected, {len(wrong)} wrongly shaped, e.g. {first!r}): "
                                  f"give the weights saved from this class")
    model.load_state_dict(state, strict=False)


def _load(args: argparse.Namespace):
    import zoo

    overrides = {} if args.pad_value is None else {"pad_value": args.pad_value}
    if _FILE_CLASS.fullmatch(args.source):
        if args.arch or overrides:
            raise ValueError("--arch and --pad-value are for registered models; FILE.py:CLASS is built as it is")
        if args.input_size is None:
            raise ValueError(f"{args.source} carries no input size: pass --input-size N")
        return load_module_from_file(args.source, args.weights), _FILE_CLASS.fullmatch(args.source)["cls"]
    if args.source.endswith(".safetensors"):
        if not args.arch:
            raise ValueError(f"{args.source} is a checkpoint: name its architecture with --arch")
        if args.weights:
            raise ValueError(f"{args.source} is the weights already: drop --weights")
        if not os.path.isfile(args.source):
            raise FileNotFoundError(f"checkpoint {args.source} does not exist")
        name = os.path.splitext(os.path.basename(args.source))[0]
        return zoo.load(args.arch, weights=args.source, input_size=args.input_size, **overrides), name
    if args.arch:
        raise ValueError("--arch is only for .safetensors checkpoints")
    return zoo.load(args.source, weights=args.weights, input_size=args.input_size, **overrides), args.source


def run_convert(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo convert``; prints the conversion report. Returns the exit status."""
    from . import convert

    fmt = get_format(args.to)
    if args.bitpack and "bitpack" not in fmt.options:
        raise ValueError(f"--bitpack is an onnx option; {fmt.name} takes: {', '.join(fmt.options)}")
    model, name = _load(args)
    output = args.output or f"{name.replace('.', '_')}{fmt.suffix}"
    options = {"bitpack": True} if args.bitpack else {}
    if getattr(model, "zoo_config", None) is None:  # a module from a file: the size comes from the command line
        options["input_size"] = args.input_size
    try:
        report = convert(model, output, fmt.name, verify=not args.no_verify, **options)
    except ConversionError as e:
        trained = _default_weights(args.source)
        if not trained:
            raise
        # A fresh binary model feeds exact zeros to its signs, which runtimes may round apart.
        raise ConversionError(f"{e} ({args.source} has initialised weights here; trained ones convert: "
                              f"bnnzoo convert {trained} --to {fmt.name})") from None
    print(report.summary())
    return 0


def _default_weights(source: str) -> str:
    """``weights="default"`` of ``source`` when it names an architecture without weights ("" otherwise)."""
    from zoo import get_config
    from zoo.weights import WeightMismatchError, lookup

    if "." in source:
        return ""
    try:
        return lookup(get_config(source), "default")[0]
    except WeightMismatchError:
        return ""
