"""Weights on the Hugging Face Hub: download (into the standard Hub cache) and push.

Downloads go through ``huggingface_hub.hf_hub_download``, so the usual environment
applies: ``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache lives), ``HF_ENDPOINT`` (a
mirror), ``HF_HUB_OFFLINE=1`` (cache only) and ``HF_TOKEN``. They are read when a file
is fetched, not when ``huggingface_hub`` is imported, so setting them at run time works.

Two kinds of model reference reach this module (see :mod:`zoo.refs`, the resolver):

* a registered tag (``WEIGHTS["arch.tag"]``): a pinned repo, revision and file whose
  sha256 is checked before the model is built;
* ``"hf-hub:owner/repo[@revision]"`` (or timm's older ``hf_hub:``): ``config.json`` (the
  weights' record, which names the architecture) and ``model.safetensors`` of a repo pushed
  with ``zoo.push_to_hub`` or ``bnnzoo push``.

Every request names the library (``library_name="bnnzoo"`` and its version), as Hub libraries do.
The Hub client only: it imports the weights metadata, never the code that loads models.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from .download import DownloadTimeout, Watch
from .download import run as run_watched
from .fileio import UnsafePathError, check_name, remove, resolve_inside, sha256_of
from .weights import CONFIG_FILE, WEIGHTS_FILE

__all__ = ["HUB_PREFIX", "HUB_PREFIXES", "WEIGHTS_FILE", "CONFIG_FILE", "HubError", "is_hub_ref", "parse_hub_ref",
           "hub_file", "fetch_config", "fetch_hub_ref", "sha256_of", "push_folder", "library", "sign_card",
           "is_generated_card", "endpoint"]

HUB_PREFIX = "hf-hub:"
HUB_PREFIXES = (HUB_PREFIX, "hf_hub:")  # timm's spelling, and its older one
METRICS_FILE = "metrics.json"
README_FILE = "README.md"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_CHUNK = 1 << 16


class HubError(RuntimeError):
    """A file that could not be fetched from (or pushed to) the Hub, or a corrupt download."""


# --------------------------------------------------------------------------- environment


def _is_true(value: Optional[str]) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    """The Hub's address (``$HF_ENDPOINT``, else huggingface_hub's default)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _cache_dir() -> str:
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def _offline() -> bool:
    from huggingface_hub import constants

    # is_offline_mode() is huggingface-hub >= 1.3; older releases read the variable at import only.
    return getattr(constants, "is_offline_mode", lambda: False)() or _is_true(os.environ.get("HF_HUB_OFFLINE"))


