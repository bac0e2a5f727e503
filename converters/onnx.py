"""Export to ONNX through ``torch.onnx.export(dynamo=True)``, optionally bit-packed.

A binary convolution exports as ``GreaterOrEqual``/``Where`` (sign with sign(0)=+1)
on the activations and on the latent float weights, feeding a float ``Conv``. With
``bitpack=True`` the graph is then edited: each binary convolution's float weight
initializer (and the sign nodes computing from it) is replaced by a ``uint8``
initializer holding 8 signs per byte, unpacked in-graph with standard operators::

    bits (uint8 [n/8, 1]) -BitShift(RIGHT, [0..7])-> -BitwiseAnd(1)-> -Cast(float)->
    -Mul(2)-> -Sub(1)-> -Reshape-> (Slice) -> Reshape(O, I/groups, kh, kw) -> Conv

Bit ``j`` of byte ``i`` is the sign (1 for +1) of weight ``8 i + j`` in row-major
OIHW order. Runtimes fold this constant sub-graph once, at session creation, so
inference costs what the unpacked export costs and the outputs are identical.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from zoo.fileio import atomic_write

from .layerwise import FileOp, LayerwiseResult, check_layerwise
from .verify import (
    ConversionError,
    ConversionReport,
    check_target,
    reference_outputs,
    verification_batch,
    verify_outputs,
)

__all__ = ["to_onnx", "export_proto", "strip_metadata", "unfold_outer_scales", "bitpack_binary_convs", "onnx_predict",
           "verify_onnx_layerwise"]

_SHARED = "bitpack_"  # prefix of the constants every unpacking shares


def export_proto(model, input_size: int, opset: int = 18):
    """The ``onnx.ModelProto`` of a zoo PyTorch model (dynamic batch, weights inline)."""
    import torch

    if opset < 17:
        raise ValueError(f"opset {opset} is too old for the dynamo exporter; use 17 or newer")
    x = torch.zeros(2, 3, input_size, input_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, verbose=False,
                                        dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as e:
        raise ConversionError(f"torch.onnx.export failed: {str(e).strip().splitlines()[0]}") from e
    finally:
        model.train(was_training)
    return program.model_proto


def _binary_signs(model) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``"<module>.weight"`` -> ±1 float32 weights of every binary convolution, and -> the float scale
    of those whose binary weights are scaled (magnitude-aware sign, XNOR-Net: per output channel)."""
    import torch

    from zoo.torch.layers import BinaryConv2d

    signs, scales = {}, {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, BinaryConv2d) and module.is_binary:
                signs[f"{name}.weight"] = np.where(module.weight.numpy() >= 0, 1.0, -1.0).astype(np.float32)
                scale = module.weight_scale()
                if scale is not None:
                    scales[f"{name}.weight"] = scale.numpy().astype(np.float32)
    return signs, scales


def _shared_constants(graph) -> None:
    from onnx import numpy_helper

    names = {i.name for i in graph.initializer}
    for name, value in (("shifts", np.arange(8, dtype=np.uint8)), ("one_u8", np.array(1, np.uint8)),
                        ("two", np.array(2, np.float32)), ("one", np.array(1, np.float32)),
                        ("flat", np.array([-1], np.int64)), ("zero_i64", np.array([0], np.int64))):
        if _SHARED + name not in names:
            graph.initializer.append(numpy_helper.from_array(value, _SHARED + name))


