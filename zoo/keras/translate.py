"""A PyTorch module built from the zoo's layers, translated to a Larq/Keras functional model.

Each architecture of the zoo is written once, in PyTorch; its Keras model is derived here,
and so is the Keras model of a user's own network made of the same layers.

How: ``torch.fx`` traces the module with the zoo's layers (and the helper functions that
hide padding tricks) as leaves; the graph is then walked node by node, running PyTorch on
a sample batch alongside, so every node knows its shapes and every shape computation of
the forward (``x.shape[1] - 64``) its value. Every tensor carries ``perm``, the permutation
with ``keras_tensor == torch_tensor.permute(perm)``: 4-D activations live as NHWC
(``perm = (0, 2, 3, 1)``), others in PyTorch's order; channel ops (cat, slicing, split,
mean, broadcasting) map their dims through it, and a transpose is emitted only where
PyTorch's element order matters (a ``flatten`` of an NHWC map, a general ``reshape``).

The Keras layers are the forms LCE and TFLite are fast with: binary convs become larq
``QuantConv2D`` (one ``LceBconv2d`` each), grouped float convs per-group convs
(``zoo.keras.layers.GroupConv2D``), depthwise convs ``DepthwiseConv2D``. Each layer that
holds weights is named after its module path (``stages.0.dense.1.conv``), so
``zoo.keras.transfer`` moves weights by name and larq-zoo's ``.h5`` files map as before.

Anything outside the vocabulary is an :class:`UnsupportedOpError` naming the module path
and the op. To teach the translator a new op, add a handler to ``MODULES``, ``FUNCTIONS``
or ``METHODS`` (a leaf helper function of a family file goes in ``FUNCTIONS``: it is then
traced as one node).
"""

from __future__ import annotations

import inspect
import math
import operator
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import larq as lq  # noqa: F401  (QuantConv2D is built through zoo.keras.layers)
import numpy as np
import tensorflow as tf
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..torch import layers as tl
from . import layers as kl

__all__ = ["translate", "UnsupportedOpError", "MODULES", "FUNCTIONS", "METHODS", "SAMPLE_BATCH"]

K = tf.keras.layers
NHWC = (0, 2, 3, 1)
# Batch of the sample run: 2, so that a reshape mixing the batch with other dims shows.
SAMPLE_BATCH = 2


class UnsupportedOpError(ValueError):
    """A module holds an op the translator has no Keras form for (nothing was built)."""


@dataclass
class _T:
    """A tensor of the translation: the Keras tensor, its layout, and PyTorch's value on the sample."""

    k: Any
    perm: tuple
    t: torch.Tensor

    @property
    def ndim(self) -> int:
        return self.t.ndim


class _Ctx:
    """What handlers share: the node being translated, its path, and the layers built so far."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.node: Optional[fx.Node] = None
        self.layers: dict[str, Any] = {}

    @property
    def path(self) -> str:
        node = self.node
        if node is not None and node.op == "call_module":
            return str(node.target)
        stack = (node.meta.get("nn_module_stack") if node is not None else None) or {}
        if stack:
            last = list(stack.values())[-1]
            return str(last[0] if isinstance(last, tuple) else last) or "the top-level module"
        return "the top-level module"

    @property
    def name(self) -> str:
        """A unique Keras layer name for an op node (fx node names are unique in the graph)."""
        return self.node.name

    def module_layer(self, make: Callable[[], Any]) -> Any:
        """The Keras layer of the current module node (built once: a module called twice shares it)."""
        path = self.path
        if path not in self.layers:
            self.layers[path] = make()
        return self.layers[path]

    def fail(self, op: str, why: str = "") -> UnsupportedOpError:
        return UnsupportedOpError(
            f"cannot translate {self.path} to Keras: {op}{' ' + why if why else ''} is not supported; the "
            f"translator knows modules {', '.join(sorted({t.__name__ for t in MODULES}))}, functions "
            f"{', '.join(sorted({_fn_name(f) for f in FUNCTIONS}))} and tensor methods {', '.join(sorted(METHODS))}")


def _fn_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", repr(fn))
    short = {"_operator": "operator", "torch._C._nn": "F", "torch.nn.functional": "F", "torch._C._VariableFunctions":
             "torch"}.get(module, module.split(".")[0] if module.startswith("torch") else module.rsplit(".", 1)[-1])
    return f"{short}.{name}" if short else name


# --- layouts ------------------------------------------------------------------------------------------

def _canonical(ndim: int) -> tuple:
    return NHWC if ndim == 4 else tuple(range(ndim))


def _only_unit_dims_move(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """Whether permuting ``shape`` by ``perm`` keeps the element order (only size-1 dims move)."""
    return [d for d in perm if shape[d] != 1] == [d for d in range(len(shape)) if shape[d] != 1]


def _to_perm(v: _T, perm: tuple) -> Any:
    """``v``'s Keras tensor in layout ``perm``: a Reshape where only size-1 dims move, else a Permute."""
    perm = tuple(perm)
    if v.perm == perm:
        return v.k
    kshape = [v.t.shape[d] for d in v.perm]
    dims = [v.perm.index(d) for d in perm]  # keras axes of the old tensor, in the new order
    if _only_unit_dims_move(kshape, dims):
        return K.Reshape(tuple(v.t.shape[d] for d in perm[1:]))(v.k)
    return K.Permute(tuple(dims[1:]))(v.k)


