"""Hub download and push against a local fake Hub (tests/hub_server.py), through the real
``huggingface_hub`` client: only its configuration (endpoint, cache, offline) is set."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zoo
from bnnzoo.commands import download, push
from zoo import hub, refs
from zoo import weights as zw
from zoo.hub import HubError

from helpers import killed_when, serve_hub

REPO = "zoo-test/mobilenet-tiny"
KEY = "mobilenet_v1.tiny_test"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """model.safetensors + config.json of a tiny mobilenet_v1 with random weights."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = zoo.load("mobilenet_v1", **zoo.get_config("mobilenet_v1").tiny)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and "running_var" not in name:
                t.copy_(torch.randn_like(t))  # no two checkpoints alike: equality really means "these weights"
    zoo.save(model, folder, mean=(0.5,) * 3, std=(0.25,) * 3, labels=tuple("abcdefghij"), dataset="cifar10-test",
             metrics=(zw.Metric("top1", 31.0, "cifar10-test", "measured: python -m eval cifar10"),))
    return folder


@pytest.fixture
def server(tmp_path, monkeypatch, tiny_folder):
    """A fake Hub holding REPO, the client pointed at it, an empty cache, and WEIGHTS[KEY] registered."""
    shutil.copytree(tiny_folder, tmp_path / "hub" / REPO)
    srv = serve_hub(tmp_path, monkeypatch)
    cfg = zoo.get_config("mobilenet_v1").replace(**zoo.get_config("mobilenet_v1").tiny)
    monkeypatch.setitem(zw.WEIGHTS, KEY, zw.Weights(
        arch="mobilenet_v1", tag="tiny_test", hub_repo=REPO, revision=srv.commit_of(REPO),
        filename="model.safetensors", sha256=hub.sha256_of(tiny_folder / "model.safetensors"),
        num_classes=cfg.num_classes, input_size=cfg.input_size, mean=(0.5,) * 3, std=(0.25,) * 3,
        arch_overrides={"depth": cfg.arch["depth"]},
        metrics=(zw.Metric("top1", 12.5, "cifar10-test", "measured: pytest fixture"),)))
    yield srv
    srv.stop()


@pytest.fixture
def no_retry_waits(monkeypatch):
    """The client's retries still happen (5 resumes of a cut download, 5 backed-off HEADs when
    the Hub is unreachable), only their sleeps (1 s, 1-8 s) are skipped to keep the tests fast."""
    import time

    import huggingface_hub.file_download as fd
    import huggingface_hub.utils._http as http

    class _NoWait:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            pass

    monkeypatch.setattr(fd, "time", _NoWait())
    monkeypatch.setattr(http, "time", _NoWait())


def _same(model, folder: Path) -> bool:
    saved = zw.read_safetensors(folder / "model.safetensors")
    return all(torch.equal(t, torch.as_tensor(saved[k])) for k, t in model.state_dict().items() if k in saved)


def _cache_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "hf" / "hub").rglob("*") if p.is_file() and ".locks" not in p.parts]


def _partial_bytes(tmp_path: Path) -> int:
    """The largest partial download in the cache (a small file's partial file is renamed as it completes,
    between listing it and reading its size: such a file counts as 0)."""
    sizes = [0]
    for p in _cache_files(tmp_path):
        if p.name.endswith(".incomplete"):
            try:
                sizes.append(p.stat().st_size)
            except FileNotFoundError:
                pass
    return max(sizes)


def test_download_then_cached_load_with_server_stopped(server, tmp_path, tiny_folder):
    model = zoo.load(KEY)
    assert _same(model, tiny_folder) and model.zoo_config.arch["depth"] == 4
    assert ("GET", f"/cdn/{zw.WEIGHTS[KEY].sha256}") in server.requests  # followed the LFS redirect
    ref = zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}")          # branch, not pinned: refs/main
    assert _same(ref, tiny_folder)
    server.stop()
    assert _same(zoo.load(KEY), tiny_folder)
    assert _same(zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}"), tiny_folder)
    assert not any(p.name.endswith(".incomplete") for p in _cache_files(tmp_path))


