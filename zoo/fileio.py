"""Atomic file writes: a file appears under its final name complete, or not at all.

A write goes through a hidden temporary sibling named ``.NAME.<pid>.<random>.tmp`` (a file, or
a folder for :func:`temp_dir`). A process killed mid-write (SIGKILL, power loss) leaves it
behind; the first write of a later process into that folder removes every such temporary
whose process is gone, and never one whose process is still running (a concurrent writer).
The folder is scanned once per process, so writing many files into one folder stays linear.

Nothing is written or deleted outside the folder a command owns: :func:`resolve_inside` resolves
symlinks and refuses a path whose real location leaves that folder, :func:`remove` deletes a link
itself and never what it points to, and the writers here take the owning folder as ``root``.
:func:`lock` keeps two processes from writing one folder at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

__all__ = ["atomic_write", "write_bytes", "write_text", "sha256_of", "temp_dir", "clean_stale", "read_json",
           "check_name", "UnsafePathError", "resolve_inside", "remove", "lock", "LockedError", "record_path",
           "write_record", "recorded", "cache_root", "CACHE_ENV"]

CACHE_ENV = "BNNZOO_CACHE"


class UnsafePathError(ValueError):
    """A path whose real location (symlinks resolved) leaves the folder it must stay in."""


class LockedError(RuntimeError):
    """Another live process holds the lock of a folder this one was about to write."""


def resolve_inside(path: str | os.PathLike, root: str | os.PathLike, what: str = "path",
                   follow: bool = False) -> Path:
    """The real path of ``path`` if it stays inside ``root`` (both with symlinks resolved), else an error.

    Args:
        path: The file or folder about to be written, deleted or read.
        root: The folder it must stay in (its own symlinks are the user's choice and are resolved).
        what: What ``path`` is, for the message.
        follow: Also resolve a symlink at ``path`` itself (for what is read through it); without it
            only the folders above ``path`` are resolved, since a write (rename) or a delete of
            ``path`` acts on a link itself, never on what it points to.

    Raises:
        UnsafePathError: One line naming ``path``, where it leads and ``root``.
    """
    base = os.path.realpath(root)
    absolute = os.path.abspath(os.fspath(path))
    if follow:
        real = os.path.realpath(absolute)
    else:
        folder, name = os.path.split(absolute)
        real = os.path.join(os.path.realpath(folder), name) if name not in ("", ".", "..") else \
            os.path.realpath(absolute)
    if real != base and os.path.commonpath([real, base]) != base:
        raise UnsafePathError(f"{what} {path} leads to {real}, outside {base} (a symlink?): refusing to touch "
                              f"it; remove the link, or use another folder")
    return Path(real)


def remove(path: str | os.PathLike, root: str | os.PathLike, what: str = "path") -> bool:
    """Deletes ``path`` (a file, a symlink or a folder tree) if it lies inside ``root``; a symlink is
    removed itself, never what it points to, and a tree is removed without following the links in it.

    Returns:
        Whether something was removed (False: nothing was there).

    Raises:
        UnsafePathError: ``path`` is outside ``root`` once the folders above it are resolved.
    """
    real = resolve_inside(path, root, what)
    try:
        if os.path.isdir(real) and not os.path.islink(real):
            shutil.rmtree(real)  # never follows symlinks (fd-based on Linux)
        else:
            os.unlink(real)
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def lock(path: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Holds an exclusive lock on ``path`` (a lock file) for the body; a second holder is refused at once.

    The lock is ``flock(2)`` on an open file, which the kernel releases when its process dies:
    a lock of a killed process is never stale, so there is nothing to detect or race over.
    The file is removed on release; a process that opened it just before is refused or, having
    locked a removed file, sees that the name points elsewhere and tries again.

    Args:
        path: The lock file (e.g. ``run/.lock``); its folder must exist.
        what: What is locked, for the message.

    Raises:
        LockedError: A live process holds the lock (one line naming it and, if known, its pid).
    """
    import fcntl

    path = os.fspath(path)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise UnsafePathError(f"the lock file {path} of {what} is a symlink: remove it") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            try:
                with open(path) as f:
                    holder = f.read().strip()
            except OSError:
                holder = ""
            raise LockedError(f"{what} is in use by another process{f' (pid {holder})' if holder.isdigit() else ''}"
                              f" (lock {path}): wait for it to finish, or use another folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield Path(path)
    finally:
        try:
            os.unlink(path)  # still ours: we hold the lock on the file this name points to
        except FileNotFoundError:
            pass
        os.close(fd)

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
        if remove(stale, folder, "stale temporary"):  # False: another process cleaned it first
            removed.append(stale)
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
                 verify: Optional[Callable[[str], None]] = None, root: Optional[str | os.PathLike] = None) -> int:
    """Writes a file through a temporary sibling, verifies it, then renames it into place.

    An error or interrupt at any step removes the temporary file and leaves whatever
    was at ``path`` untouched; temporaries left in the folder by killed writers are removed
    on this process's first write there (see the module docstring).

    Args:
        path: Final location; its folder must exist.
        write: Writes the file at the temporary path it is given.
        verify: Checks the temporary file; raises to abandon it.
        root: The folder the file must stay in (see :func:`resolve_inside`); checked first.

    Returns:
        The size of the file written, in bytes.

    Raises:
        PermissionError: The folder does not take new files.
        UnsafePathError: ``path`` leads outside ``root``.
    """
    if root is not None:
        resolve_inside(path, root, "file")
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


def write_bytes(path: str | os.PathLike, data: bytes, root: Optional[str | os.PathLike] = None) -> int:
    """``Path.write_bytes``, atomically (inside ``root`` when given, see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), root=root)


def write_text(path: str | os.PathLike, text: str, root: Optional[str | os.PathLike] = None) -> int:
    """``Path.write_text``, atomically (inside ``root`` when given, see :func:`atomic_write`)."""
    return write_bytes(path, text.encode(), root)


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


def record_path(path: str | os.PathLike) -> Path:
    """Where the size and sha256 of ``path`` are recorded: ``NAME.sha256.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256.json")


def write_record(path: str | os.PathLike) -> Path:
    """Records the size and sha256 of a file just written and verified (atomically, beside it).

    Write the file first, then its record: a kill in between leaves a file without a record,
    which :func:`recorded` does not vouch for.
    """
    path = Path(path)
    record = record_path(path)
    write_text(record, json.dumps({"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}) + "\n")
    return record


def recorded(path: str | os.PathLike) -> Optional[bool]:
    """Whether ``path`` is the file whose size and sha256 were recorded beside it (:func:`write_record`).

    Returns:
        True: it is; False: it differs, or the record is unreadable; None: there is no record.
    """
    record = record_path(path)
    if not record.exists():
        return None
    try:
        rec = read_json(record, "record")
        return rec.get("bytes") == os.path.getsize(path) and rec.get("sha256") == sha256_of(path)
    except (OSError, ValueError):
        return False


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
