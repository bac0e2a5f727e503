"""Run a deployment bundle on ARM64 (aarch64) without a Raspberry Pi, under user-mode emulation.

The userland is built from Debian's own packages, with no chroot and no binfmt:

1. ``apt-get download`` fetches the arm64 ``.deb`` files of Python 3.11 and the
   libraries it needs (resolved with ``apt-cache depends --recurse``) through a
   private apt state in the cache folder (its own ``sources.list`` for Debian
   bookworm, arm64 only), so the host's dpkg architectures are left alone;
2. ``dpkg -x`` unpacks each into ``<cache>/root``;
3. ``pip download --platform manylinux..._aarch64 --only-binary=:all:`` fetches the
   aarch64 wheels of the bundle's runtime (onnxruntime, numpy, Pillow, at the versions
   its ``requirements.txt`` pins) on the host, and they are unzipped into the
   userland's ``site-packages`` (no pip runs under emulation);
4. ``qemu-aarch64-static -L <cache>/root <cache>/root/usr/bin/python3.11 run.py ...``
   runs the bundle (``apt-get install qemu-user-static`` first, when it is missing).

The userland is cached (default ``~/.cache/bnnzoo/arm64``, ``BNNZOO_ARM64_CACHE``
overrides it), keyed by the pinned wheel versions: a second run only runs the bundle.

Example::

    bnnzoo deploy meliusnet22 --target rpi -o meliusnet22-rpi
    python -m eval.arm64 meliusnet22-rpi cat.jpg          # prints top-5 from ARM64 and x86
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from zoo import fileio

logger = logging.getLogger(__name__)

__all__ = ["Arm64Error", "DEFAULT_WHEELS", "default_cache", "ensure_tool", "ensure_qemu", "build_userland",
           "bundle_wheels", "run_arm64", "run_arm64_python", "compare_with_host", "run_checked", "userland_env", "main"]

DEBIAN_SUITE = "bookworm"  # its python3.11 matches the cp311 wheels
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
ROOT_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgcc-s1", "zlib1g")
# Dependencies the interpreter does not need (maintainer scripts, perl for mailcap, ...).
SKIP_PREFIXES = ("perl", "libperl", "dpkg", "install-info", "tar", "debconf", "mailcap", "mime-support",
                 "tzdata", "readline-common", "libgdbm-compat")
DEFAULT_WHEELS = ("onnxruntime==1.19.2", "numpy==1.26.4", "Pillow==10.4.0")
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
PYTHON = "usr/bin/python3.11"
SITE = "usr/lib/python3/dist-packages"  # on Debian's python3.11 sys.path


class Arm64Error(RuntimeError):
    """The emulated userland could not be built or the bundle failed on it."""


def default_cache() -> Path:
    """``$BNNZOO_ARM64_CACHE`` or ``~/.cache/bnnzoo/arm64``."""
    return Path(os.environ.get("BNNZOO_ARM64_CACHE", Path.home() / ".cache" / "bnnzoo" / "arm64"))


def run_checked(cmd: Sequence[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Runs ``cmd`` (output captured as text, ``kwargs`` passed to :func:`subprocess.run`).

    Raises:
        Arm64Error: The program is not installed, or it failed (``what`` and the last lines of its output).
    """
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise Arm64Error(f"{what}: {cmd[0]} is not installed") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise Arm64Error(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc


def ensure_tool(tool: str, packages: Sequence[str], why: str = "") -> str:
    """Path of the program ``tool``; installs Debian's ``packages`` with apt-get when it is missing
    (as root; ``apt-get update`` first if the package lists are stale).

    Args:
        tool: The program's name on ``PATH``.
        packages: What provides it (and what it needs beside it).
        why: Appended to the error, e.g. why another package will not do.

    Raises:
        Arm64Error: It is missing and could not be installed (not root, no apt-get, ...).
    """
    found = shutil.which(tool)
    if found:
        return found
    command = f"apt-get install {' '.join(packages)}"
    if shutil.which("apt-get") is None:
        raise Arm64Error(f"{tool} is missing and there is no apt-get to run `{command}`{why}")
    if os.geteuid() != 0:
        raise Arm64Error(f"{tool} is missing: run `{command}` as root{why}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    try:
        run_checked(install, command, env=env, timeout=1800)
    except Arm64Error:
        run_checked(["apt-get", "update", "-q"], "apt-get update", env=env, timeout=900)
        run_checked(install, command, env=env, timeout=1800)
    found = shutil.which(tool)
    if not found:
        raise Arm64Error(f"{' '.join(packages)} installed, but {tool} is not on PATH")
    return found


def ensure_qemu() -> str:
    """Path of ``qemu-aarch64-static``; installs Debian's ``qemu-user-static`` when missing.

    Raises:
        Arm64Error: It is missing and could not be installed (not root, no apt-get, ...).
    """
    return ensure_tool("qemu-aarch64-static", ["qemu-user-static"])


def _apt_options(apt: Path) -> list[str]:
    return ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
            "-o", f"Dir::State={apt}", "-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::State::status={apt}/status",
            "-o", f"Dir::Cache={apt}", "-o", f"Dir::Cache::archives={apt}/archives",
            "-o", f"Dir::Etc::SourceList={apt}/sources.list", "-o", f"Dir::Etc::SourceParts={apt}/parts",
            "-o", "Debug::NoLocking=1", "-o", "Acquire::Retries=3"]


def _download_debs(apt: Path, debs: Path) -> list[Path]:
    """arm64 .debs of Python 3.11 and its library closure, through a private apt state."""
    if shutil.which("apt-get") is None:
        raise Arm64Error("apt-get is needed to fetch Debian's arm64 packages")
    if not Path(KEYRING).is_file():
        raise Arm64Error(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
    for sub in ("lists/partial", "archives/partial", "parts"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "status").touch()
    opts = f"[arch=arm64 signed-by={KEYRING}]"
    (apt / "sources.list").write_text(
        f"deb {opts} {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n"
        f"deb {opts} {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main\n"
        f"deb {opts} {DEBIAN_SECURITY} {DEBIAN_SUITE}-security main\n")
    options = _apt_options(apt)
    run_checked(["apt-get", *options, "update", "-q"], "apt-get update (arm64 lists)", timeout=900)
    proc = run_checked(["apt-cache", *options, "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *ROOT_PACKAGES],
                       "apt-cache depends", timeout=300)
    names = sorted({line.strip() for line in proc.stdout.splitlines()
                    if line and not line.startswith(" ") and not line.startswith("<")})
    names = [n.split(":")[0] for n in names if not n.split(":")[0].startswith(SKIP_PREFIXES)]
    debs.mkdir(parents=True, exist_ok=True)
    run_checked(["apt-get", *options, "download", "-q", *names], "apt-get download (arm64 .debs)", cwd=debs,
                timeout=1800)
    files = sorted(debs.glob("*.deb"))
    if not any(f.name.startswith("python3.11-minimal_") for f in files):
        raise Arm64Error(f"apt-get download fetched no python3.11-minimal .deb into {debs}")
    return files


def _download_wheels(wheels: Sequence[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    run_checked([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", *platforms,
                 "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "-d", str(dest), *wheels],
                "pip download (aarch64 wheels)", timeout=1800)
    found = sorted(dest.glob("*.whl"))
    if len(found) < len(wheels):
        raise Arm64Error(f"pip download fetched {len(found)} wheels for {len(wheels)} requirements into {dest}")
    return found


def build_userland(cache: Optional[Path] = None, wheels: Sequence[str] = DEFAULT_WHEELS,
                   log=logger.info) -> Path:
    """The aarch64 userland root holding Python 3.11 and ``wheels``, built once and cached.

    Args:
        cache: Cache folder (default :func:`default_cache`).
        wheels: Pinned requirements (``name==version``) unzipped into ``site-packages``.
        log: Where progress lines go.

    Returns:
        The userland's root folder (what ``qemu-aarch64-static -L`` takes).

    Raises:
        Arm64Error: A download or unpacking step failed; the message says which.
    """
    cache = Path(cache or default_cache())
    key = "-".join(sorted(w.replace("==", "_").lower() for w in wheels))
    root = cache / f"root-{key}"
    if (root / ".complete").is_file():
        return root
    if shutil.which("dpkg") is None:
        raise Arm64Error("dpkg is needed to unpack Debian's .debs (dpkg -x)")
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log(f"arm64: building the userland in {root} (once)")
    debs = _download_debs(cache / "apt", cache / "debs")
    whl = _download_wheels(wheels, cache / f"wheels-{key}")
    tmp = Path(tempfile.mkdtemp(prefix=".root-", dir=cache))
    try:
        for deb in debs:
            run_checked(["dpkg", "-x", str(deb), str(tmp)], f"dpkg -x {deb.name}")
        site = tmp / SITE
        site.mkdir(parents=True, exist_ok=True)
        for w in whl:
            with zipfile.ZipFile(w) as z:
                z.extractall(site)
        for path in site.rglob("*.so*"):  # zip files drop the executable bits
            path.chmod(0o755)
        if not (tmp / PYTHON).is_file():
            raise Arm64Error(f"the unpacked userland has no {PYTHON}")
        (tmp / ".complete").write_text(json.dumps({"wheels": list(wheels), "debs": [d.name for d in debs]}) + "\n")
        if root.exists() or root.is_symlink():
            fileio.remove(root, cache)
        tmp.rename(root)
    finally:
        if tmp.exists():
            fileio.remove(tmp, cache)
    log(f"arm64: userland ready in {time.perf_counter() - start:.0f} s ({len(debs)} .debs, {len(whl)} wheels)")
    return root


def bundle_wheels(bundle: Path) -> tuple[str, ...]:
    """The pinned requirements of a bundle's ``requirements.txt`` (``DEFAULT_WHEELS`` without one)."""
    req = Path(bundle) / "requirements.txt"
    if not req.is_file():
        return DEFAULT_WHEELS
    pins = [line.split("#")[0].split(";")[0].strip() for line in req.read_text().splitlines()]
    return tuple(p for p in pins if "==" in p) or DEFAULT_WHEELS


def run_arm64(bundle: Path, args: Sequence[str], cache: Optional[Path] = None, timeout: float = 1200,
              log=logger.info, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs ``bundle/run.py args...`` under ``qemu-aarch64-static`` in the cached userland
    (``env``: extra environment variables, e.g. ``BNNZOO_LITERT_LIB``).

    Raises:
        Arm64Error: qemu or the userland could not be set up.
    """
    qemu = ensure_qemu()
    root = build_userland(cache, bundle_wheels(Path(bundle)), log=log)
    cmd = [qemu, "-L", str(root), str(root / PYTHON), "-I", str(Path(bundle) / "run.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={**userland_env(root), **(env or {})},
                          timeout=timeout)


def userland_env(root: Path) -> dict:
    """The environment of a program run under qemu in the userland at ``root`` (nothing from this machine's)."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "QEMU_LD_PREFIX": str(root)}


def run_arm64_python(code: str, cache: Optional[Path] = None, wheels: Sequence[str] = DEFAULT_WHEELS,
                     log=logger.info) -> str:
    """Stdout of ``python3.11 -c code`` in the emulated userland (stripped).

    Raises:
        Arm64Error: qemu or the userland could not be set up, or the code failed.
    """
    qemu = ensure_qemu()
    root = build_userland(cache, wheels, log=log)
    proc = subprocess.run([qemu, "-L", str(root), str(root / PYTHON), "-I", "-c", code], capture_output=True,
                          text=True, env=userland_env(root), timeout=600)
    if proc.returncode != 0:
        raise Arm64Error(f"python under emulation failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def _top5(logits: np.ndarray) -> np.ndarray:
    return np.argsort(-logits, axis=-1, kind="stable")[..., :5]


def compare_with_host(bundle: Path, images: Sequence[str], cache: Optional[Path] = None,
                      runtime: str = "onnx", log=logger.info, env: Optional[dict] = None) -> dict:
    """Runs the bundle on ARM64 (emulated, with extra environment ``env``) and on this machine,
    and compares the logits.

    Returns:
        ``{"max_abs_diff", "top5_identical", "arm64_seconds", "host_seconds"}``.

    Raises:
        Arm64Error: Either run failed.
    """
    bundle = Path(bundle)
    machine = run_arm64_python("import platform; print(platform.machine())", cache, bundle_wheels(bundle), log=log)
    if machine != "aarch64":
        raise Arm64Error(f"the emulated Python reports machine {machine!r}, not 'aarch64'")
    with tempfile.TemporaryDirectory() as tmp:
        arm_npy, host_npy = Path(tmp) / "arm64.npy", Path(tmp) / "host.npy"
        start = time.perf_counter()
        arm = run_arm64(bundle, ["--runtime", runtime, "--dump-logits", str(arm_npy), *images], cache, log=log,
                        env=env)
        arm_s = time.perf_counter() - start
        if arm.returncode != 0:
            raise Arm64Error(f"run.py failed under emulation (exit {arm.returncode}): "
                             f"{(arm.stderr or arm.stdout).strip()[-800:]}")
        log(arm.stdout.rstrip())
        start = time.perf_counter()
        host = subprocess.run([sys.executable, str(bundle / "run.py"), "--runtime", runtime, "--dump-logits",
                               str(host_npy), *images], capture_output=True, text=True, timeout=600)
        host_s = time.perf_counter() - start
        if host.returncode != 0:
            raise Arm64Error(f"run.py failed on this machine (exit {host.returncode}): {host.stderr.strip()[-800:]}")
        a, h = np.load(arm_npy), np.load(host_npy)
    if a.shape != h.shape:
        raise Arm64Error(f"ARM64 logits have shape {a.shape}, this machine's {h.shape}")
    return {"machine": machine, "max_abs_diff": float(np.abs(a.astype(np.float64) - h).max()),
            "top5_identical": bool((_top5(a) == _top5(h)).all()), "arm64_seconds": arm_s, "host_seconds": host_s,
            "arm64_stdout": arm.stdout, "host_stdout": host.stdout}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m eval.arm64 BUNDLE IMAGE...``: ARM64 vs this machine; exit 1 past tolerance."""
    parser = argparse.ArgumentParser(prog="python -m eval.arm64", description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="a folder written by `bnnzoo deploy NAME --target rpi`")
    parser.add_argument("images", nargs="*", help="images to classify (default: the bundle's sample image)")
    parser.add_argument("--cache", type=Path, help=f"userland cache (default {default_cache()})")
    parser.add_argument("--build-only", action="store_true", help="build the userland and stop")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest allowed |ARM64 - x86| logit difference")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        ensure_qemu()
        if args.build_only:
            print(build_userland(args.cache, bundle_wheels(Path(args.bundle)), log=print))
            print(f"arm64: {time.perf_counter() - start:.1f} s")
            return 0
        images = args.images or [str(Path(args.bundle) / "sample.png")]
        result = compare_with_host(Path(args.bundle), images, args.cache, log=print)
    except (Arm64Error, subprocess.TimeoutExpired) as e:
        print(f"arm64: error: {e}", file=sys.stderr)
        return 1
    ok = result["top5_identical"] and result["max_abs_diff"] < args.atol
    print(f"arm64: top-5 identical: {result['top5_identical']}, max |ARM64 - x86| {result['max_abs_diff']:.3g} "
          f"(< {args.atol}: {ok}); ARM64 run {result['arm64_seconds']:.1f} s, x86 run {result['host_seconds']:.1f} s, "
          f"total {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
