"""bnnzoo: binary neural networks in PyTorch and Larq/Keras, with verified exports.

``import zoo`` imports neither PyTorch nor TensorFlow; each is imported when a
model of that framework is first built.

Example:
    >>> import zoo
    >>> zoo.list_models("meliusnet*")
    >>> model = zoo.load("meliusnet22")               # torch.nn.Module, eval mode
    >>> twin = zoo.to_keras(model)                     # same weights, same outputs
"""

from .api import FRAMEWORKS, build, load, to_keras, to_torch
from .registry import ModelConfig, UnknownModelError, get_config, list_models, register_model
from .weights import WeightMismatchError

__all__ = [
    "FRAMEWORKS", "ModelConfig", "UnknownModelError", "WeightMismatchError", "build", "get_config",
    "list_models", "load", "register_model", "to_keras", "to_torch", "measure",
]
__version__ = "0.1.0"


def measure(model, input_size=None):
    """Figures of a zoo PyTorch model (see ``zoo.figures``)."""
    from .figures import measure as _measure

    return _measure(model, input_size)
