"""The 1-bit license-plate detector of Im & Lee (2018), and its YOLO training loss.

Im & Lee (2018) binarize a YOLO-style Korean license-plate detector. The usual recipe,
which keeps only the first and last layers 32-bit, reached 74% of the plates; keeping
the *second* layer 32-bit as well and removing the nonlinearity after the binarized
layers reached 96.1%. Both recipes, and the float reference, are configurations of
:class:`PlateDetector` (see ``zoo.families.detector``: ``plates_detector_float``,
``plates_detector_1bit_baseline``, ``plates_detector_1bit``, and ``plates_detector_1bit_light``,
the improved recipe with a strided first conv so that its 32-bit second layer is cheap).

Output layout: the 1x1 head gives an ``(N, A*5, G, G)`` map that is permuted to NHWC and
flattened, so ``raw[n, ((gy * G + gx) * A + a) * 5 + k]`` holds, for grid row ``gy``,
column ``gx`` and anchor ``a``, ``k = 0`` objectness logit, ``1, 2`` the centre offsets
(tx, ty; sigmoid -> position in the cell), ``3, 4`` the log size ratios to the anchor
(tw, th). The Keras twin flattens its NHWC map the same way; ``zoo.detection.decode``
turns either into boxes.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..families.detector import check_detector_config
from ..registry import ModelConfig
from .layers import BinaryConv2d, Conv2d

__all__ = ["DetectorLayer", "PlateDetector", "build", "yolo_loss", "loss_for", "assign_targets"]


class DetectorLayer(nn.Module):
    """3x3 conv -> BN -> (LeakyReLU) -> (2x2 max-pool); the conv is float or binary.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        binary: A ``BinaryConv2d`` (±1 inputs and weights) instead of a float conv.
        activation: Apply LeakyReLU after BN (Im & Lee remove it after binary convs).
        pool: End with a 2x2 max-pool (stride 2).
        pad_value: Padding value of the binarized input.
        negative_slope: LeakyReLU slope (YOLO's 0.1).
        stride: Stride of the conv (``same`` padding, TensorFlow-style).
    """

    def __init__(self, in_channels: int, out_channels: int, binary: bool, activation: bool, pool: bool,
                 pad_value: float = 1.0, negative_slope: float = 0.1, stride: int = 1) -> None:
        super().__init__()
        self.conv = (BinaryConv2d(in_channels, out_channels, 3, stride, pad_value=pad_value) if binary
                     else Conv2d(in_channels, out_channels, 3, stride))
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(negative_slope) if activation else nn.Identity()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class PlateDetector(nn.Module):
    """A YOLO-style single-scale plate detector (Im & Lee, 2018).

    Args:
        widths: Output channels of the body layers.
        pools: Whether each body layer ends with a 2x2 max-pool.
        anchors: Anchor ``(w, h)`` pairs as fractions of the image side.
        binary_from: Body layers with this index or higher are binary; the head is always
            float. ``1``: the common recipe; ``2``: Im & Lee's (second layer 32-bit too);
            ``len(widths)``: the float reference.
        binary_activation: Keep the LeakyReLU after binary layers (float layers always have it).
        pad_value: Padding value of the binarized inputs (+1: LCE's fast path).
        negative_slope: LeakyReLU slope.
        strides: Stride of each body layer's conv (empty: all 1). A stride changes no weight
            shape, so weights move between configurations that differ only in strides and pools.
    """

    def __init__(self, widths: Sequence[int], pools: Sequence[bool], anchors: Sequence[Sequence[float]],
                 binary_from: int = 2, binary_activation: bool = False, pad_value: float = 1.0,
                 negative_slope: float = 0.1, strides: Sequence[int] = ()) -> None:
        super().__init__()
        strides = tuple(strides) or (1,) * len(widths)
        if not len(widths) == len(pools) == len(strides):
            raise ValueError(f"widths ({len(widths)}), pools ({len(pools)}) and strides ({len(strides)}) must have "
                             "the same length")
        self.anchors = tuple((float(w), float(h)) for w, h in anchors)
        layers, cin = [], 3
        for i, (width, pool, stride) in enumerate(zip(widths, pools, strides)):
            binary = i >= binary_from
            layers.append(DetectorLayer(cin, width, binary, (not binary) or binary_activation, bool(pool),
                                        pad_value, negative_slope, int(stride)))
            cin = width
        self.layers = nn.Sequential(*layers)
        self.head = Conv2d(cin, len(self.anchors) * 5, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) images -> (N, G*G*A*5) raw predictions (layout in the module docstring)."""
        return self.head(self.layers(x)).permute(0, 2, 3, 1).flatten(1)


def build(cfg: ModelConfig) -> PlateDetector:
    """Builds the PyTorch plate detector described by ``cfg``.

    Raises:
        ValueError: ``cfg.num_classes`` is not the head's flattened output length.
    """
    check_detector_config(cfg)
    return PlateDetector(**cfg.arch)


# --- training loss ----------------------------------------------------------------------------


Targets = Union[torch.Tensor, Sequence[torch.Tensor]]


def _as_list(targets: Targets, n: int) -> list[torch.Tensor]:
    """Per-image (M, 4) tensors of normalised (cx, cy, w, h)."""
    if isinstance(targets, torch.Tensor) and targets.ndim == 2 and targets.shape[1] == 6:  # (T, [b, cls, box])
        return [targets[targets[:, 0] == i, 2:] for i in range(n)]
    out = []
    for t in targets:
        t = torch.as_tensor(t, dtype=torch.float32)
        out.append(t.reshape(-1, t.shape[-1])[:, -4:] if t.numel() else torch.zeros(0, 4))
    if len(out) != n:
        raise ValueError(f"got targets for {len(out)} images but predictions for {n}")
    return out


def _shape_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    inter = torch.minimum(wh[:, None, 0], anchors[None, :, 0]) * torch.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter)


def assign_targets(targets: Targets, n: int, grid: int, anchors: torch.Tensor):
    """YOLO assignment: each plate goes to the cell holding its centre and its best-shaped anchor.

    Returns:
        ``(index, box)``: ``index`` an (P, 4) long tensor of (image, gy, gx, anchor), ``box``
        the (P, 4) normalised (cx, cy, w, h) of those plates.
    """
    idx, boxes = [], []
    for b, t in enumerate(_as_list(targets, n)):
        t = t.to(anchors.device, anchors.dtype)
        t = t[(t[:, 2] > 0) & (t[:, 3] > 0)]
        if not len(t):
            continue
        gx = (t[:, 0] * grid).long().clamp(0, grid - 1)
        gy = (t[:, 1] * grid).long().clamp(0, grid - 1)
        a = _shape_iou(t[:, 2:4], anchors).argmax(1)
        idx.append(torch.stack([torch.full_like(gx, b), gy, gx, a], 1))
        boxes.append(t)
    if not idx:
        return torch.zeros(0, 4, dtype=torch.long, device=anchors.device), torch.zeros(0, 4, device=anchors.device)
    return torch.cat(idx), torch.cat(boxes)


def _xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def yolo_loss(raw: torch.Tensor, targets: Targets, anchors: Sequence[Sequence[float]], *,
              noobj_weight: float = 0.5, box_weight: float = 5.0, ignore_iou: float = 0.5,
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """The YOLO (v2/v3-style) loss of a batch of raw detector outputs.

    Objectness: binary cross-entropy, positives at the assigned (cell, anchor), negatives
    weighted by ``noobj_weight`` and ignored where the predicted box already overlaps a
    plate by ``ignore_iou``. Boxes (positives only): squared error of the sigmoid centre
    offsets and of the log size ratios (YOLOv2), weighted ``2 - w*h`` so small plates
    count more. Summed and divided by the batch size; 0 for a perfect answer.

    Args:
        raw: ``(N, G*G*A*5)`` outputs of :class:`PlateDetector`.
        targets: Per image an ``(M, 4)`` (cx, cy, w, h) or ``(M, 5)`` (class, cx, cy, w, h)
            tensor of normalised plates, or one ``(T, 6)`` tensor (image, class, cx, cy, w, h).
        anchors: The model's anchors (``model.anchors``).
        noobj_weight: Weight of the negatives' objectness term.
        box_weight: Weight of the box terms.
        ignore_iou: Negatives whose box overlaps a plate this much are not penalised.

    Returns:
        The loss (a scalar tensor) and its parts as floats (``box``, ``obj``, ``noobj``).
    """
    n = raw.shape[0]
    a_t = torch.as_tensor(anchors, dtype=raw.dtype, device=raw.device)
    na = len(a_t)
    cells = raw.shape[1] // (na * 5)
    grid = int(round(cells ** 0.5))
    if grid * grid * na * 5 != raw.shape[1]:
        raise ValueError(f"raw outputs of length {raw.shape[1]} do not fit a square grid with {na} anchors x 5")
    p = raw.reshape(n, grid, grid, na, 5)
    idx, boxes = assign_targets(targets, n, grid, a_t)
    obj_target = torch.zeros(n, grid, grid, na, dtype=raw.dtype, device=raw.device)
    noobj_mask = torch.ones_like(obj_target)
    if len(idx):
        b, gy, gx, a = idx.unbind(1)
        obj_target[b, gy, gx, a] = 1.0
        noobj_mask[b, gy, gx, a] = 0.0
        # Do not punish confident predictions that already cover a plate of their image well.
        with torch.no_grad():
            ar = torch.arange(grid, dtype=raw.dtype, device=raw.device)
            ys, xs = torch.meshgrid(ar, ar, indexing="ij")
            cx = (xs[None, :, :, None] + torch.sigmoid(p[..., 1])) / grid
            cy = (ys[None, :, :, None] + torch.sigmoid(p[..., 2])) / grid
            wh = a_t * torch.exp(p[..., 3:5].clamp(-8, 8))
            pred = _xyxy(torch.cat([cx[..., None], cy[..., None], wh], -1))[..., None, :]  # (n, G, G, A, 1, 4)
            gt = _xyxy(boxes)  # (P, 4), plate p belongs to image b[p]
            inter = (torch.minimum(pred[..., 2:], gt[:, 2:]) - torch.maximum(pred[..., :2], gt[:, :2])).clamp(min=0)
            inter = inter.prod(-1)
            union = (pred[..., 2:] - pred[..., :2]).prod(-1) + (gt[:, 2:] - gt[:, :2]).prod(-1) - inter
            own = b[None, :] == torch.arange(n, device=raw.device)[:, None]  # (n, P)
            best = (inter / (union + 1e-9)).masked_fill(~own[:, None, None, None, :], 0.0).amax(-1)
            noobj_mask[best > ignore_iou] = 0.0
    bce = F.binary_cross_entropy_with_logits(p[..., 0], obj_target, reduction="none")
    obj = (bce * obj_target).sum()
    noobj = (bce * noobj_mask).sum()
    if len(idx):
        pp = p[b, gy, gx, a]
        scale = 2.0 - boxes[:, 2] * boxes[:, 3]
        off = torch.stack([boxes[:, 0] * grid - gx, boxes[:, 1] * grid - gy], 1)
        xy = ((torch.sigmoid(pp[:, 1:3]) - off) ** 2).sum(1)
        twh = torch.log(boxes[:, 2:4] / a_t[a]).clamp(-8, 8)
        wh_loss = ((pp[:, 3:5] - twh) ** 2).sum(1)
        box = ((xy + wh_loss) * scale).sum()
    else:
        box = raw.sum() * 0.0
    total = (box_weight * box + obj + noobj_weight * noobj) / n
    return total, {"box": float(box.detach()) / n, "obj": float(obj.detach()) / n, "noobj": float(noobj.detach()) / n}


def loss_for(model: PlateDetector, raw: torch.Tensor, targets: Targets, **kw) -> tuple[torch.Tensor, dict]:
    """``yolo_loss`` with the model's own anchors."""
    return yolo_loss(raw, targets, model.anchors, **kw)

