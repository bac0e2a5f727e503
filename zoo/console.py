"""What the command line prints: third-party start-up noise kept out, progress shown.

``bnnzoo`` prints its own lines only. TensorFlow's C++ start-up log (CUDA/XLA factory
registrations, written to file descriptor 2 before its logging is configured), torch.onnx's
"torchvision is not installed" notices and a few known deprecation warnings are silenced
unless ``bnnzoo --verbose`` is given. Progress goes to stderr: a tqdm bar on a terminal, one
plain line per step otherwise (logs and CI get no redraw flood).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterable, Iterator, Optional, TypeVar

__all__ = ["quiet_startup", "import_tensorflow_quietly", "stderr_discarded", "Progress", "progress", "bar"]

T = TypeVar("T")

# Known third-party warnings with nothing for a bnnzoo user to act on.
_KNOWN_WARNINGS = (
    (FutureWarning, r".*LeafSpec.*"),                       # torch.utils._pytree, inside torch.onnx.export
    (DeprecationWarning, r".*"),                            # library internals (tf, larq, onnxscript)
    (UserWarning, r".*is not supported by LCE.*"),
    (UserWarning, r".*TensorFlow Addons.*"),
    (UserWarning, r"(?s).*tf\.lite\.Interpreter is deprecated"),  # TF 2.19 about TF 2.20; LCE's interpreter is ours
)
# larq: "Using a binary weight quantizer without setting `kernel_constraint`..." while a twin is built for export.
_KNOWN_LOGGERS = ("torch.onnx", "onnxscript", "absl", "tensorflow", "h5py", "larq")


def quiet_startup(verbose: bool = False) -> None:
    """Sets the environment and filters before any framework is imported (``verbose``: leaves all on)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if verbose:
        os.environ["BNNZOO_VERBOSE"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO, WARNING and ERROR (cuInit on a CPU machine)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # torch configures its "torch.onnx" logger itself when imported (overriding a level set here);
    # "-onnx" asks it for errors only (torch._logging: "-" prefix = ERROR).
    os.environ.setdefault("TORCH_LOGS", "-onnx")
    for category, message in _KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in _KNOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def stderr_discarded(replay: bool = True) -> Iterator[None]:
    """Sends file descriptor 2 (C++ logs included) to a temporary file; replays it if the body raises
    (``replay=False``: not even then, for a caller that reports the error itself).

    With ``bnnzoo --verbose`` (``BNNZOO_VERBOSE=1``) nothing is discarded.
    """
    if os.environ.get("BNNZOO_VERBOSE") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            if replay:
                tmp.seek(0)
                os.write(2, tmp.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly() -> bool:
    """Imports TensorFlow with its C++ start-up log discarded. Returns whether it is installed."""
    if "tensorflow" in sys.modules:
        return True
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return False
    with stderr_discarded():
        import tensorflow  # noqa: F401
        # Later C++ messages respect TF_CPP_MIN_LOG_LEVEL; absl's Python logger does not.
        logging.getLogger("absl").setLevel(logging.ERROR)
    return True


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class Progress:
    """Steps of one command: a tqdm bar on a terminal, ``prefix: message (i/n)`` lines elsewhere.

    Args:
        prefix: What the lines start with (``"bnnzoo convert"``).
        total: Number of steps.
        enabled: ``False`` prints nothing.
    """

    def __init__(self, prefix: str, total: int, enabled: bool = True) -> None:
        self.prefix, self.total, self.done, self.enabled = prefix, total, 0, enabled
        self._bar = None
        if enabled and _is_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=prefix, file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, message: str) -> None:
        """Announces the step about to run."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(message, refresh=True)
        else:
            print(f"{self.prefix}: {message} ({self.done + 1}/{self.total})", file=sys.stderr, flush=True)

    def advance(self) -> None:
        """Marks the current step done."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(items: Iterable[T], prefix: str, total: Optional[int] = None, describe=str) -> Iterator[T]:
    """Iterates ``items`` with a :class:`Progress` step per item (``describe(item)`` names it)."""
    items = list(items)
    with Progress(prefix, total or len(items)) as bar:
        for item in items:
            bar.step(describe(item))
            yield item
            bar.advance()


class _Lines:
    """tqdm's interface (the calls the eval harness makes), as one line per step."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.n, self.prefix, self.unit = total, 0, desc, unit

    def set_description(self, desc: str) -> None:
        pass  # the steps name what they work on

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        print(f"{self.prefix}: {text} ({self.unit} {self.n + 1}/{self.total})", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass


def bar(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on a terminal; elsewhere an object with the same calls that prints plain lines."""
    if _is_terminal():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
    return _Lines(total, desc, unit)