def _unpack_nodes(prefix: str, signs: np.ndarray):
    """Initializers and nodes computing ``signs`` from its bits; the last output is ``prefix``."""
    from onnx import TensorProto, helper, numpy_helper

    flat = (signs.reshape(-1) > 0).astype(np.uint8)
    n = flat.size
    bits = np.packbits(np.pad(flat, (0, -n % 8)).reshape(-1, 8), axis=-1, bitorder="little")  # (n/8, 1)
    inits = [numpy_helper.from_array(bits, f"{prefix}_bits"),
             numpy_helper.from_array(np.array(signs.shape, np.int64), f"{prefix}_shape")]
    s = _SHARED
    nodes = [
        helper.make_node("BitShift", [f"{prefix}_bits", s + "shifts"], [f"{prefix}_shifted"], direction="RIGHT"),
        helper.make_node("BitwiseAnd", [f"{prefix}_shifted", s + "one_u8"], [f"{prefix}_bit"]),
        helper.make_node("Cast", [f"{prefix}_bit"], [f"{prefix}_bitf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{prefix}_bitf", s + "two"], [f"{prefix}_twice"]),
        helper.make_node("Sub", [f"{prefix}_twice", s + "one"], [f"{prefix}_pm1"]),
    ]
    last = f"{prefix}_pm1"
    if n % 8:
        inits.append(numpy_helper.from_array(np.array([n], np.int64), f"{prefix}_count"))
        nodes += [helper.make_node("Reshape", [last, s + "flat"], [f"{prefix}_flat"]),
                  helper.make_node("Slice", [f"{prefix}_flat", s + "zero_i64", f"{prefix}_count"], [f"{prefix}_cut"])]
        last = f"{prefix}_cut"
    nodes.append(helper.make_node("Reshape", [last, f"{prefix}_shape"], [prefix]))
    return inits, nodes


def _constant_sources(graph, tensor: str, producers: dict, initializers: set) -> Optional[set]:
    """Initializers a tensor is computed from, or None if it depends on a graph input."""
    if tensor in initializers:
        return {tensor}
    node = producers.get(tensor)
    if node is None:
        return None
    sources: set = set()
    for name in node.input:
        if not name:
            continue
        found = _constant_sources(graph, name, producers, initializers)
        if found is None:
            return None
        sources |= found
    return sources


def _folded_match(initializer, signs: dict[str, np.ndarray], done: set, scales: dict[str, np.ndarray]) -> list[str]:
    """Binary convs whose weights the exporter folded into ``initializer`` (small layers).

    The folded kernel is the signs times one factor per output channel: 1, a scaled binary
    quantizer's scale, or a following BatchNorm the exporter fused in (its gamma / std). That factor
    is recorded in ``scales`` (the packed kernel is signs * factor, exactly the folded one).
    """
    from onnx import numpy_helper

    value = numpy_helper.to_array(initializer)
    if value.dtype != np.float32 or value.ndim < 2:
        return []
    for k, v in signs.items():
        if k in done or v.shape != value.shape:
            continue
        factor = (value.reshape(len(value), -1)[:, :1] / v.reshape(len(v), -1)[:, :1]).reshape(
            (-1,) + (1,) * (value.ndim - 1))
        if np.all(factor != 0) and np.array_equal(v * factor, value):
            if np.all(factor == 1.0):
                scales.pop(k, None)
            else:
                scales[k] = factor.astype(np.float32)
            return [k]
    return []


