"""The plate detector: the three recipes, decoding, NMS, metrics and the YOLO loss."""

import numpy as np
import pytest
import torch

import zoo
from zoo import detection as det
from zoo.torch.detector import BinaryConv2d, yolo_loss

from helpers import tiny


def test_the_three_recipes_differ_where_the_paper_says():
    def kinds(name):
        m = zoo.load(name)
        return ([isinstance(layer.conv, BinaryConv2d) and layer.conv.is_binary for layer in m.layers],
                [not isinstance(layer.act, torch.nn.Identity) for layer in m.layers], m)

    binary, act, m = kinds("plates_detector_float")
    assert not any(binary) and all(act) and not isinstance(m.head, BinaryConv2d)
    binary, act, _ = kinds("plates_detector_1bit_baseline")
    assert binary == [False] + [True] * 5 and all(act)  # first and last (head) 32-bit, activations kept
    binary, act, m = kinds("plates_detector_1bit")
    assert binary == [False, False] + [True] * 4  # the second layer 32-bit too
    assert act == [True, True] + [False] * 4  # no nonlinearity after binarized layers
    for layer in m.layers:  # LCE's fast path: binary convs read multiples of 32 and write multiples of 8
        if isinstance(layer.conv, BinaryConv2d):
            assert layer.conv.in_channels % 32 == 0 and layer.conv.out_channels % 8 == 0
    figures = zoo.measure(m)
    assert figures.binary_convs == 4 and figures.bops > figures.flops


def test_output_length_follows_the_input_size():
    cfg = zoo.get_config("plates_detector_1bit")
    assert cfg.num_classes == 10 * 10 * 3 * 5  # 160 / 16 = 10, 3 anchors
    model = zoo.load("plates_detector_1bit", input_size=64)
    assert model.zoo_config.num_classes == 4 * 4 * 3 * 5
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 240)
    with pytest.raises(ValueError, match="leave num_classes unset or pass 240"):
        zoo.load("plates_detector_1bit", input_size=64, num_classes=10)


def _raw_for(boxes_cxcywh, anchors, grid):
    """Hand-made raw outputs that decode exactly to the given boxes (objectness 0.99 there, 0.01 elsewhere)."""
    anchors = np.asarray(anchors)
    raw = np.zeros((grid, grid, len(anchors), 5))
    raw[..., 0] = -4.6
    for cx, cy, w, h in boxes_cxcywh:
        gx, gy = int(cx * grid), int(cy * grid)
        a = 0
        fx, fy = cx * grid - gx, cy * grid - gy
        raw[gy, gx, a] = [4.6, np.log(fx / (1 - fx)), np.log(fy / (1 - fy)), np.log(w / anchors[a, 0]),
                          np.log(h / anchors[a, 1])]
    return raw.reshape(1, -1)


def test_decode_inverts_the_documented_layout():
    anchors = ((0.2, 0.05), (0.4, 0.1))
    truth = [(0.33, 0.41, 0.3, 0.07), (0.72, 0.83, 0.15, 0.06)]
    (d,) = det.decode(_raw_for(truth, anchors, 5), anchors, score_threshold=0.5)
    assert len(d) == 2 and (d.scores > 0.98).all()
    expected = det.cxcywh_to_xyxy(truth)
    got = d.boxes[np.argsort(d.boxes[:, 0])]
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # Works from a model's config and on torch tensors too.
    cfg = zoo.get_config("plates_detector_1bit")
    out = det.decode(torch.zeros(2, cfg.num_classes), cfg, score_threshold=0.0, max_boxes=7)
    assert len(out) == 2 and len(out[0]) == 7
    with pytest.raises(ValueError, match="do not fit a square grid"):
        det.decode(np.zeros((1, 7)), anchors)


def test_iou_and_nms():
    a = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [10, 10, 11, 11], [0, 0, 2, 2.2]], float)
    m = det.iou(a, a)
    assert np.allclose(np.diag(m), 1) and abs(m[0, 1] - 1 / 7) < 1e-12 and m[0, 2] == 0
    assert det.iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0
    keep = det.nms(a, [0.9, 0.8, 0.7, 0.95], iou_threshold=0.5)
    assert keep.tolist() == [3, 1, 2]


def test_metrics_on_hand_made_boxes():
    gts = [np.array([[0.1, 0.1, 0.4, 0.2], [0.5, 0.5, 0.9, 0.6]]), np.array([[0.2, 0.7, 0.5, 0.8]]), np.zeros((0, 4))]
    perfect = [(g, np.linspace(0.9, 0.8, len(g))) for g in gts]
    assert det.average_precision(perfect, gts) == 1.0
    assert det.precision_recall(perfect, gts) == (1.0, 1.0) and det.plate_accuracy(perfect, gts) == 1.0
    # Shift one plate by half its width: IoU 1/3 < 0.5, so it is a miss and a false positive.
    shifted = [(perfect[0][0] + [[0.15, 0, 0.15, 0], [0, 0, 0, 0]], perfect[0][1])] + perfect[1:]
    ap = det.average_precision(shifted, gts)
    assert 0 < ap < 1
    assert det.plate_accuracy(shifted, gts) == pytest.approx(2 / 3)
    assert det.precision_recall(shifted, gts)[0] == pytest.approx(2 / 3)
    # A duplicate detection of the same plate counts once; a low-scored false alarm lowers AP less than a high one.
    dup = [(np.vstack([gts[0], gts[0][:1]]), np.array([0.9, 0.8, 0.85]))] + perfect[1:]
    assert det.precision_recall(dup, gts) == (0.75, 1.0)
    low = [(np.vstack([gts[0], [[0.0, 0.9, 0.1, 1.0]]]), np.array([0.9, 0.8, 0.01]))] + perfect[1:]
    high = [(np.vstack([gts[0], [[0.0, 0.9, 0.1, 1.0]]]), np.array([0.9, 0.8, 0.99]))] + perfect[1:]
    assert det.average_precision(low, gts) == 1.0 > det.average_precision(high, gts)
    assert det.average_precision([(np.zeros((0, 4)), np.zeros(0))], [np.zeros((0, 4))]) == 1.0
    e = det.evaluate(perfect, gts)
    assert e["ap50"] == 1.0 and e["plates"] == 3 and e["images"] == 3


