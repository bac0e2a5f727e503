"""``bnnzoo verify``: re-check an existing export against its source, layer by layer.

Examples::

    bnnzoo verify meliusnet22.larq_in1k meliusnet22.tflite
    bnnzoo verify run7/ r2b.onnx
"""

from __future__ import annotations

import argparse
import os

from bnnzoo.arguments import MODEL_HELP, add_model_arguments, load_model
from bnnzoo.commands.convert import default_weights
from converters.verify import ConversionError

__all__ = ["add_arguments", "run", "needs_tensorflow"]


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """LCE's interpreter (a .tflite file) imports TensorFlow."""
    return str(args.file).lower().endswith(".tflite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo verify`` to ``parser``: ``[MODEL] FILE [--weights W]``."""
    add_model_arguments(parser, "model", optional=True,
                        help=f"the file's source, with trained weights: {MODEL_HELP} (a bare NAME: its default "
                             "weights; optional when --weights names a folder, file or Hub repo with config.json)")
    parser.add_argument("file", metavar="FILE", help="the exported .tflite or .onnx file to check")
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help=argparse.SUPPRESS)  # old spelling


def _verify_source(args: argparse.Namespace, input_size: int):
    """The source model of ``bnnzoo verify``: trained weights only (initialised ones differ on every run)."""
    from zoo.refs import is_file_class

    model = _verify_model(args)
    if model is None:  # the weights' config.json names the architecture
        args.model, args.weights = args.weights, None
    elif not args.weights and not getattr(args, "arch", None):
        # Initialised weights differ on every run: nothing to compare a file with.
        if is_file_class(model):
            raise ValueError(f"{model} has no weights: name the file's, bnnzoo verify {model} {args.file} --weights W")
        if model in _registered():
            args.model = default_weights(model)
            if not args.model:
                raise ValueError(f"{model} has no default weights: name the file's weights, bnnzoo verify {model}.TAG "
                                 f"{args.file} (or --weights W)")
    return load_model(args, "model", input_size=input_size)


def _registered() -> list:
    from zoo import list_models

    return list_models(include_stages=True)


def _verify_model(args: argparse.Namespace) -> "str | None":
    """The model of ``bnnzoo verify`` (positional, or the old ``--model``); one-line errors for a source given
    twice or none."""
    model = args.model or getattr(args, "model_option", None)
    if args.model and getattr(args, "model_option", None):
        raise ValueError(f"two sources given ({args.model} and --model {args.model_option}): give MODEL once")
    if args.weights and model is not None and "." in model and model.partition(".")[0] in _registered():
        raise ValueError(f"{model} names its weights already: drop --weights, or give the bare architecture")
    if not args.weights and not model:
        raise ValueError(f"name the file's source: bnnzoo verify MODEL {args.file} (MODEL: NAME[.TAG], a folder, "
                         "hf-hub:REPO; or --weights W)")
    args.model, args.model_option = model, None
    return model


def _input_side(path: str, fmt: str) -> int:
    """The square input side an export takes (one-line error for a file its format cannot read)."""
    try:
        return _read_input_side(path, fmt)
    except Exception as e:  # noqa: BLE001  a truncated or foreign file fails in many ways inside the parsers
        raise ValueError(f"{path} is not a readable .{fmt} export ({type(e).__name__}): export it again with "
                         f"bnnzoo convert NAME[.TAG] --to {fmt}") from None


def _read_input_side(path: str, fmt: str) -> int:
    if fmt == "tflite":
        import tflite

        with open(path, "rb") as f:
            model = tflite.Model.GetRootAsModel(f.read(), 0)
        sg = model.Subgraphs(0)
        return int(sg.Tensors(sg.Inputs(0)).ShapeAsNumpy()[1])
    import onnx

    dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo verify``: prints the layer-wise table of every runtime. Exit status 1 on a mismatch."""
    import numpy as np

    from converters.layerwise import raise_first
    from converters.verify import compare, read_export, reference_outputs, verification_batch

    fmt = os.path.splitext(args.file)[1].lstrip(".").lower()
    if fmt not in ("tflite", "onnx"):
        if args.model and os.path.splitext(args.model)[1].lower() in (".tflite", ".onnx"):
            raise ValueError(f"the model comes first, then the file: bnnzoo verify {args.file} {args.model}")
        raise ValueError(f"{args.file} is neither a .tflite nor an .onnx file")
    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"{args.file} does not exist")
    _verify_model(args)  # the command's own errors before the file is read
    # A damaged file (or one that differs from its record) is one line, never a crash; a .tflite without a
    # record is run first, in a child process, on each kernel the layer-wise check uses.
    from converters.tflite import LCE_RUNTIMES

    content, _ = read_export(args.file, list(LCE_RUNTIMES.values()) if fmt == "tflite" else ({},))
    side = _input_side(args.file, fmt)
    model = _verify_source(args, side)
    batch, data = verification_batch(model, side)
    if fmt == "tflite":
        from converters.tflite import tflite_predict, verify_tflite_layerwise

        flatbuffer = content
        results = verify_tflite_layerwise(model, flatbuffer, batch)
        exported = tflite_predict(flatbuffer, batch)
    else:
        import onnx

        from converters.onnx import onnx_predict, verify_onnx_layerwise

        results = [verify_onnx_layerwise(model, onnx.load(args.file), batch)]
        exported = onnx_predict(args.file, batch)
    for r in results:
        print(f"{args.file} on {r.runtime}:\n{r.table()}\n")
    diff, agreement = compare(reference_outputs(model, batch), np.asarray(exported))
    print(f"end to end: max |diff| {diff:.3g}, top-1 agreement {agreement:.2f} on {len(batch)} images ({data})")
    try:
        raise_first(results, fmt)
    except ConversionError as e:
        print(f"bnnzoo verify: mismatch: {str(e).replace('; nothing was written', '')}")
        return 1
    print(f"{args.file} matches its source layer by layer on {', '.join(r.runtime for r in results)}")
    return 0
