"""The public entry points: ``load``, ``to_keras``, ``to_torch``.

Frameworks are imported only inside these functions, so ``import zoo`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

from .registry import ModelConfig, get_config

__all__ = ["load", "build", "to_keras", "to_torch", "FRAMEWORKS"]

FRAMEWORKS = ("torch", "keras")


def build(cfg: ModelConfig, framework: str = "torch"):
    """Builds the architecture ``cfg`` describes, with freshly initialised weights.

    Each family is written once, in PyTorch (``zoo/torch/<family>.py``); its Keras model
    is that module translated by ``zoo.keras.translate`` (Keras' own initial weights).
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    model = importlib.import_module(f"zoo.torch.{cfg.family}").build(cfg)
    if framework == "keras":
        from .keras.translate import translate

        model = translate(model, cfg.input_size, copy_weights=False, name=cfg.name or cfg.family)
    model.zoo_config = cfg
    return model


def load(name: str, *, framework: str = "torch", weights: Optional[str] = None,
         num_classes: Optional[int] = None, input_size: Optional[int] = None, **arch: Any):
    """Builds a registered model, optionally with weights.

    Args:
        name: A registered name (``zoo.list_models()``), optionally with a weights
            tag: ``"meliusnet22.mnist"``.
        framework: ``"torch"`` (an ``nn.Module`` in eval mode) or ``"keras"``.
        weights: ``None`` for initialised weights, ``"default"``, a weights tag,
            ``"hf-hub:owner/repo[@revision]"`` or a path to a ``.safetensors`` file.
        num_classes: Overrides the classifier size.
        input_size: Overrides the input side the model is built and measured for.
        **arch: Overrides of the architecture's own options (see ``get_config``).

    Returns:
        The model; ``model.zoo_config`` holds the config it was built from.

    Raises:
        UnknownModelError: ``name`` is not registered.
        ValueError: Unknown framework, or weights that do not fit the architecture.
    """
    from . import weights as _weights

    if "." in name and weights is None:
        name, weights = name.split(".", 1)
    cfg = get_config(name).replace(num_classes=num_classes, input_size=input_size, **arch)
    state = None
    if weights is not None:
        state, cfg = _weights.resolve(cfg, weights, explicit_classes=num_classes is not None)
    model = build(cfg, framework)
    if state is not None:
        _load_state(model, state, framework)
    if framework == "torch":
        model.eval()
    return model


def _load_state(model, state, framework: str) -> None:
    from .weights import WeightMismatchError

    if framework == "keras":
        from .keras.transfer import load_state_dict

        load_state_dict(model, state)
        return
    import torch

    own = model.state_dict()
    tensors = {k: torch.as_tensor(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in tensors if k not in own]
    wrong = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:1]}" if missing else f"unexpected {unexpected[:1]}" if unexpected
                  else f"{wrong[0]!r} has shape {tuple(tensors[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise WeightMismatchError(
            f"weights do not fit {model.zoo_config.name} ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} wrongly shaped; {detail}): load them into the architecture they were saved from"
        )
    model.load_state_dict(tensors, strict=False)


def to_keras(model, input_size: Optional[int] = None):
    """The Larq/Keras model of a PyTorch model, with the same weights and outputs.

    Args:
        model: Any ``nn.Module`` built from the zoo's layers and plain torch ops, registered
            in the zoo or not (see ``zoo.keras.translate`` for the vocabulary).
        input_size: Side of the square input; defaults to ``model.zoo_config.input_size``
            (required for a module that carries no config).

    Returns:
        A ``tf.keras.Model`` taking NHWC images; weight layers are named after the module
        paths. It carries ``zoo_config`` when the module does.

    Raises:
        zoo.keras.translate.UnsupportedOpError: The module uses an op outside the vocabulary.
        ValueError: No input size is known, or the module does not run at it.
    """
    from .keras.translate import translate

    keras_model = translate(model, input_size)
    cfg = getattr(model, "zoo_config", None)
    if isinstance(cfg, ModelConfig):
        keras_model.zoo_config = cfg if input_size in (None, cfg.input_size) else cfg.replace(input_size=input_size)
    return keras_model


def to_torch(model):
    """The PyTorch twin of a zoo Keras model, with the same weights (eval mode)."""
    from .keras.transfer import state_dict

    cfg = _config_of(model)
    torch_model = build(cfg, "torch")
    _load_state(torch_model, state_dict(model), "torch")
    return torch_model.eval()


def _config_of(model) -> ModelConfig:
    cfg = getattr(model, "zoo_config", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError("expected a model built by zoo.load or zoo.build (it carries .zoo_config)")
    return cfg