def unfold_outer_scales(proto, model) -> int:
    """Computes each learned (C, H, W) scale from its three 1-D factors in the graph; in place.

    The exporter folds ``LearnedRescale``'s outer product ``scale_c x scale_h x scale_w``
    (the strong baseline's XNOR-Net++ factors) into one constant per layer: 6 MB of the
    full-size strong baseline's file, more than its bit-packed binary weights. Storing the
    factors and two ``Mul`` nodes instead keeps the file at the size of its parameters;
    runtimes fold the product once, at session creation.

    Returns:
        How many constants were unfolded.
    """
    import torch
    from onnx import helper, numpy_helper

    from zoo.torch.realtobinary import LearnedRescale

    graph = proto.graph
    by_value = {}
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, LearnedRescale):
                c, h, w = (getattr(m, f"scale_{k}").numpy().astype(np.float32) for k in "chw")
                by_value[name] = (c, h, w, c[:, None, None] * h[None, :, None] * w[None, None, :])
    new_nodes, done = [], 0
    for init in list(graph.initializer):
        if init.data_type != 1 or len(init.dims) != 3 or not by_value:
            continue
        value = numpy_helper.to_array(init)
        hit = next((k for k, v in by_value.items() if v[3].shape == value.shape
                    and np.allclose(v[3], value, rtol=1e-6, atol=0)), None)
        if hit is None:
            continue
        c, h, w, _ = by_value.pop(hit)
        names = [f"{hit}.scale_{k}" for k in "chw"]
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(c.reshape(-1, 1, 1), names[0]),
                                  numpy_helper.from_array(h.reshape(1, -1, 1), names[1]),
                                  numpy_helper.from_array(w.reshape(1, 1, -1), names[2])])
        new_nodes += [helper.make_node("Mul", names[:2], [f"{hit}.scale_ch"]),
                      helper.make_node("Mul", [f"{hit}.scale_ch", names[2]], [init.name])]
        done += 1
    nodes = new_nodes + list(graph.node)  # they read initializers only: the graph stays sorted
    del graph.node[:]
    graph.node.extend(nodes)
    return done