def _axis(ctx: _Ctx, v: _T, dim: int) -> int:
    """The Keras axis of PyTorch dim ``dim`` of ``v``."""
    if not isinstance(dim, int):
        raise ctx.fail(f"a dim of {dim!r}")
    dim = dim % v.ndim
    if dim == 0:
        raise ctx.fail("an op along the batch dim")
    return v.perm.index(dim)


def _keras_axis_arg(axis: int, ndim: int) -> int:
    return -1 if axis == ndim - 1 else axis  # Keras' default form, as the hand-written models had


def _reshape(ctx: _Ctx, v: _T, out: torch.Tensor) -> _T:
    """``v`` reshaped to ``out.shape`` in PyTorch's element order."""
    shape = tuple(out.shape)
    if shape[0] != v.t.shape[0]:
        raise ctx.fail(f"a reshape to {shape} that mixes the batch dim")
    target = _canonical(len(shape))
    # The element order of v's Keras tensor equals PyTorch's when only size-1 dims are out of place.
    if not _only_unit_dims_move(v.t.shape, v.perm):
        src = _T(_to_perm(v, tuple(range(v.ndim))), tuple(range(v.ndim)), v.t)
    else:
        src = v
    if _only_unit_dims_move(shape, target):
        kshape = tuple(shape[d] for d in target)
        if tuple(src.k.shape[1:]) == kshape[1:]:
            return _T(src.k, target, out)
        return _T(K.Reshape(kshape[1:], name=ctx.name)(src.k), target, out)
    return _T(K.Reshape(shape[1:], name=ctx.name)(src.k), tuple(range(len(shape))), out)


def _dims_after_reduce(perm: tuple, dropped: Sequence[int]) -> tuple:
    kept = [d for d in perm if d not in dropped]
    return tuple(d - sum(x < d for x in dropped) for d in kept)


# --- modules ------------------------------------------------------------------------------------------

