#!/usr/bin/env python3
"""Classify images with this bundle's binary neural network (written by ``bnnzoo deploy``).

Needs only numpy and Pillow, plus one runtime:

- ``litert``: ``model.tflite`` in the pip-installable LiteRT interpreter (``ai-edge-litert``),
  LCE's four ops run by bnnzoo's bit-packed kernels, compiled once from ``bnn_litert/`` with
  this machine's C compiler (``cc``);
- ``lce``: ``model.tflite`` in Larq Compute Engine's interpreter (built from LCE's source on
  a Pi);
- ``onnx``: ``model.onnx`` in onnxruntime (float kernels, no build at all).

``auto`` takes the first of lce, litert, onnx that is importable. Neither PyTorch nor
TensorFlow is used.

Examples::

    python3 run.py cat.jpg dog.png                  # top-5 labels and latency per image
    python3 run.py --runtime litert cat.jpg         # force a runtime (litert | lce | onnx)
    python3 run.py --build-kernels                  # compile bnnzoo's kernels now (once), then exit
    python3 run.py --benchmark 50 --threads 4       # median/min/max latency over 50 runs
    python3 run.py --watch frames/                  # classify images as they appear (camera loop)
    python3 run.py --dump-logits out.npy cat.jpg    # raw logits, one row per image

Every file the run reads is checked against ``manifest.json`` (sha256) first.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

BUNDLE = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class BundleError(Exception):
    """A problem the user can fix, reported as one line."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Bundle:
    """The bundle folder: its manifest, checked files, labels and preprocessing constants.

    Args:
        folder: The bundle folder (the one holding ``manifest.json``).

    Raises:
        BundleError: The manifest is missing or unreadable.
    """

    def __init__(self, folder: Path = BUNDLE) -> None:
        self.folder = Path(folder)
        manifest = self.folder / "manifest.json"
        if not manifest.is_file():
            raise BundleError(f"no manifest.json in {self.folder}: run.py must sit in a folder written by "
                              "`bnnzoo deploy NAME --target rpi`")
        try:
            self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
            self.files = _checked_files(self.manifest)
        except (ValueError, UnicodeDecodeError) as e:
            raise BundleError(f"{manifest} is not a bundle manifest ({e}); re-run `bnnzoo deploy`") from None
        self.preprocess = _checked_preprocess(self._json("preprocess.json"))
        self.labels = self._json("labels.json")
        if not isinstance(self.labels, list) or not all(isinstance(v, str) for v in self.labels):
            raise BundleError("labels.json is not a list of names; re-run `bnnzoo deploy`")

    def _json(self, name: str):
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise BundleError(f"{name} is not valid JSON ({e}); re-run `bnnzoo deploy`") from None

    def file(self, name: str) -> Path:
        """The path of bundle file ``name``, after checking its sha256 against the manifest.

        Raises:
            BundleError: Not in the manifest, missing, or different from what the manifest records.
        """
        entry = self.files.get(name)
        if entry is None:
            raise BundleError(f"{name} is not part of this bundle (manifest.json does not list it)")
        path = self.folder / name
        if not path.is_file():
            raise BundleError(f"bundle file {name} is missing from {self.folder}: copy the whole bundle folder, "
                              "or re-run `bnnzoo deploy`")
        got = _sha256(path)
        if got != entry["sha256"]:
            raise BundleError(f"{name} does not match this bundle's manifest (sha256 {got[:12]}..., expected "
                              f"{entry['sha256'][:12]}...): it comes from another bundle or was modified; "
                              "re-run `bnnzoo deploy`")
        return path