def library() -> dict[str, str]:
    """``library_name`` and ``library_version`` for huggingface_hub (its user agent names bnnzoo)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("bnnzoo")
    except PackageNotFoundError:  # a source tree that is not installed
        from . import __version__ as own
    return {"library_name": "bnnzoo", "library_version": own}


# --------------------------------------------------------------------------- download


def is_hub_ref(ref: str) -> bool:
    """Whether ``ref`` is a Hub reference (``hf-hub:...`` or ``hf_hub:...``)."""
    return isinstance(ref, str) and ref.startswith(HUB_PREFIXES)


def check_revision(revision: str) -> str:
    """``revision`` if it is a branch or tag name (``main``, ``v1.0``, ``refs/pr/1``) or a commit hash.

    The Hub cache stores a branch or tag as the file ``refs/<revision>``, so a revision must
    never climb out of it: each ``/``-separated part is a plain name (letters, digits, ``_ . + -``,
    not starting with a dot, not ending in ``.lock`` or ``.``; no ``..``, no empty part).

    Raises:
        ValueError: One line naming the revision.
    """
    parts = revision.split("/") if isinstance(revision, str) else [None]
    try:
        for part in parts:
            check_name(part, "part")
            if part.endswith((".lock", ".")) or ".." in part:
                raise ValueError(part)
    except ValueError:
        raise ValueError(f"bad Hub revision {revision!r}: expected a branch or tag name (letters, digits, "
                         f"'_', '-', '.', '+', parts separated by single '/', no '..') or a 40-hex commit") from None
    return revision


def parse_hub_ref(ref: str) -> tuple[str, str]:
    """Splits ``"hf-hub:owner/repo[@revision]"`` (or ``hf_hub:``) into ``(repo_id, revision)``.

    Raises:
        ValueError: Not of that form, or a revision :func:`check_revision` refuses.
    """
    body = ref[len(HUB_PREFIX):] if is_hub_ref(ref) else ref
    repo_id, _, revision = body.partition("@")
    if not _REPO_ID.fullmatch(repo_id) or (_ and not revision):
        raise ValueError(f"bad Hub reference {ref!r}: expected 'hf-hub:owner/repo' or 'hf-hub:owner/repo@revision'")
    return repo_id, check_revision(revision or "main")


def hub_file(repo_id: str, filename: str, revision: str = "main", *, sha256: Optional[str] = None,
             name: Optional[str] = None, force: bool = False) -> Path:
    """Fetches one file of a Hub repo into the Hub cache (or finds it there) and verifies it.

    Args:
        repo_id: ``owner/name``.
        filename: Path of the file inside the repo.
        revision: Branch, tag or commit hash.
        sha256: Expected hex digest. Without it, an LFS file is still checked against the
            sha256 the Hub served as its ETag (the name of its blob in the cache), a git file
            against its git blob id (see :func:`_verify`).
        name: What to pass to ``bnnzoo download`` to fetch it again (used in messages).
        force: Download again even when cached.

    Returns:
        The path of the file in the cache (a snapshot link to a complete blob).

    Raises:
        HubError: Hub or network error, offline with nothing cached, or a file whose
            checksum does not match (it is removed from the cache).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    try:
        from huggingface_hub.errors import RemoteEntryNotFoundError
    except ImportError:  # huggingface-hub < 1.0: EntryNotFoundError (a base of LocalEntryNotFoundError, caught first)
        from huggingface_hub.errors import EntryNotFoundError as RemoteEntryNotFoundError

    check_revision(revision)
    where = f"{repo_id}@{revision}/{filename}"
    warm = f"`bnnzoo download {name or HUB_PREFIX + repo_id + '@' + revision}`"
    offline = _offline()
    url = endpoint()
    clean_partial_downloads(repo_id)
    watch = Watch(where)
    kwargs = dict(revision=revision, cache_dir=_cache_dir(), endpoint=url, local_files_only=offline,
                  force_download=force and not offline, **library())
    sample = None
    _small_chunks()
    if _reports_progress(hf_hub_download):
        kwargs["tqdm_class"] = _watched_tqdm(watch)
    else:  # huggingface-hub < 1.1 takes no progress bar class: watch the partial file grow instead
        sample = lambda: _partial_bytes(repo_id)  # noqa: E731
    try:
        path = Path(run_watched(lambda: hf_hub_download(repo_id, filename, **kwargs), watch, sample=sample))
    except DownloadTimeout as e:
        raise HubError(f"{e}; nothing was cached: retry {warm} (or raise the limit)") from None
    except GatedRepoError:
        raise HubError(f"{where}: the repo {repo_id} is gated: accept its terms on the Hub and log in "
                       "(`hf auth login` or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{where}: repository {repo_id} not found on {url}: check the name, or log in "
                       "(`hf auth login` or HF_TOKEN) if it is private") from None
    except RevisionNotFoundError:
        raise HubError(f"{where}: revision {revision!r} not found in {repo_id}: check the branch, tag or "
                       "commit") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        if offline:
            raise HubError(f"{where} is not in the Hub cache ({_cache_dir()}) and HF_HUB_OFFLINE is set: "
                           f"warm the cache with {warm} while online") from None
        cause = _root_cause(e)
        raise HubError(f"{where}: cannot reach {url} ({cause}) and the file is not cached: check the "
                       f"connection or HF_ENDPOINT, or warm the cache with {warm} where the Hub is reachable") from None
    except RemoteEntryNotFoundError:
        raise HubError(f"{where}: file {filename!r} not found in {repo_id} at {revision}") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise HubError(f"{where}: the Hub at {url} answered HTTP {status}: retry later") from None
    except (OSError, ValueError) as e:  # incl. "Consistency check failed" (short download)
        raise HubError(f"{where}: download failed ({_one_line(e)}); nothing was cached: retry {warm}") from None
    except Exception as e:  # httpx2 transport errors once its retries are spent
        if type(e).__module__.split(".")[0] not in ("httpx2", "httpx", "httpcore", "h11"):
            raise
        raise HubError(f"{where}: download interrupted ({type(e).__name__}: {_one_line(e)}); nothing was cached: "
                       f"retry {warm}") from None
    _check_in_cache(path, repo_id, where)
    _verify(path, where, sha256, warm)
    return path


def _small_chunks() -> None:
    """huggingface_hub reads the body in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB) and reports (and writes)
    nothing in between: on a slow link the stall timeout would see no progress for minutes. 64 KiB chunks
    report about every second down to 64 kB/s and cost nothing measurable in Python calls."""
    from huggingface_hub import constants

    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, _CHUNK)


def _reports_progress(download) -> bool:
    """Whether ``hf_hub_download`` takes ``tqdm_class`` (huggingface-hub >= 1.1)."""
    import inspect

    return "tqdm_class" in inspect.signature(download).parameters


def _partial_names(blobs: Path) -> list[str]:
    """The names of the partial files (``*.incomplete``) in a repo's ``blobs`` folder (none if unreadable)."""
    try:
        return sorted(n for n in os.listdir(blobs) if n.endswith(".incomplete"))
    except OSError:
        return []


