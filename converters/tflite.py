"""Export to a TFLite flatbuffer for Larq Compute Engine, checked layer by layer.

The PyTorch model goes through its Keras (larq) twin and LCE's converter. The
flatbuffer is then parsed and must hold exactly one ``LceBconv2d`` per binary
convolution of the model: a binary convolution LCE could not map (it falls back to
a float ``CONV_2D`` on ±1 values, e.g. grouped convolutions whose groups are not a
multiple of 32 channels) is an error, not a silently slower file.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from typing import Optional, Sequence

import numpy as np

from zoo.fileio import atomic_write

from .layerwise import FileOp, LayerwiseResult, binary_modules, check_layerwise, raise_first
from .litert.flatbuffer import verify as verify_flatbuffer
from .verify import (
    ConversionError,
    ConversionReport,
    check_target,
    compare,
    reference_outputs,
    verification_batch,
    verify_outputs,
)

__all__ = ["to_tflite", "op_counts", "binary_convs_of", "tflite_predict", "INTERPRETER_FLAGS", "LCE_RUNTIMES",
           "INT8_RANGE", "io_quantization", "quantize", "dequantize", "verify_tflite_layerwise", "frozen_kernels",
           "convert_keras", "lce_bconvs", "module_of", "keras_twin", "binary_weight_signs", "check_tflite"]

# Flags of LCE's interpreter used for verification (the defaults).
INTERPRETER_FLAGS = dict(num_threads=1, use_reference_bconv=False, use_indirect_bgemm=False, use_xnnpack=False)
# Every file is checked layer by layer on each of these; the reference kernel last (see raise_first).
LCE_RUNTIMES = {
    "LCE's optimized kernels": {},
    "LCE's optimized kernels (indirect bgemm)": {"use_indirect_bgemm": True},
    "LCE's reference kernel": {"use_reference_bconv": True},
}
# Images of the verification batch the reference kernel runs (it is several times slower than the others).
REFERENCE_IMAGES = 2
# LCE's experimental_default_int8_range of an int8 file (the range LCE's own int8 input/output test gives a
# model without fake-quantization ops): every float tensor is quantized to int8 over it.
INT8_RANGE = (-6.0, 6.0)
_INT8 = 9  # TensorType.INT8 of the TFLite schema
# LCE 0.16 measured: zero-padded binary convs on maps smaller than the kernel are wrong on the optimized kernels.
_SMALL_MAP_HINT = ("LCE 0.16's optimized kernels compute zero-padded binary convolutions on maps smaller than "
                   "the kernel wrong; zoo.keras.layers.binary_conv corrects them (+1 padding and a constant)")


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

        return sum(isinstance(m, BinaryConv2d) and m.is_binary for m in model.modules())
    from zoo.keras.layers import BINARY_CONV_ATTR

    return sum(bool(getattr(layer, BINARY_CONV_ATTR, False)) for layer in _keras_layers(model))


def io_quantization(flatbuffer: bytes) -> tuple[Optional[tuple[float, int]], list[Optional[tuple[float, int]]]]:
    """``(scale, zero_point)`` of the file's input and of each output where they are int8 (None where float)."""
    import tflite

    graph = tflite.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)

    def params(index: int) -> Optional[tuple[float, int]]:
        t = graph.Tensors(index)
        if t.Type() != _INT8:
            return None
        q = t.Quantization()
        return float(q.Scale(0)), int(q.ZeroPoint(0))

    return params(graph.Inputs(0)), [params(graph.Outputs(i)) for i in range(graph.OutputsLength())]


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float values as int8 of ``scale`` and ``zero_point`` (rounded to nearest, ties to even; saturated)."""
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The float values int8 ``q`` stands for."""
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