def test_offline(server, monkeypatch, tiny_folder):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=f"HF_HUB_OFFLINE.*`bnnzoo download {KEY}`"):
        zoo.load(KEY)
    with pytest.raises(HubError, match=f"bnnzoo download hf-hub:{REPO}@main"):
        zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    download.run(argparse.Namespace(name=KEY, force=False))
    download.run(argparse.Namespace(name=f"hf-hub:{REPO}", force=False))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(server.requests)
    assert _same(zoo.load(KEY), tiny_folder)
    assert _same(zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}"), tiny_folder)
    assert len(server.requests) == n  # offline means no request at all


def test_corrupt_on_server_is_refused(server, tmp_path):
    f = tmp_path / "hub" / REPO / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF  # same size, same commit, other bytes
    f.write_bytes(bytes(data))
    with pytest.raises(HubError) as e:
        zoo.load(KEY)
    msg = str(e.value)
    assert "\n" not in msg and REPO in msg and zw.WEIGHTS[KEY].revision in msg and "model.safetensors" in msg
    assert "corrupt and was removed from the cache" in msg
    # The refused bytes are gone with their snapshot link: no later download or Hub tool trusts them.
    assert _cached_files(tmp_path) == []


def _cached_files(tmp_path: Path) -> list[str]:
    """Blobs and snapshot entries of REPO in the test's Hub cache (names relative to the repo's cache folder)."""
    folder = tmp_path / "hf" / "hub" / f"models--{REPO.replace('/', '--')}"
    return sorted(str(p.relative_to(folder)) for sub in ("blobs", "snapshots") for p in (folder / sub).rglob("*")
                  if p.is_file() or p.is_symlink()) if folder.is_dir() else []


def test_corrupt_cache_is_refused_removed_and_downloaded_again(server, tmp_path, tiny_folder):
    path = refs.fetch_registered(KEY, zw.WEIGHTS[KEY])
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with pytest.raises(HubError, match="corrupt and was removed from the cache"):
        zoo.load(KEY)
    assert not blob.exists() and not path.is_symlink() and not path.exists()
    assert _same(zoo.load(KEY), tiny_folder)  # the next load downloads it again: no --force needed
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with pytest.raises(HubError, match="corrupt"):  # hf-hub refs are checked against the LFS sha256 (ETag)
        zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}")
    assert not blob.exists()
    download.run(argparse.Namespace(name=KEY, force=True))
    assert _same(zoo.load(KEY), tiny_folder)


def test_git_stored_config_is_verified_against_the_revision(server, tmp_path, tiny_folder):
    """config.json is not an LFS file: its cache blob is named by its git blob id, which the revision
    records; a cached copy whose bytes changed (still valid JSON, another architecture size) is refused
    and removed, and the next load fetches it again."""
    ref = f"hf-hub:{REPO}@{server.commit_of(REPO)}"
    _, config = hub.fetch_hub_ref(ref)
    blob = config.resolve()
    assert len(blob.name) == 40  # a git sha1, not an LFS sha256
    blob.chmod(0o644)
    saved = json.loads(blob.read_text())
    blob.write_text(json.dumps({**saved, "num_classes": saved["num_classes"] + 1}))
    with pytest.raises(HubError) as e:
        zoo.load("mobilenet_v1", weights=ref)
    msg = str(e.value)
    assert "config.json" in msg and "git blob id of the revision" in msg and "removed from the cache" in msg
    assert "\n" not in msg and not blob.exists()
    assert _same(zoo.load("mobilenet_v1", weights=ref), tiny_folder)


def test_config_that_is_not_an_object_is_one_line(server, tmp_path):
    (tmp_path / "hub" / REPO / "config.json").write_text("[1, 2, 3]")
    server.new_commits()
    with pytest.raises(ValueError) as e:
        zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}")
    assert "config.json" in str(e.value) and "holds a JSON list" in str(e.value) and "\n" not in str(e.value)