def _prune(graph) -> None:
    """Removes nodes whose outputs nothing uses, then unused initializers and value infos."""
    needed = {o.name for o in graph.output}
    while True:
        used = needed | {i for node in graph.node for i in node.input}
        dead = [node for node in graph.node if not any(o in used for o in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = needed | {i for node in graph.node for i in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    produced = {o for node in graph.node for o in node.output}
    for vi in [v for v in graph.value_info if v.name not in produced]:
        graph.value_info.remove(vi)


def strip_metadata(proto) -> None:
    """Drops the exporter's per-node metadata (stack traces, FX names): often more bytes than the weights."""
    graph = proto.graph
    for item in list(graph.node) + list(graph.value_info) + list(graph.input) + list(graph.output) \
            + list(graph.initializer):
        del item.metadata_props[:]
        item.doc_string = ""


def _binary_conv_nodes(graph, signs: dict[str, np.ndarray], scales: Optional[dict] = None) -> list[tuple]:
    """``(Conv node, "<module>.weight")`` of each binary convolution whose weights the graph computes.

    A Conv is binary when its weight derives from exactly one binary module's weight
    initializer (through the exporter's sign nodes, or the unpacking of ``bitpack``),
    or, for small layers the exporter folded, holds that module's ±1 values times one
    factor per output channel (recorded in ``scales``, see :func:`_folded_match`).
    """
    scales = {} if scales is None else scales
    initializers = {i.name for i in graph.initializer}
    producers = {o: node for node in graph.node for o in node.output}
    by_name = {i.name: i for i in graph.initializer}
    done: set = set()
    found = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        unpacked = node.input[1][:-len("_unpacked")] if node.input[1].endswith("_unpacked") else None
        if unpacked in signs and unpacked not in done:
            hit = [unpacked]
        else:
            sources = _constant_sources(graph, node.input[1], producers, initializers)
            hit = [s for s in (sources or ()) if s in signs and s not in done]
            if not hit and node.input[1] in initializers:
                hit = _folded_match(by_name[node.input[1]], signs, done, scales)
        if len(hit) == 1:
            done.add(hit[0])
            found.append((node, hit[0]))
    return found


def bitpack_binary_convs(proto, model) -> int:
    """Replaces each binary conv's float weights in ``proto`` by packed bits; in place.

    Args:
        proto: The ``onnx.ModelProto`` exported from ``model``.
        model: The zoo PyTorch model, which says which convolutions are binary.

    Returns:
        How many convolutions were packed.

    Raises:
        ConversionError: A binary convolution's weights could not be found in the graph.
    """
    graph = proto.graph
    signs, scales = _binary_signs(model)
    _shared_constants(graph)
    new_nodes = []
    packed = 0
    for node, weight in _binary_conv_nodes(graph, signs, scales):
        prefix = f"{weight}_unpacked"
        inits, nodes = _unpack_nodes(prefix, signs[weight])
        if weight in scales:  # sign * scale, the scale stored float (one number per output channel)
            from onnx import helper, numpy_helper

            inits.append(numpy_helper.from_array(scales[weight], f"{prefix}_scale"))
            nodes[-1].output[0] = f"{prefix}_signs"
            nodes.append(helper.make_node("Mul", [f"{prefix}_signs", f"{prefix}_scale"], [prefix]))
        graph.initializer.extend(inits)
        new_nodes += nodes
        node.input[1] = prefix
        packed += 1
    if packed != len(signs):
        raise ConversionError(f"found the weights of {packed} of {len(signs)} binary convolutions in the ONNX graph; "
                              "cannot bit-pack the others")
    # Unpacking only reads initializers, so it can run first: keeps the graph topologically sorted.
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    _prune(graph)
    return packed


def _exposed(proto, model) -> tuple[bytes, list[tuple[str, str, str]]]:
    """A copy of ``proto`` whose outputs add each binary Conv's input signs (before padding), its output and
    its kernel and bias (unless initializers).

    Returns:
        The serialized copy and ``(module, signs tensor, conv output, kernel, bias or "")`` per binary
        convolution.
    """
    import onnx
    from onnx import TensorProto, helper

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph
    producers = {o: node for node in graph.node for o in node.output}
    exposed = []
    for node, weight in _binary_conv_nodes(graph, *_binary_signs(model)):
        signs = node.input[0]
        pad = producers.get(signs)
        if pad is not None and pad.op_type == "Pad":  # the module's padding, applied to its signs
            signs = pad.input[0]
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        exposed.append((weight[:-len(".weight")], signs, node.output[0], node.input[1], bias))
    names = {o.name for o in graph.output} | {i.name for i in graph.initializer} | {""}
    for _, signs, out, kernel, bias in exposed:
        for name in (signs, out, kernel, bias):
            if name not in names:
                graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
                names.add(name)
    return copy.SerializeToString(), exposed


def _channel_factor(kernel: np.ndarray, module) -> np.ndarray:
    """``(1, C, 1, 1)``: the file's ``kernel`` over the module's weight signs, per output channel."""
    own = np.where(module.weight.detach().numpy() >= 0, 1.0, -1.0)
    kernel = np.asarray(kernel, np.float64).reshape(len(own), -1)
    own = own.reshape(len(own), -1)
    factor = kernel[:, 0] / own[:, 0]
    # A channel whose signs all flipped would look like a factor of -1: only positive factors (weight
    # scales, folded BatchNorms with gamma > 0) are divided out; otherwise the kernel is compared as it
    # is, and the check names this layer (a folded BatchNorm with a negative gamma is refused too).
    if not np.all(factor > 0):
        factor = np.ones_like(factor)
    return factor.reshape(1, -1, 1, 1)


def verify_onnx_layerwise(model, proto, x_nchw: np.ndarray, threads: int = 1) -> LayerwiseResult:
    """Checks an ONNX graph layer by layer against its PyTorch source in onnxruntime (``converters.layerwise``).

    Raises:
        ConversionError: A binary convolution of the model has no binary Conv in the graph.
    """
    import onnxruntime as ort

    data, exposed = _exposed(proto, model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    from onnx import numpy_helper

    stored = {i.name: i for i in proto.graph.initializer}
    wanted = [session.get_outputs()[0].name] + [n for _, s, o, k, b in exposed for n in (s, o, k, b)
                                                if n and n not in stored]
    values = dict(zip(wanted, session.run(wanted, {session.get_inputs()[0].name: x_nchw})))
    values.update({n: numpy_helper.to_array(stored[n]) for e in exposed for n in e[3:] if n in stored})
    modules = dict(model.named_modules())
    ops = {}
    for m, s, o, k, b in exposed:
        # The file's kernel is the module's signs times one factor per output channel (its quantizer's
        # scale, a BatchNorm the exporter folded in, whose shift is then the conv's bias): the integer
        # sums are compared through them.
        factor = _channel_factor(values[k], modules[m])
        shift = np.asarray(values[b], np.float64).reshape(1, -1, 1, 1) if b else 0.0
        ops[m] = FileOp(m, "Conv", values[s], values[o], modules[m].pad_value,
                        post=lambda sums, f=factor, c=shift: sums * f + c, scale=np.abs(factor))
    return check_layerwise(model, x_nchw, ops, values[wanted[0]], "onnxruntime (CPU)")


def onnx_predict(path: str, x_nchw: np.ndarray, threads: int = 1) -> np.ndarray:
    """Runs an ONNX file in onnxruntime (CPU) on an NCHW batch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x_nchw})[0]


def to_onnx(model, path: str, *, input_size: Optional[int] = None, bitpack: bool = False, opset: int = 18,
            verify: bool = True) -> ConversionReport:
    """Exports a zoo PyTorch model to ONNX at ``path``, verified before it is written.

    Args:
        model: A zoo PyTorch model.
        path: Output file; written atomically, only once verification passed.
        input_size: Input side the graph is exported for (defaults to the model's).
        bitpack: Store binary convolutions' weights at 1 bit (see module docs).
        opset: ONNX opset, 17 or newer (``BitwiseAnd`` for ``bitpack`` needs 18).
        verify: Check the file layer by layer in onnxruntime against the PyTorch
            model (``converters.layerwise``), then compare its outputs end to end.

    Returns:
        The report of the conversion.

    Raises:
        ConversionError: Export, packing or verification failed (nothing written).
        TypeError: ``model`` is not a PyTorch model.
        FileNotFoundError: The output folder does not exist.
    """
    import onnx

    import zoo

    if not (hasattr(model, "state_dict") and hasattr(model, "modules")):
        raise TypeError("ONNX export takes a zoo PyTorch model; convert a Keras model with zoo.to_torch first")
    if bitpack and opset < 18:
        raise ValueError("bitpack needs opset 18 or newer (BitwiseAnd)")
    start = time.perf_counter()
    path = check_target(path)
    size = input_size or zoo.weights.input_size_of(model)
    if not size:
        raise ValueError(f"{type(model).__name__} carries no zoo_config or zoo_weights: pass input_size")
    expected = zoo.measure(model, size).binary_convs
    proto = export_proto(model, size, opset)
    strip_metadata(proto)
    unfold_outer_scales(proto, model)
    packed = bitpack_binary_convs(proto, model) if bitpack else 0
    batch, data = verification_batch(model, size) if verify else (np.zeros((0,)), "")
    reference = reference_outputs(model, batch) if verify else None
    result: dict = {"diff": float("nan"), "agreement": float("nan"), "boxes": float("nan"), "layers": ()}

    def write(tmp: str) -> None:
        onnx.save_model(proto, tmp)

    def check(tmp: str) -> None:
        try:
            onnx.checker.check_model(tmp)
        except onnx.checker.ValidationError as e:
            raise ConversionError(f"the exported ONNX graph is invalid: {str(e).strip().splitlines()[0]}") from e
        if not verify:
            return
        layers = verify_onnx_layerwise(model, onnx.load(tmp), batch)
        if not layers.ok:
            raise ConversionError(layers.error("onnx"))
        result["layers"] = (layers,)
        result["diff"], result["agreement"], result["boxes"] = verify_outputs(
            "onnx", model, reference, onnx_predict(tmp, batch))

    nbytes = atomic_write(path, write, check)
    return ConversionReport("onnx", path, nbytes, expected, packed, 0, time.perf_counter() - start,
                            result["diff"], result["agreement"], len(batch), size, result["boxes"], data,
                            layers=result["layers"])