_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _checked_files(manifest) -> dict:
    """The manifest's ``files``, every entry checked: a relative path inside the bundle, a sha256, a size.

    Raises:
        ValueError: The first thing wrong (the caller adds the file's name).
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"it holds a JSON {type(manifest).__name__}, not an object")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ValueError("'files' is not an object of file entries")
    for name, entry in files.items():
        if not all(_PART.fullmatch(part) for part in name.split("/")):
            raise ValueError(f"file name {name!r} is not a path inside the bundle")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256.fullmatch(entry["sha256"]):
            raise ValueError(f"the entry of {name} has no sha256")
        if isinstance(entry.get("bytes"), bool) or not isinstance(entry.get("bytes"), int) or entry["bytes"] < 0:
            raise ValueError(f"the entry of {name} has no size in bytes")
    return files


def _checked_preprocess(pre) -> dict:
    """``preprocess.json`` with every value :func:`load_image` reads checked (BundleError otherwise)."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")

    problem = ("it is not an object" if not isinstance(pre, dict) else
               "input_size and resize must be integers from 1 to 8192" if not all(
                   isinstance(pre.get(k), int) and not isinstance(pre.get(k), bool) and 1 <= pre[k] <= 8192
                   for k in ("input_size", "resize")) else
               "scale must be a number" if not number(pre.get("scale")) else
               "mean and std must be 3 numbers each, std positive" if not all(
                   isinstance(pre.get(k), list) and len(pre[k]) == 3 and all(map(number, pre[k]))
                   for k in ("mean", "std")) or min(pre["std"]) <= 0 else "")
    if problem:
        raise BundleError(f"preprocess.json: {problem}; re-run `bnnzoo deploy`")
    return pre


# --- images -----------------------------------------------------------------------------------

