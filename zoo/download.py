"""Downloads that end: an overall deadline and a stall timeout, whatever the transfer code does.

Both downloaders of bnnzoo (the Hub client in :mod:`zoo.hub`, larq-zoo's release files in
:mod:`zoo.larq_import`) run under a :class:`Watch`:

* ``BNNZOO_DOWNLOAD_DEADLINE`` (seconds, default 3600): the whole download, retries included;
* ``BNNZOO_DOWNLOAD_STALL`` (seconds, default 60): the longest time without a byte arriving
  (a connection that never answers, or a transfer that stops).

A per-read socket timeout alone does not bound a download: a server that sends a little
every few seconds never trips it, and ``huggingface_hub`` retries (resuming) after each
timeout. So the transfer runs in a worker thread that reports every chunk, and the caller
waits on the watch: past either limit it raises :class:`DownloadTimeout` at once, and the
worker stops at its next chunk (its partial file is removed by the code that wrote it).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Callable, Optional, TypeVar

__all__ = ["DEADLINE_ENV", "STALL_ENV", "DEFAULT_DEADLINE_S", "DEFAULT_STALL_S", "DownloadTimeout", "limits",
           "Watch", "run", "Meter"]

DEADLINE_ENV = "BNNZOO_DOWNLOAD_DEADLINE"
STALL_ENV = "BNNZOO_DOWNLOAD_STALL"
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_STALL_S = 60.0

T = TypeVar("T")


class DownloadTimeout(TimeoutError):
    """A download past its deadline, or without a byte for longer than the stall timeout."""


class _Cancelled(Exception):
    """Raised inside the worker of a download its caller gave up on (never caught by the transfer code,
    which retries only network errors)."""


def _seconds(env: str, default: float) -> float:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{env}={text!r}: expected a positive number of seconds (default {default:g})")
    return value


def limits() -> tuple[float, float]:
    """``(deadline, stall)`` in seconds, from the environment (see the module docstring).

    Raises:
        ValueError: A variable that is not a positive number (one line naming it).
    """
    return _seconds(DEADLINE_ENV, DEFAULT_DEADLINE_S), _seconds(STALL_ENV, DEFAULT_STALL_S)


class Watch:
    """The clock of one download: started at creation, fed by :meth:`progress`, read by :meth:`check`.

    Args:
        what: What is downloaded, for the messages.
        deadline: Seconds for the whole download (default: :func:`limits`).
        stall: Seconds without progress (default: :func:`limits`).
    """

    def __init__(self, what: str, deadline: Optional[float] = None, stall: Optional[float] = None) -> None:
        default_deadline, default_stall = limits()
        self.what = what
        self.deadline = default_deadline if deadline is None else deadline
        self.stall = default_stall if stall is None else stall
        self.start = self.last = time.monotonic()
        self.bytes = 0
        self.cancelled = threading.Event()

    def progress(self, nbytes: int = 0) -> None:
        """Records ``nbytes`` received now; raises in a worker whose caller has given up."""
        if self.cancelled.is_set():
            raise _Cancelled(self.what)
        self.bytes += nbytes
        self.last = time.monotonic()

    def check(self) -> None:
        """Raises :class:`DownloadTimeout` once past the deadline or the stall timeout."""
        now = time.monotonic()
        if now - self.start > self.deadline or now - self.last > self.stall:
            raise self.timed_out()

    def timed_out(self) -> DownloadTimeout:
        """The error of this download out of time: past its deadline, else stalled (also what a socket
        timeout of :meth:`timeout` means)."""
        if time.monotonic() - self.start >= self.deadline:
            return DownloadTimeout(f"{self.what}: not finished after {self.deadline:g} s ({self.bytes} bytes "
                                   f"received; the deadline is {DEADLINE_ENV}, default {DEFAULT_DEADLINE_S:g} s)")
        return DownloadTimeout(f"{self.what}: no data for {self.stall:g} s ({self.bytes} bytes received; "
                               f"the stall timeout is {STALL_ENV}, default {DEFAULT_STALL_S:g} s)")

    def timeout(self) -> float:
        """A socket timeout that ends a blocked read by the time :meth:`check` would fail."""
        left = self.deadline - (time.monotonic() - self.start)
        return max(0.01, min(self.stall, left))


def run(fn: Callable[[], T], watch: Watch, poll: float = 0.05, grace: float = 1.0) -> T:
    """``fn()`` run in a worker thread, given up on (:class:`DownloadTimeout`) when ``watch`` says so.

    ``fn`` must report its progress to ``watch`` (which stops it after the caller gave up).
    Ctrl-C in the caller gives up on it too. After giving up, the worker gets ``grace`` seconds to
    stop and clean up before the error is raised.
    """
    box: dict = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001  handed to the caller
            box["error"] = e

    worker = threading.Thread(target=work, name=f"download {watch.what}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(poll)
            if worker.is_alive():
                watch.check()
    except BaseException:
        watch.cancelled.set()
        worker.join(grace)  # a worker at its next chunk stops and removes its partial file; a blocked one is
        raise               # left (its file goes with the next download, see zoo.hub.clean_partial_downloads)
    if "error" in box:
        raise box["error"]
    return box["value"]


class Meter:
    """Progress of one download on stderr: a tqdm bar on a terminal, else a line at each quarter.

    Args:
        what: What is downloaded.
        total: Expected bytes (None: unknown).
        watch: Fed with every chunk.
    """

    def __init__(self, what: str, total: Optional[int], watch: Watch) -> None:
        self.what, self.total, self.watch, self.done, self._quarter = what, total, watch, 0, 0
        self._bar = None
        try:
            terminal = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            terminal = False
        if terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        else:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"downloading {what}{size}", file=sys.stderr, flush=True)

    def update(self, nbytes: int) -> None:
        """Records a chunk (and stops the worker if the caller gave up)."""
        self.watch.progress(nbytes)
        self.done += nbytes
        if self._bar is not None:
            self._bar.update(nbytes)
        elif self.total:
            quarter = min(4, 4 * self.done // self.total)
            if quarter > self._quarter:
                self._quarter = quarter
                print(f"downloading {self.what}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB",
                      file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
