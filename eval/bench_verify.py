"""What layer-by-layer verification adds to a conversion, timed side by side in one run.

    python eval/bench_verify.py [NAME ...] [--size 224] [--pad-value 0]

For each model (randomised weights, as a trained one): the conversion without any check
(``verify=False``), then the layer-wise check of the same file alone (``check_tflite``:
LCE's optimized, indirect-bgemm and reference kernels; ``verify_onnx_layerwise``), and the
end-to-end comparison, each on the ``VERIFY_BATCH`` images every conversion uses. Prints
one table (seconds, one run each: conversions take tens of seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _randomize(model, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif t.ndim == 1 and name.endswith(("weight", "scale_h", "scale_w", "scale_c")):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.ndim >= 2:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["meliusnet22"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--pad-value", type=float, default=0.0)
    args = parser.parse_args()

    import onnx

    import converters
    import zoo
    from converters.onnx import onnx_predict, verify_onnx_layerwise
    from converters.tflite import check_tflite, tflite_predict
    from converters.verify import reference_outputs, verification_batch

    rows = []
    for name in args.names:
        model = _randomize(zoo.load(name, input_size=args.size, pad_value=args.pad_value))
        batch, _ = verification_batch(model, args.size)
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            tfl = converters.to_tflite(model, os.path.join(folder, "m.tflite"), verify=False)
            convert_s = time.perf_counter() - t
            flatbuffer = open(tfl.path, "rb").read()
            t = time.perf_counter()
            check_tflite(model, flatbuffer, batch)
            layers_s = time.perf_counter() - t
            t = time.perf_counter()
            reference_outputs(model, batch), tflite_predict(flatbuffer, batch)
            end_s = time.perf_counter() - t
            rows.append((name, "tflite", convert_s, layers_s, end_s))
            t = time.perf_counter()
            onx = converters.to_onnx(model, os.path.join(folder, "m.onnx"), bitpack=True, verify=False)
            convert_s = time.perf_counter() - t
            t = time.perf_counter()
            result = verify_onnx_layerwise(model, onnx.load(onx.path), batch)
            layers_s = time.perf_counter() - t
            assert result.ok, result.error("onnx")
            t = time.perf_counter()
            reference_outputs(model, batch), onnx_predict(onx.path, batch)
            end_s = time.perf_counter() - t
            rows.append((name, "onnx", convert_s, layers_s, end_s))
    print(f"{len(batch)} images of {args.size}x{args.size}, pad_value={args.pad_value}, seconds (one run each)")
    print(f"{'model':<24} {'format':<7} {'convert':>8} {'layer-wise':>11} {'end-to-end':>11}")
    for name, fmt, c, lw, e in rows:
        print(f"{name:<24} {fmt:<7} {c:8.1f} {lw:11.1f} {e:11.1f}")


if __name__ == "__main__":
    main()
