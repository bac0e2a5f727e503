"""Verified exports kept by content hash, so that one model is converted (and verified) once.

The key of an export is what it depends on: the format and its options, the model's config,
every tensor of its state, the versions of the converting libraries, and the source of bnnzoo's own
model and converter code (``zoo`` and ``converters``: a fix in the translator must not reuse files
its bug wrote, and bnnzoo's version number does not change with every commit). The file lives under
``$BNNZOO_CACHE/exports`` (else ``$XDG_CACHE_HOME/bnnzoo/exports``, else
``~/.cache/bnnzoo/exports``) as ``NAME-KEY.SUFFIX``, with ``NAME-KEY.SUFFIX.sha256.json`` beside it:
its size, sha256 (``zoo.fileio.write_record``'s record) and the figures of its conversion report, written
after the file. A cached export is used only when its size and sha256 match that record
(``zoo.fileio.recorded``); otherwise it is converted again, the stale files removed inside the cache
folder only (``zoo.fileio.remove``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["CachedExport", "cache_root", "export_key", "source_digest", "export_cached", "LIBRARIES"]

log = logging.getLogger(__name__)

# The libraries whose versions an export depends on.
LIBRARIES = ("bnnzoo", "torch", "onnx", "tensorflow", "larq-compute-engine")


@dataclass(frozen=True)
class CachedExport:
    """A verified export in the cache.

    Attributes:
        path: The file.
        size_bytes: Its size.
        lce_bconv2d: ``LceBconv2d`` ops of a TFLite file (``None`` for ONNX).
        converted: Whether this call converted it (``False``: found in the cache).
        seconds: Seconds the conversion and its verification took when it was converted.
    """

    path: Path
    size_bytes: int
    lce_bconv2d: Optional[int]
    converted: bool
    seconds: float


def cache_root() -> Path:
    """The folder exports are cached in (see the module docstring)."""
    root = os.environ.get("BNNZOO_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "bnnzoo")
    return Path(root) / "exports"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 of the Python source of the ``zoo`` and ``converters`` packages (paths and contents)."""
    import converters
    import zoo

    digest = hashlib.sha256()
    for package in (zoo, converters):
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def export_key(model, fmt: str, options: Optional[dict[str, Any]] = None) -> str:
    """What an export depends on, hashed: the format and options, the config, every tensor, the converting
    libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(json.dumps([fmt, options or {}, model.zoo_config.to_dict()], sort_keys=True).encode())
    digest.update(source_digest().encode())
    for lib in LIBRARIES:
        try:
            digest.update(f"{lib}={version(lib)}".encode())
        except PackageNotFoundError:
            digest.update(f"{lib}=-".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def _default_options(fmt: str) -> dict[str, Any]:
    return {"bitpack": True} if fmt == "onnx" else {}


def export_cached(model, fmt: str, folder: Optional[str | Path] = None, options: Optional[dict[str, Any]] = None,
                  announce: Optional[Callable[[str], None]] = None) -> CachedExport:
    """The verified ``fmt`` export of ``model``, converted once per content.

    Args:
        model: A zoo PyTorch model.
        fmt: A key of ``converters.FORMATS``.
        folder: Where exports live (default: :func:`cache_root`).
        options: The converter's options (default: ONNX binary weights bit-packed).
        announce: Called with one line before a conversion starts, and when a cached file is
            found damaged (what a command prints; the same lines are logged).

    Raises:
        converters.ConversionError: The export failed its verification (nothing cached).
    """
    from zoo import fileio

    from .formats import convert, get_format

    options = _default_options(fmt) if options is None else dict(options)
    folder = Path(folder) if folder is not None else cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.zoo_config.name}-{export_key(model, fmt, options)}{get_format(fmt).suffix}"
    record = fileio.record_path(path)

    def say(line: str) -> None:
        log.info(line)
        if announce is not None:
            announce(line)

    found = _extras(path) if fileio.recorded(path) else None
    if found is not None:
        return CachedExport(path, path.stat().st_size, found.get("lce_bconv2d"), False, found.get("seconds", 0.0))
    if path.exists() or record.exists():
        say(f"the cached export {path} does not match its recorded size and sha256: rebuilding it")
        for stale in (record, path):  # the record first: a kill in between leaves an unrecorded file, rebuilt
            fileio.remove(stale, folder, "cached export")
    say(f"converting {model.zoo_config.name} to {fmt} (verified; cached as {path})")
    report = convert(model, str(path), fmt, **options)
    lce = report.lce_bconv2d if fmt == "tflite" else None
    # fileio's record (size, sha256: what fileio.recorded checks) with this conversion's figures beside them
    fileio.write_text(record, json.dumps({"file": path.name, "bytes": path.stat().st_size,
                                          "sha256": fileio.sha256_of(path), "lce_bconv2d": lce,
                                          "seconds": round(report.seconds, 2)}) + "\n")
    return CachedExport(path, path.stat().st_size, lce, True, report.seconds)


def _extras(path: Path) -> dict:
    """The conversion figures kept in a (checked) record."""
    from zoo import fileio

    try:
        return fileio.read_json(fileio.record_path(path), "export record")
    except (OSError, ValueError):
        return {}
