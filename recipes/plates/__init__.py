"""Synthetic Korean license plates for the 1-bit plate detector (Im & Lee, 2018).

``generate`` renders the data set (images + YOLO labels + ``manifest.json``),
``dataset`` reads it back as a PyTorch ``Dataset``. Neither needs a download: the
Hangul font comes from the ``koreanize-matplotlib`` wheel and the backgrounds from
images that ship with installed packages plus procedural textures.
"""

from __future__ import annotations

__all__ = ["generate", "dataset"]
