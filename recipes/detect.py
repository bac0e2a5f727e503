"""Detection training (``task="detect"``): the plate detectors of Im & Lee (2018) in ``recipes.train``.

The loop, checkpoints, ``--resume`` and DDP are :mod:`recipes.train`'s; :class:`Detect` gives
it the data (a folder written by ``bnnzoo data plates``, read by ``recipes.plates.dataset``),
the loss of a batch (the model's YOLO loss, ``zoo.torch.detector.loss_for``) and the
validation metrics: the loss, and after decoding and NMS (``zoo.detection.decode``) AP@0.5,
the share of plates found at IoU >= 0.5 (Im & Lee's accuracy), precision and recall of the
detections scoring >= 0.5 (``zoo.detection.evaluate``). A stage with a ``teacher`` (an earlier
stage) and ``kd_weight`` adds :func:`output_distillation` of the teacher's raw outputs.

An unreadable image is left out of its batch and counted in ``skipped_images``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from zoo.detection import cxcywh_to_xyxy, decode, evaluate

from .common import Dist, Task, val_outputs
from .config import ConfigError, Recipe, Stage
from .data import Subset
from .plates.dataset import DataError, PlatesDataset, collate

__all__ = ["Detect", "build_datasets", "collate_skip", "output_distillation", "FIELDS", "AP_SCORE_THRESHOLD"]

FIELDS = ("epoch", "lr", "train_loss", "train_box", "train_obj", "train_noobj", "train_kd", "val_loss", "val_ap50",
          "val_plate_accuracy", "val_precision", "val_recall", "skipped_images", "images_per_s", "seconds")
# Detections kept for AP: a low threshold traces the whole precision/recall curve.
AP_SCORE_THRESHOLD = 0.01
# Initial objectness probability of every (cell, anchor): near the share that holds a plate, so the
# first steps are not spent unlearning 0.5 everywhere (Lin et al. 2017, RetinaNet's prior).
OBJECTNESS_PRIOR = 0.01


def build_datasets(recipe: Recipe) -> tuple[Any, Any]:
    """The training (mirrored at random) and validation splits of the plates folder ``recipe.data``.

    Raises:
        DataError / FileNotFoundError: No ``data`` given, a missing folder or split, or an empty split.
    """
    if not recipe.data:
        raise DataError(f"{recipe.name or 'this recipe'} needs data=PATH: a folder made by "
                        "`bnnzoo data plates --out PATH` (or any YOLO-layout images/ + labels/ folder)")
    root = Path(recipe.data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist: generate it with "
                                f"`bnnzoo data plates --out {root}`")
    train = PlatesDataset(root, "train", recipe.input_size, hflip=True, seed=recipe.seed)
    val = PlatesDataset(root, "val", recipe.input_size)
    return (Subset(train, recipe.max_train_samples) if recipe.max_train_samples else train,
            Subset(val, recipe.max_val_samples) if recipe.max_val_samples else val)


def collate_skip(batch: list) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    """``recipes.plates.dataset.collate`` that also counts the unreadable images: ``(images, boxes, skipped)``."""
    images, boxes = collate(batch)
    return images, boxes, len(batch) - len(boxes)


def output_distillation(student_raw: torch.Tensor, teacher_raw: torch.Tensor) -> torch.Tensor:
    """Distils a detector's raw outputs (the layout of ``zoo.detection``) into a student's.

    Objectness: the KL divergence between the teacher's and the student's plate
    probabilities in every cell and anchor; boxes: the squared error of the sigmoid centre
    offsets and of the log sizes, weighted by the teacher's objectness. Summed over cells
    and anchors and divided by the batch size, as the YOLO loss; 0 when the two agree.
    """
    n = student_raw.shape[0]
    s, t = student_raw.reshape(n, -1, 5), teacher_raw.detach().reshape(n, -1, 5)
    p = torch.sigmoid(t[..., 0])
    # Cross-entropy to the teacher's probabilities minus their entropy: the Bernoulli KL divergence.
    obj = (F.binary_cross_entropy_with_logits(s[..., 0], p, reduction="sum")
           - F.binary_cross_entropy_with_logits(t[..., 0], p, reduction="sum"))
    box = (((torch.sigmoid(s[..., 1:3]) - torch.sigmoid(t[..., 1:3])) ** 2).sum(-1)
           + ((s[..., 3:5] - t[..., 3:5]) ** 2).sum(-1))
    return (obj + (box * p).sum()) / n


class Detect(Task):
    """Plate detection: the YOLO loss (plus output distillation) in training, AP@0.5 and plates found in validation."""

    fields = FIELDS
    final = ("val_ap50", "val_plate_accuracy", "val_precision", "val_recall", "val_loss")
    metrics = {"val_ap50": "ap50", "val_plate_accuracy": "plate_accuracy"}
    sums = {"loss": "train_loss", "box": "train_box", "obj": "train_obj", "noobj": "train_noobj", "kd": "train_kd"}

    def __init__(self, model: nn.Module, teacher: Optional[nn.Module], stage: Stage, env: Dist) -> None:
        if stage.attention_weight:
            raise ConfigError(f"detection stages distil outputs only: set {stage.name}.attention_weight=0")
        if teacher is not None and not stage.kd_weight:
            raise ConfigError(f"stage {stage.name} has a teacher but kd_weight=0: set {stage.name}.kd_weight "
                              f"(e.g. 1) or drop {stage.name}.teacher")
        super().__init__(model, teacher, stage, env)

    datasets = staticmethod(build_datasets)
    collate = staticmethod(collate_skip)

    @staticmethod
    def init_model(model: nn.Module) -> None:
        with torch.no_grad():
            model.head.bias.view(-1, 5)[:, 0] = math.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))

    def step(self, net: nn.Module, x: torch.Tensor, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        from zoo.torch.detector import loss_for

        x = x.to(self.env.device, non_blocking=True)
        raw = net(x)
        loss, parts = loss_for(self.model, raw, boxes)
        kd = torch.zeros(())
        if self.teacher is not None:
            with torch.no_grad():
                teacher_raw = self.teacher(x)
            kd = output_distillation(raw, teacher_raw)
            loss = loss + self.stage.kd_weight * kd
        n = len(boxes)
        return loss, {"loss": loss.item() * n, **{k: v * n for k, v in parts.items()}, "kd": kd.item() * n}

    def evaluate(self, net: nn.Module, loader: DataLoader) -> dict[str, Any]:
        from zoo.torch.detector import loss_for

        loss = n = 0.0
        preds, gts = [], []
        for raw, boxes in val_outputs(net, loader, self.env):
            loss += loss_for(self.model, raw, boxes)[0].item() * len(boxes)
            n += len(boxes)
            preds += decode(raw, self.model.zoo_config, score_threshold=AP_SCORE_THRESHOLD)
            gts += [cxcywh_to_xyxy(b[:, 1:].numpy()) for b in boxes]
        loss, n = self.env.all_sum([loss, n])
        shards = self.env.all_gather((preds, gts))
        m = evaluate([p for ps, _ in shards for p in ps], [g for _, gs in shards for g in gs])
        return {"val_loss": loss / max(n, 1), "val_ap50": m["ap50"], "val_plate_accuracy": m["plate_accuracy"],
                "val_precision": m["precision"], "val_recall": m["recall"]}

    def describe(self, row: dict[str, Any]) -> str:
        return (f"train loss {row['train_loss']:.4f} | val loss {row['val_loss']:.4f} AP@0.5 {row['val_ap50']:.2%} "
                f"plates found {row['val_plate_accuracy']:.2%} precision {row['val_precision']:.2%}")

    @staticmethod
    def result(final: dict[str, Any]) -> str:
        return (f"val AP@0.5 {final['val_ap50']:.2%}, plates found {final['val_plate_accuracy']:.2%} "
                f"(precision {final['val_precision']:.2%})")
