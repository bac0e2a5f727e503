"""What layer-by-layer verification adds to a conversion, timed side by side in one run.

    python eval/bench_verify.py [NAME ...] [--size 224] [--pad-value 0]

For each model (randomised weights, as a trained one): the conversion without any check
(``verify=False``), then the layer-wise check of the same file alone (``check_tflite``:
LCE's optimized, indirect-bgemm and reference kernels; ``verify_onnx_layerwise``), and the
end-to-end comparison, each on the ``VERIFY_BATCH`` images every conversion uses. Prints
one table: wall seconds and CPU seconds of this process (``time.process_time``, all its threads;
on a shared machine the wall time grows with the load, the CPU time much less), one run each.
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
    from zoo.torch.random_weights import randomize

    rows = []

    def timed(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return out, (time.perf_counter() - wall, time.process_time() - cpu)

    for name in args.names:
        model = randomize(zoo.load(name, input_size=args.size, pad_value=args.pad_value))
        batch, _ = verification_batch(model, args.size)
        with tempfile.TemporaryDirectory() as folder:
            tfl, convert = timed(lambda: converters.to_tflite(model, os.path.join(folder, "m.tflite"), verify=False))
            flatbuffer = open(tfl.path, "rb").read()
            _, layers = timed(lambda: check_tflite(model, flatbuffer, batch))
            _, end = timed(lambda: (reference_outputs(model, batch), tflite_predict(flatbuffer, batch)))
            rows.append((name, "tflite", convert, layers, end))
            onx, convert = timed(lambda: converters.to_onnx(model, os.path.join(folder, "m.onnx"), bitpack=True,
                                                           verify=False))
            result, layers = timed(lambda: verify_onnx_layerwise(model, onnx.load(onx.path), batch))
            assert result.ok, result.error("onnx")
            _, end = timed(lambda: (reference_outputs(model, batch), onnx_predict(onx.path, batch)))
            rows.append((name, "onnx", convert, layers, end))
    print(f"{len(batch)} images of {args.size}x{args.size}, pad_value={args.pad_value}; "
          "seconds, wall / CPU, one run each")
    print(f"{'model':<16} {'format':<7} {'convert':>13} {'layer-wise':>13} {'end-to-end':>13}")
    for name, fmt, *times in rows:
        print(f"{name:<16} {fmt:<7} " + " ".join(f"{w:6.1f} /{c:6.1f}" for w, c in times))

if __name__ == "__main__":
    main()