def _file_input(flatbuffer: bytes, x_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(what the file takes, NHWC; the float batch it stands for, NCHW): an int8 input is quantized."""
    qin, _ = io_quantization(flatbuffer)
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    if qin is None:
        return x, x_nchw
    q = quantize(x, *qin)
    return q, dequantize(q, *qin).transpose(0, 3, 1, 2)


def tflite_predict(flatbuffer: bytes, x_nchw: np.ndarray, **flags) -> np.ndarray:
    """Runs a flatbuffer in LCE's interpreter on an NCHW float batch (one image at a time).

    An int8 input is quantized with the file's scale and zero point, and an int8 output
    dequantized: the result is float either way.
    """
    from zoo.tfenv import use_legacy_keras

    use_legacy_keras()  # importing LCE imports TensorFlow
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interpreter = Interpreter(flatbuffer, **{**INTERPRETER_FLAGS, **flags})
    qout = io_quantization(flatbuffer)[1][0]
    y = np.asarray(interpreter.predict(_file_input(flatbuffer, x_nchw)[0]))
    return y if qout is None else dequantize(y, *qout)


def _unpack_signs(words: np.ndarray, channels: int) -> np.ndarray:
    """LCE's bit-packed NHWC int32 words (bit 1 = -1, channel 32 w + j in bit j of word w) as NCHW ±1."""
    bits = np.unpackbits(np.ascontiguousarray(words).view(np.uint8).reshape(*words.shape[:-1], -1), axis=-1,
                         bitorder="little")[..., :channels]
    return (1.0 - 2.0 * bits).astype(np.float32).transpose(0, 3, 1, 2)


def module_of(names: Sequence[str], modules: set) -> Optional[str]:
    """The first module path among the '/'-parts of TFLite tensor names (Keras layer names = module paths)."""
    for name in names:
        for part in name.split(";"):
            for piece in part.split("/"):
                if piece in modules:
                    return piece
    return None


def _constant(model_t, tensor: int) -> Optional[np.ndarray]:
    if tensor < 0:
        return None
    t = model_t.subgraphs[0].tensors[tensor]
    data = model_t.buffers[t.buffer].data
    if data is None or not len(data):
        return None
    return np.frombuffer(bytes(bytearray(data)), np.float32).reshape(t.shape)


# TFLite's fused activations (ActivationFunctionType) as the clamps they are.
_ACTIVATIONS = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def _explicit_pads(model_t, tensor: int, producers: dict) -> tuple[tuple, float]:
    """``(((top, bottom), (left, right)), border sign)`` of a ``PAD`` feeding the ``LceQuantize`` that makes
    ``tensor`` (PyTorch's symmetric padding where TensorFlow's "same" differs), else no pads.

    The pad is applied to the real values, so the border's sign is the quantizer's of the pad constant
    (0: +1).
    """
    none = (((0, 0), (0, 0)), 0.0)
    quantize = producers.get(tensor)
    if quantize is None or _code(model_t, quantize) != "LceQuantize":
        return none
    pad = producers.get(quantize.inputs[0])
    if pad is None or _code(model_t, pad) not in ("PAD", "PADV2"):
        return none
    sg = model_t.subgraphs[0]
    paddings_t = sg.tensors[pad.inputs[1]]
    data = model_t.buffers[paddings_t.buffer].data
    if data is None or not len(data):
        raise ConversionError(
            "a binary convolution's input is padded by a PAD with computed paddings; cannot verify it")
    dtype = np.int64 if paddings_t.type == 4 else np.int32  # TensorType INT64 = 4
    paddings = np.frombuffer(bytes(bytearray(data)), dtype).reshape(4, 2)
    if paddings[0].any() or paddings[3].any():
        raise ConversionError("a binary convolution's input is padded along the batch or channels; cannot verify it")
    value = _constant(model_t, pad.inputs[2]) if len(pad.inputs) > 2 else None
    border = 1.0 if value is None or float(np.asarray(value).reshape(-1)[0]) >= 0 else -1.0
    return (tuple(paddings[1].tolist()), tuple(paddings[2].tolist())), border


def _code(model_t, op) -> str:
    import tflite

    oc = model_t.operatorCodes[op.opcodeIndex]
    if oc.customCode is not None:
        return oc.customCode.decode()
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "")


def _filter_signs(model_t, op, channels: int) -> Optional[np.ndarray]:
    """An ``LceBconv2d``'s bit-packed filter as OIHW ±1 (None where it is not a packed constant)."""
    t = model_t.subgraphs[0].tensors[op.inputs[1]]
    data = model_t.buffers[t.buffer].data
    if t.type != 2 or data is None or not len(data):  # TensorType INT32: LCE's packed filter
        return None
    return _unpack_signs(np.frombuffer(bytes(bytearray(data)), np.int32).reshape(t.shape), channels)


