"""A TFLite file run once in a child process before it is trusted: LCE's kernels trust a file's graph, so a
damaged one (valid structure, altered graph) may crash the process that runs it."""

from __future__ import annotations

from typing import Sequence

__all__ = ["probe"]


# Loads LCE's interpreter extension by path (importing larq_compute_engine would import TensorFlow, seconds)
# and runs the file given on stdin once on zeros per set of flags: a crash kills only this child.
_PROBE = r"""
import importlib.machinery, importlib.util, json, sys
from pathlib import Path
import numpy as np
name = "larq_compute_engine.tflite.python.interpreter_wrapper_lite"
folders = importlib.util.find_spec("larq_compute_engine").submodule_search_locations
so = next(p for f in folders for p in sorted((Path(f) / "tflite" / "python").glob("interpreter_wrapper_lite*.so")))
loader = importlib.machinery.ExtensionFileLoader(name, str(so))
module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, str(so), loader=loader))
loader.exec_module(module)
data = sys.stdin.buffer.read()
for flags in json.loads(sys.argv[1]):
    try:
        it = module.LiteInterpreter(data, 1, flags.get("use_reference_bconv", False),
                                    flags.get("use_indirect_bgemm", False), False)
        it.predict([np.zeros(s, t) for s, t in zip(it.input_shapes, it.input_types)])
    except Exception:
        pass  # a refusal is the caller's to report; only a crash is looked for here
"""


def probe(flatbuffer: bytes, what: str, runtimes: Sequence[dict] = ({},)) -> None:
    """Runs a file once on zeros in LCE's interpreter, in a child process, with each set of ``runtimes`` flags.

    The structural check (:func:`converters.litert.flatbuffer.verify`) cannot see a file whose bytes
    still form a valid graph but another one (a tensor index or shape flipped): LCE's kernels trust
    it and may read out of bounds. Run first where a crash harms no one, such a file is one line.

    Raises:
        ValueError: The child died of a signal (or ran past 10 minutes).
    """
    import json
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([dict(f) for f in runtimes])],
                              input=flatbuffer, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{what} did not finish one inference in 10 minutes in LCE's interpreter: it is damaged "
                         f"or not this project's file; export it again") from None
    if done.returncode < 0:
        import signal

        raise ValueError(f"{what} crashes LCE's interpreter ({signal.Signals(-done.returncode).name}) although its "
                         f"structure is valid: its graph was altered (damaged); export it again")
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise ImportError(f"LCE's interpreter could not be loaded to check {what} ({last}): "
                          "pip install larq-compute-engine (the [lce] extra)")
