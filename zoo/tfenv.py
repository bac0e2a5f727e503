"""Keras 2 for TensorFlow: larq (and so LCE's conversion) needs ``tf.keras`` to be tf-keras.

TensorFlow picks its Keras when it is first imported, from ``TF_USE_LEGACY_KERAS``. Every
public entry point that may import TensorFlow calls :func:`use_legacy_keras` first, so the
Python API works without the variable set by hand; it imports nothing itself.
"""

from __future__ import annotations

import os
import sys

__all__ = ["use_legacy_keras", "KerasVersionError"]


class KerasVersionError(ImportError):
    """TensorFlow was imported with Keras 3 before bnnzoo could select Keras 2."""


def use_legacy_keras() -> None:
    """Sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported.

    Raises:
        KerasVersionError: TensorFlow is already imported with Keras 3 (one line saying what to do).
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return
    legacy = getattr(tf, "_tf_uses_legacy_keras", None)  # what tensorflow/__init__.py decided at import
    if legacy is None:
        legacy = os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1")
    if not legacy:
        raise KerasVersionError("TensorFlow was imported with Keras 3 before bnnzoo, and larq needs Keras 2: set "
                                "TF_USE_LEGACY_KERAS=1 before importing TensorFlow (or import zoo/converters and "
                                "use them before TensorFlow)")
