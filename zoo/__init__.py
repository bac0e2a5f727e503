"""bnnzoo: binary neural networks in PyTorch and Larq/Keras, with verified exports.

``import zoo`` imports neither PyTorch nor TensorFlow; each is imported when a
model of that framework is first built.

Example:
    >>> import zoo
    >>> zoo.list_models("meliusnet*")
    >>> model = zoo.load("meliusnet22", pretrained=True)  # its default weights (zoo.list_weights)
    >>> x = zoo.transforms(model)(pil_image)[None]        # the preprocessing those weights expect
    >>> zoo.decode(model(x)[0], model)                     # [(label, probability), ...], top 5
    >>> twin = zoo.to_keras(model)                         # same weights, same outputs
    >>> zoo.save(model, "run7")                            # model.safetensors + config.json (the record)
    >>> zoo.load("run7")                                   # no architecture to name: config.json has it
"""

from __future__ import annotations

from . import families  # noqa: F401  (registers the built-in variants and their weights)
from .api import FRAMEWORKS, PushResult, build, load, push_to_hub, save, to_keras, to_torch
from .labels import decode
from .refs import Resolved, resolve
from .registry import ModelConfig, UnknownModelError, get_config, is_training_stage, register_model
from .registry import list_models as _list_models
from .transforms import Preprocess, transforms
from .weights import Metric, WeightMismatchError, Weights, list_weights

__all__ = [
    "FRAMEWORKS", "Metric", "ModelConfig", "Preprocess", "PushResult", "Resolved", "UnknownModelError",
    "WeightMismatchError", "Weights", "build", "decode", "get_config", "is_training_stage", "list_models",
    "list_weights", "load", "measure", "push_to_hub", "register_model", "resolve", "save", "to_keras", "to_torch",
    "transforms",
]
__version__ = "0.1.0"


def list_models(pattern: str = "*", *, pretrained: bool = False, include_stages: bool = False) -> list[str]:
    """Registered architectures matching a shell-style ``pattern``, sorted.

    Args:
        pattern: e.g. ``"meliusnet*"``.
        pretrained: Only those with registered weights (``zoo.list_weights(name)``).
        include_stages: Also the training-stage variants (``*_teacher``, ``*_stageN``), which are
            registered for the recipes but are not architectures to deploy.
    """
    names = _list_models(pattern, include_stages=include_stages)
    return [n for n in names if list_weights(n)] if pretrained else names


def measure(model, input_size=None):
    """Figures of a zoo PyTorch model (see ``zoo.figures``)."""
    from .figures import measure as _measure

    return _measure(model, input_size)
