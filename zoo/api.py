"""The public entry points: ``load``, ``to_keras``, ``to_torch``.

Frameworks are imported only inside these functions, so ``import zoo`` stays light.
"""

from __future__ import annotations

import importlib
import os
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
    family = importlib.import_module(f"zoo.torch.{cfg.family}")
    _check_size(cfg, family)
    model = family.build(cfg)
    if framework == "keras":
        from .keras.translate import translate

        model = translate(model, cfg.input_size, copy_weights=False, name=cfg.name or cfg.family)
    model.zoo_config = cfg
    return model


MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32; the largest registered architecture has 62 M


def _check_size(cfg: ModelConfig, family) -> None:
    """Refuses, in one line, a config whose model would not fit in memory (``num_classes`` of 10^9 in a
    config.json would otherwise end in an allocation error of a terabyte, or the kernel's OOM killer).

    The model is built on PyTorch's ``meta`` device (shapes, no memory) when the config differs from
    the registered one or its ``tiny`` variant; registered configs are trusted as they are.
    """
    import torch

    try:
        registered = get_config(cfg.name)
        if cfg in (registered, registered.replace(**registered.tiny)):
            return
    except (KeyError, TypeError, ValueError):  # an unregistered name, or overrides that do not apply
        pass
    with torch.device("meta"):
        params = sum(p.numel() for p in family.build(cfg).parameters())
    if params > MAX_PARAMETERS:
        raise ValueError(f"{cfg.name or cfg.family} with num_classes={cfg.num_classes} and its options would hold "
                         f"{params:.3g} parameters ({params * 4 / 1e9:.0f} GB), more than bnnzoo builds "
                         f"({MAX_PARAMETERS:.0e}): check num_classes and the architecture options (config.json)")


def load(name: str, *, framework: str = "torch", weights: Optional[str] = None, pretrained: bool = False,
         num_classes: Optional[int] = None, input_size: Optional[int] = None, **arch: Any):
    """Builds a registered model, optionally with weights.

    Args:
        name: A registered name (``zoo.list_models()``), optionally with a weights
            tag: ``"meliusnet22.mnist"``.
        framework: ``"torch"`` (an ``nn.Module`` in eval mode) or ``"keras"``.
        weights: ``None`` for initialised weights, ``"default"``, a weights tag,
            ``"hf-hub:owner/repo[@revision]"`` or a path to a ``.safetensors`` file.
        pretrained: Load the architecture's default weights (``zoo.list_weights(name)[0]``);
            same as ``weights="default"``.
        num_classes: Overrides the classifier size. With weights of another size, every weight
            but the classifier is loaded and the classifier re-initialised (fine-tuning).
        input_size: Overrides the input side the model is built and measured for.
        **arch: Overrides of the architecture's own options (see ``get_config``).

    Returns:
        The model; ``model.zoo_config`` holds the config it was built from, ``model.zoo_weights``
        the registered :class:`zoo.weights.Weights` it carries (``None``: none registered).

    Raises:
        UnknownModelError: ``name`` is not registered.
        ValueError: Unknown framework, or weights that do not fit the architecture.
    """
    from . import fetch, weights as _weights

    name, weights = _check_names(name, weights)
    if "." in name and weights is None:
        name, weights = name.split(".", 1)
    if pretrained and weights is None:
        weights = "default"
    cfg = get_config(name).replace(num_classes=num_classes, input_size=input_size, **arch)
    state, meta = None, None
    if weights is not None:
        state, cfg = fetch.resolve(cfg, weights, explicit_classes=num_classes is not None,
                                  explicit_size=input_size is not None)
        if weights in _tags(name):  # a registered tag: its metadata travels with the model
            meta = _weights.lookup(cfg, weights)[1]
    retarget = num_classes is not None and num_classes != cfg.num_classes
    if retarget and framework != "torch":
        return to_keras(load(name, weights=weights, num_classes=num_classes, input_size=input_size, **arch))
    model = build(cfg, framework)
    if retarget and not hasattr(model, "reset_classifier"):
        raise _weights.WeightMismatchError(
            f"weights {weights!r} have {cfg.num_classes} outputs, not num_classes={num_classes}, and {name} has no "
            "classifier to replace: drop num_classes")
    if state is not None:
        _load_state(model, state, framework)
    model.zoo_weights = meta
    if retarget:
        import sys

        print(f"zoo.load: {name}: loaded every weight of {weights!r} but the classifier ({cfg.num_classes} classes), "
              f"re-initialised for num_classes={num_classes}", file=sys.stderr)
        model.reset_classifier(num_classes)
    if framework == "torch":
        model.eval()
    return model


def _check_names(name: Any, weights: Any) -> tuple[str, Optional[str]]:
    """One-line errors for a ``name`` / ``weights`` that cannot mean what the caller thinks."""
    if not isinstance(name, str):
        raise TypeError(f"name takes a registered model name (a str, zoo.list_models()), not {name!r}")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights takes a tag, 'hf-hub:owner/repo' or a .safetensors path (a str), not {weights!r}")
    base, dot, tag = name.partition(".")
    if os.sep in name or (dot and "." in tag) or (dot and tag.lower() in _FILE_SUFFIXES):
        raise ValueError(f"{name!r} is a file, not a registered model: give NAME or NAME.TAG (zoo.list_models()), "
                         f"and a .safetensors file as weights= (or --arch NAME on the command line)")
    if dot and not tag:
        raise ValueError(f"{name!r} has an empty weights tag: write {base!r} or {base + '.TAG'!r}")
    if dot and weights is not None:
        raise ValueError(f"{name!r} names weights already: drop weights={weights!r}, or pass the model as {base!r}")
    return name, (os.fspath(weights) if weights is not None else None)


# Suffixes of files people pass where a model name goes (NAME.TAG is never one of these).
_FILE_SUFFIXES = ("h5", "keras", "pt", "pth", "onnx", "tflite", "safetensors", "json", "npz", "ckpt", "bin", "pb")


def _tags(name: str) -> set[str]:
    from .weights import list_weights

    return {"default"} | {w.tag for w in list_weights(name)}


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
