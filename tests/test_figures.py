"""Figures each model reports about itself, checked against independent references."""

import pytest

import zoo

PUBLISHED_SIZE = [n for n in zoo.list_models(include_stages=True) if "size_mb" in zoo.get_config(n).published]


def test_mobilenet_v1_matches_keras_applications():
    import tensorflow as tf

    reference = tf.keras.applications.MobileNet(weights=None, alpha=1.0).count_params()
    assert reference == 4_253_864
    figures = zoo.measure(zoo.load("mobilenet_v1"))
    assert figures.params == reference
    assert figures.binary_convs == 0 and figures.bops == 0
    # 569 M multiply-adds: Howard et al., Table 8 (1.0 MobileNet-224).
    assert abs(figures.flops - 569e6) / 569e6 < 0.01


@pytest.mark.parametrize("alpha,name",
                         [(0.25, "mobilenet_v1_025"), (0.5, "mobilenet_v1_050"), (0.75, "mobilenet_v1_075")])
def test_mobilenet_widths_match_keras_applications(alpha, name):
    import tensorflow as tf

    reference = tf.keras.applications.MobileNet(weights=None, alpha=alpha).count_params()
    assert zoo.measure(zoo.load(name)).params == reference


@pytest.mark.parametrize("name", PUBLISHED_SIZE)
def test_model_size_matches_the_paper(name):
    published = zoo.get_config(name).published
    measured_mb = zoo.measure(zoo.load(name)).size_bytes / 2**20
    assert abs(measured_mb - published["size_mb"]) / published["size_mb"] < 0.05, (measured_mb, published)


def test_every_binary_model_counts_its_binary_convs():
    from zoo.torch.layers import BinaryConv2d

    for name in zoo.list_models(include_stages=True):
        model = zoo.load(name, **zoo.get_config(name).tiny)
        expected = sum(isinstance(m, BinaryConv2d) and m.is_binary for m in model.modules())
        figures = zoo.measure(model)
        assert figures.binary_convs == expected
        assert (figures.bops > 0) == (expected > 0)


def _larq_twins() -> list[str]:
    from zoo.larq_import import LARQ_ZOO_TWINS

    return [n for n in zoo.list_models() if n in LARQ_ZOO_TWINS]


def test_larq_zoo_twin_table_names_registered_models():
    from zoo.larq_import import LARQ_ZOO_TWINS

    assert set(LARQ_ZOO_TWINS) <= set(zoo.list_models())


@pytest.mark.slow  # full-size Keras builds: a few seconds each
@pytest.mark.parametrize("name", _larq_twins())
def test_params_equal_larq_zoo_count_params(name):
    """Exactly larq-zoo's count_params() of the same architecture, recomputed from larq-zoo's builder."""
    import larq_zoo
    import tensorflow as tf

    from zoo.larq_import import LARQ_ZOO_TWINS

    module, builder = LARQ_ZOO_TWINS[name].split(".")
    reference = getattr(getattr(larq_zoo, module), builder)(weights=None).count_params()
    tf.keras.backend.clear_session()
    assert zoo.measure(zoo.load(name)).params == reference