def test_hub_errors_are_one_line_and_name_the_file(server, monkeypatch, no_retry_waits):
    w = zw.WEIGHTS[KEY]
    monkeypatch.setitem(zw.WEIGHTS, KEY, zw.Weights(**{**w.__dict__, "hub_repo": "zoo-test/missing"}))
    missing = r"zoo-test/missing@\w+/model.safetensors: repository zoo-test/missing not found"
    with pytest.raises(HubError, match=missing):
        zoo.load(KEY)
    monkeypatch.setitem(zw.WEIGHTS, KEY, zw.Weights(**{**w.__dict__, "filename": "nope.safetensors"}))
    with pytest.raises(HubError, match="file 'nope.safetensors' not found"):
        zoo.load(KEY)
    with pytest.raises(HubError, match=f"revision 'v9' not found in {REPO}"):
        zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}@v9")
    server.stop()  # connection refused, nothing cached
    monkeypatch.setitem(zw.WEIGHTS, KEY, w)
    with pytest.raises(HubError) as e:
        zoo.load(KEY)
    assert "\n" not in str(e.value) and "cannot reach" in str(e.value) and f"bnnzoo download {KEY}" in str(e.value)


def test_server_dying_mid_transfer_leaves_no_file(server, tmp_path, no_retry_waits):
    size = (tmp_path / "hub" / REPO / "model.safetensors").stat().st_size
    server.drop_after = size // 2
    with pytest.raises(HubError, match=r"interrupted|download failed") as e:
        zoo.load(KEY)
    assert "\n" not in str(e.value) and REPO in str(e.value)
    blobs = [p for p in _cache_files(tmp_path) if "blobs" in p.parts or "snapshots" in p.parts]
    assert blobs == []  # neither a short blob nor a partial file under any name


def test_hf_hub_ref_of_another_architecture_fails_before_weights(server):
    with pytest.raises(zoo.WeightMismatchError, match="describes a 'mobilenet_v1' model, not 'meliusnet22'"):
        zoo.load("meliusnet22", weights=f"hf-hub:{REPO}")
    assert not any(p.startswith("/cdn/") for _, p in server.requests)


def test_explicit_num_classes_fine_tunes_from_hub_weights(server, tiny_folder, caplog):
    model = zoo.load(KEY, num_classes=7)
    assert model.classifier.out_features == 7 and "re-initialised for num_classes=7" in caplog.text
    saved = zw.read_safetensors(tiny_folder / "model.safetensors")
    assert all(torch.equal(t, torch.as_tensor(saved[k])) for k, t in model.state_dict().items()
               if k in saved and not k.startswith("classifier."))