def binary_weight_signs(model) -> dict[str, np.ndarray]:
    """Module path -> OIHW ±1 weight signs of each binary convolution LCE converts (:func:`lce_bconvs` tells
    convolutions sharing one input apart by them)."""
    import torch

    modules = dict(model.named_modules())
    with torch.no_grad():
        return {n: np.where(modules[n].weight.numpy() >= 0, 1.0, -1.0).astype(np.float32)
                for n in binary_modules(model)}


def lce_bconvs(model_t, modules: "set | dict") -> list[dict]:
    """The ``LceBconv2d`` ops of a parsed flatbuffer: tensors, fused post-ops, explicit input padding and
    source module.

    Args:
        model_t: The parsed flatbuffer.
        modules: Module paths of the model's binary convolutions, or (to tell apart convolutions that
            read one input) a dict of them to their weight signs (:func:`binary_weight_signs`).
    """
    import flatbuffers.flexbuffers as flex

    sg = model_t.subgraphs[0]
    producers = {t: op for op in sg.operators for t in op.outputs}
    found = []
    for op in sg.operators:
        code = model_t.operatorCodes[op.opcodeIndex].customCode
        if code is None or code.decode() != "LceBconv2d":
            continue
        options = flex.Loads(bytes(bytearray(op.customOptions)))
        out = sg.tensors[op.outputs[0]]
        # The input signs are named after the layer whose input quantizer made them: the conv itself
        # (its output may carry the names of the ops LCE fused after it, the next conv's included).
        names = [sg.tensors[op.inputs[0]].name.decode(), out.name.decode()]
        module = module_of(names, modules)
        if module is None:
            raise ConversionError(f"cannot tell which module the LceBconv2d writing {names[1]!r} computes "
                                  "(its tensor names carry no layer name of the model)")
        taken = {b["module"] for b in found}
        if module in taken and isinstance(modules, dict):
            # Convolutions reading one input (ReActNet's duplicated 1x1) share one LceQuantize, named after
            # the first of them: the others are told apart by their weights.
            signs = _filter_signs(model_t, op, int(options["channels_in"]))
            module = next((n for n, w in modules.items() if n not in taken and signs is not None
                           and w.shape == signs.shape and np.array_equal(w, signs)), module)
        if module in taken:
            raise ConversionError(f"two LceBconv2d ops name the module {module}; cannot verify them apart")
        low, high = _ACTIVATIONS.get(options.get("fused_activation_function", 0), (None, None))
        if low is None:
            raise ConversionError(f"LceBconv2d of {module} has an unknown fused activation; cannot verify it")
        int8 = (float(out.quantization.scale[0]), int(out.quantization.zeroPoint[0])) if out.type == _INT8 else None
        pads, border = _explicit_pads(model_t, op.inputs[0], producers)
        found.append(dict(module=module, input=op.inputs[0], output=op.outputs[0], int8=int8,
                          packed_output=out.type not in (0, _INT8),
                          multiplier=_constant(model_t, op.inputs[2]), bias=_constant(model_t, op.inputs[3]),
                          pad_value=border if any(map(any, pads)) else float(options.get("pad_values", 0)),
                          pads=pads, clamp=(low, high), channels=int(options["channels_in"])))
    return found


def _exposed(flatbuffer: bytes, modules: "set | dict") -> tuple[bytes, list[dict], bool]:
    """The flatbuffer with every ``LceBconv2d``'s input and output added to the subgraph's outputs, those
    ops, and whether the file holds int8 tensors."""
    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    bconvs = lce_bconvs(model_t, modules)
    sg = model_t.subgraphs[0]
    outputs = list(sg.outputs)
    for b in bconvs:
        outputs += [b["input"], b["output"]]
    sg.outputs = outputs
    int8 = any(t.type == _INT8 for t in sg.tensors)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t)), bconvs, int8


