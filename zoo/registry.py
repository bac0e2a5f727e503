"""A small strict registry of architectures, free of any deep-learning framework.

Each registered name maps to a :class:`ModelConfig`: the architecture family (its facts in
``zoo.families.<family>``, its PyTorch builder in ``zoo.torch.<family>``; its Keras model is
translated from that by ``zoo.keras.translate``) plus the keyword arguments of that family's
builder. The built-in variants register themselves when :mod:`zoo.families` is imported (by
``import zoo``); this module imports none of them.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ModelConfig", "register_model", "get_config", "list_models", "is_training_stage", "UnknownModelError"]


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one architecture in either framework.

    Attributes:
        name: Registered name, e.g. ``"meliusnet22"``.
        family: The family: its facts module under ``zoo.families``, its builder under ``zoo.torch``.
        arch: Keyword arguments of the family's builder (the variant table).
        num_classes: Size of the classifier output (0: headless, the pooled features).
        input_size: Side of the square input image the figures are quoted at.
        paper: Citation of the paper the architecture follows.
        tiny: Overrides that make a fast, small version for tests.
        published: Figures published for this architecture (ImageNet, 224x224), keyed
            by figure name (``params``, ``size_mb``, ``top1``, ...), with
            ``published["source"]`` naming the paper table or page they come from.
        task: What the outputs are: ``"classify"`` (class scores) or ``"detect"`` (a detector's
            flattened grid of boxes, decoded by ``zoo.detection.decode``). Code that treats
            detectors apart asks this, never the family's name.
    """

    name: str
    family: str
    arch: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 1000
    input_size: int = 224
    paper: str = ""
    tiny: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)
    task: str = "classify"

    def replace(self, **overrides: Any) -> "ModelConfig":
        """Returns a copy with top-level fields or builder arguments overridden.

        Raises:
            TypeError: An override names neither a config field nor a builder argument.
        """
        top = {k: overrides.pop(k) for k in ("num_classes", "input_size") if k in overrides}
        top = {k: _positive_int(k, v, least=0 if k == "num_classes" else 1) for k, v in top.items() if v is not None}
        unknown = sorted(set(overrides) - set(self.arch))
        if unknown:
            hint = difflib.get_close_matches(unknown[0], list(self.arch) + ["num_classes", "input_size"], n=1)
            raise TypeError(
                f"{self.name} takes no option {unknown[0]!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; options: {', '.join(sorted(self.arch))}")
            )
        overrides = {k: _option(self.name, k, v, self.arch[k]) for k, v in overrides.items()}
        return dataclasses.replace(self, arch={**self.arch, **overrides}, **top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (stored as ``config.json`` beside weights)."""
        return {
            "name": self.name,
            "family": self.family,
            "arch": {k: list(v) if isinstance(v, tuple) else v for k, v in self.arch.items()},
            "num_classes": self.num_classes,
            "input_size": self.input_size,
        }


MAX_INPUT_SIZE = 8192  # a side past this is a typo, and its activations would not fit in memory


def _positive_int(key: str, value: Any, least: int = 1) -> int:
    """``num_classes`` (0: headless) / ``input_size`` checked at the door: an integer (``"32"`` is refused too)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key} takes a {'positive' if least else 'non-negative'} integer, not {value!r}")
    if key == "input_size" and value > MAX_INPUT_SIZE:
        raise ValueError(f"input_size takes a positive integer up to {MAX_INPUT_SIZE}, not {value!r}")
    return value


def _option(model: str, key: str, value: Any, current: Any) -> Any:
    """An architecture option checked at the door against the type of the value it replaces.

    A flag takes ``True``/``False``; a count or size an integer >= 1; a number any finite number; a
    name a string or None; a tuple as many values as it has now, each checked the same way (lists,
    as JSON writes tuples, are turned back into tuples). What a builder does with a value of the
    right type is the builder's to check.

    Raises:
        ValueError: One line naming the model, the option and what it takes.
    """
    def refuse(expected: str) -> None:
        raise ValueError(f"{model} option {key!r} takes {expected}, not {value!r}")

    if isinstance(current, bool):
        if not isinstance(value, bool):
            refuse("true or false")
    elif isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            refuse("an integer >= 1")
    elif isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            refuse("a number")
        return float(value)
    elif current is None or isinstance(current, str):
        if value is not None and not isinstance(value, str):
            refuse("a name (a string) or None")
    elif isinstance(current, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(current):
            refuse(f"{len(current)} values, like {current!r}")
        # (2.7, 3.3, 4): a tuple holding a float holds numbers, its integers included
        floats = any(isinstance(c, float) for c in current)
        return tuple(_option(model, f"{key}[{i}]", v, float(c) if floats and _is_int(c) else c)
                     for i, (v, c) in enumerate(zip(value, current)))
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}


def register_model(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
    """Registers a config factory under its function name.

    Raises:
        ValueError: The name is already registered.
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered; pick another function name")
    _REGISTRY[name] = fn
    return fn


# Training-stage variants (a recipe's teacher and intermediate stages): registered so recipes can build
# them, but not architectures to deploy.
_STAGE = re.compile(r".*_(teacher|stage\d+)")


def is_training_stage(name: str) -> bool:
    """Whether ``name`` is a recipe's teacher or intermediate stage (``*_teacher``, ``*_stageN``)."""
    return _STAGE.fullmatch(name) is not None


def list_models(pattern: str = "*", *, include_stages: bool = False) -> list[str]:
    """Registered names matching a shell-style ``pattern``, sorted.

    Args:
        pattern: Shell-style filter, e.g. ``"meliusnet*"``.
        include_stages: Also list the training-stage variants (``*_teacher``, ``*_stageN``).
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern) and (include_stages or not is_training_stage(n)))


def get_config(name: str) -> ModelConfig:
    """The config of a registered model.

    Raises:
        UnknownModelError: ``name`` is not registered; the message suggests close names.
    """
    try:
        cfg = _REGISTRY[name]()
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `bnnzoo list` to see them"
        raise UnknownModelError(f"unknown model {name!r}{hint}") from None
    if cfg.name != name:
        cfg = dataclasses.replace(cfg, name=name)
    return cfg
