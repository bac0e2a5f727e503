"""One file of facts per architecture family: its variants, its weights records, its import rules.

Each module ``zoo/families/<family>.py`` is plain data and small pure functions (it imports no
framework): the family's variant configs (functions decorated with
:func:`zoo.registry.register_model`), its ``WEIGHTS`` records (:class:`zoo.weights.Weights`),
the rules its importers read (``LARQ_ZOO`` for :mod:`zoo.larq_import`, ``REACTNET_CHECKPOINT``
for :mod:`zoo.reactnet_import`) and ``BUILDER``, the ``"module:function"`` of its PyTorch
builder (``zoo/torch/<family>.py``), imported only when a model is built.

Importing this package imports every module in it (found with :mod:`pkgutil`, modules whose
name starts with ``_`` excepted), which registers the variants and fills
:data:`zoo.weights.WEIGHTS`. Adding an architecture is therefore two new files,
``zoo/families/<family>.py`` and ``zoo/torch/<family>.py``; see docs/adding-an-architecture.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any, Callable

from ..weights import WEIGHTS, Weights

__all__ = ["names", "module", "builder", "facts"]

_LOADED: dict[str, ModuleType] = {}


def names() -> list[str]:
    """The families, one per module of this package, sorted."""
    return sorted(_LOADED)


def module(family: str) -> ModuleType:
    """The facts module of ``family``.

    Raises:
        KeyError: No such family (the message lists them).
    """
    try:
        return _LOADED[family]
    except KeyError:
        raise KeyError(f"no family {family!r}; families: {', '.join(names())}") from None


def builder(family: str) -> Callable[..., Any]:
    """The PyTorch builder of ``family``: its ``BUILDER`` (default ``"zoo.torch.<family>:build"``), imported now."""
    target = getattr(_LOADED.get(family), "BUILDER", f"zoo.torch.{family}:build")
    path, _, name = target.partition(":")
    return getattr(importlib.import_module(path), name or "build")


def facts(attribute: str) -> dict[str, Any]:
    """``{family: value}`` of every family module that defines ``attribute`` (e.g. ``"LARQ_ZOO"``)."""
    return {f: getattr(m, attribute) for f, m in sorted(_LOADED.items()) if hasattr(m, attribute)}


def _add_weights(family: str, records: Any) -> None:
    for w in records:
        if not isinstance(w, Weights):
            raise TypeError(f"zoo.families.{family}.WEIGHTS holds a {type(w).__name__}, not a zoo.weights.Weights")
        if w.key in WEIGHTS:
            raise ValueError(f"weights {w.key!r} of zoo.families.{family} are already registered; pick another tag")
        WEIGHTS[w.key] = w


def _load() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _LOADED:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        _LOADED[info.name] = mod
        _add_weights(info.name, getattr(mod, "WEIGHTS", ()))


_load()