def _file_ops(bconvs: list[dict], values: list[np.ndarray]) -> dict[str, FileOp]:
    ops = {}
    for b, (inputs, outputs) in zip(bconvs, zip(values[0::2], values[1::2])):
        mult = np.ones(()) if b["multiplier"] is None else b["multiplier"].astype(np.float64)
        bias = np.zeros(()) if b["bias"] is None else b["bias"].astype(np.float64)
        low, high = b["clamp"]
        m, c = mult.reshape(-1, 1, 1) if mult.ndim else mult, bias.reshape(-1, 1, 1) if bias.ndim else bias
        # An int8 output holds round(y / scale) + zero_point, saturated: y within half a step of it.
        scale, zero = b["int8"] or (0.0, 0)
        ymin, ymax = ((-128 - zero) * scale, (127 - zero) * scale) if b["int8"] else (-np.inf, np.inf)

        def post(s, m=m, c=c, low=low, high=high, ymin=ymin, ymax=ymax):
            # LCE clamps the accumulator (the fused activation comes before a BatchNorm it folds),
            # then applies the per-channel multiplier and bias.
            return np.clip(np.clip(s, low, high) * m + c, ymin, ymax)

        if b["packed_output"]:
            written = None
        elif b["int8"]:
            written = dequantize(outputs, scale, zero).transpose(0, 3, 1, 2)
        else:
            written = np.asarray(outputs, np.float32).transpose(0, 3, 1, 2)
        (top, bottom), (left, right) = b["pads"]
        signs = _unpack_signs(inputs, b["channels"])  # the padded map: its inside is the module's input
        signs = signs[:, :, top:signs.shape[2] - bottom, left:signs.shape[3] - right]
        ops[b["module"]] = FileOp(b["module"], "LceBconv2d", signs, written, b["pad_value"], post, m, step=scale)
    return ops


def verify_tflite_layerwise(model, flatbuffer: bytes, x_nchw: np.ndarray,
                            runtimes: Optional[dict] = None) -> list[LayerwiseResult]:
    """Checks a flatbuffer layer by layer against its PyTorch source on every LCE runtime.

    The reference kernel, slow and there to tell LCE's bugs from the file's, runs on the
    first :data:`REFERENCE_IMAGES` images; a runtime whose exposed tensors equal the
    previous one's bit for bit reuses its checks (no second PyTorch pass).

    Args:
        model: The zoo PyTorch model the file was converted from.
        flatbuffer: The file's bytes.
        x_nchw: The batch to check on.
        runtimes: Names -> interpreter flags (default :data:`LCE_RUNTIMES`, reference last).

    Returns:
        One :class:`converters.layerwise.LayerwiseResult` per runtime.

    Raises:
        ConversionError: The interpreter refuses the file, or an op cannot be mapped to the model.
    """
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    exposed, bconvs, int8 = _exposed(flatbuffer, binary_weight_signs(model))
    qout = io_quantization(flatbuffer)[1]
    results: list[LayerwiseResult] = []
    previous: tuple = (None, None, None)
    for runtime, flags in (runtimes or LCE_RUNTIMES).items():
        x_file, x = _file_input(flatbuffer, x_nchw[:REFERENCE_IMAGES] if flags.get("use_reference_bconv") else x_nchw)
        try:
            values = Interpreter(exposed, **{**INTERPRETER_FLAGS, **flags}).predict(x_file)
        except RuntimeError as e:
            raise ConversionError(f"LCE's interpreter refuses the converted file on {runtime} "
                                  f"({' '.join(str(e).split())}); nothing was written") from e
        values = values if isinstance(values, list) else [values]
        if previous[0] is not None and len(x) == len(previous[0]) and all(
                np.array_equal(a, b) for a, b in zip(values, previous[1])):
            results.append(LayerwiseResult(runtime, previous[2].checks))
            continue
        outputs = values[0] if qout[0] is None else dequantize(values[0], *qout[0])
        # An int8 file computes its float ops in int8 over ranges that are not the model's: only its binary
        # convolutions are compared with the source (each fed the file's signs, exactly).
        results.append(check_layerwise(model, x, _file_ops(bconvs, values[1:]), outputs, runtime,
                                       float_segments=not int8))
        previous = (x, values, results[-1])
    return results


def check_tflite(model, flatbuffer: bytes, x_nchw: np.ndarray) -> list[LayerwiseResult]:
    """:func:`verify_tflite_layerwise`, raising ConversionError for the first divergent layer."""
    results = verify_tflite_layerwise(model, flatbuffer, x_nchw)
    try:
        raise_first(results, "tflite")
    except ConversionError as e:
        if "right on" in str(e):
            raise ConversionError(f"{e} ({_SMALL_MAP_HINT})") from None
        raise
    return results