def _pair(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _used_pads(size: Sequence[int], kernel: tuple, stride: tuple, pads: tuple) -> tuple:
    """PyTorch's symmetric conv padding as ``((top, bottom), (left, right))``, less the rows no window reads.

    A strided conv may leave its last padded rows unread (padding=1, stride 2 on an even side
    reads (1, 0)). Padded (1, 1), LCE 0.16's converter folds the pad into a SAME conv, which
    pads (0, 1): its fuse-padding pass checks only that before = total // 2, after =
    (total + 1) // 2 and the output side is ceil(side / stride), not that SAME pads this total.
    Trimmed, the total is SAME's whenever the output side is, so a fold happens only where exact
    (tests/test_translate.py converts both cases).
    """
    out = []
    for n, k, s, p in zip(size, kernel, stride, pads):
        reach = ((n + 2 * p - k) // s) * s + k  # the padded rows the last window reaches
        out.append((p, max(min(p, reach - n - p), 0)))
    return tuple(out)


def _conv_padding(ctx: _Ctx, m: nn.Conv2d, x: _T) -> tuple[str, tuple]:
    """``("same" | "valid", explicit pads)``: how the Keras form pads what ``m`` pads.

    The zoo's convolutions pad like TensorFlow (``same``/``valid``) or, given ``padding=p``, as
    PyTorch does: symmetric pads become ``same`` where they read the same pixels (stride 1, odd
    kernel), else an explicit ``ZeroPadding2D`` (the rows no window reads trimmed, see
    :func:`_used_pads`) before a ``valid`` convolution.
    """
    kernel, stride, dilation = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
    zoo_conv = isinstance(m, (tl.Conv2d, tl.BinaryConv2d))
    pads = m.padding
    if zoo_conv and m.same:
        return "same", ((0, 0), (0, 0))
    if pads == "same" and stride == (1, 1):
        return "same", ((0, 0), (0, 0))
    if pads == "valid" or _pair(pads) == (0, 0):
        return "valid", ((0, 0), (0, 0))
    if isinstance(pads, str):
        raise ctx.fail(f"nn.Conv2d with padding={pads!r} and stride {stride}")
    size, pads = tuple(x.t.shape[-2:]), _pair(pads)
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    if all(_same_equivalent(n, k, s, p, (n + 2 * p - k) // s + 1) for n, k, s, p in zip(size, effective, stride, pads)):
        return "same", ((0, 0), (0, 0))
    return "valid", _used_pads(size, effective, stride, pads)


def _conv(ctx: _Ctx, m: nn.Conv2d, x: _T) -> _T:
    """Any 2-D convolution of the zoo: binary (larq), float, depthwise or grouped."""
    if x.ndim != 4:
        raise ctx.fail(f"{type(m).__name__} on a {x.ndim}-D input")
    if _pair(m.dilation) != (1, 1) and not isinstance(m, tl.BinaryConv2d):
        raise ctx.fail(f"{type(m).__name__} with dilation {m.dilation}")
    if m.padding_mode != "zeros":
        raise ctx.fail(f"{type(m).__name__} with padding_mode={m.padding_mode!r}")
    k = x.k if x.perm == NHWC else _to_perm(x, NHWC)
    path, kernel, stride = ctx.path, _pair(m.kernel_size), _pair(m.stride)
    padding, explicit = _conv_padding(ctx, m, x)
    if any(map(any, explicit)):
        # Zeros on the real input: a binary conv's input quantizer turns them into its sign of 0
        # (kl.binary_conv corrects the border where the module pads with another value).
        k = K.ZeroPadding2D(explicit, name=ctx.name + "_pad")(k)
    if isinstance(m, tl.BinaryConv2d):
        for q in (m.input_quantizer, m.weight_quantizer):
            if q is not None and q not in kl.QUANTIZERS:
                raise ctx.fail(f"BinaryConv2d with quantizer {q!r}",
                               f"(larq forms exist for {', '.join(sorted(kl.QUANTIZERS))})")
        try:
            layer = ctx.module_layer(lambda: kl.binary_conv(
                m.out_channels, kernel, stride, name=path, groups=m.groups, pad_value=m.pad_value,
                input_quantizer=m.input_quantizer, weight_quantizer=m.weight_quantizer, clip=m.clip,
                binary=m.is_binary, dilation=_pair(m.dilation), padding=padding, padded=explicit))
        except ValueError as e:
            raise ctx.fail(f"BinaryConv2d with padding={m.padding[0]}", f"({e})") from None
        return _T(layer(k), NHWC, x.t)
    bias = m.bias is not None
    if m.groups == 1:
        layer = ctx.module_layer(lambda: K.Conv2D(m.out_channels, kernel, strides=stride, padding=padding,
                                                  use_bias=bias, name=path))
    elif m.groups == m.in_channels and m.out_channels % m.in_channels == 0:
        layer = ctx.module_layer(lambda: K.DepthwiseConv2D(
            kernel, stride, padding=padding, depth_multiplier=m.out_channels // m.in_channels, use_bias=bias,
            name=path))
    else:
        if bias:
            raise ctx.fail("a grouped float convolution with a bias")
        if kernel[0] != kernel[1] or stride[0] != stride[1]:
            raise ctx.fail(f"a grouped convolution with a non-square kernel {kernel} or stride {stride}")
        layer = ctx.module_layer(lambda: kl.GroupConv2D(m.out_channels, kernel[0], stride[0], m.groups,
                                                        padding=padding, name=path))
    layer.trainable = m.weight.requires_grad  # QuickNet's frozen blur-pool filters
    return _T(layer(k), NHWC, x.t)


def _batch_norm(ctx: _Ctx, m: nn.modules.batchnorm._BatchNorm, x: _T) -> Any:
    if not m.track_running_stats or m.momentum is None:
        raise ctx.fail(f"{type(m).__name__} without running statistics or with momentum=None")
    axis = _keras_axis_arg(x.perm.index(1), x.ndim)
    layer = ctx.module_layer(lambda: kl.batch_norm(name=ctx.path, momentum=1.0 - m.momentum, epsilon=m.eps,
                                                   axis=axis, affine=m.affine, scale=m.weight is not None,
                                                   center=m.bias is not None))
    return layer(x.k)


def _linear(ctx: _Ctx, m: nn.Linear, x: _T) -> _T:
    k = x.k if x.perm[-1] == x.ndim - 1 else _to_perm(x, tuple(range(x.ndim)))
    perm = x.perm if x.perm[-1] == x.ndim - 1 else tuple(range(x.ndim))
    layer = ctx.module_layer(lambda: K.Dense(m.out_features, use_bias=m.bias is not None, name=ctx.path))
    return _T(layer(k), perm, x.t)  # .t replaced by the caller


def _prelu(ctx: _Ctx, m: nn.PReLU, x: _T) -> Any:
    channel = x.perm.index(1) if x.ndim > 1 else None
    shared = [a for a in range(1, x.ndim) if m.num_parameters == 1 or a != channel]
    init = float(getattr(m, "init", 0.25))
    layer = ctx.module_layer(lambda: K.PReLU(tf.keras.initializers.Constant(init), shared_axes=shared or None,
                                             name=ctx.path))
    return layer(x.k)


def _learnable_bias(ctx: _Ctx, m: tl.LearnableBias, x: _T) -> Any:
    axis = _keras_axis_arg(x.perm.index(1), x.ndim)
    return ctx.module_layer(lambda: kl.LearnableBias(axis=axis, name=ctx.path))(x.k)


def _learned_rescale(ctx: _Ctx, m: tl.LearnedRescale, conv_input: _T, conv_output: _T) -> _T:
    layer = ctx.module_layer(lambda: kl.LearnedRescale(name=ctx.path))
    return _T(layer(_to_perm(conv_output, NHWC)), NHWC, conv_output.t)


def _stateless(make: Callable[[nn.Module], Any]) -> Callable:
    def handler(ctx: _Ctx, m: nn.Module, x: _T) -> Any:
        return ctx.module_layer(lambda: make(m, ctx.path))(x.k)
    return handler


def _hardtanh(lo: float, hi: float, k: Any) -> Any:
    if (lo, hi) == (0.0, 6.0):
        return K.ReLU(6.0)(k)
    return tf.clip_by_value(k, lo, hi)


def _same_equivalent(size: int, kernel: int, stride: int, left: int, out: int) -> bool:
    """Whether a pool with ``left`` padding and ``out`` outputs sees TensorFlow's ``same`` windows."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return out == math.ceil(size / stride) and left == total // 2


def _pool(ctx: _Ctx, kind: str, x: _T, out: torch.Tensor, kernel: Any, stride: Any, padding: Any,
          ceil_mode: bool, dilation: Any = 1, count_include_pad: bool = True, divisor_override: Any = None) -> _T:
    """nn.MaxPool2d / nn.AvgPool2d (and their functional forms) as Keras pooling."""
    if x.ndim != 4:
        raise ctx.fail(f"{kind} pooling of a {x.ndim}-D input")
    kernel, padding = _pair(kernel), _pair(padding)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    if _pair(dilation) != (1, 1) or divisor_override:
        raise ctx.fail(f"{kind} pooling with dilation or divisor_override")
    k = _to_perm(x, NHWC)
    size, osize = tuple(x.t.shape[2:]), tuple(out.shape[2:])
    Pool = K.MaxPool2D if kind == "max" else K.AveragePooling2D
    if padding == (0, 0) and not ceil_mode:
        return _T(Pool(kernel, stride, padding="valid", name=ctx.name)(k), NHWC, out)
    same = all(_same_equivalent(size[i], kernel[i], stride[i], padding[i], osize[i]) for i in range(2))
    if same and (kind == "max" or not count_include_pad or padding == (0, 0)):
        return _T(Pool(kernel, stride, padding="same", name=ctx.name)(k), NHWC, out)
    if kind == "avg":
        raise ctx.fail(f"average pooling with padding {padding} / ceil_mode={ceil_mode}",
                       "(only what TensorFlow's 'valid' or 'same' computes)")
    # Max pooling: pad with -inf as PyTorch does (ceil mode: extra windows at the bottom/right).
    right = [max((osize[i] - 1) * stride[i] + kernel[i] - size[i] - padding[i], 0) for i in range(2)]
    k = tf.pad(k, [[0, 0], [padding[0], right[0]], [padding[1], right[1]], [0, 0]], constant_values=-np.inf)
    return _T(Pool(kernel, stride, padding="valid", name=ctx.name)(k), NHWC, out)


def _adaptive(ctx: _Ctx, kind: str, x: _T, out: torch.Tensor) -> _T:
    if x.ndim != 4:
        raise ctx.fail(f"adaptive {kind} pooling of a {x.ndim}-D input")
    size, osize = tuple(x.t.shape[2:]), tuple(out.shape[2:])
    k = _to_perm(x, NHWC)
    if osize == (1, 1):
        Global = K.GlobalMaxPooling2D if kind == "max" else K.GlobalAveragePooling2D
        return _T(Global(keepdims=True, name=ctx.name)(k), NHWC, out)
    if all(s % o == 0 for s, o in zip(size, osize)):
        kernel = tuple(s // o for s, o in zip(size, osize))
        Pool = K.MaxPool2D if kind == "max" else K.AveragePooling2D
        return _T(Pool(kernel, kernel, padding="valid", name=ctx.name)(k), NHWC, out)
    raise ctx.fail(f"adaptive {kind} pooling from {size} to {osize}", "(sizes must divide)")


def _module_pool(kind: str) -> Callable:
    def handler(ctx: _Ctx, m: nn.Module, x: _T, *, out: torch.Tensor) -> _T:
        if kind == "max":
            if m.return_indices:
                raise ctx.fail("MaxPool2d with return_indices")
            return _pool(ctx, "max", x, out, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)
        return _pool(ctx, "avg", x, out, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                     count_include_pad=m.count_include_pad, divisor_override=m.divisor_override)
    return handler


def _module_adaptive(kind: str) -> Callable:
    def handler(ctx: _Ctx, m: nn.Module, x: _T, *, out: torch.Tensor) -> _T:
        return _adaptive(ctx, kind, x, out)
    return handler


def _module_flatten(ctx: _Ctx, m: nn.Flatten, x: _T, *, out: torch.Tensor) -> _T:
    return _reshape(ctx, x, out)


# Module type -> handler(ctx, module, *inputs[, out=]) returning a Keras tensor (same layout as the
# first input) or a _T. Leaves of the trace: these modules are never traced into.
MODULES: dict[type, Callable] = {
    tl.BinaryConv2d: _conv,
    tl.Conv2d: _conv,
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _batch_norm,
    tl.BatchNorm2d: _batch_norm,
    nn.BatchNorm1d: _batch_norm,
    nn.Linear: _linear,
    nn.PReLU: _prelu,
    tl.LearnedRescale: _learned_rescale,
    tl.LearnableBias: _learnable_bias,
    tl.RSign: _learnable_bias,
    nn.ReLU: _stateless(lambda m, name: K.ReLU(name=name)),
    nn.ReLU6: _stateless(lambda m, name: K.ReLU(6.0, name=name)),
    nn.LeakyReLU: _stateless(lambda m, name: K.LeakyReLU(alpha=m.negative_slope, name=name)),
    nn.Tanh: _stateless(lambda m, name: K.Activation("tanh", name=name)),
    nn.Sigmoid: _stateless(lambda m, name: K.Activation("sigmoid", name=name)),
    nn.Hardtanh: lambda ctx, m, x: _hardtanh(m.min_val, m.max_val, x.k),
    nn.Identity: lambda ctx, m, x: x.k,
    nn.Dropout: _stateless(lambda m, name: K.Dropout(m.p, name=name)),
    nn.MaxPool2d: _module_pool("max"),
    nn.AvgPool2d: _module_pool("avg"),
    nn.AdaptiveAvgPool2d: _module_adaptive("avg"),
    nn.AdaptiveMaxPool2d: _module_adaptive("max"),
    nn.Flatten: _module_flatten,
}
_WANTS_OUT = {nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten}


# --- functions and methods ------------------------------------------------------------------------------

def _bind(args: tuple, kwargs: dict, names: Sequence[str], defaults: dict) -> dict:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


def _elementwise(op: str) -> Callable:
    layers = {"add": K.Add, "sub": K.Subtract, "mul": K.Multiply}
    fns = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}

    def handler(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
        a, b = args[0], args[1]
        if kwargs.get("alpha", 1) != 1:
            raise ctx.fail(f"{op} with alpha")
        if isinstance(a, _T) and isinstance(b, _T):
            if a.ndim != b.ndim:
                raise ctx.fail(f"{op} of a {a.ndim}-D and a {b.ndim}-D tensor", "(broadcast tensors of equal rank)")
            kb = b.k if b.perm == a.perm else _to_perm(b, a.perm)
            if op in layers:
                return _T(layers[op](name=ctx.name)([a.k, kb]), a.perm, out)
            return _T(tf.math.divide(a.k, kb), a.perm, out)
        tensor = a if isinstance(a, _T) else b
        other = b if tensor is a else a
        if isinstance(other, torch.Tensor):
            if other.numel() != 1:
                raise ctx.fail(f"{op} with a constant tensor", "(use a module holding the weight)")
            other = float(other)
        if not isinstance(other, (int, float)):
            raise ctx.fail(f"{op} with {type(other).__name__}")
        ka, kb = (tensor.k, other) if tensor is a else (other, tensor.k)
        return _T(fns[op](ka, kb), tensor.perm, out)
    return handler


def _neg(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    return _T(-args[0].k, args[0].perm, out)


def _cat(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    b = _bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    xs = list(b["tensors"])
    if not all(isinstance(x, _T) for x in xs):
        raise ctx.fail("cat of a constant")
    first = xs[0]
    axis = _axis(ctx, first, b["dim"])
    ks = [x.k if x.perm == first.perm else _to_perm(x, first.perm) for x in xs]
    return _T(K.Concatenate(axis=_keras_axis_arg(axis, first.ndim), name=ctx.name)(ks), first.perm, out)


def _index(ctx: _Ctx, v: _T, index: Any, out: torch.Tensor) -> _T:
    """Basic indexing (slices, ints, None, ...) of ``v``, mapped through its layout."""
    items = list(index) if isinstance(index, tuple) else [index]
    if any(not (isinstance(i, (slice, int)) or i is None or i is Ellipsis) for i in items):
        raise ctx.fail("advanced (tensor or list) indexing")
    real = sum(isinstance(i, (slice, int)) for i in items)
    if Ellipsis in items:
        e = items.index(Ellipsis)
        items[e:e + 1] = [slice(None)] * (v.ndim - real)
    items += [slice(None)] * (v.ndim - sum(isinstance(i, (slice, int)) for i in items))
    per_dim, dim, inserted = {}, 0, False
    for i in items:
        if i is None:
            inserted = True
            continue
        per_dim[dim] = i
        dim += 1
    if per_dim.get(0, slice(None)) != slice(None):
        raise ctx.fail("indexing along the batch dim")
    k = v.k
    kidx = tuple(per_dim[d] for d in v.perm)
    if any(i != slice(None) for i in kidx):
        while len(kidx) > 1 and kidx[-1] == slice(None) and not isinstance(kidx[-1], int):
            kidx = kidx[:-1]
        k = k[kidx]
    dropped = [d for d, i in per_dim.items() if isinstance(i, int)]
    w = _T(k, _dims_after_reduce(v.perm, dropped), out if not inserted else v.t[tuple(
        i for i in items if i is not None)])
    return _reshape(ctx, w, out) if inserted else w


def _getitem(ctx: _Ctx, args: tuple, kwargs: dict, out: Any) -> Any:
    x, index = args
    if isinstance(x, _T):
        return _index(ctx, x, index, out)
    return operator.getitem(x, index)


def _split_like(ctx: _Ctx, v: _T, dim: int, out: Sequence[torch.Tensor]) -> tuple:
    axis = _axis(ctx, v, dim)
    pieces, start = [], 0
    for o in out:
        n = o.shape[dim]
        idx = tuple(slice(start, start + n) if a == axis else slice(None) for a in range(axis + 1))
        pieces.append(_T(v.k[idx], v.perm, o))
        start += n
    return tuple(pieces)


def _split(ctx: _Ctx, args: tuple, kwargs: dict, out: Any) -> tuple:
    b = _bind(args, kwargs, ("tensor", "split_size_or_sections", "dim"), {"dim": 0})
    return _split_like(ctx, b["tensor"], b["dim"], out)


def _chunk(ctx: _Ctx, args: tuple, kwargs: dict, out: Any) -> tuple:
    b = _bind(args, kwargs, ("input", "chunks", "dim"), {"dim": 0})
    return _split_like(ctx, b["input"], b["dim"], out)


def _reduce(kind: str) -> Callable:
    def handler(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
        b = _bind(args, kwargs, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        v, dims, keep = b["input"], b["dim"], b["keepdim"]
        if dims is None or b.get("dtype") is not None:
            raise ctx.fail(f"{kind} over every dim (the batch too)" if dims is None else f"{kind} with dtype")
        dims = sorted({d % v.ndim for d in ((dims,) if isinstance(dims, int) else dims)})
        axes = [_axis(ctx, v, d) for d in dims]
        if kind == "mean" and v.perm == NHWC and sorted(axes) == [1, 2]:
            return _T(K.GlobalAveragePooling2D(keepdims=keep, name=ctx.name)(v.k), NHWC if keep else (0, 1), out)
        fn = {"mean": tf.reduce_mean, "sum": tf.reduce_sum, "amax": tf.reduce_max}[kind]
        k = fn(v.k, axis=axes, keepdims=keep)
        return _T(k, v.perm if keep else _dims_after_reduce(v.perm, dims), out)
    return handler


def _permute(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    v, *rest = args
    dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
    dims = tuple(kwargs.get("dims", dims))
    dims = tuple(d % v.ndim for d in dims)
    if dims[0] != 0:
        raise ctx.fail("a permute that moves the batch dim")
    # keras == t.permute(perm) and out == t.permute(dims)  =>  keras == out.permute(dims.index(perm[j])).
    return _T(v.k, tuple(dims.index(p) for p in v.perm), out)


def _transpose(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    b = _bind(args, kwargs, ("input", "dim0", "dim1"), {})
    v = b["input"]
    dims = list(range(v.ndim))
    d0, d1 = b["dim0"] % v.ndim, b["dim1"] % v.ndim
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(ctx, (v, tuple(dims)), {}, out)


def _reshape_fn(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    return _reshape(ctx, args[0], out)


def _same(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    return _T(args[0].k, args[0].perm, out)


def _activation(make: Callable[[Any, tuple, dict], Any]) -> Callable:
    def handler(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
        return _T(make(ctx, args, kwargs), args[0].perm, out)
    return handler


def _leaky(ctx: _Ctx, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "negative_slope"), {"negative_slope": 0.01})
    return K.LeakyReLU(alpha=b["negative_slope"], name=ctx.name)(args[0].k)


def _hardtanh_fn(ctx: _Ctx, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "min_val", "max_val"), {"min_val": -1.0, "max_val": 1.0})
    return _hardtanh(b["min_val"], b["max_val"], args[0].k)


def _clamp_fn(ctx: _Ctx, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    if not all(isinstance(b[k], (int, float)) for k in ("min", "max")):
        raise ctx.fail("clamp without both numeric bounds")
    return _hardtanh(float(b["min"]), float(b["max"]), args[0].k)


def _dropout(ctx: _Ctx, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "p"), {"p": 0.5})
    return K.Dropout(b["p"], name=ctx.name)(args[0].k)


def _max_pool_fn(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    b = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
              {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
    if b["return_indices"]:
        raise ctx.fail("max_pool2d with return_indices")
    return _pool(ctx, "max", b["input"], out, b["kernel_size"], b["stride"], b["padding"], b["ceil_mode"],
                 b["dilation"])


def _avg_pool_fn(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    b = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                             "divisor_override"),
              {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None})
    return _pool(ctx, "avg", b["input"], out, b["kernel_size"], b["stride"], b["padding"], b["ceil_mode"],
                 count_include_pad=b["count_include_pad"], divisor_override=b["divisor_override"])


def _adaptive_fn(kind: str) -> Callable:
    def handler(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
        return _adaptive(ctx, kind, args[0], out)
    return handler


def _pool_same_fn(kind: str) -> Callable:
    """The zoo's ``max_pool_same`` / ``avg_pool_same``: TensorFlow's ``padding="same"`` pooling."""
    Pool = K.MaxPool2D if kind == "max" else K.AveragePooling2D

    def handler(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
        b = _bind(args, kwargs, ("x", "kernel_size", "stride"), {})
        k = _to_perm(b["x"], NHWC)
        return _T(Pool(b["kernel_size"], b["stride"], padding="same", name=ctx.name)(k), NHWC, out)
    return handler


def _max_pool_ceil(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    # ceil_mode=True of a 2x2/2 pool pads odd sides bottom/right, as "same" does.
    return _T(K.MaxPool2D(2, strides=2, padding="same", name=ctx.name)(_to_perm(args[0], NHWC)), NHWC, out)


def _channel_shuffle(ctx: _Ctx, args: tuple, kwargs: dict, out: torch.Tensor) -> _T:
    """ShuffleNet's shuffle on NHWC: the Reshape -> Permute -> Reshape LCE runs as reshapes and one transpose."""
    b = _bind(args, kwargs, ("x", "groups"), {})
    v, groups = b["x"], b["groups"]
    if groups == 1:
        return _T(v.k, v.perm, out)
    k = _to_perm(v, NHWC)
    _, c, h, w = v.t.shape
    k = K.Reshape((h, w, groups, c // groups), name=ctx.name + "_split")(k)
    k = K.Permute((1, 2, 4, 3), name=ctx.name + "_swap")(k)
    return _T(K.Reshape((h, w, c), name=ctx.name)(k), NHWC, out)


_ADD, _SUB, _MUL, _DIV = (_elementwise(op) for op in ("add", "sub", "mul", "div"))
_RELU = _activation(lambda ctx, a, kw: K.ReLU(name=ctx.name)(a[0].k))
_RELU6 = _activation(lambda ctx, a, kw: K.ReLU(6.0, name=ctx.name)(a[0].k))
_TANH = _activation(lambda ctx, a, kw: K.Activation("tanh", name=ctx.name)(a[0].k))
_SIGMOID = _activation(lambda ctx, a, kw: K.Activation("sigmoid", name=ctx.name)(a[0].k))

# Function -> handler(ctx, args, kwargs, out). Leaf helpers of the family files are listed here
# too: the tracer keeps them as one node each (their padding tricks have direct Keras forms).
FUNCTIONS: dict[Callable, Callable] = {
    operator.add: _ADD, operator.iadd: _ADD, torch.add: _ADD,
    operator.sub: _SUB, operator.isub: _SUB, torch.sub: _SUB,
    operator.mul: _MUL, operator.imul: _MUL, torch.mul: _MUL,
    operator.truediv: _DIV, torch.div: _DIV,
    operator.neg: _neg,
    operator.getitem: _getitem,
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    torch.split: _split, torch.chunk: _chunk,
    torch.mean: _reduce("mean"), torch.sum: _reduce("sum"), torch.amax: _reduce("amax"),
    torch.flatten: _reshape_fn, torch.reshape: _reshape_fn, torch.squeeze: _reshape_fn, torch.unsqueeze: _reshape_fn,
    torch.permute: _permute, torch.transpose: _transpose,
    F.relu: _RELU, torch.relu: _RELU, F.relu6: _RELU6,
    F.leaky_relu: _activation(_leaky), F.hardtanh: _activation(_hardtanh_fn),
    torch.clamp: _activation(_clamp_fn), torch.clip: _activation(_clamp_fn),
    torch.tanh: _TANH, F.tanh: _TANH, torch.sigmoid: _SIGMOID, F.sigmoid: _SIGMOID,
    F.dropout: _activation(_dropout),
    F.max_pool2d: _max_pool_fn, F.avg_pool2d: _avg_pool_fn,
    F.adaptive_avg_pool2d: _adaptive_fn("avg"), F.adaptive_max_pool2d: _adaptive_fn("max"),
    tl.max_pool_same: _pool_same_fn("max"), tl.avg_pool_same: _pool_same_fn("avg"),
    tl.max_pool_ceil: _max_pool_ceil, tl.channel_shuffle: _channel_shuffle,
}
# The zoo's own helpers in FUNCTIONS (not torch's or operator's) are the leaves the tracer wraps.
_LEAF_FUNCTIONS = tuple(f for f in FUNCTIONS if inspect.isfunction(f)
                        and not f.__module__.startswith(("torch", "_operator", "operator")))

# Tensor method name -> handler(ctx, args, kwargs, out); args[0] is the tensor.
METHODS: dict[str, Callable] = {
    "add": _ADD, "add_": _ADD, "sub": _SUB, "mul": _MUL, "mul_": _MUL, "div": _DIV,
    "mean": _reduce("mean"), "sum": _reduce("sum"), "amax": _reduce("amax"),
    "flatten": _reshape_fn, "view": _reshape_fn, "reshape": _reshape_fn, "squeeze": _reshape_fn,
    "unsqueeze": _reshape_fn,
    "permute": _permute, "transpose": _transpose, "split": _split, "chunk": _chunk,
    "clamp": _activation(_clamp_fn), "clip": _activation(_clamp_fn),
    "relu": _RELU, "relu_": _RELU, "tanh": _TANH, "sigmoid": _SIGMOID,
    "contiguous": _same, "clone": _same,
}
# What a tensor's shape questions return: PyTorch's answer on the sample (a constant of the graph).
_SHAPE_METHODS = {"size", "dim"}
_SHAPE_ATTRS = {"shape", "ndim"}


# --- tracing and the walk ----------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """Keeps the zoo's layers (every module of ``MODULES``) and helper functions as leaves."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=_LEAF_FUNCTIONS)
        # Also wrap them where they are defined, so `layers.channel_shuffle(...)` called by a family is a leaf too.
        self._autowrap_search = [*self._autowrap_search,
                                 *{inspect.getmodule(f) for f in _LEAF_FUNCTIONS if inspect.getmodule(f)}]

    def trace(self, root, concrete_args=None):  # type: ignore[override]
        # fx looks for leaf functions in the globals of the root's forward only; a forward inherited
        # from a mixin (ClassifierMixin) calls methods defined in the family's file: search the files
        # of every class of the model too.
        if isinstance(root, nn.Module):
            files = {sys.modules.get(c.__module__) for m in root.modules() for c in type(m).__mro__
                     if not c.__module__.startswith(("torch", "builtins"))}
            self._autowrap_search = [*self._autowrap_search,
                                     *(f for f in files if f is not None and f not in self._autowrap_search)]
        return super().trace(root, concrete_args)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in MODULES or super().is_leaf_module(m, qualname)


def _trace(module: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(module)
    except Exception as e:  # fx raises plain exceptions for data-dependent control flow and the like
        msg = " ".join(str(e).split())
        raise UnsupportedOpError(f"cannot trace {type(module).__name__} with torch.fx ({type(e).__name__}: "
                                 f"{msg[:300]}); the forward must not branch on tensor values") from None
    return fx.GraphModule(module, graph)


def _torch_value(a: Any) -> Any:
    return fx.node.map_aggregate(a, lambda x: x.t if isinstance(x, _T) else x)


def _has_tensor(a: Any) -> bool:
    found = []
    fx.node.map_aggregate(a, lambda x: found.append(x) if isinstance(x, _T) else x)
    return bool(found)


def _run(node: fx.Node, gm: fx.GraphModule, args: tuple, kwargs: dict) -> Any:
    targs, tkwargs = _torch_value(args), _torch_value(kwargs)
    if node.op == "call_module":
        return gm.get_submodule(node.target)(*targs, **tkwargs)
    if node.op == "call_function":
        return node.target(*targs, **tkwargs)
    self_obj, *rest = targs
    return getattr(self_obj, node.target)(*rest, **tkwargs)


def _handler_for_module(m: nn.Module) -> Optional[Callable]:
    for cls in type(m).__mro__:
        if cls in MODULES:
            return MODULES[cls]
    return None


def _translate_node(ctx: _Ctx, node: fx.Node, args: tuple, kwargs: dict, out: Any) -> Any:
    if node.op == "call_module":
        m = ctx.gm.get_submodule(node.target)
        handler = _handler_for_module(m)
        if handler is None:
            raise ctx.fail(f"module {type(m).__module__}.{type(m).__name__}")
        if not args or not isinstance(args[0], _T) or any(isinstance(a, _T) for a in kwargs.values()):
            raise ctx.fail(f"{type(m).__name__} called with these arguments")
        wants_out = type(m) in _WANTS_OUT or any(c in _WANTS_OUT for c in type(m).__mro__)
        got = handler(ctx, m, *args, **kwargs, out=out) if wants_out else handler(ctx, m, *args, **kwargs)
        if isinstance(got, _T):
            return _T(got.k, got.perm, out)
        return _T(got, args[0].perm, out)
    if node.op == "call_method":
        name = node.target
        if name in _SHAPE_METHODS:
            return out
        handler = METHODS.get(name)
        if handler is None:
            raise ctx.fail(f"Tensor.{name}")
        return handler(ctx, args, kwargs, out)
    fn = node.target
    if fn is getattr:
        if args[1] in _SHAPE_ATTRS:
            return out
        raise ctx.fail(f"the tensor attribute {args[1]!r}")
    handler = FUNCTIONS.get(fn)
    if handler is None:
        raise ctx.fail(_fn_name(fn))
    return handler(ctx, args, kwargs, out)


def translate(module: nn.Module, input_size: Optional[int] = None, *, copy_weights: bool = True,
              name: Optional[str] = None, in_channels: int = 3) -> tf.keras.Model:
    """The Larq/Keras functional model computing what ``module`` computes.

    Args:
        module: A PyTorch module built from the zoo's layers and plain torch ops
            (registered in the zoo or not). It is not modified.
        input_size: Side of the square NHWC input the Keras model takes; defaults to
            ``module.zoo_config.input_size``.
        copy_weights: Give the Keras model the module's weights (else Keras' initial ones).
        name: Keras model name (default: the config's name or the class name).
        in_channels: Channels of the input image.

    Returns:
        A ``tf.keras.Model`` taking ``(N, input_size, input_size, in_channels)`` and
        returning what the module returns (in PyTorch's layout).

    Raises:
        UnsupportedOpError: An op has no Keras form here (the message names the module
            path and the op, and lists what is supported).
        ValueError: No input size is known, or the module does not run at that size.
    """
    from ..weights import input_size_of
    from .transfer import load_state_dict

    cfg = getattr(module, "zoo_config", None)
    size = input_size or input_size_of(module)
    if not size:
        raise ValueError(f"{type(module).__name__} carries no zoo_config or zoo_weights: pass input_size (the square "
                         "input side)")
    gm = _trace(module)
    ctx = _Ctx(gm)
    env: dict[fx.Node, Any] = {}
    sample = torch.randn(SAMPLE_BATCH, in_channels, size, size, generator=torch.Generator().manual_seed(0))
    inputs, outputs = None, None
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for node in gm.graph.nodes:
                ctx.node = node
                if node.op == "placeholder":
                    if inputs is not None:
                        if node.args:  # an argument with a default: fx passes the default on
                            env[node] = node.args[0]
                            continue
                        raise UnsupportedOpError(f"cannot translate {type(module).__name__}: its forward takes "
                                                 f"more than one input ({node.name!r}); the translator takes one image")
                    inputs = tf.keras.Input((size, size, in_channels), name=node.name)
                    env[node] = _T(inputs, NHWC, sample)
                    continue
                if node.op == "get_attr":
                    raise ctx.fail(f"the parameter or buffer {node.target!r} used outside a layer",
                                   "(keep weights inside the zoo's layers)")
                if node.op == "output":
                    outputs = fx.node.map_arg(node.args[0], lambda n: env[n])
                    break
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
                try:
                    out = _run(node, gm, args, kwargs)
                except Exception as e:
                    raise ValueError(f"{type(module).__name__} does not run on a {tuple(sample.shape)} input at "
                                     f"{ctx.path} ({type(e).__name__}: {' '.join(str(e).split())[:200]}): "
                                     f"translate it at the input size it was built for") from None
                if not _has_tensor((args, kwargs)):
                    env[node] = out  # shape arithmetic: a constant of the graph
                    continue
                env[node] = _translate_node(ctx, node, args, kwargs, out)
    finally:
        module.train(was_training)

    def final(v: Any) -> Any:
        if not isinstance(v, _T):
            raise UnsupportedOpError(f"cannot translate {type(module).__name__}: it returns {type(v).__name__}, "
                                     "not a tensor")
        return _to_perm(v, tuple(range(v.ndim)))

    keras_outputs = [final(v) for v in outputs] if isinstance(outputs, (tuple, list)) else final(outputs)
    model = tf.keras.Model(inputs, keras_outputs, name=name or getattr(cfg, "name", None) or type(module).__name__)
    if copy_weights:
        load_state_dict(model, module.state_dict())
    return model