def to_rgb(image):
    """An 8-bit RGB copy of any Pillow image: 16-bit and float greyscale are rescaled, transparent
    pixels composited over black, CMYK/greyscale/palette converted, EXIF rotation applied (the steps
    of bnnzoo's zoo.transforms.to_rgb, which bnnzoo eval and detect use)."""
    import numpy as np
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        pass
    mode = image.mode
    if mode.startswith("I;16") or mode == "I" or mode == "F":
        a = np.asarray(image, dtype=np.float64)
        if mode == "F":
            top = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else 255.0
        else:
            top = 65535.0 if mode.startswith("I;16") or (a.size and a.max() > 255) else 255.0
        a = np.clip(np.nan_to_num(a) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(a, "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return image.convert("RGB")


def load_image(path: Path, pre: dict):
    """One preprocessed image, HWC float32: resize the shorter side and centre-crop (or squash, for
    a detector), scale, normalise: bnnzoo's zoo.transforms step for step, as preprocess.json says
    (a copy on purpose: a bundle runs without bnnzoo; tests/test_api.py checks the two agree).

    Raises:
        BundleError: The file is missing or not an image Pillow can decode.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise BundleError(f"image {path} does not exist")
    if path.is_dir():
        raise BundleError(f"{path} is a folder: give image files, or use --watch {path}")
    try:
        with Image.open(path) as image:
            if pre.get("jpeg_draft"):  # a JPEG decoded at a reduced DCT scale, as the model's training reader did
                image.draft("RGB", (int(pre["input_size"]), int(pre["input_size"])))
            image.load()
            image = to_rgb(image)
    except UnidentifiedImageError:
        raise BundleError(f"{path} is not an image Pillow can read (JPEG, PNG, BMP, TIFF, WebP, ...)") from None
    except Image.DecompressionBombError:
        raise BundleError(f"{path} is too large to decode safely (more than {2 * Image.MAX_IMAGE_PIXELS} pixels, "
                          "a possible decompression bomb): resize it first") from None
    except Exception as e:  # noqa: BLE001  truncated or corrupt files raise many types: one line each
        raise BundleError(f"{path} could not be decoded as an image ({type(e).__name__}: {e})") from None
    size, resize = int(pre["input_size"]), int(pre["resize"])
    if pre.get("mode") == "squash":  # the whole image scaled to the square (detectors)
        image = image.resize((size, size), Image.BILINEAR)
    else:
        w, h = image.size
        scale = resize / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = image.size
        left, top = (w - size) // 2, (h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    x = np.asarray(image, dtype=np.float32) * np.float32(pre["scale"])
    return ((x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)).astype(np.float32)


# --- runtimes ---------------------------------------------------------------------------------

def _lce_wrapper():
    """LCE's ``interpreter_wrapper_lite`` extension, loaded without importing TensorFlow.

    ``import larq_compute_engine`` imports its converter (TensorFlow); the interpreter itself
    is one extension module, so it is loaded from its file directly when it can be.
    """
    spec = importlib.util.find_spec("larq_compute_engine")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for so in sorted((Path(folder) / "tflite" / "python").glob("interpreter_wrapper_lite*.so")):
            name = "larq_compute_engine.tflite.python.interpreter_wrapper_lite"
            loader = importlib.machinery.ExtensionFileLoader(name, str(so))
            module_spec = importlib.util.spec_from_file_location(name, str(so), loader=loader)
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
            return module
    from larq_compute_engine.tflite.python import interpreter_wrapper_lite  # type: ignore

    return interpreter_wrapper_lite


def lce_available() -> bool:
    """Whether Larq Compute Engine's interpreter can be imported here."""
    try:
        _lce_wrapper()
        return True
    except Exception:
        return False


class LceRuntime:
    """``model.tflite`` in LCE's interpreter (NHWC input, one image per call)."""

    name = "lce"

    def __init__(self, bundle: Bundle, threads: int) -> None:
        try:
            wrapper = _lce_wrapper()
        except Exception as e:
            raise BundleError(f"Larq Compute Engine's interpreter is not importable ({type(e).__name__}: {e}); "
                              "build it for this board (see README.md) or use --runtime onnx") from None
        flatbuffer = model_tflite(bundle)
        self.interpreter = wrapper.LiteInterpreter(flatbuffer, threads, False, False, False)
        self.version = bundle.manifest.get("lce_version", "?")

    def predict(self, x_nhwc):
        import numpy as np

        return np.concatenate([np.asarray(self.interpreter.predict([x[None]])[0]) for x in x_nhwc])


KERNELS = "bnn_litert"  # bnnzoo's converters/litert, copied into the bundle
# Checked before the package is imported; the C sources it compiles (its toolchain.SOURCES) right after.
KERNEL_FILES = ("__init__.py", "toolchain.py", "flatbuffer.py", "tflite_schema.py")


def litert_available() -> bool:
    """Whether the LiteRT interpreter (``ai-edge-litert``) can be imported here."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def load_kernels(bundle: Bundle):
    """The bundle's ``bnn_litert`` package, each of its files checked against the manifest (the C
    sources before anything can compile them).

    Imported from the bundle folder by path (not from ``sys.path``), without writing
    ``__pycache__`` into the bundle.
    """
    module = sys.modules.get(KERNELS)
    if module is not None:
        return module
    for name in KERNEL_FILES:
        bundle.file(f"{KERNELS}/{name}")
    folder = bundle.folder / KERNELS
    spec = importlib.util.spec_from_file_location(KERNELS, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[KERNELS] = module
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
        for name in module.toolchain.SOURCES:
            bundle.file(f"{KERNELS}/{name}")
    except BaseException:
        for name in (KERNELS, f"{KERNELS}.toolchain"):
            sys.modules.pop(name, None)
        raise
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def model_tflite(bundle: Bundle) -> bytes:
    """``model.tflite``, checked against the manifest and as a flatbuffer (``bnn_litert/flatbuffer.py``): LCE's
    and LiteRT's interpreters follow its offsets unchecked, so a damaged file would crash them."""
    flatbuffer = bundle.file("model.tflite").read_bytes()
    try:
        load_kernels(bundle).flatbuffer.verify(flatbuffer, "model.tflite")
    except ValueError as e:
        raise BundleError(str(e)) from None
    return flatbuffer


def build_kernels(bundle: Bundle) -> str:
    """Compiles the kernel library (or finds it in the cache); returns a line saying where it is."""
    kernels = load_kernels(bundle)
    start = time.perf_counter()
    try:
        path = kernels.library_file()
        kernels.library()
    except kernels.BuildError as e:
        raise BundleError(str(e)) from None
    return f"bnnzoo kernels: {path} ({kernels.code_path()} path, ready in {time.perf_counter() - start:.1f} s)"


class LiteRtRuntime:
    """``model.tflite`` in ``ai-edge-litert``, LCE's ops run by the bundle's bnnzoo kernels (NHWC input)."""

    name = "litert"

    def __init__(self, bundle: Bundle, threads: int) -> None:
        if not litert_available():
            raise BundleError("ai-edge-litert is not installed: pip install -r requirements.txt "
                              "(or use --runtime onnx)")
        from importlib import metadata

        kernels = load_kernels(bundle)
        flatbuffer = model_tflite(bundle)
        try:
            if not os.environ.get("BNNZOO_LITERT_LIB") and not kernels.toolchain.library_path().exists():
                print("run.py: compiling bnnzoo's kernels (bnn_litert/) with this machine's C compiler, once",
                      file=sys.stderr, flush=True)
            self.interpreter = kernels.Interpreter(flatbuffer, num_threads=threads)
        except (kernels.BuildError, kernels.UnsupportedModelError) as e:
            raise BundleError(str(e)) from None
        self.version = f"{metadata.version('ai-edge-litert')} + bnnzoo kernels ({self.interpreter.path})"

    def predict(self, x_nhwc):
        return self.interpreter.predict(x_nhwc)


class OnnxRuntime:
    """``model.onnx`` (bit-packed binary weights) in onnxruntime (NCHW input)."""

    name = "onnx"

    def __init__(self, bundle: Bundle, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BundleError(f"onnxruntime is not importable ({e}): pip install -r requirements.txt") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(bundle.file("model.onnx")), options,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.version = ort.__version__

    def predict(self, x_nhwc):
        import numpy as np

        x = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
        return self.session.run(None, {self.input: x})[0]


def make_runtime(bundle: Bundle, choice: str, threads: int):
    """The runtime ``choice`` (``auto``: the first of lce, litert, onnx that is importable)."""
    if choice == "auto":
        has_tflite = "model.tflite" in bundle.files
        choice = ("lce" if has_tflite and lce_available() else
                  "litert" if has_tflite and f"{KERNELS}/__init__.py" in bundle.files and litert_available()
                  else "onnx")
    if choice == "lce":
        return LceRuntime(bundle, threads)
    if choice == "litert":
        return LiteRtRuntime(bundle, threads)
    return OnnxRuntime(bundle, threads)


# --- output -----------------------------------------------------------------------------------

def top_k(logits, labels: Sequence[str], k: int) -> List[tuple]:
    """``(index, probability, label)`` of the ``k`` largest logits (softmax probabilities)."""
    import numpy as np

    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-z, kind="stable")[:k]
    return [(int(i), float(p[i]), labels[i] if i < len(labels) else f"class_{i}") for i in order]


def _print_result(name: str, logits, labels, k: int, runtime, ms: float) -> None:
    print(f"{name}  ({runtime.name}, {ms:.1f} ms)")
    for rank, (index, prob, label) in enumerate(top_k(logits, labels, k), 1):
        print(f"  {rank}. {prob:7.4f}  {label}  [{index}]")
    sys.stdout.flush()


def classify(bundle: Bundle, runtime, images: Iterable[Path], k: int, skipped: Optional[list] = None) -> list:
    """Classifies ``images`` one at a time; prints top-k and latency; returns the logits rows.

    With ``skipped`` (a list), an image that cannot be read is reported on stderr, appended to
    it and left out; the others are still classified. Without it, the first one raises.
    """
    rows = []
    for path in images:
        try:
            x = load_image(path, bundle.preprocess)[None]
        except BundleError as e:
            if skipped is None:
                raise
            print(f"run.py: skipped: {e}", file=sys.stderr)
            skipped.append(path)
            continue
        start = time.perf_counter()
        logits = runtime.predict(x)[0]
        ms = (time.perf_counter() - start) * 1e3
        _print_result(str(path), logits, bundle.labels, k, runtime, ms)
        rows.append(logits)
    return rows


def benchmark(bundle: Bundle, runtime, runs: int, image: Optional[Path], threads: int, warmup: int = 3) -> dict:
    """Median/min/max latency (ms) of ``runs`` single-image inferences after ``warmup`` untimed ones."""
    import numpy as np

    if image is not None:
        x = load_image(image, bundle.preprocess)[None]
    else:
        size = int(bundle.preprocess["input_size"])
        x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype(np.float32)
    for _ in range(warmup):
        runtime.predict(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runtime.predict(x)
        times.append((time.perf_counter() - start) * 1e3)
    result = {"runtime": runtime.name, "runtime_version": runtime.version, "threads": threads, "runs": runs,
              "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}
    print(f"benchmark  {bundle.manifest.get('model', '?')} on {runtime.name} {runtime.version}, {threads} thread(s), "
          f"{runs} runs ({warmup} warm-up): median {result['median_ms']:.2f} ms, min {result['min_ms']:.2f} ms, "
          f"max {result['max_ms']:.2f} ms")
    return result


def watch(bundle: Bundle, runtime, folder: Path, k: int, interval: float, once: bool) -> list:
    """Loop mode: classifies every image in ``folder``, then each new or rewritten one as it appears.

    Files that are not images (or are still being written) are reported and skipped, not fatal.
    Stops on Ctrl-C, or after one pass with ``once``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"--watch needs a folder; {folder} is not one")
    seen: dict = {}
    rows = []
    print(f"watching {folder} for images (Ctrl-C stops)" if not once else f"classifying the images in {folder}")
    try:
        while True:
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                    continue
                stamp = path.stat().st_mtime_ns
                if seen.get(path) == stamp:
                    continue
                seen[path] = stamp
                try:
                    rows += classify(bundle, runtime, [path], k)
                except BundleError as e:
                    print(f"skipped: {e}", file=sys.stderr)
            if once:
                return rows
            time.sleep(interval)
    except KeyboardInterrupt:
        return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line of the bundle; returns the exit status (1 with a one-line error)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path, help="image files to classify")
    parser.add_argument("--runtime", choices=("auto", "litert", "lce", "onnx"), default="auto",
                        help="litert: model.tflite in ai-edge-litert with bnnzoo's kernels (built once with cc); "
                             "lce: model.tflite in LCE's interpreter; onnx: model.onnx in onnxruntime; "
                             "auto (default): the first of lce, litert, onnx that is importable")
    parser.add_argument("--build-kernels", action="store_true",
                        help="compile bnnzoo's kernels for --runtime litert now (once, cached), then exit")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="inference threads (default 1)")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="labels shown per image (default 5)")
    parser.add_argument("--benchmark", type=int, nargs="?", const=50, metavar="RUNS",
                        help="time RUNS inferences (default 50) of the first image (or random input)")
    parser.add_argument("--watch", type=Path, metavar="DIR", help="loop mode: classify images as they appear in DIR")
    parser.add_argument("--once", action="store_true", help="with --watch: one pass over DIR, then exit")
    parser.add_argument("--interval", type=float, default=0.5, metavar="S", help="with --watch: polling period")
    parser.add_argument("--dump-logits", type=Path, metavar="FILE", help="save the logits (N x classes) as .npy")
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.threads < 1 or args.top < 1 or (args.benchmark is not None and args.benchmark < 1):
            raise BundleError("--threads, --top and --benchmark take positive numbers")
        if args.build_kernels:
            print(build_kernels(Bundle(args.bundle)))
            return 0
        if not args.images and args.watch is None and args.benchmark is None:
            parser.print_usage(sys.stderr)
            raise BundleError("give image files, --watch DIR, or --benchmark")
        bundle = Bundle(args.bundle)
        for image in args.images:  # fail on a bad path before the runtime loads
            if not image.is_file():
                raise BundleError(f"image {image} does not exist" if not image.exists() else
                                  f"{image} is a folder: give image files, or use --watch {image}")
        dump = args.dump_logits
        if dump is not None and dump.suffix != ".npy":  # as np.save names it
            dump = dump.with_name(dump.name + ".npy")
        if dump is not None and (dump.is_dir() or not dump.absolute().parent.is_dir()):
            raise BundleError(f"--dump-logits {dump}: " + ("that is a folder, give a file name such as logits.npy"
                                                           if dump.is_dir() else f"folder {dump.absolute().parent} "
                                                           "does not exist; create it first"))
        runtime = make_runtime(bundle, args.runtime, args.threads)
        rows, skipped = [], []
        if args.benchmark is not None:
            benchmark(bundle, runtime, args.benchmark, args.images[0] if args.images else None, args.threads)
        else:
            # One image: its error is the error; several: a bad one is reported and skipped (as bnnzoo detect).
            rows = classify(bundle, runtime, args.images, args.top, skipped if len(args.images) > 1 else None)
        if args.watch is not None:
            rows += watch(bundle, runtime, args.watch, args.top, args.interval, args.once)
        if args.dump_logits is not None:
            import numpy as np

            logits = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
            # Written beside its final name, then renamed: a killed run leaves no half .npy.
            tmp = dump.with_name(f".{dump.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    np.save(f, logits)
                os.replace(tmp, dump)
            finally:
                if tmp.exists():
                    tmp.unlink()
        if skipped:
            print(f"run.py: {len(skipped)} of {len(args.images)} image(s) could not be read and were skipped",
                  file=sys.stderr)
            return 1
    except BundleError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"run.py: error: {e.name or e} is not installed: pip install -r requirements.txt", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