def _is_torch(model) -> bool:
    return hasattr(model, "state_dict") and hasattr(model, "modules")


def keras_twin(model, input_size: Optional[int]):
    """The Keras model to convert (a PyTorch module translated by ``zoo.to_keras``) and its input side."""
    import zoo

    if not _is_torch(model):
        if input_size is not None and input_size != model.input_shape[1]:
            raise ValueError(f"a Keras model takes the input size it was built for ({model.input_shape[1]}); "
                             "build it at the size you want")
        return model, int(model.input_shape[1])
    keras_model = zoo.to_keras(model, input_size)
    return keras_model, int(keras_model.input_shape[1])


def frozen_kernels(keras_model):
    """A copy of a Keras model whose quantized kernels are constants, for export.

    Every layer with a ``kernel_quantizer`` becomes the same layer without one, holding
    ``kernel_quantizer(kernel)``; the other weights are copied. LCE's converter folds a
    quantizer applied to a kernel into a constant only while the kernel is small: XNOR-Net's
    6x6x256x4096 first fully-connected layer (37.7 M weights at 224x224) stayed in the file
    as its float latent weights plus the ops that binarize them on every inference (ABS ->
    MEAN -> LceQuantize -> LceDequantize -> MUL -> TRANSPOSE -> CONV_2D, a float conv),
    and DoReFa-Net's kept two 151 MB copies of its kernel (its magnitude and its sign). A
    frozen binary kernel reaches LCE as a ±scale constant, which it bit-packs into an
    ``LceBconv2d`` at any size; other quantized kernels become one float constant.

    Returns the model itself when it holds no quantized kernel or is not a functional
    (or sequential) model, which ``clone_model`` cannot copy layer by layer.
    """
    import tensorflow as tf

    quantized = {layer.name: layer for layer in _keras_layers(keras_model)
                 if getattr(layer, "kernel_quantizer", None) is not None}
    if not quantized or not getattr(keras_model, "_is_graph_network", False) or any(
            isinstance(layer, tf.keras.Model) for layer in keras_model.layers):
        return keras_model

    def clone(layer):
        config = layer.get_config()
        if layer.name in quantized:
            config = {**config, "kernel_quantizer": None, "kernel_constraint": None}
        return layer.__class__.from_config(config)

    copy = tf.keras.models.clone_model(keras_model, clone_function=clone)
    copy.set_weights(keras_model.get_weights())
    for name, layer in quantized.items():
        copy.get_layer(name).kernel.assign(layer.kernel_quantizer(layer.kernel.latent_variable))
    return copy


def convert_keras(keras_model, target: str = "arm", **options) -> bytes:
    """LCE's converter on a Keras model (its quantized kernels frozen, :func:`frozen_kernels`),
    through a lean SavedModel.

    ``larq_compute_engine.convert_keras_model`` saves the model with Keras' own
    serialization, which traces every layer again and, with the pure-Python
    protobuf that ``protobuf<3.21`` brings on Python 3.11, takes 4-6x longer (a tiny
    Real-to-Bin: 44 s against 10 s here). Saving only the inference function and
    its variables gives LCE the same graph.

    Args:
        keras_model: The model to convert.
        target: LCE target, ``"arm"`` or ``"xcore"``.
        **options: LCE's ``convert_saved_model`` options (``inference_input_type``,
            ``inference_output_type``, ``experimental_default_int8_range``).
    """
    import tempfile

    from zoo.tfenv import use_legacy_keras

    use_legacy_keras()
    import tensorflow as tf
    from larq_compute_engine.mlir.python.converter import convert_saved_model

    keras_model = frozen_kernels(keras_model)

    # Batch 1, as a device runs it: a dynamic batch leaves shapes that broadcasting ops
    # (the strong baseline's learned scales) cannot allocate in the interpreter.
    spec = tf.TensorSpec([1, *keras_model.input_shape[1:]], tf.float32)
    module = tf.Module()
    module.variables_ = list(keras_model.variables)
    module.serve = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures=module.serve.get_concrete_function())
        with warnings.catch_warnings():  # LCE warns that a default range is for latency tests: to_tflite says so
            warnings.filterwarnings("ignore", "Using `experimental_default_int8_range`", UserWarning)
            return convert_saved_model(folder, target=target, **options)


