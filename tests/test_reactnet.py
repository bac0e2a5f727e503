"""ReActNet (Liu et al., ECCV 2020): the importer of the authors' checkpoints, checked against a forward pass
written here from their code's layer facts, on checkpoints built in their exact key layout.

The reference forward (``_authors_forward_*``) reads the authors' state dict directly, with their
conventions: ``torch.sign`` (0 -> 0), PyTorch's symmetric ``padding=1`` zero-padded binary convolutions,
``nn.AvgPool2d(2, 2)`` shortcuts, scale = mean |w| per output channel, PyTorch's BatchNorm. Logits are
compared in float64, so float rounding cannot flip a sign.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo import reactnet_import
from zoo.fileio import sha256_of
from zoo.hub import HubError
from zoo.weights import WEIGHTS, WeightMismatchError

from helpers import randomize, tiny

# The authors' ReActNet-A channel table (mobilenet/*/reactnet.py): the stem, then 13 blocks. A block halves
# the map where the channels change, except into 64 (their rule, applied to this table).
AUTHORS_A = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
STRIDES_A = [2 if AUTHORS_A[i - 1] != AUTHORS_A[i] and AUTHORS_A[i] != 64 else 1 for i in range(1, len(AUTHORS_A))]


def _bn(g, name: str, c: int) -> dict:
    return {f"{name}.weight": torch.rand(c, generator=g) + 0.5, f"{name}.bias": torch.randn(c, generator=g) * 0.3,
            f"{name}.running_mean": torch.randn(c, generator=g) * 0.3,
            f"{name}.running_var": torch.rand(c, generator=g) + 0.5,
            f"{name}.num_batches_tracked": torch.tensor(1000)}


def _shift(g, c: int) -> torch.Tensor:
    return torch.randn(1, c, 1, 1, generator=g) * 0.2


def _kernel(g, out: int, cin: int, k: int, flat: bool) -> torch.Tensor:
    w = torch.randn(out, cin, k, k, generator=g) / (cin * k * k) ** 0.5
    return w.reshape(-1, 1) if flat else w


def authors_state_a(alpha: float, num_classes: int, step: int = 2, seed: int = 0) -> dict:
    """A random state dict in the key layout of the authors' ReActNet-A (step 2 flattens binary kernels into
    ``weights`` of shape (n, 1); step 1 keeps nn.Conv2d ``weight``)."""
    g = torch.Generator().manual_seed(seed)
    ch = [int(c * alpha) for c in AUTHORS_A]
    conv = "weights" if step == 2 else "weight"
    sd = {"feature.0.conv1.weight": torch.randn(ch[0], 3, 3, 3, generator=g) / 27 ** 0.5,
          **_bn(g, "feature.0.bn1", ch[0])}
    for i in range(1, len(ch)):
        cin, out, f = ch[i - 1], ch[i], f"feature.{i}"
        sd.update({f"{f}.move11.bias": _shift(g, cin), f"{f}.binary_3x3.{conv}": _kernel(g, cin, cin, 3, step == 2),
                   **_bn(g, f"{f}.bn1", cin), f"{f}.move12.bias": _shift(g, cin),
                   f"{f}.prelu1.weight": torch.rand(cin, generator=g) * 0.5, f"{f}.move13.bias": _shift(g, cin),
                   f"{f}.move21.bias": _shift(g, cin)})
        if cin == out:
            sd.update({f"{f}.binary_pw.{conv}": _kernel(g, out, cin, 1, step == 2), **_bn(g, f"{f}.bn2", out)})
        else:
            for j in (1, 2):
                sd.update({f"{f}.binary_pw_down{j}.{conv}": _kernel(g, cin, cin, 1, step == 2),
                           **_bn(g, f"{f}.bn2_{j}", cin)})
        sd.update({f"{f}.move22.bias": _shift(g, out), f"{f}.prelu2.weight": torch.rand(out, generator=g) * 0.5,
                   f"{f}.move23.bias": _shift(g, out)})
    sd.update({"fc.weight": torch.randn(num_classes, ch[-1], generator=g) / ch[-1] ** 0.5,
               "fc.bias": torch.randn(num_classes, generator=g) * 0.1})
    return sd


def authors_state_18(filters: int, num_classes: int, seed: int = 0) -> dict:
    """A random state dict in the key layout of the authors' ReActNet-18 (resnet/*/birealnet.py, [4, 4, 4, 4])."""
    g = torch.Generator().manual_seed(seed)
    sd = {"conv1.weight": torch.randn(filters, 3, 7, 7, generator=g) / 147 ** 0.5, **_bn(g, "bn1", filters)}
    cin = filters
    for s in range(4):
        out = filters * 2 ** s
        for j in range(4):
            f = f"layer{s + 1}.{j}"
            sd.update({f"{f}.move0.bias": _shift(g, cin), f"{f}.binary_conv.weight": _kernel(g, out, cin, 3, False),
                       **_bn(g, f"{f}.bn1", out), f"{f}.move1.bias": _shift(g, out),
                       f"{f}.prelu.weight": torch.rand(out, generator=g) * 0.5, f"{f}.move2.bias": _shift(g, out)})
            if j == 0 and s:
                sd.update({f"{f}.downsample.1.weight": _kernel(g, out, cin, 1, False),
                           **_bn(g, f"{f}.downsample.2", out)})
            cin = out
    sd.update({"fc.weight": torch.randn(num_classes, cin, generator=g) / cin ** 0.5,
               "fc.bias": torch.randn(num_classes, generator=g) * 0.1})
    return sd


