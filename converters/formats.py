"""The table of export formats and the one entry point that dispatches over it."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

from .verify import ConversionReport

__all__ = ["Format", "FORMATS", "MissingExtraError", "get_format", "check_options", "require_extra", "convert"]


class MissingExtraError(ImportError):
    """A format's optional dependencies are not installed."""


@dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        name: What ``--to`` takes.
        suffix: File suffix of its output.
        options: Keyword options its converter accepts (besides model and path).
        extra: The pip extra of ``bnnzoo`` that installs what it needs.
        modules: Modules it imports (checked by :func:`require_extra`).
        converter: ``"module:function"`` of the converter.
        description: One line for help texts.
    """

    name: str
    suffix: str
    options: tuple[str, ...]
    extra: str
    modules: tuple[str, ...]
    converter: str
    description: str

    def install_hint(self) -> str:
        return f"pip install 'bnnzoo[{self.extra}]'"


FORMATS: dict[str, Format] = {
    "tflite": Format(
        "tflite", ".tflite", ("input_size", "verify", "target", "int8", "int8_range"), "lce",
        ("larq_compute_engine", "tflite"), "converters.tflite:to_tflite",
        "TFLite flatbuffer for Larq Compute Engine (binary convs as LceBconv2d)"),
    "onnx": Format(
        "onnx", ".onnx", ("input_size", "bitpack", "opset", "verify"), "onnx",
        ("onnx", "onnxruntime", "onnxscript"), "converters.onnx:to_onnx",
        "ONNX (binary convs as sign + Conv; --bitpack stores their weights at 1 bit)"),
}


def get_format(name: str) -> Format:
    """The format called ``name``.

    Raises:
        ValueError: Unknown format; the message suggests the closest one.
    """
    try:
        return FORMATS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(FORMATS), n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown format {name!r}{hint} (formats: {', '.join(FORMATS)})") from None


def check_options(fmt: Format, options: dict[str, Any]) -> None:
    """Raises ValueError for an option ``fmt`` does not take, naming those it does."""
    bad = sorted(set(options) - set(fmt.options))
    if bad:
        raise ValueError(f"format {fmt.name!r} takes no option {bad[0]!r}; it accepts: {', '.join(fmt.options)}")


def require_extra(fmt: Format) -> None:
    """Imports the format's dependencies.

    Raises:
        MissingExtraError: One is missing; the message says which extra to install.
        zoo.tfenv.KerasVersionError: TensorFlow was already imported with Keras 3.
    """
    import importlib.util

    if "larq_compute_engine" in fmt.modules:  # it imports TensorFlow, whose Keras must be Keras 2 (larq)
        from zoo.tfenv import use_legacy_keras

        use_legacy_keras()
    for module in fmt.modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            try:
                installed = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                installed = False
            if installed:  # but it does not import: typically a dependency another install replaced
                raise MissingExtraError(
                    f"{fmt.name} export needs {module}, which is installed but fails to import ({e}): another "
                    f"package changed its dependencies; reinstall a working set with {fmt.install_hint()}") from None
            raise MissingExtraError(
                f"{fmt.name} export needs {module} ({e.name or module} is not importable): "
                f"{fmt.install_hint()}") from None


def convert(model, path: str, to: str, **options: Any) -> ConversionReport:
    """Converts ``model`` to the format ``to`` at ``path``.

    Args:
        model: A zoo PyTorch model (or, for TFLite, a zoo Keras model).
        path: Output file.
        to: A key of :data:`FORMATS`.
        **options: Options of that format (see ``FORMATS[to].options``); options
            given as ``None`` are left at the converter's default.

    Raises:
        ValueError: Unknown format or option.
        MissingExtraError: The format's extra is not installed.
        ConversionError: The conversion or its verification failed (nothing written).
    """
    fmt = get_format(to)
    options = {k: v for k, v in options.items() if v is not None}
    check_options(fmt, options)
    require_extra(fmt)
    module, func = fmt.converter.split(":")
    return getattr(importlib.import_module(module), func)(model, path, **options)
