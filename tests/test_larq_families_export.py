"""Full-size LCE exports of the two larq-zoo families whose kernels are too large for LCE's constant folding.

XNOR-Net's first fully-connected layer (a 6x6x256x4096 XNOR-scaled binary conv at 224x224) and
DoReFa-Net's (the same shape, 1-bit weights times the layer's mean magnitude) hold 37.7 M weights:
LCE 0.16 leaves the quantization of such a kernel to run time (ABS, MEAN, the sign, MUL, TRANSPOSE
at every inference, the float latent weights in the file). ``converters.tflite.frozen_kernels``
hands LCE every quantized kernel as a constant: XNOR-Net's becomes an ``LceBconv2d`` like its other
binary layers, DoReFa-Net's one float constant.
"""

import pytest

import zoo

from helpers import randomize

_RUNTIME_QUANTIZATION = {"ABS", "MEAN", "TRANSPOSE", "LceDequantize"}


@pytest.mark.slow  # 62 M-parameter conversions
@pytest.mark.parametrize("name, binary", [("xnornet", 6), ("dorefanet", 0)])
def test_full_size_file_holds_each_kernel_once_quantized(name, binary, tmp_path):
    import converters
    from converters.tflite import op_counts

    model = randomize(zoo.load(name))
    assert zoo.measure(model).binary_convs == binary
    path = tmp_path / f"{name}.tflite"
    report = converters.to_tflite(model, path)
    assert report.lce_bconv2d == binary and all(r.ok for r in report.layers)
    ops = op_counts(path.read_bytes())
    assert not _RUNTIME_QUANTIZATION & set(ops), ops
    # binary kernels at 1 bit, float ones at 32 (the float file was 170.1 / 400.5 MB before)
    bits = sum(p.numel() * (1 if p.ndim == 4 and getattr(m, "is_binary", False) else 32)
               for m in model.modules() for p in m.parameters(recurse=False))
    assert report.size_bytes < 1.02 * bits / 8, (report.size_bytes, bits / 8)


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
            {"model": "dorefanet", "settings": settings, "ours": side,
             "larq_zoo": {"error": "LCE's converter crashed"}}]
    text = bench_convert.table(rows, "python eval/bench_convert.py", (1.0, 2.0), "today")
    quick, dorefa = text.splitlines()[-2:]
    assert "| **1.06** |" in quick and "| 1.00 |" in quick and "AVERAGE_POOL_2D -1, MEAN +1" in quick
    assert "LCE's converter crashed" in dorefa and "| - |" in dorefa
