"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, serving repos from a folder.

It speaks what ``huggingface_hub`` 2.4 uses (see its ``file_download.py``, ``_commit_api.py``):

* ``HEAD|GET /{owner}/{name}/resolve/{revision}/{path}``: ``X-Repo-Commit`` (required),
  ``ETag``, ``Content-Length``. LFS files (``*.safetensors``) answer like the real Hub: a
  302 to a "CDN" (``localhost`` instead of ``127.0.0.1``: another host, so the client
  takes the metadata from the 302 itself) with ``X-Linked-Etag`` (the sha256, which names
  the blob in the cache) and ``X-Linked-Size``. Errors carry ``X-Error-Code``
  (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), which the client maps to
  its exception types.
* ``GET /cdn/{sha256}`` with ``Range: bytes=N-`` support (206, used to resume).
* Push, regular (non-LFS) uploads only: ``POST /api/repos/create``, ``POST
  /api/validate-yaml``, ``POST /api/models/{repo}/preupload/{rev}`` (every file
  ``uploadMode: regular``) and ``POST /api/models/{repo}/commit/{rev}`` (NDJSON, base64
  file contents), which writes the files into the folder.

Repos live at ``root/owner/name/``; the commit hash of a repo is derived from its files,
and ``main`` or that hash are the only revisions (see ``HubServer.commit_of``). ``drop_after`` makes the server send
the headers of a file (full ``Content-Length``) then only the first N bytes of it, close
the connection and stop listening: a server dying mid-transfer. ``any_revision`` answers every
revision as ``main`` (a mirror that does not check them), ``stall`` makes every request hang
until the server stops (nothing is ever sent), and ``drip`` sends file bodies ``drip[0]``
bytes at a time every ``drip[1]`` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def send_dripping(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
                  drip: tuple[int, float], stopped: threading.Event) -> None:
    """A slow link: ``body`` in pieces of ``drip[0]`` bytes every ``drip[1]`` seconds (never a stall), the
    connection closed after it; stops early when ``stopped`` is set or the client hangs up."""
    size, pause = drip
    handler.send_response(status)
    for k, v in {**headers, "Content-Length": str(len(body))}.items():
        handler.send_header(k, v)
    handler.end_headers()
    for i in range(0, len(body), size):
        if stopped.wait(pause):
            break
        try:
            handler.wfile.write(body[i:i + size])
            handler.wfile.flush()
        except OSError:  # the client gave up
            break
    handler.close_connection = True


