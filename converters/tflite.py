"""Export to a TFLite flatbuffer for Larq Compute Engine, checked op by op.

The PyTorch model goes through its Keras (larq) twin and LCE's converter. The
flatbuffer is then parsed and must hold exactly one ``LceBconv2d`` per binary
convolution of the model: a binary convolution LCE could not map (it falls back to
a float ``CONV_2D`` on ±1 values, e.g. grouped convolutions whose groups are not a
multiple of 32 channels) is an error, not a silently slower file.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Optional

import numpy as np

from zoo.fileio import atomic_write

from .verify import (ConversionError, ConversionReport, check_target, reference_outputs, verification_batch,
                     verify_outputs)

__all__ = ["to_tflite", "op_counts", "binary_convs_of", "tflite_predict", "INTERPRETER_FLAGS"]

# Flags of LCE's interpreter used for verification (the defaults).
INTERPRETER_FLAGS = dict(num_threads=1, use_reference_bconv=False, use_indirect_bgemm=False, use_xnnpack=False)


def op_counts(flatbuffer: bytes) -> Counter:
    """Operator counts of a TFLite flatbuffer, by name (custom ops by custom code).

    Example: ``op_counts(b)["LceBconv2d"]``.
    """
    import tflite

    model = tflite.Model.GetRootAsModel(flatbuffer, 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        if oc.CustomCode():
            codes.append(oc.CustomCode().decode())
        else:
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            codes.append(names.get(code, f"BUILTIN_{code}"))
    counts: Counter = Counter()
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for j in range(sg.OperatorsLength()):
            counts[codes[sg.Operators(j).OpcodeIndex()]] += 1
    return counts


def _keras_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _keras_layers(layer)


def binary_convs_of(model) -> int:
    """Binary convolutions of a model: a PyTorch module (registered or not) or a zoo Keras model."""
    if _is_torch(model):
        from zoo.torch.layers import BinaryConv2d

        # lce_bconv=False: a binary conv LCE 0.16 is measured to leave float (set by its family, with the reason).
        return sum(isinstance(m, BinaryConv2d) and m.is_binary and getattr(m, "lce_bconv", True)
                   for m in model.modules())
    from zoo.keras.layers import BINARY_CONV_ATTR

    return sum(bool(getattr(layer, BINARY_CONV_ATTR, False)) for layer in _keras_layers(model))


def tflite_predict(flatbuffer: bytes, x_nchw: np.ndarray, **flags) -> np.ndarray:
    """Runs a flatbuffer in LCE's interpreter on an NCHW batch (one image at a time)."""
    from zoo.tfenv import use_legacy_keras

    use_legacy_keras()  # importing LCE imports TensorFlow
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interpreter = Interpreter(flatbuffer, **{**INTERPRETER_FLAGS, **flags})
    return np.asarray(interpreter.predict(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))))


def _is_torch(model) -> bool:
    return hasattr(model, "state_dict") and hasattr(model, "modules")


def _keras_twin(model, input_size: Optional[int]):
    """The Keras model to convert (a PyTorch module translated by ``zoo.to_keras``) and its input side."""
    import zoo

    if not _is_torch(model):
        if input_size is not None and input_size != model.input_shape[1]:
            raise ValueError(f"a Keras model takes the input size it was built for ({model.input_shape[1]}); "
                             "build it at the size you want")
        return model, int(model.input_shape[1])
    keras_model = zoo.to_keras(model, input_size)
    return keras_model, int(keras_model.input_shape[1])


def convert_keras(keras_model, target: str = "arm") -> bytes:
    """LCE's converter on a Keras model, through a lean SavedModel.

    ``larq_compute_engine.convert_keras_model`` saves the model with Keras' own
    serialization, which traces every layer again and, with the pure-Python
    protobuf that ``protobuf<3.21`` brings on Python 3.11, takes 4-6x longer (a tiny
    Real-to-Bin: 44 s against 10 s here). Saving only the inference function and
    its variables gives LCE the same graph.
    """
    import tempfile

    from zoo.tfenv import use_legacy_keras

    use_legacy_keras()
    import tensorflow as tf
    from larq_compute_engine.mlir.python.converter import convert_saved_model

    # Batch 1, as a device runs it: a dynamic batch leaves shapes that broadcasting ops
    # (the strong baseline's learned scales) cannot allocate in the interpreter.
    spec = tf.TensorSpec([1, *keras_model.input_shape[1:]], tf.float32)
    module = tf.Module()
    module.variables_ = list(keras_model.variables)
    module.serve = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures=module.serve.get_concrete_function())
        return convert_saved_model(folder, target=target)


def to_tflite(model, path: str, *, input_size: Optional[int] = None, verify: bool = True,
              target: str = "arm") -> ConversionReport:
    """Converts a zoo model to an LCE TFLite flatbuffer at ``path``, verified first.

    Args:
        model: A PyTorch module built from the zoo's layers, registered or not (translated
            by ``zoo.to_keras``), or a zoo Keras model (binary layers carry ``zoo_is_binary``).
        path: Output file; written atomically, only once every check passed.
        input_size: Input side of the file (defaults to the model's; required for a module
            that carries no ``zoo_config``).
        verify: Compare the file's outputs with the source model's (see
            ``converters.verify`` for the tolerances). The ``LceBconv2d`` count is
            checked either way.
        target: LCE target, ``"arm"`` or ``"xcore"``.

    Returns:
        The report of the conversion.

    Raises:
        ConversionError: LCE failed, ``LceBconv2d`` count differs from the model's
            binary convolutions, or verification is past tolerance.
        zoo.keras.translate.UnsupportedOpError: The module uses an op the translator does
            not know (nothing was written).
        FileNotFoundError: The output folder does not exist.
    """
    start = time.perf_counter()
    path = check_target(path)
    expected = binary_convs_of(model)
    keras_model, size = _keras_twin(model, input_size)
    try:
        flatbuffer = convert_keras(keras_model, target=target)
    except Exception as e:  # the MLIR converter raises plain exceptions
        raise ConversionError(f"LCE could not convert the model: {str(e).strip().splitlines()[-1]}") from e
    counts = op_counts(flatbuffer)
    if counts["LceBconv2d"] != expected:
        raise ConversionError(
            f"the TFLite file has {counts['LceBconv2d']} LceBconv2d ops for {expected} binary convolutions: "
            f"{expected - counts['LceBconv2d']} were converted to float ops (LCE needs ±1 ste_sign inputs and "
            f"weights and, for grouped convs, input channels per group a multiple of 32); nothing was written")
    diff = agreement = boxes = float("nan")
    batch, data = verification_batch(model, size) if verify else (np.zeros((0,)), "")
    if verify:
        reference = reference_outputs(model, batch)
        try:
            exported = tflite_predict(flatbuffer, batch)
        except RuntimeError as e:  # the interpreter refuses a file the converter produced
            raise ConversionError(f"LCE's interpreter refuses the converted file ({' '.join(str(e).split())}); "
                                  f"nothing was written") from e
        diff, agreement, boxes = verify_outputs("tflite", model, reference, exported)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)

    def reread(tmp: str) -> None:  # what landed on disk is what was verified
        with open(tmp, "rb") as f:
            if f.read() != flatbuffer:
                raise ConversionError(f"the file written at {tmp} differs from the converted model")

    nbytes = atomic_write(path, write, reread)
    return ConversionReport("tflite", path, nbytes, expected, counts["LceBconv2d"], counts["LceQuantize"],
                            time.perf_counter() - start, diff, agreement, len(batch), size, boxes, data)