def test_push_dry_run_then_push_and_load(server, tmp_path, tiny_folder, capsys):
    from huggingface_hub import ModelCard

    folder = tmp_path / "to-push"
    shutil.copytree(tiny_folder, folder)
    args = argparse.Namespace(folder=str(folder), weights=None, arch=None, repo="zoo-test/pushed", revision="main",
                              dry_run=True, private=False, message=None, overwrite_card=False)
    push.run(args)
    assert not any(m == "POST" for m, _ in server.requests)
    card = ModelCard((folder / "README.md").read_text())
    assert card.data.library_name == "bnnzoo" and card.data.license == "apache-2.0"
    assert [(r.metric_value, r.metric_name) for r in card.data.eval_results] == [(31.0, "Top-1 accuracy (measured)")]

    args.dry_run = False
    push.run(args)
    out = capsys.readouterr().out
    pushed = tmp_path / "hub" / "zoo-test" / "pushed"
    assert sorted(p.name for p in pushed.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    commit = server.commit_of("zoo-test/pushed")
    assert f"zoo.load('hf-hub:zoo-test/pushed@{commit}')" in out and "zoo/weights.py" not in out
    # No architecture named: config.json (the record) holds it, with the preprocessing and the labels.
    loaded = zoo.load(f"hf-hub:zoo-test/pushed@{commit}")
    assert _same(loaded, tiny_folder) and loaded.zoo_weights.labels == tuple("abcdefghij")
    assert zoo.transforms(loaded) == zoo.transforms(zoo.load(str(tiny_folder)))
    assert zoo.load(f"hf_hub:zoo-test/pushed@{commit}").zoo_weights == loaded.zoo_weights  # timm's older spelling


def test_push_keeps_a_card_edited_on_the_hub(server, tmp_path, tiny_folder, caplog):
    """A README.md changed on the Hub survives the next push unless asked; bnnzoo's own unchanged card is
    replaced. Every request names the library (huggingface_hub's user agent: bnnzoo/<version>)."""
    model = zoo.load(str(tiny_folder))
    first = zoo.push_to_hub(model, "zoo-test/edited")
    card = tmp_path / "hub" / "zoo-test" / "edited" / "README.md"
    assert first.card_uploaded and hub.is_generated_card(card.read_text())
    again = zoo.push_to_hub(model, "zoo-test/edited", message="same weights again")
    assert again.card_uploaded  # still bnnzoo's card, unchanged: replaced
    card.write_text("# My own words about these weights\n")
    server.new_commits()
    kept = zoo.push_to_hub(model, "zoo-test/edited")
    assert not kept.card_uploaded and card.read_text() == "# My own words about these weights\n"
    assert "edited there and is kept" in caplog.text
    replaced = zoo.push_to_hub(model, "zoo-test/edited", overwrite_card=True)
    assert replaced.card_uploaded and hub.is_generated_card(card.read_text())
    agents = [a for _, _, a in server.user_agents]
    assert agents and all(f"bnnzoo/{zoo.__version__}" in a for a in agents), set(agents)


def test_push_without_token_says_how_to_log_in(server, tmp_path, tiny_folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    from huggingface_hub import constants, get_token

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))

    if get_token():
        pytest.skip("a token is configured on this machine")
    with pytest.raises(HubError, match="hf auth login"):
        hub.push_folder(tiny_folder, "zoo-test/pushed")


def test_cli_download(server, monkeypatch, capsys):
    from bnnzoo.cli import main

    assert main(["download", KEY]) == 0
    assert "sha256 ok" in capsys.readouterr().out
    assert main(["download", "mobilenet_v1.nope"]) == 1
    assert "no weights 'nope' for mobilenet_v1" in capsys.readouterr().err


