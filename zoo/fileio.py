"""Atomic file writes: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

__all__ = ["atomic_write", "write_bytes", "write_text", "sha256_of"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None],
                 verify: Optional[Callable[[str], None]] = None) -> int:
    """Writes a file through a temporary sibling, verifies it, then renames it into place.

    An error or interrupt at any step removes the temporary file and leaves whatever
    was at ``path`` untouched.

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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
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


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
