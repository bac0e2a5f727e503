"""Detection training (``task="detect"``): the plate detectors of Im & Lee (2018) in ``recipes.train``.

The loop, checkpoints, ``--resume`` and DDP are :mod:`recipes.train`'s; :class:`Detect` gives
it the data (a folder written by ``bnnzoo data plates``, read by ``recipes.plates.dataset``),
the loss of a batch (the model's YOLO loss, ``zoo.torch.detector.loss_for``) and the
validation metrics: the loss, and after decoding and NMS (``zoo.detection.decode``) AP@0.5,
the share of plates found at IoU >= 0.5 (Im & Lee's accuracy), precision and recall of the
detections scoring >= 0.5 (``zoo.detection.evaluate``).

An unreadable image is left out of its batch and counted in ``skipped_images``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

from zoo.detection import cxcywh_to_xyxy, decode, evaluate

from .config import ConfigError, Recipe, Stage
from .data import Subset
from .plates.dataset import DataError, PlatesDataset, collate
from .train import Dist, Task, val_outputs

__all__ = ["Detect", "build_datasets", "collate_skip", "FIELDS", "AP_SCORE_THRESHOLD"]

FIELDS = ("epoch", "lr", "train_loss", "train_box", "train_obj", "train_noobj", "val_loss", "val_ap50",
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
        raise FileNotFoundError(f"data folder {root} does not exist: generate it with `bnnzoo data plates --out {root}`")
    train = PlatesDataset(root, "train", recipe.input_size, hflip=True, seed=recipe.seed)
    val = PlatesDataset(root, "val", recipe.input_size)
    return (Subset(train, recipe.max_train_samples) if recipe.max_train_samples else train,
            Subset(val, recipe.max_val_samples) if recipe.max_val_samples else val)


def collate_skip(batch: list) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    """``recipes.plates.dataset.collate`` that also counts the unreadable images: ``(images, boxes, skipped)``."""
    images, boxes = collate(batch)
    return images, boxes, len(batch) - len(boxes)


class Detect(Task):
    """Plate detection: the YOLO loss in training, AP@0.5 and plates found in validation."""

    fields = FIELDS
    final = ("val_ap50", "val_plate_accuracy", "val_precision", "val_recall", "val_loss")
    sums = {"loss": "train_loss", "box": "train_box", "obj": "train_obj", "noobj": "train_noobj"}

    def __init__(self, model: nn.Module, teacher: Optional[nn.Module], stage: Stage, env: Dist) -> None:
        if teacher is not None:
            raise ConfigError(f"stage {stage.name} has a teacher, but detection stages train without distillation: "
                              f"set {stage.name}.teacher= (use {stage.name}.init_from to start from its weights)")
        super().__init__(model, teacher, stage, env)

    datasets = staticmethod(build_datasets)
    collate = staticmethod(collate_skip)

    @staticmethod
    def init_model(model: nn.Module) -> None:
        with torch.no_grad():
            model.head.bias.view(-1, 5)[:, 0] = math.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))

    def step(self, net: nn.Module, x: torch.Tensor, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        from zoo.torch.detector import loss_for

        raw = net(x.to(self.env.device, non_blocking=True))
        loss, parts = loss_for(self.model, raw, boxes)
        n = len(boxes)
        return loss, {"loss": loss.item() * n, **{k: v * n for k, v in parts.items()}}

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
