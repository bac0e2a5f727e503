"""Class names: ImageNet-1k's, shipped as a data file, and ``decode``: logits -> top-k (label, probability).

``decode`` is larq-zoo's ``decode_predictions`` and torchvision's ``meta["categories"]`` in one
call, for any model whose weights record their labels (``model.zoo_weights.labels``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

__all__ = ["IMAGENET_LABELS_FILE", "imagenet_labels", "imagenet_wordnet_ids", "decode"]

IMAGENET_LABELS_FILE = Path(__file__).resolve().parent / "data" / "imagenet1k_labels.tsv"


@functools.lru_cache(maxsize=None)
def _imagenet() -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = [line.split("\t") for line in IMAGENET_LABELS_FILE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    if len(rows) != 1000 or any(len(r) != 2 for r in rows):
        raise ValueError(f"{IMAGENET_LABELS_FILE} should hold 1000 lines 'WordNet id<TAB>names': reinstall bnnzoo")
    return tuple(r[1] for r in rows), tuple(r[0] for r in rows)


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in output order (``"tabby, tabby cat"`` is class 281).

    The file names its source (``zoo/data/imagenet1k_labels.tsv``).
    """
    return _imagenet()[0]


def imagenet_wordnet_ids() -> tuple[str, ...]:
    """The WordNet ids of the 1000 classes, in the same order (``"n02123045"`` is class 281)."""
    return _imagenet()[1]


def decode(logits: Any, model_or_labels: Any, top: int = 5) -> list:
    """The ``top`` most probable classes of ``logits`` as ``(label, probability)`` pairs, most probable first.

    Args:
        logits: One image's outputs ``(num_classes,)``, or a batch ``(N, num_classes)`` (a
            tensor or an array).
        model_or_labels: A model from ``zoo.load`` (its ``zoo_weights.labels``), a
            :class:`zoo.weights.Weights` record, or the class names themselves. A class the
            record names no label for is ``"class_<index>"``.
        top: How many classes (at most ``num_classes``).

    Returns:
        ``[(label, probability), ...]`` for one image; a list of those for a batch.
        Probabilities are the softmax of the logits.

    Raises:
        ValueError: ``logits`` is not 1-D or 2-D, or ``top`` is not positive.
    """
    import numpy as np

    labels = _labels_of(model_or_labels)
    x = np.asarray(logits.detach().cpu().numpy() if hasattr(logits, "detach") else logits, np.float64)
    if x.ndim not in (1, 2) or top < 1:
        raise ValueError(f"decode takes logits of shape (num_classes,) or (N, num_classes) and top >= 1, "
                         f"not shape {x.shape} and top={top}")
    rows = x[None] if x.ndim == 1 else x
    p = np.exp(rows - rows.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    k = min(top, rows.shape[1])
    # Stable sort: equal probabilities keep the class order.
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    out = [[(labels[i] if i < len(labels) else f"class_{i}", float(p[n, i])) for i in order[n]]
           for n in range(len(rows))]
    return out[0] if x.ndim == 1 else out


def _labels_of(obj: Any) -> Sequence[str]:
    if isinstance(obj, (list, tuple)):
        return obj
    if hasattr(obj, "zoo_config") and getattr(obj, "zoo_weights", None) is None:
        return ()  # initialised weights: no names recorded
    record = getattr(obj, "zoo_weights", obj)
    labels = getattr(record, "labels", None)
    if labels is None:
        raise TypeError(f"decode takes a model from zoo.load, a zoo.weights.Weights or a list of labels, "
                        f"not {type(obj).__name__}")
    return labels
