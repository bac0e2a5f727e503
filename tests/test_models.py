"""Registry-driven: every registered model is built, run and moved between frameworks."""

import numpy as np
import pytest
import torch

import zoo
from zoo.weights import WeightMismatchError

from helpers import randomize, tiny

NAMES = zoo.list_models(include_stages=True)


def batch(cfg, n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, cfg.input_size, cfg.input_size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_runs_in_torch(name):
    model = tiny(name)
    cfg = model.zoo_config
    assert not model.training
    with torch.no_grad():
        out = model(batch(cfg, 2))
    assert out.shape == (2, cfg.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_keras_twin_has_same_parameters(name):
    model = tiny(name)
    keras_model = tiny(name, "keras")
    figures = zoo.measure(model)
    assert keras_model.count_params() == figures.params
    from zoo.keras.transfer import state_dict

    keras_shapes = {k: v.shape for k, v in state_dict(keras_model).items()}
    torch_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert keras_shapes == torch_shapes


@pytest.mark.parametrize("name", NAMES)
def test_weight_transfer_gives_matching_outputs(name):
    model = randomize(tiny(name))
    keras_model = zoo.to_keras(model)
    x = batch(model.zoo_config)
    with torch.no_grad():
        expected = model(x).numpy()
    got = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    assert (expected.argmax(1) == got.argmax(1)).all()
    tol = 1e-4 if zoo.measure(model).binary_convs == 0 else 1e-3
    assert np.abs(expected - got).max() < tol

    back = zoo.to_torch(keras_model)
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(back.state_dict()[key], value), key


def test_weights_of_another_architecture_are_refused_and_nothing_is_half_loaded(tmp_path):
    donor = tiny("mobilenet_v1", alpha=0.5)
    path = zoo.weights.save(donor.state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(WeightMismatchError, match="wrongly shaped"):
        tiny("mobilenet_v1", weights=str(path))
    keras_model = tiny("mobilenet_v1", "keras")
    before = [w.copy() for w in keras_model.get_weights()]
    with pytest.raises(WeightMismatchError, match="shape"):
        from zoo.keras.transfer import load_state_dict

        load_state_dict(keras_model, donor.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_model.get_weights()))


def test_saved_weights_load_in_both_frameworks(tmp_path):
    model = randomize(tiny("mobilenet_v1"))
    path = zoo.weights.save(model.state_dict(), tmp_path / "model.safetensors", model.zoo_config)
    again = zoo.load("mobilenet_v1", weights=str(path))
    assert again.zoo_config == model.zoo_config
    x = batch(model.zoo_config, 2)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    keras_model = zoo.load("mobilenet_v1", framework="keras", weights=str(path))
    got = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)


def test_config_json_of_another_model_is_refused(tmp_path):
    model = tiny("mobilenet_v1")
    path = zoo.weights.save(model.state_dict(), tmp_path / "model.safetensors", model.zoo_config)
    with pytest.raises(WeightMismatchError, match="describes a 'mobilenet_v1' model, not 'mobilenet_v1_050'"):
        zoo.load("mobilenet_v1_050", weights=str(path))


def test_corrupt_weights_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightMismatchError, match="cannot read weights"):
        tiny("mobilenet_v1", weights=str(bad))