class HubServer:
    """A threaded fake Hub. Use as a context manager, or ``start()`` / ``stop()``.

    Attributes:
        root: Folder holding ``owner/name/`` repos.
        url: ``http://127.0.0.1:PORT`` (set ``HF_ENDPOINT`` to it).
        drop_after: If set, the next file body is cut after this many bytes, then the server stops.
        requests: ``(method, path)`` of every request served.
        user_agents: ``(method, path, User-Agent)`` of every request served.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.drop_after: Optional[int] = None
        self.any_revision = False
        self.stall = threading.Event()  # set: every request hangs, unanswered, until stop()
        self.drip: Optional[tuple[int, float]] = None
        self._stopped = threading.Event()
        self.requests: list[tuple[str, str]] = []
        self.user_agents: list[tuple[str, str, str]] = []  # (method, path, User-Agent) of every request
        self._blobs: dict[str, Path] = {}
        self._commits: dict[str, str] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Lock()
        self.dead = False  # set when drop_after fires: every later request is hung up on
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HubServer":
        hub = self
        self.dead = False
        self._stopped.clear()

        class Handler(_Handler):
            server_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket (connections are then refused)."""
        self._stopped.set()  # stalled handlers return
        with self._stopping:  # the dying handler's thread and the fixture's teardown may both stop it
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
        for conn in list(self._connections):  # kept-alive connections die with the server too
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def new_commits(self) -> None:
        """Every repo gets a new commit on its next request (of its files as they are on disk then)."""
        self._commits.clear()

    def commit_of(self, repo_id: str) -> str:
        """The commit hash of a repo: fixed when first asked, renewed by each pushed commit.

        Editing a file on disk in between is corruption on the server: same commit, other bytes.
        """
        if repo_id not in self._commits:
            self._commits[repo_id] = self._hash_files(repo_id)
        return self._commits[repo_id]

    def _hash_files(self, repo_id: str) -> str:
        h = hashlib.sha1(repo_id.encode())
        for f in sorted((self.root / repo_id).rglob("*")):
            if f.is_file():
                h.update(f.relative_to(self.root / repo_id).as_posix().encode() + b"\0" + f.read_bytes())
        return h.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: HubServer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server_hub._connections.add(self.connection)

    def finish(self) -> None:
        self.server_hub._connections.discard(self.connection)
        super().finish()

    # ----------------------------------------------------------------- plumbing

    def _reply(self, status: int, body: bytes = b"", headers: Optional[dict[str, str]] = None,
               head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: Optional[dict[str, str]] = None) -> None:
        self._reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, head: bool, extra: Optional[dict[str, str]] = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json",
                   **(extra or {})}
        self._reply(status, json.dumps({"error": message}).encode(), headers, head=head)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    # ----------------------------------------------------------------- downloads

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        hub = self.server_hub
        if hub.dead:  # a client retrying before the listening socket is closed: it is dead already
            self.close_connection = True
            return
        raw = urlsplit(self.path).path
        path = unquote(raw)
        hub.requests.append((self.command, path))
        hub.user_agents.append((self.command, path, self.headers.get("User-Agent", "")))
        if hub.stall.is_set():  # accept the request, never answer it
            hub._stopped.wait()
            self.close_connection = True
            return
        parts = [unquote(p) for p in raw.strip("/").split("/")]  # a quoted "/" inside a revision stays in it
        if parts[0] == "cdn" and len(parts) == 2:
            return self._send_blob(parts[1], head)
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound", "Repository not found", head)
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo = hub.root / repo_id
        if not repo.is_dir():
            return self._error(404, "RepoNotFound", "Repository not found", head)
        commit = hub.commit_of(repo_id)
        if revision not in ("main", commit) and not hub.any_revision:
            return self._error(404, "RevisionNotFound", "Invalid rev id", head)
        file = repo / filename
        if not file.is_file():
            return self._error(404, "EntryNotFound", "Entry not found", head, {"X-Repo-Commit": commit})
        data = file.read_bytes()
        if filename.endswith(LFS_SUFFIXES):
            sha = _sha256(data)
            hub._blobs[sha] = file
            location = f"http://localhost:{hub.port}/cdn/{sha}"
            return self._reply(302, b"", {"Location": location, "X-Repo-Commit": commit, "ETag": f'"{sha}"',
                                          "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))}, head=head)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{_git_blob_sha1(data)}"',
                   "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        self._send_bytes(data, headers, head)

    def _send_blob(self, sha: str, head: bool) -> None:
        file = self.server_hub._blobs.get(sha)
        if file is None or not file.is_file():
            return self._error(404, "EntryNotFound", "Blob not found", head)
        self._send_bytes(file.read_bytes(), {"ETag": f'"{sha}"', "Content-Type": "application/octet-stream",
                                             "Accept-Ranges": "bytes"}, head)

    def _send_bytes(self, data: bytes, headers: dict[str, str], head: bool) -> None:
        hub = self.server_hub
        rng = self.headers.get("Range", "")
        status, start = 200, 0
        if rng.startswith("bytes=") and rng[6:].split("-")[0].isdigit():
            start = int(rng[6:].split("-")[0])
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        body = data[start:]
        if not head and hub.drip is not None:
            return send_dripping(self, status, headers, body, hub.drip, hub._stopped)
        if head or hub.drop_after is None:
            return self._reply(status, body, headers, head=head)
        # Die mid-transfer: announce the whole body, send part of it, hang up, stop listening.
        cut, hub.drop_after, hub.dead = hub.drop_after, None, True
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        threading.Thread(target=hub.stop, daemon=True).start()

    # ----------------------------------------------------------------- uploads

    def do_POST(self) -> None:
        hub = self.server_hub
        path = unquote(urlsplit(self.path).path)
        hub.requests.append((self.command, path))
        hub.user_agents.append((self.command, path, self.headers.get("User-Agent", "")))
        body = self._body()
        parts = path.strip("/").split("/")
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}" if "/" not in payload["name"] \
                else payload["name"]
            (hub.root / repo_id).mkdir(parents=True, exist_ok=True)
            return self._json(200, {"url": f"{hub.url}/{repo_id}"})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] in ("preupload", "commit"):
            repo_id, action = "/".join(parts[2:4]), parts[4]
            repo = hub.root / repo_id
            if not repo.is_dir():
                return self._error(404, "RepoNotFound", "Repository not found", False)
            if action == "preupload":
                files = json.loads(body)["files"]
                return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                  for f in files]})
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    value = item["value"]
                    target = repo / value["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    content = value["content"]
                    target.write_bytes(base64.b64decode(content) if value.get("encoding") == "base64"
                                       else content.encode())
                elif item["key"] != "header":
                    return self._error(400, "BadRequest", f"unsupported commit operation {item['key']}", False)
            commit = hub._commits[repo_id] = hub._hash_files(repo_id)
            return self._json(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{commit}", "commitOid": commit,
                                    "pullRequestUrl": None})
        return self._error(404, "RepoNotFound", "Not found", False)
