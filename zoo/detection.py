"""Plate-detector post-processing and metrics, in NumPy, shared by every runtime.

The same functions turn the raw outputs of the PyTorch model, its Keras twin, an
LCE flatbuffer or an ONNX graph into boxes and score them, following Im & Lee (2018),
the 1-bit YOLO-style Korean license-plate detector: a plate counts as found when a
detection overlaps it with IoU >= 0.5.

Raw output layout (``zoo.torch.detector``): one ``(K,)`` vector per image,
``K = G * G * A * 5`` for a ``G x G`` grid and ``A`` anchors, in NHWC order::

    raw[((gy * G + gx) * A + a) * 5 + k]
        k = 0: objectness logit             score = sigmoid
        k = 1, 2: centre offsets tx, ty     cx = (gx + sigmoid(tx)) / G, cy likewise
        k = 3, 4: log size ratios tw, th    w = anchor_w * exp(tw),    h likewise

All boxes here are normalised to the image side (``[0, 1]``) and given as
``(x0, y0, x1, y1)``; ground truth from YOLO label files (``cx cy w h``) converts with
:func:`cxcywh_to_xyxy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

__all__ = ["Detections", "sample_plates", "SAMPLE_PLATES", "decode", "nms", "iou", "cxcywh_to_xyxy", "match",
           "same_boxes", "average_precision",
           "precision_recall_curve", "precision_recall", "plate_accuracy", "evaluate"]

IOU_FOUND = 0.5  # Im & Lee (2018): a plate is found when IoU >= 0.5
# Eight 160x160 test images of the synthetic plates data set side by side (seed 0), what every detector
# export is verified on; written by recipes.plates.generate.write_sample("zoo/data/plates_sample.png").
SAMPLE_PLATES = Path(__file__).resolve().parent / "data" / "plates_sample.png"


def sample_plates(input_size: int, count: int = 8) -> np.ndarray:
    """``count`` (at most 8) images of license plates from :data:`SAMPLE_PLATES` as ``(count, input_size,
    input_size, 3)`` uint8 RGB, resized (bilinear) from their 160x160."""
    from PIL import Image

    with Image.open(SAMPLE_PLATES) as strip:
        strip = strip.convert("RGB")
        side = strip.height
        if not 1 <= count <= strip.width // side:
            raise ValueError(f"{SAMPLE_PLATES.name} holds {strip.width // side} images, not {count}")
        tiles = [strip.crop((i * side, 0, (i + 1) * side, side)) for i in range(count)]
    return np.stack([np.asarray(t.resize((input_size, input_size), Image.BILINEAR), np.uint8) for t in tiles])


@dataclass
class Detections:
    """The detections of one image: ``boxes`` (M, 4) xyxy normalised, ``scores`` (M,), best first."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def cxcywh_to_xyxy(boxes: Any) -> np.ndarray:
    """(M, 4) centre/size boxes -> (M, 4) corner boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)


def iou(a: Any, b: Any) -> np.ndarray:
    """Pairwise IoU of (M, 4) and (P, 4) xyxy boxes -> (M, P); empty boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: Any, scores: Any, iou_threshold: float = 0.45, max_boxes: int = 100) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size and len(keep) < max_boxes:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _anchors_of(cfg_or_anchors: Any) -> np.ndarray:
    arch = getattr(cfg_or_anchors, "arch", None)
    anchors = arch["anchors"] if isinstance(arch, dict) else cfg_or_anchors
    a = np.asarray(anchors, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError("anchors must be (w, h) pairs: pass the model's zoo_config or its anchors")
    return a


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


def decode(raw: Any, cfg_or_anchors: Any, score_threshold: float = 0.25, iou_threshold: float = 0.45,
           max_boxes: int = 100) -> list[Detections]:
    """Raw detector outputs -> per-image boxes after thresholding and NMS.

    Args:
        raw: ``(N, K)`` (or ``(K,)``) outputs in the layout of the module docstring, from
            any runtime (NumPy, a torch tensor, a TF tensor).
        cfg_or_anchors: The model's ``ModelConfig`` (``model.zoo_config``) or its anchors.
        score_threshold: Minimum objectness probability kept.
        iou_threshold: NMS overlap above which the weaker box is dropped.
        max_boxes: At most this many boxes per image.

    Returns:
        One :class:`Detections` per image, boxes clipped to ``[0, 1]``.

    Raises:
        ValueError: ``K`` does not fit a square grid with the given anchors.
    """
    if hasattr(raw, "detach"):
        raw = raw.detach().cpu().numpy()
    raw = np.asarray(raw, dtype=np.float64)
    raw = raw[None] if raw.ndim == 1 else raw.reshape(raw.shape[0], -1)
    anchors = _anchors_of(cfg_or_anchors)
    na = len(anchors)
    grid = int(round((raw.shape[1] / (na * 5)) ** 0.5))
    if grid < 1 or grid * grid * na * 5 != raw.shape[1]:
        raise ValueError(f"outputs of length {raw.shape[1]} do not fit a square grid with {na} anchors x 5: "
                         "pass the config or anchors of the model that made them")
    p = raw.reshape(len(raw), grid, grid, na, 5)
    gy, gx = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    cx = (gx[None, :, :, None] + _sigmoid(p[..., 1])) / grid
    cy = (gy[None, :, :, None] + _sigmoid(p[..., 2])) / grid
    w = anchors[:, 0] * np.exp(np.clip(p[..., 3], -10, 10))
    h = anchors[:, 1] * np.exp(np.clip(p[..., 4], -10, 10))
    scores = _sigmoid(p[..., 0]).reshape(len(raw), -1)
    boxes = np.clip(cxcywh_to_xyxy(np.stack([cx, cy, w, h], -1).reshape(-1, 4)), 0, 1).reshape(len(raw), -1, 4)
    out = []
    for b, s in zip(boxes, scores):
        sel = np.nonzero(s >= score_threshold)[0]
        keep = sel[nms(b[sel], s[sel], iou_threshold, max_boxes)] if sel.size else sel
        out.append(Detections(b[keep], s[keep]))
    return out


PredLike = Union[Detections, tuple]


def _pred(p: PredLike) -> tuple[np.ndarray, np.ndarray]:
    boxes, scores = (p.boxes, p.scores) if isinstance(p, Detections) else p
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64).reshape(-1)


