import os
import shutil
import tempfile

# larq needs Keras 2: this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# pytest-xdist workers (`make test` runs -n 2) share the cores: each gets its share of intra-op
# threads, set before torch, TensorFlow or onnxruntime is imported, so they do not fight over them.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_var, _threads)

EXPORTS_ENV = "BNNZOO_TEST_EXPORTS"  # helpers.EXPORTS_ENV (helpers imports torch: not here)

_created: list[str] = []


def pytest_configure(config):
    """One folder of shared exports (helpers.tiny_tflite) for the session; xdist workers inherit it."""
    if not hasattr(config, "workerinput") and not os.environ.get(EXPORTS_ENV):
        _created.append(tempfile.mkdtemp(prefix="bnnzoo-test-exports-"))
        os.environ[EXPORTS_ENV] = _created[-1]


def pytest_unconfigure(config):
    for folder in _created:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(EXPORTS_ENV, None)
