"""Atomic file writes: a file appears under its final name complete, or not at all.

A write goes through a hidden temporary sibling named ``.NAME.<pid>.<random>.tmp`` (a file, or
a folder for :func:`temp_dir`). A process killed mid-write (SIGKILL, power loss) leaves it
behind; the first write of a later process into that folder removes every such temporary
whose process is gone, and never one whose process is still running (a concurrent writer).
The folder is scanned once per process, so writing many files into one folder stays linear.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["atomic_write", "write_bytes", "write_text", "sha256_of", "temp_dir", "clean_stale", "read_json",
           "check_name", "cache_root", "CACHE_ENV"]

CACHE_ENV = "BNNZOO_CACHE"

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(path: str | os.PathLike, every_target: bool = False) -> list[str]:
    """Removes the temporaries of ``path`` left by writers that are no longer running.

    Only names of the form ``.NAME.<pid>.<random>.tmp`` in the folder of ``path`` are
    considered; one whose pid is a running process is kept.

    Args:
        path: The target whose temporaries go.
        every_target: Those of every target in the folder of ``path``.

    Returns:
        The paths removed.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.fullmatch(entry)
        if not m or (m["name"] != name and not every_target) or _alive(int(m["pid"])):
            continue
        stale = os.path.join(folder, entry)
        try:
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale)
            else:
                os.remove(stale)
            removed.append(stale)
        except FileNotFoundError:
            pass  # another process cleaned it first
    return removed


_SCANNED: set[str] = set()  # folders this process has cleaned already


def _clean_once(path: str | os.PathLike) -> None:
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if folder not in _SCANNED:
        _SCANNED.add(folder)
        clean_stale(path, every_target=True)


def _prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def temp_dir(path: str | os.PathLike) -> Path:
    """A new hidden temporary folder beside ``path`` to build it in (rename it into place when
    complete); stale temporaries of ``path`` from killed runs are removed first."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    clean_stale(path)  # a bundle is written rarely: always look for the killed runs of this one
    return Path(tempfile.mkdtemp(prefix=_prefix(name), suffix=".tmp", dir=folder))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None],
                 verify: Optional[Callable[[str], None]] = None) -> int:
    """Writes a file through a temporary sibling, verifies it, then renames it into place.

    An error or interrupt at any step removes the temporary file and leaves whatever
    was at ``path`` untouched; temporaries left in the folder by killed writers are removed
    on this process's first write there (see the module docstring).

    Args:
        path: Final location; its folder must exist.
        write: Writes the file at the temporary path it is given.
        verify: Checks the temporary file; raises to abandon it.

    Returns:
        The size of the file written, in bytes.

    Raises:
        PermissionError: The folder does not take new files.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    _clean_once(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_prefix(name), suffix=".tmp", dir=folder)
    except OSError as e:
        raise PermissionError(f"cannot write in {folder}: {e.strerror}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        # mkstemp makes the file private (and some writers re-create it): give it a normal file's mode.
        os.chmod(tmp, 0o666 & ~umask)
        if verify is not None:
            verify(tmp)
        size = os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return size


def write_bytes(path: str | os.PathLike, data: bytes) -> int:
    """``Path.write_bytes``, atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> int:
    """``Path.write_text``, atomically."""
    return write_bytes(path, text.encode())


def cache_root() -> Path:
    """bnnzoo's cache folder: ``$BNNZOO_CACHE``, else ``$XDG_CACHE_HOME/bnnzoo``, else ``~/.cache/bnnzoo``."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "bnnzoo")
    return Path(root)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike, what: str = "file", fix: str = "", kind: type = dict) -> Any:
    """A JSON file's content, which must be a ``kind`` (an object by default).

    Args:
        path: The file.
        what: What the file is, for the message (``"config"``).
        fix: What to do about a bad file (appended to the message).
        kind: The type the top-level value must have.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Not UTF-8 JSON, or not a ``kind``; one line naming the file.
    """
    path = Path(path)
    tail = f": {fix}" if fix else ""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist{tail}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        detail = f"line {e.lineno} column {e.colno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise ValueError(f"{what} {path} is not valid JSON ({detail}){tail}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a folder, not a JSON file{tail}") from None
    if not isinstance(value, kind):
        expected = {dict: "an object {...}", list: "a list [...]"}.get(kind, kind.__name__)
        raise ValueError(f"{what} {path} holds a JSON {type(value).__name__}, expected {expected}{tail}")
    return value


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def check_name(name: Any, what: str) -> str:
    """``name`` if it is safe as one path component inside an output folder, else ValueError.

    Safe: letters, digits, ``_ . + -``, not starting with a dot (no ``..``, no ``/``, no hidden
    names): a name read from a file can then never make a write leave its folder.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 200:
        raise ValueError(f"{what} {name!r} cannot be a file name: use letters, digits, '_', '-', '.' or '+' "
                         f"(not starting with '.'; no '/')")
    return name