def match(boxes: Any, scores: Any, gt: Any, iou_threshold: float = IOU_FOUND) -> np.ndarray:
    """Greedy matching, best score first: whether each detection is a true positive.

    Each ground-truth box is matched at most once (PASCAL VOC rule); a detection
    matches the free ground truth it overlaps most, if that IoU is ``>= iou_threshold``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    tp = np.zeros(len(boxes), dtype=bool)
    if not len(gt) or not len(boxes):
        return tp
    overlaps = iou(boxes, gt)
    taken = np.zeros(len(gt), dtype=bool)
    for i in np.argsort(-np.asarray(scores, dtype=np.float64).reshape(-1), kind="stable"):
        cand = np.where(taken, -1.0, overlaps[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            taken[j] = True
            tp[i] = True
    return tp


def same_boxes(a: PredLike, b: PredLike, min_iou: float = 0.9, atol: float = 1e-3) -> bool:
    """Whether two detection sets of one image hold the same boxes (scores are not compared).

    Same count, and each box of ``b`` (best score first) paired one to one with the nearest
    free box of ``a`` that overlaps it with IoU ``>= min_iou`` or whose corners all lie
    within ``atol`` of its own: IoU cannot tell apart two boxes of (nearly) zero area.
    """
    boxes_a, _ = _pred(a)
    boxes_b, scores_b = _pred(b)
    if len(boxes_a) != len(boxes_b):
        return False
    distance = np.abs(boxes_b[:, None, :] - boxes_a[None, :, :]).max(-1)
    close = (iou(boxes_b, boxes_a) >= min_iou) | (distance <= atol)
    taken = np.zeros(len(boxes_a), dtype=bool)
    for i in np.argsort(-scores_b, kind="stable"):
        candidates = np.where(close[i] & ~taken, distance[i], np.inf)
        j = int(np.argmin(candidates)) if len(candidates) else 0
        if not np.isfinite(candidates[j]):
            return False
        taken[j] = True
    return True


def precision_recall_curve(preds: Sequence[PredLike], gts: Sequence[Any],
                           iou_threshold: float = IOU_FOUND) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Precision and recall after each detection, best score first, over a set of images.

    Args:
        preds: Per image, :class:`Detections` or ``(boxes, scores)``.
        gts: Per image, ``(M, 4)`` xyxy ground-truth boxes.
        iou_threshold: Overlap at which a detection finds a plate.

    Returns:
        ``(precision, recall, scores, plates)``: three ``(D,)`` arrays over all ``D``
        detections sorted by score, and the number of ground-truth plates.

    Raises:
        ValueError: ``preds`` and ``gts`` differ in length.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} images: pass one entry per image")
    all_scores, all_tp, n_gt = [], [], 0
    for p, g in zip(preds, gts):
        boxes, scores = _pred(p)
        g = np.asarray(g, dtype=np.float64).reshape(-1, 4)
        n_gt += len(g)
        all_scores.append(scores)
        all_tp.append(match(boxes, scores, g, iou_threshold))
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / max(n_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    return precision, recall, scores[order], n_gt


def average_precision(preds: Sequence[PredLike], gts: Sequence[Any], iou_threshold: float = IOU_FOUND) -> float:
    """AP at ``iou_threshold`` (AP@0.5 by default) over a set of images.

    The area under the all-point interpolated precision/recall curve (PASCAL VOC 2010+).

    Args:
        preds: Per image, :class:`Detections` or ``(boxes, scores)``.
        gts: Per image, ``(M, 4)`` xyxy ground-truth boxes.

    Returns:
        AP in ``[0, 1]``; 1.0 when there are no plates and no detections, 0.0 when
        there are no plates but some detections.
    """
    precision, recall, scores, n_gt = precision_recall_curve(preds, gts, iou_threshold)
    if n_gt == 0:
        return 1.0 if scores.size == 0 else 0.0
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def precision_recall(preds: Sequence[PredLike], gts: Sequence[Any], score_threshold: float = 0.5,
                     iou_threshold: float = IOU_FOUND) -> tuple[float, float]:
    """Precision and recall of the detections scoring ``>= score_threshold``.

    Returns:
        ``(precision, recall)``; precision is 1.0 when nothing is detected, recall 1.0
        when there is nothing to find.
    """
    tp_total = det_total = gt_total = 0
    for p, g in zip(preds, gts):
        boxes, scores = _pred(p)
        keep = scores >= score_threshold
        g = np.asarray(g, dtype=np.float64).reshape(-1, 4)
        tp_total += int(match(boxes[keep], scores[keep], g, iou_threshold).sum())
        det_total += int(keep.sum())
        gt_total += len(g)
    return (tp_total / det_total if det_total else 1.0, tp_total / gt_total if gt_total else 1.0)


def plate_accuracy(preds: Sequence[PredLike], gts: Sequence[Any], score_threshold: float = 0.5,
                   iou_threshold: float = IOU_FOUND) -> float:
    """Im & Lee's accuracy: the share of plates found (a detection with IoU >= 0.5), in ``[0, 1]``.

    This is recall at ``score_threshold``; report it with :func:`precision_recall` so
    that a detector firing everywhere does not look good.
    """
    return precision_recall(preds, gts, score_threshold, iou_threshold)[1]


def evaluate(preds: Sequence[PredLike], gts: Sequence[Any], score_threshold: float = 0.5,
             iou_threshold: float = IOU_FOUND) -> dict[str, float]:
    """AP, precision, recall and plate accuracy in one dictionary (all in ``[0, 1]``)."""
    precision, recall = precision_recall(preds, gts, score_threshold, iou_threshold)
    return {"ap50": average_precision(preds, gts, iou_threshold), "precision": precision, "recall": recall,
            "plate_accuracy": recall, "images": len(gts), "plates": int(sum(len(np.reshape(g, (-1, 4)))
                                                                            for g in gts))}