# --- the authors' forward, from their code's facts (float64) ---------------------------------------------

def _bnf(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], False, 0.0, 1e-5)


def _bconv(x: torch.Tensor, w: torch.Tensor, shape: tuple, stride: int, binary_weights: bool) -> torch.Tensor:
    w = w.reshape(shape)
    if binary_weights:
        w = w.abs().mean((1, 2, 3), keepdim=True) * torch.sign(w)
    return F.conv2d(torch.sign(x), w, stride=stride, padding=shape[-1] // 2)


def _rprelu(sd: dict, x: torch.Tensor, a: str, p: str, b: str) -> torch.Tensor:
    return F.prelu(x + sd[a], sd[p]) + sd[b]


def authors_forward_a(sd: dict, x: torch.Tensor, alpha: float, binary_weights: bool = True) -> torch.Tensor:
    ch = [int(c * alpha) for c in AUTHORS_A]
    conv = "weights" if binary_weights else "weight"
    x = _bnf(sd, "feature.0.bn1", F.conv2d(x, sd["feature.0.conv1.weight"], stride=2, padding=1))
    for i in range(1, len(ch)):
        cin, out, stride, f = ch[i - 1], ch[i], STRIDES_A[i - 1], f"feature.{i}"
        y = _bnf(sd, f"{f}.bn1", _bconv(x + sd[f"{f}.move11.bias"], sd[f"{f}.binary_3x3.{conv}"], (cin, cin, 3, 3),
                                        stride, binary_weights))
        y = _rprelu(sd, (F.avg_pool2d(x, 2, 2) if stride == 2 else x) + y, f"{f}.move12.bias", f"{f}.prelu1.weight",
                    f"{f}.move13.bias")
        z = y + sd[f"{f}.move21.bias"]
        if cin == out:
            o = _bnf(sd, f"{f}.bn2", _bconv(z, sd[f"{f}.binary_pw.{conv}"], (out, cin, 1, 1), 1, binary_weights)) + y
        else:
            o = torch.cat([_bnf(sd, f"{f}.bn2_{j}", _bconv(z, sd[f"{f}.binary_pw_down{j}.{conv}"], (cin, cin, 1, 1), 1,
                                                          binary_weights)) + y for j in (1, 2)], 1)
        x = _rprelu(sd, o, f"{f}.move22.bias", f"{f}.prelu2.weight", f"{f}.move23.bias")
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def authors_forward_18(sd: dict, x: torch.Tensor, filters: int) -> torch.Tensor:
    x = F.max_pool2d(_bnf(sd, "bn1", F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)), 3, 2, 1)
    cin = filters
    for s in range(4):
        out = filters * 2 ** s
        for j in range(4):
            f, stride = f"layer{s + 1}.{j}", 2 if s and not j else 1
            y = _bnf(sd, f"{f}.bn1", _bconv(x + sd[f"{f}.move0.bias"], sd[f"{f}.binary_conv.weight"],
                                            (out, cin, 3, 3), stride, True))
            if f"{f}.downsample.1.weight" in sd:
                x = _bnf(sd, f"{f}.downsample.2", F.conv2d(F.avg_pool2d(x, 2, stride), sd[f"{f}.downsample.1.weight"]))
            x = _rprelu(sd, y + x, f"{f}.move1.bias", f"{f}.prelu.weight", f"{f}.move2.bias")
            cin = out
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def _checkpoint(sd: dict, path, legacy: bool = True) -> None:
    """Saves ``sd`` as the authors' train.py does: a DataParallel model's state dict with the epoch, the best
    top-1 (a tensor) and the Adam state of a LambdaLR schedule; PyTorch 1.4's legacy format by default."""
    params = [torch.nn.Parameter(v.clone()) for k, v in sd.items() if v.is_floating_point()]
    optimizer = torch.optim.Adam(params, lr=1.25e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / 128)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler.step()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()},
                "best_top1_acc": torch.tensor(61.25), "optimizer": optimizer.state_dict()}, str(path),
               _use_new_zipfile_serialization=not legacy)


