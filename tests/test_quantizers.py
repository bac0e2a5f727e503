"""Every quantizer of zoo.torch.layers.QUANTIZERS against larq's own (or larq-zoo's), forward and backward.

TensorFlow's GradientTape on larq's quantizer vs PyTorch autograd on ours, same random input and the
same random upstream gradient, at several clip values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.torch.layers import BINARY_INPUT_QUANTIZERS, BINARY_WEIGHT_QUANTIZERS, QUANTIZERS, BinaryConv2d

# Weight quantizers reduce over the output-channel axis: Keras puts it last (HWIO), PyTorch first (OIHW).
WEIGHT_QUANTIZERS = {"magnitude_aware_sign", "xnor_weight_scale", "magnitude_aware_sign_unclipped"}


def larq_reference(name: str, clip: float):
    """larq's (or larq-zoo's) quantizer of the same name, as a TensorFlow function."""
    import larq as lq
    import tensorflow as tf
    from larq_zoo.literature.dorefanet import magnitude_aware_sign_unclipped
    from larq_zoo.literature.xnornet import xnor_weight_scale

    table = {
        "ste_sign": lambda: lq.quantizers.SteSign(clip_value=clip),
        "tanh": lambda: tf.tanh,
        "approx_sign": lambda: lq.quantizers.ApproxSign(),
        "magnitude_aware_sign": lambda: lq.quantizers.MagnitudeAwareSign(clip_value=clip),
        "xnor_weight_scale": lambda: xnor_weight_scale,
        "magnitude_aware_sign_unclipped": lambda: magnitude_aware_sign_unclipped,
        "dorefa_2bit": lambda: lq.quantizers.DoReFa(k_bit=2, mode="activations"),
    }
    if name not in table:
        raise AssertionError(f"quantizer {name!r} has no larq reference in this test: add it to the table")
    return table[name]()


@pytest.mark.parametrize("clip", [1.0, 1.25, 1.3])
@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_forward_and_gradient_equal_larq(name: str, clip: float) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    low, high = (-0.5, 1.5) if name.startswith("dorefa") else (-2.0, 2.0)
    x = rng.uniform(low, high, size=(8, 6, 3, 3)).astype(np.float32)  # torch OIHW
    x[0, 0, 0, :3] = [0.0, clip, -clip]  # sign(0) and the clip boundary itself
    dy = rng.normal(size=x.shape).astype(np.float32)

    xt = torch.tensor(x, requires_grad=True)
    yt = QUANTIZERS[name](xt, clip)
    (yt * torch.tensor(dy)).sum().backward()

    to_tf = (lambda a: a.transpose(2, 3, 1, 0)) if name in WEIGHT_QUANTIZERS else (lambda a: a)
    back = (lambda a: a.transpose(3, 2, 0, 1)) if name in WEIGHT_QUANTIZERS else (lambda a: a)
    xk = tf.Variable(to_tf(x))
    with tf.GradientTape() as tape:
        yk = larq_reference(name, clip)(xk)
        loss = tf.reduce_sum(yk * to_tf(dy))
    gk = tape.gradient(loss, xk)

    np.testing.assert_allclose(yt.detach().numpy(), back(yk.numpy()), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xt.grad.numpy(), back(gk.numpy()), rtol=1e-5, atol=1e-6)
    # The plain-op path (no grad, what exporters trace) gives the same forward values.
    np.testing.assert_array_equal(QUANTIZERS[name](torch.tensor(x), clip).numpy(), yt.detach().numpy())


def test_binary_sets_name_registered_quantizers() -> None:
    assert BINARY_INPUT_QUANTIZERS <= set(QUANTIZERS) and BINARY_WEIGHT_QUANTIZERS <= set(QUANTIZERS)
    assert "dorefa_2bit" not in BINARY_INPUT_QUANTIZERS  # 2-bit activations are no XNOR-popcount input


@pytest.mark.parametrize("dilation,padding", [(1, "same"), (2, "same"), (3, "same"), (1, "valid")])
def test_binary_conv_pads_and_dilates_like_larq(dilation: int, padding: str) -> None:
    import larq as lq
    import tensorflow as tf

    torch.manual_seed(0)
    conv = BinaryConv2d(8, 16, 3, pad_value=0.0, clip=1.3, dilation=dilation, padding=padding)
    x = torch.randn(2, 8, 9, 9)
    ref = lq.layers.QuantConv2D(16, 3, padding=padding, dilation_rate=dilation, use_bias=False,
                                input_quantizer=lq.quantizers.SteSign(1.3), kernel_quantizer=lq.quantizers.SteSign(1.3))
    ref.build((None, 9, 9, 8))
    ref.set_weights([conv.weight.detach().numpy().transpose(2, 3, 1, 0)])
    expected = ref(tf.constant(x.numpy().transpose(0, 2, 3, 1))).numpy().transpose(0, 3, 1, 2)
    with torch.no_grad():
        np.testing.assert_allclose(conv(x).numpy(), expected, atol=1e-4)