def _partial_bytes(repo_id: str) -> int:
    """Bytes in the partial files of ``repo_id`` in the Hub cache (one renamed or removed meanwhile: 0)."""
    blobs = _repo_cache(repo_id) / "blobs"
    total = 0
    for name in _partial_names(blobs):
        try:
            total += (blobs / name).lstat().st_size
        except OSError:
            pass
    return total


def _watched_tqdm(watch: Watch) -> type:
    """huggingface_hub's progress bar, reporting every chunk to ``watch`` (which stops the transfer once
    its caller has given up: the partial file is then removed by huggingface_hub itself)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Watched(hf_tqdm):
        def update(self, n=1):
            watch.progress(max(int(n or 0), 0))
            return super().update(n)

    return Watched


def clean_partial_downloads(repo_id: str) -> list[Path]:
    """Removes the partial files (``blobs/*.incomplete``) of ``repo_id`` in the Hub cache that no live
    download is writing.

    huggingface_hub names each process's partial file uniquely and removes it when its download fails,
    but a killed process (SIGKILL, power loss) leaves it for good. A live download holds the flock of
    ``.locks/<repo>/<etag>.lock`` while it writes; a partial file whose lock can be taken is a dead one.

    Returns:
        The files removed.
    """
    import fcntl

    repo = _repo_cache(repo_id)
    blobs, locks = repo / "blobs", Path(_cache_dir()) / ".locks" / repo.name
    removed = []
    for name in _partial_names(blobs):
        try:
            fd = os.open(locks / f"{name.split('.', 1)[0]}.lock", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            fd = None  # never locked: no live download
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if remove(blobs / name, blobs, "partial download"):
                removed.append(blobs / name)
        except (UnsafePathError, OSError):  # a live download holds the lock, or a read-only cache
            pass
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def _repo_cache(repo_id: str) -> Path:
    """The folder of ``repo_id`` in the Hub cache (``models--owner--name``)."""
    return Path(_cache_dir()) / f"models--{repo_id.replace('/', '--')}"


def _check_in_cache(link: Path, repo_id: str, where: str) -> None:
    """Refuses a snapshot entry whose real file is not a blob of the repo's cache folder.

    A shared or copied cache can hold a snapshot link to any file: that file is never read,
    trusted or deleted; only the link, which lies inside the cache, is removed.
    """
    repo = _repo_cache(repo_id)
    try:
        resolve_inside(link, repo / "blobs", f"cached {where}", follow=True)
    except UnsafePathError:
        target = os.path.realpath(link)
        try:
            remove(link, repo / "snapshots", "snapshot link")
            done = "the link was removed"
        except (UnsafePathError, OSError):
            done = "it was left as it is"
        raise HubError(f"{where}: the cached file is a link to {target}, outside the Hub cache's blobs "
                       f"({repo / 'blobs'}): refused and {done}; that file was not read or touched") from None


def _git_blob_sha1(path: Path) -> str:
    import hashlib

    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, where: str, sha256: Optional[str], warm: str) -> None:
    """Refuses a cached file that is not what was asked for, and removes it from the cache.

    LFS files (weights) are checked against ``sha256`` when the registry pins one, else against
    the sha256 the Hub announced (the name of their blob in the cache). Files stored in git
    itself (``config.json``) are verified against the revision: the Hub names their blob by
    its git blob id, sha1 of ``b"blob <size>\\0" + bytes``, the id the commit's tree records,
    so a pinned commit pins them too. A file that fails is deleted with its snapshot link, so
    neither a later download nor another Hub tool trusts it.
    """
    blob = Path(os.path.realpath(path))
    expected = (sha256 or "").lower() or (blob.name if _SHA256.fullmatch(blob.name) else None)
    if expected is not None:
        actual, what = sha256_of(blob), ("the registered sha256" if sha256 else "the sha256 the Hub announced")
    elif _GIT_SHA1.fullmatch(blob.name):
        expected, actual, what = blob.name, _git_blob_sha1(blob), "the git blob id of the revision"
    else:
        _discard(path, blob)
        raise HubError(f"{where}: the Hub gave no checksum for this file (cache blob {blob.name}), so it cannot be "
                       f"verified; it was removed from the cache: check HF_ENDPOINT points at a Hugging Face Hub")
    if actual != expected:
        _discard(path, blob)
        raise HubError(f"{where}: checksum {actual[:16]}... does not match {what} {expected[:16]}...: the file "
                       f"is corrupt and was removed from the cache; retry {warm}")


def _discard(link: Path, blob: Path) -> None:
    """Removes a refused file from the Hub cache: its snapshot link and the blob it points to (never
    a file outside the cache's folder, see :func:`_check_in_cache`)."""
    for p in (link, blob):
        try:
            remove(p, Path(_cache_dir()), "cached file")
        except (UnsafePathError, OSError):  # a read-only cache: the refusal still stands
            pass


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return f"{type(e).__name__}: {_one_line(e)}"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def fetch_config(ref: str, *, force: bool = False) -> tuple[str, str, Path]:
    """Fetches ``config.json`` (the weights' record) of ``"hf-hub:owner/repo[@revision]"``, a repo pushed by bnnzoo.

    Fetched before the weights, so that a repo of another architecture fails before the
    (larger) weights are downloaded.

    Returns:
        ``(repo_id, revision, path in the Hub cache)``.

    Raises:
        HubError: As :func:`hub_file`; also a repo without ``config.json``.
    """
    repo_id, revision = parse_hub_ref(ref)
    try:
        return repo_id, revision, hub_file(repo_id, CONFIG_FILE, revision, name=f"{HUB_PREFIX}{repo_id}@{revision}",
                                           force=force)
    except HubError as e:
        if f"file {CONFIG_FILE!r} not found" in str(e):
            raise HubError(f"{repo_id}@{revision} has no {CONFIG_FILE}, so it was not pushed with bnnzoo: "
                           f"download its weights file and pass the local path as weights=") from None
        raise


def fetch_hub_ref(ref: str, *, force: bool = False) -> tuple[Path, Path]:
    """Fetches ``config.json`` then ``model.safetensors`` of ``"hf-hub:owner/repo[@revision]"``.

    Returns:
        ``(weights_path, config_path)`` in the Hub cache.

    Raises:
        HubError: As :func:`hub_file`; also a repo without ``config.json``.
    """
    repo_id, revision, config_path = fetch_config(ref, force=force)
    return hub_file(repo_id, WEIGHTS_FILE, revision, name=f"{HUB_PREFIX}{repo_id}@{revision}", force=force), config_path


# --------------------------------------------------------------------------- push


def push_folder(folder: str | Path, repo_id: str, *, revision: str = "main", private: bool = False,
                message: Optional[str] = None, overwrite_card: bool = False) -> tuple[str, bool]:
    """Uploads ``model.safetensors``, ``config.json`` and ``README.md`` of ``folder`` in one commit.

    A ``README.md`` already in the repo that is not a card bnnzoo generated, unchanged (edited on
    the Hub, or written by hand), is kept unless ``overwrite_card``.

    Returns:
        ``(commit hash, whether README.md was uploaded)``.

    Raises:
        HubError: Not logged in, or the Hub refused the upload.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not get_token():
        raise HubError("pushing needs a Hub token: run `hf auth login` or set HF_TOKEN (or use --dry-run)")
    api = HfApi(endpoint=endpoint(), **library())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        card = overwrite_card or not _edited_card(api, repo_id, revision)
        files = [WEIGHTS_FILE, CONFIG_FILE] + ([README_FILE] if card else [])
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision, allow_patterns=files,
                                 commit_message=message or f"Upload {repo_id} with bnnzoo")
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise HubError(f"push to {repo_id}@{revision} on {endpoint()} failed with HTTP {status} "
                       f"({_one_line(e).split(' for url')[0]}): check the token's write access and the repo "
                       "name") from None
    return info.oid, card


def _edited_card(api, repo_id: str, revision: str) -> bool:
    """Whether the repo holds a README.md that is not an unchanged card generated by bnnzoo."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.file_download import get_hf_file_metadata

    try:
        from huggingface_hub.errors import RemoteEntryNotFoundError
    except ImportError:  # huggingface-hub < 1.0
        from huggingface_hub.errors import EntryNotFoundError as RemoteEntryNotFoundError
    try:  # HfApi.file_exists, with the library named
        get_hf_file_metadata(hf_hub_url(repo_id, README_FILE, revision=revision, endpoint=api.endpoint),
                             token=api.token, **library())
    except (RepositoryNotFoundError, RemoteEntryNotFoundError, RevisionNotFoundError):
        return False
    text = hub_file(repo_id, README_FILE, revision).read_text(encoding="utf-8", errors="replace")
    return not is_generated_card(text)


_CARD_MARK = re.compile(r"\n<!-- generated by bnnzoo, sha256 ([0-9a-f]{64}) -->\n?\Z")


def sign_card(text: str) -> str:
    """``text`` with a last line recording its sha256: a later push can tell whether it was edited."""
    import hashlib

    return f"{text}\n<!-- generated by bnnzoo, sha256 {hashlib.sha256(text.encode()).hexdigest()} -->\n"


def is_generated_card(text: str) -> bool:
    """Whether ``text`` is a card :func:`sign_card` signed, unchanged since."""
    import hashlib

    m = _CARD_MARK.search(text)
    return m is not None and hashlib.sha256(text[:m.start()].encode()).hexdigest() == m[1]
