"""Full-size LCE export of the one larq-zoo family with a binary conv LCE 0.16 leaves float.

XNOR-Net's first fully-connected layer (a 6x6x256x4096 XNOR-scaled binary conv at 224x224) stays
float in LCE 0.16; the model records it (``fc0.lce_bconv = False``), so the converter expects one
LceBconv2d fewer and the file verifies. If LCE starts converting it, this test fails: drop the rule.
"""

import pytest

import zoo
from helpers import randomize


@pytest.mark.slow  # a 62 M-parameter conversion
def test_xnornet_full_size_converts_with_its_recorded_float_conv(tmp_path):
    import converters

    model = randomize(zoo.load("xnornet"))
    assert not model.fc0.lce_bconv and zoo.measure(model).binary_convs == 6
    report = converters.to_tflite(model, tmp_path / "xnornet.tflite")
    assert report.lce_bconv2d == 5 and report.top1_agreement >= 0.75


def test_eval_all_and_its_report_cover_every_larq_zoo_model():
    """``bnnzoo eval --all`` evaluates every architecture larq-zoo also has, and its figures table says
    which have 1-bit weights without an LCE op (DoReFa-Net's 2-bit activations)."""
    from eval import harness, report
    from zoo.larq_import import LARQ_ZOO_TWINS

    assert set(LARQ_ZOO_TWINS) <= set(harness.all_models())
    rows = []
    for name in ("dorefanet", "xnornet"):
        figures = zoo.measure(zoo.load(name, **zoo.get_config(name).tiny)).as_dict()
        rows.append({"model": name, "errors": {}, "figures": figures, "size": {"lce_bconv2d": figures["binary_convs"]}})
    table = report.figures_table({"models": rows})
    dorefa, xnor = table.splitlines()[2:]
    assert dorefa.startswith("| dorefanet") and "0 (0): 1-bit weights, wider inputs; no LCE op" in dorefa
    assert xnor.startswith("| xnornet") and "| 6 (6) |" in xnor


def test_bench_convert_covers_every_architecture_larq_zoo_has_and_marks_slow_ratios():
    from eval import bench_convert
    from zoo.larq_import import LARQ_ZOO_TWINS

    imported = {w.arch for w in zoo.weights.WEIGHTS.values() if w.importer}
    assert sorted(bench_convert.architectures()) == sorted(set(LARQ_ZOO_TWINS) | imported)
    assert {"reactnet_a", "reactnet_18"} <= imported
    settings = {"runs": 3, "warmup": 1, "threads": [1]}
    side = {"tflite_mb": 4.0, "ops": {"LceBconv2d": 16, "MEAN": 1}, "default_t1": (10.6, 10.0, 11.0),
            "indirect_bgemm_t1": (2.0, 1.9, 2.1)}
    lqz = {**side, "ops": {"LceBconv2d": 16, "AVERAGE_POOL_2D": 1}, "default_t1": (10.0, 9.0, 11.0)}
    rows = [{"model": "quicknet", "settings": settings, "ours": side, "larq_zoo": lqz},
            {"model": "dorefanet", "settings": settings, "ours": side, "larq_zoo": {"error": "LCE's converter crashed"}}]
    text = bench_convert.table(rows, "python eval/bench_convert.py", (1.0, 2.0), "today")
    quick, dorefa = text.splitlines()[-2:]
    assert "| **1.06** |" in quick and "| 1.00 |" in quick and "AVERAGE_POOL_2D -1, MEAN +1" in quick
    assert "LCE's converter crashed" in dorefa and "| - |" in dorefa
