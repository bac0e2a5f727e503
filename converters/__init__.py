"""Verified exports of zoo models: TFLite for Larq Compute Engine, and ONNX.

Every converter checks its output before writing it (atomically) and returns a
:class:`ConversionReport`. Frameworks are imported only when a converter runs.

Example:
    >>> import zoo, converters
    >>> model = zoo.load("meliusnet22")
    >>> converters.to_tflite(model, "meliusnet22.tflite").lce_bconv2d
    >>> converters.convert(model, "meliusnet22.onnx", to="onnx", bitpack=True)
"""

from .formats import FORMATS, Format, MissingExtraError, convert, get_format
from .verify import ConversionError, ConversionReport

__all__ = ["FORMATS", "Format", "MissingExtraError", "ConversionError", "ConversionReport", "convert",
           "get_format", "to_tflite", "to_onnx"]


def to_tflite(model, path, **options) -> ConversionReport:
    """Converts to an LCE TFLite flatbuffer (see ``converters.tflite.to_tflite``)."""
    return convert(model, path, "tflite", **options)


def to_onnx(model, path, **options) -> ConversionReport:
    """Exports to ONNX (see ``converters.onnx.to_onnx``)."""
    return convert(model, path, "onnx", **options)
