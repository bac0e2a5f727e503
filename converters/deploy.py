"""A self-contained bundle for a 64-bit Raspberry Pi (the library of ``bnnzoo deploy NAME --target rpi``).

The bundle folder holds the verified LCE ``.tflite`` and the bit-packed ONNX of the same
weights, ``labels.json``, ``preprocess.json`` (input size, mean/std, layout),
``run.py`` (numpy + Pillow + one of: ai-edge-litert with bnnzoo's kernels, LCE's
interpreter, onnxruntime; no PyTorch, no TensorFlow), ``bnn_litert/`` (the C sources of
bnnzoo's LCE kernels and their loader, ``converters/litert``, built on the Pi with its own
``cc``), ``requirements.txt`` (pins with aarch64 wheels), a README for 64-bit Raspberry Pi
OS, a synthetic ``sample.png`` and ``manifest.json`` (sha256 of every file). It is written in a
temporary sibling folder and renamed into place, so an interrupted or failed deploy leaves no half bundle.

Examples::

    bnnzoo deploy meliusnet22 --target rpi -o meliusnet22-rpi/
    python3 meliusnet22-rpi/run.py --runtime litert meliusnet22-rpi/sample.png
    python -m eval.arm64 meliusnet22-rpi/          # the same on ARM64, under qemu
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from zoo.fileio import lock, remove, sha256_of, temp_dir

from .litert.toolchain import SOURCES as KERNEL_SOURCES
from .verify import ConversionError

logger = logging.getLogger(__name__)

__all__ = ["TARGETS", "RPI_REQUIREMENTS", "LCE_PUBLISHED_RPI4", "DeployReport",
           "bundle_preprocess", "deploy", "sha256_of"]

TARGETS = ("rpi",)
RUNNER_DIR = Path(__file__).resolve().parent / "rpi"
KERNELS_DIR = Path(__file__).resolve().parent / "litert"
# converters/litert files a bundle carries as bnn_litert/ (what run.py --runtime litert imports and builds).
KERNEL_FILES = ("__init__.py", "toolchain.py", "flatbuffer.py", "tflite_schema.py", *KERNEL_SOURCES)
# Versions with cp311 aarch64 wheels that import under Debian 12's qemu-user 7.2 (onnxruntime 1.32's
# aarch64 wheel crashes there at import); the Pi needs nothing else from PyPI. ai-edge-litert's own
# dependencies are pinned too, so that every wheel is named (eval.arm64 installs exactly these).
RPI_REQUIREMENTS = ("numpy==1.26.4", "Pillow==10.4.0", "onnxruntime==1.19.2", "ai-edge-litert==1.4.0",
                    "flatbuffers==25.12.19", "backports.strenum==1.2.8", "tqdm==4.67.1", "typing-extensions==4.12.2")
# LCE's own figures (QuickNet family, randomized weights, LCE's benchmark tool), not this zoo's models.
LCE_PUBLISHED_RPI4 = {
    "source": "published: larq/compute-engine README, 'Performance' section (benchmarked 2020-03-20 with LCE's "
              "TFLite benchmark tool on a Raspberry Pi 4 Model B, BCM2711, randomized weights and inputs)",
    "rows": [("QuickNet", "58.6 %", 45.6, 21.7), ("QuickNet-Large", "62.7 %", 66.5, 31.8),
             ("QuickNet-XL", "67.0 %", 121.2, 52.4)],
}


@dataclass(frozen=True)
class DeployReport:
    """What ``deploy`` wrote.

    Attributes:
        folder: The bundle folder.
        files: Bundle file name -> sha256.
        tflite: Conversion report of ``model.tflite``.
        onnx: Conversion report of ``model.onnx``.
    """

    folder: str
    files: dict
    tflite: Any
    onnx: Any

    def summary(self) -> str:
        """Lines ``bnnzoo deploy`` prints."""
        lines = [f"bundle        {self.folder}"]
        for name, digest in sorted(self.files.items()):
            size = os.path.getsize(os.path.join(self.folder, name))
            lines.append(f"  {name:<24} {size:>10} bytes  sha256 {digest[:16]}...")
        lines.append(f"tflite        {self.tflite.lce_bconv2d} LceBconv2d ops, top-1 agreement "
                     f"{self.tflite.top1_agreement:.2f}, max |diff| {self.tflite.max_abs_diff:.3g}")
        lines.append(f"onnx          {self.onnx.lce_bconv2d} bit-packed binary convs, top-1 agreement "
                     f"{self.onnx.top1_agreement:.2f}, max |diff| {self.onnx.max_abs_diff:.3g}")
        lines.append(f"try it        python3 {os.path.join(self.folder, 'run.py')} "
                     f"{os.path.join(self.folder, 'sample.png')}")
        return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _sample_image(path: Path, size: int) -> None:
    """A deterministic synthetic RGB image (gradients and a disc), so the bundle can test itself."""
    import numpy as np
    from PIL import Image

    side = max(2 * size, 64)
    yy, xx = np.mgrid[0:side, 0:side] / side
    disc = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2) < 0.06
    rgb = np.stack([xx, yy, np.where(disc, 0.9, 0.2 + 0.3 * xx * yy)], -1)
    Image.fromarray((rgb * 255).astype(np.uint8), "RGB").save(path)


def _published_table() -> str:
    rows = ["| Model | Top-1 | RPi 4 B, ms (1 thread) | RPi 4 B, ms (4 threads) |", "| --- | :-: | :-: | :-: |"]
    rows += [f"| {m} | {t} | {one} | {four} |" for m, t, one, four in LCE_PUBLISHED_RPI4["rows"]]
    return "\n".join(rows) + f"\n\nSource: {LCE_PUBLISHED_RPI4['source']}."


def _readme(values: dict) -> str:
    text = (RUNNER_DIR / "README.md").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    return text


def bundle_preprocess(model_or_record, size: int) -> dict:
    """The bundle's ``preprocess.json``: ``zoo.transforms`` of the model or record (what ``bnnzoo eval`` and
    ``detect`` apply) at side ``size``."""
    import zoo

    preprocess = zoo.transforms(model_or_record)
    return {**dataclasses.replace(preprocess, input_size=size).to_dict(),
            "layout": {"model.tflite": "NHWC", "model.onnx": "NCHW"}, "dtype": "float32"}


def deploy(model, output: str | os.PathLike, *, target: str = "rpi", name: Optional[str] = None,
           record=None, labels: Optional[Sequence[str]] = None, labels_source: str = "",
           mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
           crop_pct: Optional[float] = None, input_size: Optional[int] = None, overwrite: bool = False,
           log: Optional[Callable[[str], None]] = None) -> DeployReport:
    """Writes a deployment bundle of a PyTorch model at ``output`` (a folder).

    The bundle's preprocessing and labels come from the weights' record: ``record``, else
    ``model.zoo_weights`` (what ``zoo.load`` attaches; a registered model with initialised
    weights: its family's preprocessing, with a warning); the arguments below change single
    fields of it. A module of yours needs a record or at least ``input_size``, ``mean`` and ``std``.

    Args:
        model: A PyTorch model in eval mode: from ``zoo.load`` (registered, a folder, the Hub or
            ``FILE.py:CLASS``), or any ``nn.Module`` built from the zoo's layers.
        output: The bundle folder; must not exist unless ``overwrite``.
        target: Only ``"rpi"`` (64-bit Raspberry Pi OS).
        name: Model name recorded in the bundle (default: the record's architecture or class).
        record: The preprocessing record (:class:`zoo.weights.Weights`) to use instead of
            ``model.zoo_weights``.
        labels: Class names in output order (default: the record's; none recorded: ``class_0``, ...).
        labels_source: Where the labels come from (for the README).
        mean: Per-channel RGB mean of inputs scaled to [0, 1].
        std: Per-channel RGB std.
        crop_pct: Share of the resized shorter side the centre crop keeps.
        input_size: Square input side (default: the record's, the size the model is built at).
        overwrite: Replace an existing bundle at ``output``.
        log: Receives progress lines (default: this module's logger, at INFO).

    Returns:
        The report; ``report.summary()`` is what the command line prints.

    Raises:
        ValueError: Unknown target, a headless model, bad labels/mean/std, no preprocessing record,
            or ``output`` exists.
        FileNotFoundError: The parent folder of ``output`` does not exist.
        converters.ConversionError: A conversion or its verification failed (nothing written).
        zoo.fileio.LockedError: Another deploy is writing this bundle.
    """
    from zoo.api import record_of

    if target not in TARGETS:
        raise ValueError(f"unknown deploy target {target!r}; targets: {', '.join(TARGETS)}")
    fields = dict(mean=None if mean is None else tuple(mean), std=None if std is None else tuple(std),
                  crop_pct=crop_pct, input_size=input_size, labels=None if labels is None else tuple(labels))
    fields = {k: v for k, v in fields.items() if v is not None}
    try:
        record = record.replace(**fields) if record is not None else record_of(model, **fields)
    except ValueError as e:
        raise ValueError(f"{e} (a deploy bundle needs the preprocessing the weights were trained with)") from None
    cfg = getattr(model, "zoo_config", None)
    name = name or record.arch or record.module_class
    size = record.input_size
    detector = cfg is not None and cfg.task == "detect"
    if record.num_classes == 0:
        raise ValueError(f"{name} is headless (num_classes=0): it outputs features, not classes; deploy a classifier")
    labels = list(record.labels) or [f"class_{i}" for i in range(record.num_classes)]
    if len(labels) != record.num_classes and not detector:
        raise ValueError(f"{len(labels)} labels for a model with {record.num_classes} classes")
    labels_source = labels_source or ("the weights' record (labels)" if record.labels else "")
    out = Path(output).expanduser().absolute()
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist; create it first")
    # Held from the checks to the final rename: a second deploy of this bundle is refused before it writes.
    with lock(out.parent / f".{out.name}.lock", f"bundle folder {out}"):
        return _deploy(model, out, cfg, target, name, labels, labels_source, record, size, overwrite,
                       log or logger.info)


def _deploy(model, out: Path, cfg, target: str, name: str, labels: list, labels_source: str, record, size: int,
            overwrite: bool, log: Callable[[str], None]) -> DeployReport:
    import zoo

    from . import to_onnx, to_tflite

    if out.exists() and not overwrite:
        raise ValueError(f"{out} already exists: remove it or pass --force to replace it")
    if out.exists() and not (out / "manifest.json").is_file():
        raise ValueError(f"{out} exists and is not a bundle (no manifest.json): refusing to replace it")
    tmp = temp_dir(out)  # also removes the temporaries of a killed deploy of the same bundle
    try:
        log(f"deploy: converting {name} to TFLite (LCE {_version('larq-compute-engine')}), verified")
        try:
            tflite = to_tflite(model, str(tmp / "model.tflite"), input_size=size)
        except ConversionError as e:
            raise ConversionError(f"{e} (the bundle needs a verified .tflite; nothing was written)") from e
        log("deploy: exporting bit-packed ONNX, verified")
        onnx = to_onnx(model, str(tmp / "model.onnx"), input_size=size, bitpack=True)
        pre = bundle_preprocess(record, size)
        (tmp / "preprocess.json").write_text(json.dumps(pre, indent=2) + "\n")
        (tmp / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n")
        (tmp / "requirements.txt").write_text(
            "# aarch64 (64-bit Raspberry Pi OS) wheels exist for all of these; bnnzoo's kernels (bnn_litert/)\n"
            "# are compiled on first use with the system C compiler; LCE is built from source (README.md)\n"
            + "\n".join(RPI_REQUIREMENTS) + "\n")
        shutil.copyfile(RUNNER_DIR / "run.py", tmp / "run.py")
        (tmp / "bnn_litert").mkdir()
        for kernel_file in KERNEL_FILES:
            shutil.copyfile(KERNELS_DIR / kernel_file, tmp / "bnn_litert" / kernel_file)
        os.chmod(tmp / "run.py", 0o755)
        _sample_image(tmp / "sample.png", size)
        lce_version = _version("larq-compute-engine")
        created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
        (tmp / "README.md").write_text(_readme({
            "MODEL": name, "BNNZOO_VERSION": zoo.__version__, "CREATED": created, "LCE_VERSION": lce_version,
            "LCE_BCONV": tflite.lce_bconv2d, "TFLITE_MB": f"{tflite.size_bytes / 1e6:.2f}",
            "ONNX_PACKED": onnx.lce_bconv2d, "ONNX_MB": f"{onnx.size_bytes / 1e6:.2f}",
            "NUM_CLASSES": len(labels), "LABELS_SOURCE": labels_source or "placeholder names: no labels recorded",
            "INPUT_SIZE": size, "RESIZE": pre["resize"], "MEAN": pre["mean"], "STD": pre["std"],
            "PUBLISHED": _published_table()}))
        files = {p.relative_to(tmp).as_posix(): sha256_of(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "format": "bnnzoo-bundle/1", "target": target, "model": name,
            "config": cfg.to_dict() if cfg is not None else None, "weights": record.to_dict(),
            "created": created, "bnnzoo_version": zoo.__version__, "lce_version": lce_version,
            "onnxruntime_version": _version("onnxruntime"), "litert_version": _version("ai-edge-litert"),
            "requirements": list(RPI_REQUIREMENTS),
            "conversion": {"tflite": {**tflite.as_dict(), "path": "model.tflite"},
                           "onnx": {**onnx.as_dict(), "path": "model.onnx"}},
            "files": {n: {"sha256": d, "bytes": (tmp / n).stat().st_size} for n, d in files.items()},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():  # overwrite: swap the old bundle out, then remove it
            old = temp_dir(out)
            os.replace(out, old / "bundle")  # a link at out moves itself: its target is never removed
            os.replace(tmp, out)
            remove(old, out.parent)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            remove(tmp, out.parent)
    return DeployReport(str(out), files, tflite, onnx)
