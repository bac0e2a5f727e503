"""The Larq/Keras side of the zoo: the PyTorch -> Keras translator (``translate``), the Keras
forms of the zoo's layers (``layers``) and weight transfer (``transfer``). Importing this
package imports TensorFlow.

larq needs Keras 2, so ``TF_USE_LEGACY_KERAS=1`` is set here before TensorFlow is
first imported; if TensorFlow was already imported with Keras 3 we stop with a
clear message instead of building broken models.
"""

from __future__ import annotations

from ..tfenv import use_legacy_keras

use_legacy_keras()  # sets TF_USE_LEGACY_KERAS=1, or refuses in one line if TensorFlow already has Keras 3

try:
    import larq  # noqa: E402,F401
    import tensorflow as tf  # noqa: E402
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(f"the Keras side of the zoo needs TensorFlow and larq ({e}); "
                      "pip install 'bnnzoo[keras]'") from None

if not tf.keras.Model.__module__.startswith("tf_keras"):  # pragma: no cover - depends on import order
    raise ImportError(
        "TensorFlow was imported with Keras 3 before zoo.keras; set TF_USE_LEGACY_KERAS=1 before importing TensorFlow"
    )