def test_loss_is_small_for_the_right_answer():
    anchors = ((0.2, 0.05), (0.4, 0.1))
    truth = [(0.33, 0.41, 0.2, 0.05)]
    right = torch.tensor(_raw_for(truth, anchors, 4), dtype=torch.float32)
    right[0, 0::5] = torch.where(right[0, 0::5] > 0, 12.0, -12.0)
    wrong = torch.zeros_like(right)
    target = [torch.tensor([[0.0, *truth[0]]])]
    assert yolo_loss(right, target, anchors)[0] < 0.01 * yolo_loss(wrong, target, anchors)[0]
    total, parts = yolo_loss(wrong, [torch.zeros(0, 5)], anchors)  # an image without plates
    assert parts["box"] == 0 and total > 0


def test_twenty_training_steps_reduce_the_loss(tmp_path):
    from recipes.plates.dataset import PlatesDataset, collate
    from recipes.plates.generate import generate

    generate(tmp_path, {"train": 64}, seed=0, size=(64, 64), workers=2)
    data = PlatesDataset(tmp_path, "train", input_size=32)  # the tiny config's input: a 2x2 grid
    all_images, all_boxes = collate([data[i] for i in range(len(data))])
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, collate_fn=collate)
    model = tiny("plates_detector_1bit").train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss_on_all() -> float:
        with torch.no_grad():  # batch statistics, as in training
            return float(yolo_loss(model(all_images), all_boxes, model.anchors)[0])

    before, steps = loss_on_all(), 0
    while steps < 20:
        for images, boxes in loader:
            loss, _ = yolo_loss(model(images), boxes, model.anchors)
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if steps == 20:
                break
    after = loss_on_all()
    assert after < 0.7 * before, (before, after)


def test_output_distillation_is_zero_when_student_and_teacher_agree():
    from recipes.detect import output_distillation

    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(3, 2 * 2 * 3 * 5, generator=g) * 3
    assert float(output_distillation(teacher, teacher)) == pytest.approx(0.0, abs=1e-5)
    student = (teacher + torch.randn(teacher.shape, generator=g)).requires_grad_()
    kd = output_distillation(student, teacher)
    assert float(kd) > 0.1
    kd.backward()
    # Box offsets count where the teacher sees a plate: with objectness -inf everywhere they do not.
    sure_nothing = teacher.clone().reshape(3, -1, 5)
    sure_nothing[..., 0] = -30.0
    moved = sure_nothing.clone()
    moved[..., 1:] += 5.0
    assert float(output_distillation(moved.flatten(1), sure_nothing.flatten(1))) == pytest.approx(0.0, abs=1e-6)
    # Gradient descent on it moves the student towards the teacher.
    s = student.detach().clone().requires_grad_()
    opt = torch.optim.SGD([s], lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        output_distillation(s, teacher).backward()
        opt.step()
    assert float(output_distillation(s, teacher)) < 0.5 * float(kd)


def test_the_light_variant_moves_a_stride_not_a_weight():
    """plates_detector_1bit_light: Im & Lee's layers with the first conv strided, so the float weights fit it."""
    light, improved, flt = (zoo.load(n) for n in ("plates_detector_1bit_light", "plates_detector_1bit",
                                                   "plates_detector_float"))
    assert {k: v.shape for k, v in light.state_dict().items()} == {k: v.shape for k, v in flt.state_dict().items()}
    assert [layer.conv.stride[0] for layer in light.layers] == [2, 1, 1, 1, 1, 1]
    assert [isinstance(layer.conv, BinaryConv2d) for layer in light.layers] == \
        [isinstance(layer.conv, BinaryConv2d) for layer in improved.layers]
    assert light.zoo_config.num_classes == improved.zoo_config.num_classes == 10 * 10 * 3 * 5  # same grid
    assert light(torch.zeros(1, 3, 160, 160)).shape == (1, 1500)
    f_light, f_imp, f_float = (zoo.measure(m) for m in (light, improved, flt))
    assert f_light.bops == f_imp.bops  # the binary layers see the same maps
    assert f_light.flops <= f_float.flops / 10 < f_imp.flops  # the 32-bit MACs are the ones that moved
    with pytest.raises(ValueError, match="option 'strides' takes 6 values"):  # checked at the door (zoo.registry)
        zoo.load("plates_detector_1bit_light", strides=(2, 1))


def test_strided_detector_is_the_same_in_keras():
    """The strided first conv pads like TensorFlow's `same` in both frameworks (odd and even map sides)."""
    from helpers import randomize

    for size in (32, 35):
        model = randomize(tiny("plates_detector_1bit_light", input_size=size), seed=3)
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref = model(x).numpy()
        out = zoo.to_keras(model)(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), training=False).numpy()
        assert out.shape == ref.shape and np.isclose(out, ref, atol=1e-3, rtol=1e-3).mean() >= 0.99
