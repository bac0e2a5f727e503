"""The committed ``MODEL_CARDS/`` are exactly what ``python -m zoo.cards MODEL_CARDS/`` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

import zoo
import zoo.weights as zw
from zoo import cards

CARDS = Path(__file__).resolve().parent.parent / "MODEL_CARDS"


def test_committed_cards_equal_their_regeneration(tmp_path):
    fresh = {p.name: p.read_text() for p in cards.write_model_cards(tmp_path)}
    committed = {p.name: p.read_text() for p in CARDS.glob("*.md") if p.name != "README.md"}
    missing, orphans = sorted(fresh.keys() - committed.keys()), sorted(committed.keys() - fresh.keys())
    stale = sorted(n for n in fresh.keys() & committed.keys() if fresh[n] != committed[n])
    assert not (missing or orphans or stale), (
        f"MODEL_CARDS/ is out of date (missing {missing}, orphan {orphans}, stale {stale}): "
        f"run `python -m zoo.cards MODEL_CARDS/`")
    assert cards.main([str(CARDS), "--check"]) == 0


def test_every_weights_tag_has_a_card():
    for key in zw.WEIGHTS:
        assert (CARDS / f"{key}.md").is_file(), f"no card for {key}: run `python -m zoo.cards MODEL_CARDS/`"
    for name in zoo.list_models(include_stages=True):
        assert (CARDS / f"{name}.md").is_file()


@pytest.mark.parametrize("key", ["realtobinary_resnet18.larq_in1k", "meliusnet22.larq_in1k"])
def test_larq_zoo_cards_label_their_figures(key):
    from huggingface_hub import ModelCard

    card = ModelCard((CARDS / f"{key}.md").read_text())
    results = card.data.eval_results
    assert results and all(r.metric_name.endswith("(published)") for r in results)
    assert all(r.metric_args["source"].startswith("published: larq-zoo") for r in results)
    top1 = {"realtobinary_resnet18.larq_in1k": 65.01, "meliusnet22.larq_in1k": 62.4}[key]
    assert [r.metric_value for r in results if r.metric_type == "accuracy"] == [top1]
    text = card.text
    assert "LCE" in text and zw.WEIGHTS[key].sha256 in text and "pad_value=0.0" in text


def test_check_reports_a_stale_card(tmp_path, capsys):
    cards.write_model_cards(tmp_path)
    (tmp_path / "meliusnet22.larq_in1k.md").write_text("edited by hand\n")
    (tmp_path / "gone.md").write_text("no such model\n")
    assert cards.main([str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "meliusnet22.larq_in1k.md: stale" in out and "gone.md: orphan" in out


@pytest.mark.parametrize("key", [k for k, w in sorted(zw.WEIGHTS.items()) if w.importer == "larq_zoo"])
def test_larq_zoo_cards_say_how_layers_are_matched(key):
    """"By layer name" only where zoo.larq_import matches names; elsewhere by class and build order."""
    from zoo import larq_import

    family = zoo.get_config(zw.WEIGHTS[key].arch).family
    text = (CARDS / f"{key}.md").read_text()
    by_name = "maps it onto the model by layer name" in text
    assert by_name == (family in larq_import._RULES), key
    assert by_name or ("by Keras layer class and build order" in text and family in larq_import._AUTO_NAMED), key


@pytest.mark.parametrize("name", zoo.list_models(include_stages=True))
def test_cards_name_the_1bit_weight_convs_lce_and_onnx_leave_float(name):
    """An ``## Export`` section exactly where a model has convolutions with 1-bit weights and wider inputs
    (DoReFa-Net's 2-bit activations), naming each; the binary count it quotes is zoo.measure's."""
    from zoo.torch.layers import BINARY_WEIGHT_QUANTIZERS, BinaryConv2d

    from helpers import tiny

    model = tiny(name)
    wider = [n for n, m in model.named_modules() if isinstance(m, BinaryConv2d) and not m.is_binary
             and m.weight_quantizer in BINARY_WEIGHT_QUANTIZERS]
    text = (CARDS / f"{name}.md").read_text()
    assert ("## Export" in text) == bool(wider), name
    if wider:
        binary = zoo.measure(model).binary_convs
        assert all(f"`{n}`" in text for n in wider) and "LCE 0.16 has no kernel for them" in text
        assert (f"The other {binary} are binary" if binary else "None is binary") in text
    if name == "dorefanet":
        assert len(wider) == 6 and "dorefa_2bit inputs" in text and "no `LceBconv2d`" in text
