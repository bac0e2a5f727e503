"""Runs a recipe with tf.keras ``fit`` on the Larq/Keras translation of its model (``framework=keras``).

The Keras model is the PyTorch module translated by ``zoo.keras.translate`` (``zoo.build(cfg,
"keras")``): its BatchNorm layers train, its binary convs are larq ``QuantConv2D`` with the
module's straight-through clip and larq's ``WeightClip`` on the latent weights.

Usage:
    bnnzoo train meliusnet22_mnist framework=keras [key=value ...] [--resume [RUN_DIR]]

The run follows the PyTorch one (:mod:`recipes.train`) wherever the recipe says something:
the same datasets, preprocessing and batch order (the same ``DistributedSampler`` seeded with
the recipe's seed), the same optimizer (RAdam is :class:`RAdam` below: tf-keras 2.19 and larq
have none), the same per-step learning rates (:func:`recipes.common.lr_factor`), cross-entropy,
and latent weights clipped only when the stage's ``weight_clip`` says so (the Keras model's
larq ``WeightClip`` is set to it). The straight-through estimator's clip is the model's own.
Keras' SGD applies the learning rate before its momentum, PyTorch's after: the two agree
while the rate is constant.

Each stage writes the files the PyTorch run writes, ``state.keras.npz`` (weights, optimizer
state, epoch, history) standing for ``state.pt``; ``model.safetensors`` holds PyTorch names,
so ``zoo.load(MODEL, weights=".../model.safetensors")`` gives the trained PyTorch model.

Only single-process runs of stages without teachers or initial weights train here
(:func:`keras_problem` says why a recipe does not); weight decay is not supported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf
import torch

import zoo
import zoo.keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from zoo import fileio

from .classify import Classify
from .common import (
    Dist,
    RunError,
    check_progress,
    loaders,
    lr_factor,
    model_config,
    pin_models,
    say_dropped,
    stage_folder,
    weights_record,
    write_csv,
)
from .config import ConfigError, Recipe, Stage, resolve_stages
from .data import DataError, build_datasets
from .registry import get_recipe, list_recipes

logger = logging.getLogger(__name__)

__all__ = ["run_recipe", "train_stage", "keras_problem", "keras_recipes", "RAdam", "STATE_FILE"]

STATE_FILE = "state.keras.npz"
_OPTIMIZERS = ("adam", "radam", "sgd")


# --- what can train here --------------------------------------------------------------------------

def keras_problem(recipe: Recipe) -> str:
    """Why ``recipe`` cannot train with ``framework=keras`` ("" when it can)."""
    if recipe.task != "classify":
        return f"it is a task={recipe.task} recipe; Keras training covers classifiers"
    checks = (  # most fundamental first, so the message names what really keeps the recipe out
        (lambda s: s.teacher or s.attention_weight or s.kd_weight, "stage {} is distilled from a teacher"),
        (lambda s: s.init_from or s.init_weights, "stage {} starts from another stage's weights"),
        (lambda s: s.optimizer not in _OPTIMIZERS, f"stage {{}}'s optimizer is not one of {', '.join(_OPTIMIZERS)}"),
        (lambda s: s.weight_decay, "stage {} has weight decay (set stages.weight_decay=0)"),
    )
    for failed, message in checks:
        for s in recipe.stages:
            if failed(s):
                return message.format(s.name)
    return ""


def keras_recipes() -> list[str]:
    """The registered recipes that train with ``framework=keras``."""
    return [n for n in list_recipes() if not keras_problem(get_recipe(n))]


# --- optimizer and schedule -----------------------------------------------------------------------

class RAdam(tf.keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al., ICLR 2020), the update of ``torch.optim.RAdam`` (no weight decay).

    Args:
        learning_rate: A float or a ``LearningRateSchedule``.
        beta_1: Decay of the first moment.
        beta_2: Decay of the second moment.
        epsilon: Added to the root of the second moment, as PyTorch does.
    """

    def __init__(self, learning_rate: Any = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, name: str = "RAdam", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, var_list: list) -> None:
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._m = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._v = [self.add_variable_from_reference(v, "v") for v in var_list]

    def apply_gradients(self, grads_and_vars, *args: Any, **kwargs: Any):
        # The step's scalars once per step, not once per variable: the traced graph is far smaller.
        lr = self._learning_rate
        if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(self.iterations)
        t = tf.cast(self.iterations + 1, tf.float32)
        bc1, bc2 = 1 - tf.pow(self.beta_1, t), 1 - tf.pow(self.beta_2, t)
        rho_inf = 2 / (1 - self.beta_2) - 1
        rho_t = rho_inf - 2 * t * tf.pow(self.beta_2, t) / bc2
        rect = tf.sqrt(tf.maximum((rho_t - 4) * (rho_t - 2) * rho_inf, 0.0) / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        # Until the variance of the adaptive step is tractable (rho_t <= 5), a plain momentum step.
        self._adaptive = rho_t > 5
        self._step_size = tf.cast(lr, tf.float32) / bc1 * tf.where(self._adaptive, rect * tf.sqrt(bc2), 1.0)
        return super().apply_gradients(grads_and_vars, *args, **kwargs)

    def update_step(self, gradient: tf.Tensor, variable: tf.Variable) -> None:
        i = self._index_dict[self._var_key(variable)]
        m, v = self._m[i], self._v[i]
        m.assign_add((gradient - m) * (1 - self.beta_1))
        v.assign_add((tf.square(gradient) - v) * (1 - self.beta_2))
        denom = tf.where(self._adaptive, tf.sqrt(v) + self.epsilon, tf.ones_like(v))
        variable.assign_sub(self._step_size * m / denom)

    def get_config(self) -> dict:
        return {**super().get_config(), "learning_rate": self._serialize_hyperparameter(self._learning_rate),
                "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class _StepTable(tf.keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate of every step, precomputed with :func:`recipes.common.lr_factor`."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self._table = tf.constant(values, tf.float32)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._table, tf.minimum(tf.cast(step, tf.int32), len(self.values) - 1))

    def get_config(self) -> dict:
        return {"values": self.values}


def _optimizer(stage: Stage, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    lr = _StepTable([stage.lr * lr_factor(s, steps_per_epoch, stage)
                     for s in range(stage.epochs * steps_per_epoch + 1)])
    if stage.optimizer == "radam":
        return RAdam(lr)
    if stage.optimizer == "adam":  # adaptive_epsilon: PyTorch's placement of epsilon
        return tf.keras.optimizers.Adam(lr, epsilon=1e-8, adaptive_epsilon=True)
    return tf.keras.optimizers.SGD(lr, momentum=stage.momentum)


def _set_weight_clip(model: tf.keras.Model, clip: float) -> None:
    """Sets larq's latent-weight clip of every binary-weight convolution (0: none, as in PyTorch)."""
    import larq as lq

    for layer in model.submodules:  # nested models too
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, lq.constraints.WeightClip):
            constraint.clip_value = clip if clip > 0 else np.inf


# --- data --------------------------------------------------------------------------------------------

def _dataset(loader, size: int, epochs: Optional[range], counts: dict, errors: list) -> tf.data.Dataset:
    """NHWC batches of ``loader``: every epoch of ``epochs`` in turn (training), or one pass (None)."""

    def batches():
        try:
            for epoch in epochs if epochs is not None else [None]:
                if epoch is not None:
                    loader.sampler.set_epoch(epoch)
                    loader.dataset.set_epoch(epoch)
                for x, y, skipped in loader:
                    n, s = counts.get(epoch, (0, 0))
                    counts[epoch] = (n + len(y), s + skipped)
                    if len(y) == 0:
                        raise DataError("a whole batch of corrupt images: remove them (see skipped_images)")
                    yield x.permute(0, 2, 3, 1).numpy(), y.numpy().astype(np.int32)
        except Exception as e:  # tf.data would bury it in a multi-line OpError; fit's caller re-raises it
            errors.append(e)
            raise

    spec = (tf.TensorSpec((None, size, size, 3), tf.float32), tf.TensorSpec((None,), tf.int32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)


# --- checkpoints ---------------------------------------------------------------------------------------

def _save_state(path: Path, model: tf.keras.Model, optimizer: tf.keras.optimizers.Optimizer, epoch: int,
                history: list[dict]) -> None:
    arrays = {f"w{i}": v.numpy() for i, v in enumerate(model.weights)}
    arrays.update({f"o{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays["meta"] = np.array(json.dumps({"epoch": epoch, "history": history,
                                          "weights": [v.name for v in model.weights],
                                          "optimizer": [v.name for v in optimizer.variables]}))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    fileio.atomic_write(path, write)


def _load_state(path: Path, model: tf.keras.Model, optimizer: tf.keras.optimizers.Optimizer,
                stage: Stage) -> tuple[int, list]:
    optimizer.build(model.trainable_variables)
    try:  # allow_pickle stays False: only arrays are read, nothing in the file can run
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            pairs = ([(v, f[f"w{i}"]) for i, v in enumerate(model.weights)]
                     + [(v, f[f"o{i}"]) for i, v in enumerate(optimizer.variables)])
        if not isinstance(meta, dict) or not {"epoch", "history", "weights", "optimizer"} <= set(meta):
            raise ValueError("no meta entry")
    except Exception as e:  # noqa: BLE001  truncated zip, missing arrays, bad meta: one line, whatever numpy raises
        raise RunError(f"checkpoint {path} is damaged or not a bnnzoo Keras checkpoint ({type(e).__name__}): delete "
                       f"it to restart the stage, or train into another folder (out=OTHER_FOLDER)") from None
    # Optimizer variable names depend on the name scope they were built in: compare only their count.
    if ([v.name for v in model.weights] != meta["weights"] or len(optimizer.variables) != len(meta["optimizer"])
            or any(v.shape != a.shape for v, a in pairs)):
        raise RunError(f"{path} was saved from another model or optimizer: resume with the recipe.json it was "
                       f"written with, or start a new run (out=OTHER_FOLDER)")
    epoch, history = check_progress(path, meta["epoch"], list(meta["history"]), stage)
    for v, a in pairs:
        v.assign(a)
    return epoch, history


class _EpochEnd(tf.keras.callbacks.Callback):
    """After every epoch: metrics row, ``model.safetensors`` + ``config.json``, state, CSV, log line."""

    def __init__(self, stage: Stage, stage_dir: Path, history: list, counts: dict, steps: int, stop_after: int,
                 log: Callable[[str], None], record: Callable[[dict], Any]) -> None:
        super().__init__()
        self.stage, self.stage_dir, self.history, self.counts, self.record = stage, stage_dir, history, counts, record
        self.steps, self.stop_after, self.log, self.done = steps, stop_after, log, 0
        self.t0 = self.t_val = 0.0

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.t0, self.t_val = time.perf_counter(), 0.0

    def on_test_begin(self, logs: Optional[dict] = None) -> None:
        self.t_val = time.perf_counter()  # validation is not training time, as in the PyTorch run

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        from zoo.keras.transfer import state_dict
        from zoo.weights import save

        logs, model = logs or {}, self.model
        seconds = (self.t_val or time.perf_counter()) - self.t0
        n, skipped = self.counts.get(epoch, (0, 0))
        steps_done = int(model.optimizer.iterations.numpy())
        row = {"epoch": epoch + 1, "lr": self.stage.lr * lr_factor(steps_done, self.steps, self.stage),
               "train_loss": logs["loss"], "train_ce": logs["loss"], "train_attention": 0.0, "train_kd": 0.0,
               "train_acc": logs["acc"], "val_loss": logs["val_loss"], "val_acc": logs["val_acc"],
               "skipped_images": int(skipped), "images_per_s": n / max(seconds, 1e-9), "seconds": seconds}
        self.history.append(row)
        save(state_dict(model), self.stage_dir / "model.safetensors", self.record(row))
        _save_state(self.stage_dir / STATE_FILE, model, model.optimizer, epoch + 1, self.history)
        write_csv(self.stage_dir / "metrics.csv", self.history)
        self.log(f"{self.stage.name} epoch {epoch + 1}/{self.stage.epochs} (keras): train loss {row['train_loss']:.4f} "
                 f"acc {row['train_acc']:.2%} | val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%} | "
                 f"{row['images_per_s']:.0f} img/s, {seconds:.1f} s")
        self.done += 1
        if self.stop_after and self.done >= self.stop_after:
            model.stop_training = True


# --- one stage, a whole recipe ------------------------------------------------------------------------

def train_stage(recipe: Recipe, stage: Stage, run_dir: Path, datasets: tuple, resume: bool = False,
                stop_after: int = 0, log: Callable[[str], None] = logger.info) -> dict[str, Any]:
    """Trains one stage with ``fit``; returns its final metrics (also written to ``final.json``).

    Args:
        recipe: The resolved recipe.
        stage: The stage (with its batch size resolved).
        run_dir: The recipe's output folder.
        datasets: (train, val) datasets of :func:`recipes.data.build_datasets`.
        resume: Continue from ``state.keras.npz`` when there is one.
        stop_after: Stop after this many epochs of this call (0: run to the end).
        log: Where the one-line epoch summaries go.

    Raises:
        RunError: The folder holds a run and ``resume`` is False, or holds a PyTorch run.
    """
    stage_dir = stage_folder(run_dir, stage)
    final_path, state_path = stage_dir / "final.json", stage_dir / STATE_FILE
    if resume and final_path.is_file():
        log(f"{stage.name}: already finished ({final_path}), skipping")
        return fileio.read_json(final_path, "finished stage", f"delete it to train stage {stage.name} again")
    if (stage_dir / "state.pt").is_file():
        raise RunError(f"{stage_dir} holds a PyTorch run: continue it with framework=torch, or pass out=OTHER_FOLDER")
    if state_path.is_file() and not resume:
        raise RunError(f"{stage_dir} already holds a run: pass --resume to continue it, or out=OTHER_FOLDER")
    stage_dir.mkdir(parents=True, exist_ok=True)  # temporaries of a killed run go with the next write (fileio)

    train_ds, val_ds = datasets
    tf.keras.utils.set_random_seed(recipe.seed)
    cfg = model_config(stage, recipe, recipe.num_classes or len(train_ds.classes))
    model = zoo.build(cfg, "keras")
    _set_weight_clip(model, stage.weight_clip)
    train_loader, sampler, val_loader = loaders(train_ds, val_ds, stage.batch_size, recipe, Dist())
    say_dropped(train_loader, sampler, 1, stage, log)
    steps = len(train_loader)
    optimizer = _optimizer(stage, steps)
    model.compile(optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="acc")])
    start, history = 0, []
    if resume and state_path.is_file():
        start, history = _load_state(state_path, model, optimizer, stage)
        log(f"{stage.name}: resuming after epoch {start} from {state_path}")
    fileio.write_text(stage_dir / "stage.json", json.dumps({
        **dataclasses.asdict(stage), "recipe": recipe.name, "model_config": cfg.to_dict(), "framework": "keras",
        "optimizer_impl": f"{type(optimizer).__module__}.{type(optimizer).__name__}",
        "world_size": 1, "steps_per_epoch": steps}, indent=2, default=list) + "\n")

    counts: dict = {}
    errors: list = []
    callbacks: list = [_EpochEnd(stage, stage_dir, history, counts, steps, stop_after, log,
                                 lambda row: weights_record(recipe, stage, cfg, train_ds, row, Classify))]
    if recipe.tensorboard:
        callbacks.append(tf.keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False,
                                                        profile_batch=0))
    size = recipe.input_size
    try:
        model.fit(_dataset(train_loader, size, range(start, stage.epochs), counts, errors), steps_per_epoch=steps,
                  epochs=stage.epochs, initial_epoch=start, callbacks=callbacks, verbose=1 if recipe.progress else 0,
                  validation_data=_dataset(val_loader, size, None, {}, errors))
    except tf.errors.OpError:
        if errors:
            raise errors[0] from None
        raise
    finished = len(history) >= stage.epochs
    final = {"stage": stage.name, "model": stage.model, "epochs": len(history), "finished": finished,
             **({k: history[-1][k] for k in ("train_acc", "val_acc", "val_loss")} if history else {}),
             "skipped_images": sum(r["skipped_images"] for r in history),
             "seconds": sum(r["seconds"] for r in history), "framework": "keras"}
    if finished:
        fileio.write_text(final_path, json.dumps(final, indent=2) + "\n")
    return final


