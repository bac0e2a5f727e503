"""Weight transfer between a Keras twin and PyTorch state dicts, by parameter name.

A Keras layer named ``"a.b"`` holding ``kernel`` maps to the PyTorch entry
``"a.b.weight"``; layouts are converted per layer type (NHWC kernels vs OIHW).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from ..weights import WeightMismatchError

__all__ = ["state_dict", "load_state_dict", "WeightMismatchError"]

_TORCH_SUFFIX = {
    "kernel": "weight", "depthwise_kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
    "moving_mean": "running_mean", "moving_variance": "running_var", "alpha": "weight",
}


def _weight_layers(model: tf.keras.Model):
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _weight_layers(layer)
        elif layer.weights:
            yield layer


def _entries(model: tf.keras.Model):
    """Yields (torch key, keras variable, layer) for every weight of the model."""
    seen = set()
    for layer in _weight_layers(model):
        for var in layer.weights:
            if id(var) in seen:
                continue
            seen.add(id(var))
            short = var.name.split("/")[-1].split(":")[0]
            yield f"{layer.name}.{_TORCH_SUFFIX.get(short, short)}", var, layer


def _to_torch(layer, var, value: np.ndarray) -> np.ndarray:
    short = var.name.split("/")[-1].split(":")[0]
    if short == "depthwise_kernel":  # (kh, kw, C, m) -> (C*m, 1, kh, kw)
        kh, kw, c, m = value.shape
        return value.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    if short == "kernel" and value.ndim == 4:  # (kh, kw, in, out) -> (out, in, kh, kw)
        return value.transpose(3, 2, 0, 1)
    if short == "kernel" and value.ndim == 2:  # Dense (in, out) -> (out, in)
        return value.T
    if short == "alpha":  # PReLU (1, 1, C) -> (C,)
        return value.reshape(-1)
    return value


def _to_keras(layer, var, value: np.ndarray) -> np.ndarray:
    short = var.name.split("/")[-1].split(":")[0]
    shape = tuple(var.shape)
    if short == "depthwise_kernel":
        kh, kw, c, m = shape
        return value.reshape(c, m, kh, kw).transpose(2, 3, 0, 1)
    if short == "kernel" and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if short == "kernel" and value.ndim == 2:
        return value.T
    if value.size == int(np.prod(shape)) and value.ndim <= 1:
        return value.reshape(shape)
    return value


def state_dict(model: tf.keras.Model) -> dict[str, np.ndarray]:
    """The Keras model's weights under PyTorch names and layouts."""
    return {key: _to_torch(layer, var, var.numpy()) for key, var, layer in _entries(model)}


def load_state_dict(model: tf.keras.Model, state: Mapping[str, "np.ndarray"]) -> None:
    """Loads PyTorch-named weights into the Keras model; all or nothing.

    Args:
        model: A Keras twin built by ``zoo.load(..., framework="keras")``.
        state: PyTorch names to arrays (tensors are accepted too). Entries the
            Keras side has no use for (``num_batches_tracked``) are ignored.

    Raises:
        WeightMismatchError: A weight is missing, unexpected or has the wrong shape;
            nothing is assigned in that case.
    """
    state = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
             for k, v in state.items() if not k.endswith("num_batches_tracked")}
    updates, missing = [], []
    for key, var, layer in _entries(model):
        if key not in state:
            missing.append(key)
            continue
        value = _to_keras(layer, var, state.pop(key))
        if tuple(value.shape) != tuple(var.shape):
            raise WeightMismatchError(
                f"weight {key!r} has shape {tuple(value.shape)} after layout conversion, "
                f"the model expects {tuple(var.shape)}: the weights are for another architecture or size"
            )
        updates.append((var, value.astype(var.dtype.as_numpy_dtype)))
    if missing or state:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if state:
            parts.append(f"{len(state)} unexpected (e.g. {next(iter(state))!r})")
        raise WeightMismatchError(f"weights do not fit the model: {', '.join(parts)}")
    for var, value in updates:
        var.assign(value)