def test_model_cards(tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    from zoo.cards import model_card, write_model_cards

    card = ModelCard(model_card(zoo.get_config("meliusnet22")))
    assert all("(published)" in r.metric_name for r in card.data.eval_results)
    files = write_model_cards(tmp_path / "cards")
    assert len(files) == len(zoo.list_models(include_stages=True)) + len(zw.WEIGHTS)


# --- files outside the cache are never touched ------------------------------------------------------

def _snapshot_link(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots"
    (link,) = folder.glob(f"*/{name}")
    return link


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_a_snapshot_link_out_of_the_cache_is_refused_and_its_target_survives(name, server, tmp_path, monkeypatch,
                                                                             capsys):
    """A shared or copied cache whose snapshot link points at another file: bnnzoo refuses the entry in one
    line, removes the link (inside the cache), and never reads, trusts or deletes what it points to."""
    from bnnzoo.cli import main as cli_main

    download.run(argparse.Namespace(name=f"hf-hub:{REPO}", force=False))
    victim = tmp_path / "victim" / "important.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    link = _snapshot_link(tmp_path, name)
    link.unlink()
    link.symlink_to(victim)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli_main(["download", f"hf-hub:{REPO}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "outside the Hub cache" in err and str(victim) in err, err
    assert victim.read_text() == "keep me"
    assert not link.is_symlink()  # the planted link is gone: the next download online fetches the file again
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert _same(zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}"), tiny_folder_of(tmp_path))


def tiny_folder_of(tmp_path: Path) -> Path:
    return tmp_path / "hub" / REPO


@pytest.mark.parametrize("revision", ["../../../../escaped", "..", "a/../../b", "/abs", "a//b", ".hidden",
                                      "v1/", "x.lock", "a b", "rev~1", "a\\b", "@{1}"])
def test_a_revision_that_is_not_a_branch_tag_or_commit_is_refused(revision, server, tmp_path, capsys):
    """A revision becomes a path in the Hub cache (refs/REVISION): one that climbs out of it is refused
    in one line before any request, even against a server that answers every revision."""
    from bnnzoo.cli import main as cli_main

    server.any_revision = True
    assert cli_main(["download", f"hf-hub:{REPO}@{revision}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "revision" in err and "Traceback" not in err, err
    assert server.requests == []
    outside = [p for p in tmp_path.rglob("*") if "escaped" in p.name or p.name == "b"]
    assert outside == []
    with pytest.raises(ValueError, match="revision"):
        hub.parse_hub_ref(f"hf-hub:{REPO}@{revision}")


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "release-2024_01", "a" * 40])
def test_branch_tag_and_commit_revisions_are_accepted(revision):
    assert hub.parse_hub_ref(f"hf-hub:{REPO}@{revision}") == (REPO, revision)


# --- downloads end, and leave no partial file -----------------------------------------------------------

def _download_cli(env: dict, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bnnzoo", "download", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[1])
    return proc, time.monotonic() - start


def test_a_hub_that_never_answers_ends_at_the_stall_timeout(server, tmp_path):
    """The server accepts the connection and sends nothing: huggingface_hub alone waits its read timeout and
    retries (past 60 s here); bnnzoo gives up after BNNZOO_DOWNLOAD_STALL seconds, in one line."""
    server.stall.set()
    proc, seconds = _download_cli({"BNNZOO_DOWNLOAD_STALL": "1", "BNNZOO_DOWNLOAD_DEADLINE": "30"}, f"hf-hub:{REPO}")
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert "no data for 1 s" in err and "BNNZOO_DOWNLOAD_STALL" in err and "nothing was cached" in err, err
    assert seconds < 20, seconds


def test_a_hub_that_drips_ends_at_the_deadline_and_a_rerun_leaves_no_partial_file(server, tmp_path, tiny_folder):
    """A link that sends a little every 0.3 s never trips a read timeout; the deadline ends it in one line,
    and the next download (a normal link) leaves no partial file behind."""
    server.drip = (2048, 0.3)
    proc, seconds = _download_cli({"BNNZOO_DOWNLOAD_STALL": "5", "BNNZOO_DOWNLOAD_DEADLINE": "2"}, f"hf-hub:{REPO}")
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert "not finished after 2 s" in err and "BNNZOO_DOWNLOAD_DEADLINE" in err, err
    assert seconds < 20, seconds
    server.drip = None
    download.run(argparse.Namespace(name=f"hf-hub:{REPO}", force=False))
    assert not [p for p in _cache_files(tmp_path) if p.name.endswith(".incomplete")]
    assert _same(zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}"), tiny_folder)


def test_bad_download_limits_are_one_line(server):
    proc, _ = _download_cli({"BNNZOO_DOWNLOAD_DEADLINE": "soon"}, f"hf-hub:{REPO}")
    assert proc.returncode == 1 and "BNNZOO_DOWNLOAD_DEADLINE='soon'" in proc.stderr.strip().splitlines()[-1]


def test_sigkill_mid_download_leaves_no_partial_file_after_a_rerun(server, tmp_path, tiny_folder):
    """SIGKILL while the weights arrive leaves huggingface_hub's partial file (its name is unique to the
    process, so nothing ever resumes or removes it); the next download removes it."""
    server.drip = (2048, 0.05)
    killed_when([sys.executable, "-m", "bnnzoo", "download", f"hf-hub:{REPO}"],
                lambda: _partial_bytes(tmp_path) > 4096)
    assert [p for p in _cache_files(tmp_path) if p.name.endswith(".incomplete")]  # left by the killed process
    server.drip = None
    download.run(argparse.Namespace(name=f"hf-hub:{REPO}", force=False))
    assert not [p for p in _cache_files(tmp_path) if p.name.endswith(".incomplete")]
    assert _same(zoo.load("mobilenet_v1", weights=f"hf-hub:{REPO}"), tiny_folder)
