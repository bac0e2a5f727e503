"""Builds bnnzoo's LCE kernel library (the C files of this folder) with the system C compiler.

The library is compiled on first use into a cache folder, not at install time: the
package stays pure Python (one wheel, an editable install and a deploy bundle all work
the same), and a Raspberry Pi builds it with the compiler its OS ships (``gcc``), for
its own CPU, with no wheel of ours to match its platform. The build is plain portable C
with no ``-march=native``: the x86-64 SIMD paths are chosen at run time inside the
library (``__builtin_cpu_supports``), so one cached build is right on every CPU of its
architecture and a CPU without AVX2 or AVX-512 falls back instead of faulting.

The cache key is the SHA-256 of the sources, the compiler's version line, the
flags and the machine architecture; a build lands under its final name by an atomic
rename, so two processes building at once never load a partial library.

This folder is also copied into deploy bundles, which hold no ``zoo``: it imports
only the standard library.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

log = logging.getLogger(__name__)

__all__ = ["BuildError", "SOURCES", "C_FILES", "CFLAGS", "find_compiler", "compile_command", "cache_dir",
           "library_path", "build"]

HERE = Path(__file__).resolve().parent
# The library's sources, one concern per C file (bnn.h lists them); deploy bundles carry exactly these.
SOURCES = ("bnn.h", "tflite_c.h", "options.c", "pool.c", "bgemm.c", "bgemm_x86.c", "bgemm_neon.c", "quantize.c",
           "maxpool.c", "bconv.c", "transform.c", "delegate.c")
C_FILES = tuple(name for name in SOURCES if name.endswith(".c"))
# -ffp-contract=off: no fused multiply-add where the C has two roundings (aarch64 GCC
# would fuse them by default), so results agree bit for bit with LCE's reference kernel.
CFLAGS = ("-O3", "-std=gnu11", "-ffp-contract=off", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall")
LIBS = ("-lpthread", "-lm")


class BuildError(RuntimeError):
    """The kernel library could not be built (no compiler, or it failed)."""


def find_compiler() -> str:
    """The C compiler: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on PATH.

    Raises:
        BuildError: None is installed.
    """
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise BuildError(f"no C compiler found (looked for {', '.join(names)}): bnnzoo's LiteRT kernels are built on "
                     "first use; install one (Debian/Raspberry Pi OS: sudo apt-get install gcc) or set CC")


def compile_command(compiler: str, output: Union[str, os.PathLike], folder: Optional[Path] = None,
                    flags: Sequence[str] = CFLAGS, extra: Sequence[str] = ()) -> list[str]:
    """The command line that builds the library (or, with other ``flags`` and ``extra`` C files
    such as ``selftest.c``, a program around it) from the sources in ``folder`` (default: here)."""
    folder = Path(folder or HERE)
    return [compiler, *flags, "-o", str(output), *[str(folder / name) for name in (*extra, *C_FILES)], *LIBS]


def cache_dir() -> Path:
    """``$BNNZOO_LITERT_CACHE``, else ``~/.cache/bnnzoo/litert``."""
    return Path(os.environ.get("BNNZOO_LITERT_CACHE") or Path.home() / ".cache" / "bnnzoo" / "litert")


def _key(compiler: str) -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((HERE / name).read_bytes())
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"the C compiler {compiler} does not run ({e}): install a working one or set CC") from None
    h.update(version.splitlines()[0].encode() if version else b"")
    h.update(" ".join(CFLAGS + LIBS).encode())
    h.update(platform.machine().encode())
    return h.hexdigest()[:16]


def library_path(compiler: Optional[str] = None) -> Path:
    """Where the library built by ``compiler`` for these sources lives in the cache."""
    compiler = compiler or find_compiler()
    return cache_dir() / f"libbnn_lce-{platform.machine()}-{_key(compiler)}.so"


def build(compiler: Optional[str] = None, force: bool = False) -> Path:
    """The path of the built library, compiling it first when the cache lacks it.

    Args:
        compiler: C compiler to use (default :func:`find_compiler`).
        force: Rebuild even when a cached library exists.

    Raises:
        BuildError: No compiler, or the compilation failed (its last line is quoted).
    """
    compiler = compiler or find_compiler()
    target = library_path(compiler)
    record = target.with_name(target.name + ".sha256")
    if target.exists() and not force:
        if _recorded(target, record):
            return target
        # A cut or damaged library would fail in the loader (OSError) or, worse, load: build it again.
        log.warning("the cached kernel library %s does not match its recorded sha256: rebuilding it", target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the kernel cache {target.parent} ({e.strerror}): "
                         "set BNNZOO_LITERT_CACHE to a writable folder") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(compile_command(compiler, tmp), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise BuildError(f"compiling bnnzoo's LiteRT kernels with {compiler} failed: "
                             f"{lines[-1] if lines else 'exit status ' + str(done.returncode)}")
        os.chmod(tmp, 0o755)
        digest = _sha256(tmp)
        os.replace(tmp, target)
        # The record goes last: a kill in between leaves a library without one, which is rebuilt.
        fd, tmp_record = tempfile.mkstemp(prefix=f".{record.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp_record, record)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _sha256(path: Union[str, os.PathLike]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(library: Path, record: Path) -> bool:
    """Whether ``library`` is the file its build recorded (its sha256, written beside it)."""
    try:
        return record.read_text().strip() == _sha256(library)
    except (OSError, UnicodeDecodeError):
        return False