def _ours(name: str, state: dict, **arch) -> torch.nn.Module:
    cfg = zoo.get_config(name).replace(**arch)
    model = zoo.build(cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in reactnet_import.convert(state, cfg).items()},
                          strict=False)
    return model.double().eval()


def _assert_same_logits(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert (ours - theirs).abs().max() <= 1e-9 * theirs.abs().max(), (ours - theirs).abs().max()


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-format", "zip-format"])
def test_reactnet_a_checkpoint_imports_to_the_same_logits(tmp_path, legacy):
    sd = authors_state_a(0.25, 10)
    _checkpoint(sd, tmp_path / "checkpoint.pth.tar", legacy)
    state = reactnet_import.read_checkpoint(tmp_path / "checkpoint.pth.tar")
    assert set(state) == set(sd)  # the 'module.' prefix gone, nothing else kept
    model = _ours("reactnet_a", state, alpha=0.25, num_classes=10, input_size=32, pad_value=0.0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        _assert_same_logits(model(x), authors_forward_a({k: v.double() for k, v in sd.items()}, x, 0.25))


def test_reactnet_a_step1_checkpoint_fits_the_real_weight_stage(tmp_path):
    """The authors' step 1 (binary activations, real weights: nn.Conv2d ``weight``) imports into the recipe's
    first step (``weight_quantizer=None``)."""
    sd = authors_state_a(0.125, 10, step=1, seed=3)
    _checkpoint(sd, tmp_path / "checkpoint.pth.tar")
    state = reactnet_import.read_checkpoint(tmp_path / "checkpoint.pth.tar")
    model = _ours("reactnet_a", state, alpha=0.125, num_classes=10, input_size=32, pad_value=0.0, weight_quantizer=None)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        _assert_same_logits(model(x), authors_forward_a({k: v.double() for k, v in sd.items()}, x, 0.125, False))


def test_reactnet_18_checkpoint_imports_to_the_same_logits(tmp_path):
    sd = authors_state_18(16, 10, seed=4)
    _checkpoint(sd, tmp_path / "checkpoint.pth.tar")
    state = reactnet_import.read_checkpoint(tmp_path / "checkpoint.pth.tar")
    model = _ours("reactnet_18", state, filters=16, num_classes=10, input_size=32, pad_value=0.0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        _assert_same_logits(model(x), authors_forward_18({k: v.double() for k, v in sd.items()}, x, 16))


def test_the_registered_tags_take_the_authors_full_size_layout():
    """Every key of a full-size checkpoint in the authors' layout maps onto the registered config, and back."""
    for key, state in (("reactnet_a.authors_in1k", authors_state_a(1.0, 1000)),
                       ("reactnet_18.authors_in1k", authors_state_18(64, 1000))):
        w = WEIGHTS[key]
        cfg = zoo.get_config(w.arch).replace(**dict(w.arch_overrides))
        converted = reactnet_import.convert(state, cfg)
        assert len(converted) == sum(not k.endswith("num_batches_tracked") for k in state)
        own = {k: tuple(v.shape) for k, v in zoo.build(cfg).state_dict().items() if not k.endswith("tracked")}
        assert {k: v.shape for k, v in converted.items()} == own


def test_a_registered_tag_loads_the_file_placed_by_hand(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BNNZOO_CACHE", str(tmp_path / "cache"))
    w = WEIGHTS["reactnet_18.authors_in1k"]
    with pytest.raises(HubError) as e:
        zoo.load("reactnet_18.authors_in1k")
    msg = str(e.value)
    assert "\n" not in msg and w.url in msg and str(reactnet_import.cache_path(w)) in msg
    sd = authors_state_18(64, 1000, seed=6)
    reactnet_import.cache_path(w).parent.mkdir(parents=True)
    _checkpoint(sd, reactnet_import.cache_path(w))
    with caplog.at_level(logging.INFO, logger="zoo.reactnet_import"):
        model = zoo.load("reactnet_18.authors_in1k")
    assert model.zoo_weights is w and model.zoo_config.arch["pad_value"] == 0.0
    assert any(sha256_of(reactnet_import.cache_path(w)) in r.getMessage() for r in caplog.records)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        _assert_same_logits(model.double()(x), authors_forward_18({k: v.double() for k, v in sd.items()}, x, 64))


class _RunsCode:
    def __reduce__(self):
        return (os.makedirs, (os.environ["REACTNET_TEST_MARKER"],))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("REACTNET_TEST_MARKER", str(marker))
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": {"fc.bias": torch.zeros(2)}, "hook": _RunsCode()}, str(path))
    with pytest.raises(WeightMismatchError, match="could run code") as e:
        reactnet_import.read_checkpoint(path)
    assert "\n" not in str(e.value) and not marker.exists()


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("feature.3.move21.bias"), r"no weight for blocks\.2\.rsign2\.bias"),
    (lambda sd: sd.update({"feature.3.move99.bias": torch.zeros(1, 4, 1, 1)}),
     r"'feature\.3\.move99\.bias' is no weight"),
    (lambda sd: sd.update({"feature.3.binary_pw.weights": torch.zeros(5, 1)}),
     r"'feature\.3\.binary_pw\.weights' has shape"),
    (lambda sd: sd.update({"feature.14.move11.bias": torch.zeros(1, 4, 1, 1)}), r"maps to 'blocks\.13\.rsign1\.bias'"),
], ids=["missing", "unknown", "wrong-shape", "extra-block"])
def test_checkpoints_that_do_not_fit_are_refused_naming_the_key(edit, message):
    sd = authors_state_a(0.125, 10)
    edit(sd)
    cfg = zoo.get_config("reactnet_a").replace(alpha=0.125, num_classes=10, pad_value=0.0)
    with pytest.raises(WeightMismatchError, match=message) as e:
        reactnet_import.convert(sd, cfg)
    assert "\n" not in str(e.value)


def test_unreadable_and_mixed_checkpoints_are_one_line_errors(tmp_path):
    (tmp_path / "cut.pth.tar").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(WeightMismatchError, match="cannot read .* as a PyTorch checkpoint"):
        reactnet_import.read_checkpoint(tmp_path / "cut.pth.tar")
    torch.save({"module.fc.bias": torch.zeros(2), "fc.weight": torch.zeros(2, 2)}, str(tmp_path / "mixed.pth"))
    with pytest.raises(WeightMismatchError, match="mixes keys"):
        reactnet_import.read_checkpoint(tmp_path / "mixed.pth")
    with pytest.raises(WeightMismatchError, match="into reactnet models"):
        reactnet_import.convert({}, zoo.get_config("birealnet18"))


def test_exact_zero_binary_weights_are_reported(caplog):
    """torch.sign(0) = 0 in the authors' code, +1 here (and in LCE): such weights are counted in a warning."""
    sd = authors_state_a(0.125, 10)
    sd["feature.2.binary_3x3.weights"][:3] = 0.0
    cfg = zoo.get_config("reactnet_a").replace(alpha=0.125, num_classes=10, pad_value=0.0)
    with caplog.at_level(logging.WARNING, logger="zoo.reactnet_import"):
        reactnet_import.convert(sd, cfg)
    assert any("3 latent binary weights are exactly 0" in r.getMessage() for r in caplog.records)


# --- the layers --------------------------------------------------------------------------------------------

def test_rsign_and_rprelu_compute_the_papers_functions():
    """RSign: sign(x - alpha) with alpha = -bias (the binary conv after it takes the sign); RPReLU: x - gamma +
    zeta above gamma, beta (x - gamma) + zeta below (Liu et al. 2020)."""
    from zoo.torch.layers import RPReLU, RSign

    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    rsign, rprelu = randomize(RSign(3)), randomize(RPReLU(3))
    alpha = -rsign.bias.view(1, 3, 1, 1)
    assert torch.equal(torch.where(rsign(x) >= 0, 1.0, -1.0), torch.where(x >= alpha, 1.0, -1.0))
    gamma, beta, zeta = (-rprelu.shift_in.bias.view(1, 3, 1, 1), rprelu.prelu.weight.view(1, 3, 1, 1),
                         rprelu.shift_out.bias.view(1, 3, 1, 1))
    expected = torch.where(x > gamma, x - gamma + zeta, beta * (x - gamma) + zeta)
    torch.testing.assert_close(rprelu(x), expected)


def test_strided_binary_convs_pad_the_authors_way_in_lce(tmp_path):
    """PyTorch's symmetric padding of a stride-2 binary conv on an even map reads the top/left border, which
    TensorFlow's "same" cannot: the Keras twin pads explicitly (one PAD per strided binary conv in LCE) and,
    zero-padded as the authors' weights are, subtracts the border's constant; the file verifies layer by layer
    on LCE's three kernels (test_converters.py converts the +1-padded default to both formats)."""
    import converters
    from converters.tflite import op_counts

    model = randomize(tiny("reactnet_a", pad_value=0.0))
    strided = [n for n, m in model.named_modules() if getattr(m, "is_binary", False) and m.stride[0] == 2]
    assert len(strided) == 3
    tfl = converters.to_tflite(model, tmp_path / "m.tflite")
    assert tfl.lce_bconv2d == zoo.measure(model).binary_convs == 20
    assert len(tfl.layers) == 3 and all(r.ok for r in tfl.layers)
    counts = op_counts(open(tfl.path, "rb").read())
    assert counts["PAD"] == len(strided) + 1  # and the float stem's (1, 0)