def to_tflite(model, path: str, *, input_size: Optional[int] = None, verify: bool = True,
              target: str = "arm", int8: bool = False,
              int8_range: tuple[float, float] = INT8_RANGE) -> ConversionReport:
    """Converts a zoo model to an LCE TFLite flatbuffer at ``path``, verified first.

    Args:
        model: A PyTorch module built from the zoo's layers, registered or not (translated
            by ``zoo.to_keras``), or a zoo Keras model (binary layers carry ``zoo_is_binary``).
        path: Output file; written atomically, only once every check passed.
        input_size: Input side of the file (defaults to the model's; required for a module
            that carries no ``zoo_config``).
        verify: Check the file layer by layer against the source model on LCE's
            optimized, indirect-bgemm and reference kernels (``converters.layerwise``),
            then compare its outputs end to end (``converters.verify``). The
            ``LceBconv2d`` count is checked either way.
        target: LCE target, ``"arm"`` or ``"xcore"``.
        int8: Write LCE's int8 file: int8 input and output (LCE's ``inference_input_type``
            and ``inference_output_type`` ``tf.int8``) and every float op in int8, each
            tensor quantized over ``int8_range`` (LCE's ``experimental_default_int8_range``;
            the zoo's models carry no trained ranges, so this is a file for speed
            measurements: its outputs are not the model's). The binary convolutions are
            verified layer by layer as in a float file (int8 outputs within their rounding);
            the float segments and end-to-end outputs are reported only.
        int8_range: ``(min, max)`` of the int8 tensors.

    Returns:
        The report of the conversion.

    Raises:
        ConversionError: LCE failed, ``LceBconv2d`` count differs from the model's
            binary convolutions, or verification failed (the first divergent layer named).
        zoo.keras.translate.UnsupportedOpError: The module uses an op the translator does
            not know (nothing was written).
        FileNotFoundError: The output folder does not exist.
    """
    import zoo

    start = time.perf_counter()
    path = check_target(path)
    expected = binary_convs_of(model)
    keras_model, size = keras_twin(model, input_size)
    if int8 and not (len(int8_range) == 2 and float(int8_range[0]) < 0.0 < float(int8_range[1])):
        raise ValueError(f"int8_range must be (min, max) with min < 0 < max, not {int8_range!r}")
    options = {}
    if int8:
        import tensorflow as tf

        options = dict(inference_input_type=tf.int8, inference_output_type=tf.int8,
                       experimental_default_int8_range=(float(int8_range[0]), float(int8_range[1])))
    try:
        flatbuffer = convert_keras(keras_model, target=target, **options)
    except Exception as e:  # the MLIR converter raises plain exceptions
        raise ConversionError(f"LCE could not convert the model: {str(e).strip().splitlines()[-1]}") from e
    try:  # what LCE wrote, checked as every reader checks it (converters.verify.read_export)
        verify_flatbuffer(flatbuffer, "the converted model")
    except ValueError as e:
        raise ConversionError(f"{e}; nothing was written") from None
    counts = op_counts(flatbuffer)
    if counts["LceBconv2d"] != expected:
        raise ConversionError(
            f"the TFLite file has {counts['LceBconv2d']} LceBconv2d ops for {expected} binary convolutions: "
            f"{expected - counts['LceBconv2d']} were converted to float ops (LCE needs ±1 ste_sign inputs and "
            f"weights and, for grouped convs, input channels per group a multiple of 32); nothing was written")
    diff = agreement = boxes = float("nan")
    batch, data = verification_batch(model, size) if verify else (np.zeros((0,)), "")
    layers = None
    if verify:
        source = model if _is_torch(model) else zoo.to_torch(model)
        layers = check_tflite(source, flatbuffer, batch)
        reference = reference_outputs(model, batch)
        try:
            exported = tflite_predict(flatbuffer, batch)
        except RuntimeError as e:  # the interpreter refuses a file the converter produced
            raise ConversionError(f"LCE's interpreter refuses the converted file ({' '.join(str(e).split())}); "
                                  f"nothing was written") from e
        if int8:  # the float ops ran in int8 over int8_range: reported only
            diff, agreement = compare(reference, exported)
        else:
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
                            time.perf_counter() - start, diff, agreement, len(batch), size, boxes, data,
                            layers=tuple(layers or ()), int8_range=tuple(int8_range) if int8 else None)