def _configure(recipe: Recipe) -> None:
    """Threads and device; TensorFlow takes both only before it first runs an op."""
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(recipe.threads)
            tf.config.threading.set_inter_op_parallelism_threads(recipe.threads)
        except RuntimeError:
            pass  # TensorFlow already runs in this process (e.g. tests): it keeps its thread pools
    gpus = tf.config.list_physical_devices("GPU")
    if recipe.device == "cuda" and not gpus:
        raise RunError("device=cuda but TensorFlow sees no GPU: use device=cpu or device=auto")
    if recipe.device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")


def run_recipe(recipe: Recipe, resume: bool = False, stop_after: int = 0,
               log: Optional[Callable[[str], None]] = None) -> dict[str, dict[str, Any]]:
    """Runs the recipe's stages with tf.keras; returns each stage's final metrics.

    Args:
        recipe: The resolved recipe, with ``framework="keras"``.
        resume: Continue the run in ``recipe.out`` after its last completed epoch.
        stop_after: Stop each stage after this many epochs of this call (0: no limit).
        log: Where the summaries go (default: print).

    Raises:
        ConfigError: An unknown framework, or a recipe that cannot train in Keras (the
            message names those that can).
        RunError: ``recipe.out`` holds a run and ``resume`` is False, or a torchrun.
    """
    if recipe.framework != "keras":
        raise ConfigError(f"unknown framework {recipe.framework!r}; expected 'torch' or 'keras'")
    problem = keras_problem(recipe)
    if problem:
        raise ConfigError(f"{recipe.name} cannot train with framework=keras ({problem}); recipes that can: "
                          f"{', '.join(keras_recipes())}; or drop framework=keras")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RunError("framework=keras trains in one process: run it without torchrun")
    recipe = pin_models(recipe)
    _configure(recipe)
    say = log or logger.info
    stages = resolve_stages(recipe)
    run_dir = Path(recipe.out)
    if not resume and any((run_dir / s.name / STATE_FILE).is_file() for s in recipe.stages):
        raise RunError(f"{run_dir} already holds a run: pass --resume to continue it, or out=OTHER_FOLDER")
    datasets = build_datasets(recipe.data, recipe.input_size, recipe.seed, recipe.val_fraction,
                              recipe.max_train_samples, recipe.max_val_samples)
    run_dir.mkdir(parents=True, exist_ok=True)
    fileio.write_text(run_dir / "recipe.json", recipe.to_json(), root=run_dir)
    say(f"{recipe.name}: {len(datasets[0])} training / {len(datasets[1])} validation images, {len(stages)} "
        f"stage(s), tf.keras on {'GPU' if tf.config.list_logical_devices('GPU') else 'CPU'}; writing {run_dir}")
    results = {}
    for stage in stages:
        results[stage.name] = train_stage(recipe, stage, run_dir, datasets, resume, stop_after, say)
        if not results[stage.name]["finished"]:
            break
    return results
