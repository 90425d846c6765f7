"""ds2.hub: model names, devices, and Hub downloads against a local stand-in for the Hub.

``FakeHub`` is an http.server on 127.0.0.1 that answers the requests huggingface_hub's
``hf_hub_download`` makes: ``HEAD``/``GET {endpoint}/{repo_id}/resolve/{revision}/{filename}``
with the headers it needs (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and the
``X-Error-Code`` values it turns into typed errors. The real hf_hub_download runs against it.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

import ds2
from ds2 import hub
from ds2.errors import CheckpointError, DS2Error
from tests.utils import make_tiny_checkpoint


class FakeHub:
    """A minimal Hub: repos made of commits (filename -> bytes) and refs (branch/tag -> commit)."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []  # (method, path) of every request
        self.fail_status: int | None = None  # answer everything with this status (Hub down)
        self.hub_headers = True  # False: answer like a plain web server (no X-Repo-Commit)
        self.on_request = None  # callback(method, repo_id, revision, filename) before answering
        self._counter = 0
        hub_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                hub_self._answer(self, body=False)

            def do_GET(self):
                hub_self._answer(self, body=True)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_commit(self, repo_id, files: dict[str, bytes], refs=("main",), gated=False) -> str:
        self._counter += 1
        h = hashlib.sha1(f"{repo_id}:{self._counter}".encode())
        for name in sorted(files):
            h.update(name.encode() + files[name])
        commit = h.hexdigest()
        repo = self.repos.setdefault(repo_id, {"commits": {}, "refs": {}, "gated": gated})
        repo["commits"][commit] = dict(files)
        for ref in refs:
            repo["refs"][ref] = commit
        return commit

    def _answer(self, req, body: bool):
        self.log.append((req.command, req.path))
        parts = req.path.split("?")[0].lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(req, 404, None)
        repo_id, revision = f"{parts[0]}/{parts[1]}", unquote(parts[3])
        filename = unquote("/".join(parts[4:]))
        if self.on_request is not None:
            self.on_request(req.command, repo_id, revision, filename)
        if self.fail_status is not None:
            return self._error(req, self.fail_status, None)
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(req, 404, "RepoNotFound")
        if repo["gated"]:
            return self._error(req, 403, "GatedRepo")
        commit = repo["refs"].get(revision, revision if revision in repo["commits"] else None)
        if commit is None:
            return self._error(req, 404, "RevisionNotFound")
        data = repo["commits"][commit].get(filename)
        if data is None:
            return self._error(req, 404, "EntryNotFound", commit=commit)
        req.send_response(200)
        if self.hub_headers:
            req.send_header("X-Repo-Commit", commit)
            req.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Content-Type", "application/octet-stream")
        req.end_headers()
        if body:
            req.wfile.write(data)

    def _error(self, req, status, code, commit=None):
        req.send_response(status)
        if code:
            req.send_header("X-Error-Code", code)
        if commit:
            req.send_header("X-Repo-Commit", commit)
        req.send_header("Content-Length", "0")
        req.end_headers()


def checkpoint_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def log_probs(loaded, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    feats = torch.randn(1, loaded.model.cfg.n_features, 60)
    with torch.no_grad():
        return loaded.model(feats, torch.tensor([60]))[0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Two tiny checkpoints with different weights: {seed: folder}."""
    root = tmp_path_factory.mktemp("hub_weights")
    return {seed: make_tiny_checkpoint(root / f"seed{seed}", seed=seed) for seed in (0, 1)}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running FakeHub that ds2.hub talks to, with a fresh, empty HF cache."""
    import huggingface_hub.constants

    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("DS2_MODEL", raising=False)
    # Read at import time by huggingface_hub: make sure an offline CI shell cannot leak in.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "CHECKPOINTS_DIR", tmp_path / "no_shipped_models")
    yield server
    server.stop()


# --------------------------------------------------------------------------------------------
# Hub downloads


def test_download_loads_the_served_weights(fake_hub, weights, tmp_path):
    commit = fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    loaded = ds2.load_model("org/tiny", device="cpu")

    assert loaded.name == "org/tiny"
    # Files land in the standard HF cache layout, in the snapshot of the served commit.
    assert loaded.folder == tmp_path / "hf_cache" / "models--org--tiny" / "snapshots" / commit
    assert (tmp_path / "hf_cache" / "models--org--tiny" / "refs" / "main").read_text() == commit
    assert torch.equal(log_probs(loaded), log_probs(ds2.load_folder(weights[0])))
    fetched = {path.rsplit("/", 1)[1] for method, path in fake_hub.log if method == "GET"}
    assert fetched == {"config.json", "model.safetensors"}


def test_hf_home_decides_the_cache_when_hf_hub_cache_is_unset(
    fake_hub, weights, tmp_path, monkeypatch
):
    commit = fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    monkeypatch.delenv("HF_HUB_CACHE")
    loaded = ds2.load_model("org/tiny", device="cpu")
    assert (
        loaded.folder == tmp_path / "hf_home" / "hub" / "models--org--tiny" / "snapshots" / commit
    )


def test_pinned_revision_loads_that_commit(fake_hub, weights):
    old = fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]), refs=("main", "v1"))
    new = fake_hub.add_commit("org/tiny", checkpoint_files(weights[1]), refs=("main",))
    expect = {s: log_probs(ds2.load_folder(weights[s])) for s in (0, 1)}
    assert not torch.allclose(expect[0], expect[1])

    for spec, seed in [
        (f"org/tiny@{old}", 0),
        (f"org/tiny@{new}", 1),
        ("org/tiny@v1", 0),
        ("org/tiny", 1),
        ("org/tiny@main", 1),
    ]:
        loaded = ds2.load_model(spec, device="cpu")
        assert torch.equal(log_probs(loaded), expect[seed]), spec
        assert loaded.name == spec
        assert loaded.folder.name == (old if seed == 0 else new)


def test_one_load_reads_one_commit_even_if_main_moves(fake_hub, weights):
    old = fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    new = fake_hub.add_commit("org/tiny", checkpoint_files(weights[1]), refs=())

    def push_new_commit_after_config(method, repo_id, revision, filename):
        if method == "GET" and filename == "config.json":
            fake_hub.repos["org/tiny"]["refs"]["main"] = new

    fake_hub.on_request = push_new_commit_after_config
    loaded = ds2.load_model("org/tiny", device="cpu")

    # The weights come from the commit the config came from, not from the moved branch.
    assert loaded.folder.name == old
    assert torch.equal(log_probs(loaded), log_probs(ds2.load_folder(weights[0])))
    weight_requests = [p for _, p in fake_hub.log if p.endswith("/model.safetensors")]
    assert weight_requests and all(f"/resolve/{old}/" in p for p in weight_requests)


def test_cached_model_loads_with_the_server_stopped(fake_hub, weights):
    commit = fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    first = log_probs(ds2.load_model("org/tiny", device="cpu"))
    fake_hub.stop()

    for spec in ("org/tiny", "org/tiny@main", f"org/tiny@{commit}"):
        assert torch.equal(log_probs(ds2.load_model(spec, device="cpu")), first), spec


def test_hub_errors_5xx_fall_back_to_the_cache(fake_hub, weights):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    first = log_probs(ds2.load_model("org/tiny", device="cpu"))
    fake_hub.fail_status = 503
    fake_hub.log.clear()

    assert torch.equal(log_probs(ds2.load_model("org/tiny", device="cpu")), first)
    assert fake_hub.log, "the Hub should have been asked first"


def test_offline_mode_uses_the_cache_without_any_request(fake_hub, weights, monkeypatch):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    first = log_probs(ds2.load_model("org/tiny", device="cpu"))
    fake_hub.log.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert torch.equal(log_probs(ds2.load_model("org/tiny", device="cpu")), first)
    assert fake_hub.log == []


def test_offline_and_not_cached_says_what_to_do(fake_hub, weights, monkeypatch):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="offline.*run once online or pass a local folder"):
        ds2.load_model("org/tiny", device="cpu")
    assert fake_hub.log == []


def test_unreachable_hub_and_not_cached_says_what_to_do(fake_hub, weights, monkeypatch):
    fake_hub.stop()
    # huggingface_hub retries a refused connection with backoff (about 23 s of sleeps).
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with pytest.raises(CheckpointError, match="cannot be reached.*run once online or pass a local"):
        ds2.load_model("org/tiny", device="cpu")


def test_missing_repo_is_a_clear_error(fake_hub):
    with pytest.raises(CheckpointError, match="Hub repo 'org/nothing' not found"):
        ds2.load_model("org/nothing", device="cpu")


def test_missing_revision_is_a_clear_error(fake_hub, weights):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    with pytest.raises(CheckpointError, match="revision 'v9' not found in Hub repo 'org/tiny'"):
        ds2.load_model("org/tiny@v9", device="cpu")


def test_gated_repo_is_a_clear_error(fake_hub, weights):
    fake_hub.add_commit("org/gated", checkpoint_files(weights[0]), gated=True)
    with pytest.raises(CheckpointError, match="gated.*log in"):
        ds2.load_model("org/gated", device="cpu")


def test_repo_without_config_is_not_a_checkpoint(fake_hub):
    fake_hub.add_commit("org/other", {"README.md": b"# not a ds2 model\n"})
    with pytest.raises(CheckpointError, match="has no config.json: it is not a ds2 checkpoint"):
        ds2.load_model("org/other", device="cpu")


def test_server_that_is_not_a_hub_is_a_clear_error(fake_hub, weights):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[0]))
    fake_hub.hub_headers = False
    with pytest.raises(CheckpointError, match="did not answer like a Hugging Face Hub"):
        ds2.load_model("org/tiny", device="cpu")


def test_decoder_files_come_with_the_model(fake_hub, weights, tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "with_lm")
    config = (folder / "config.json").read_text()
    decoder = '"decoder": {"lexicon": "lexicon.txt", "lm": "lm/lm.arpa", "lm_weight": 0.5},'
    (folder / "config.json").write_text(config.replace('"training"', decoder + '\n  "training"'))
    files = checkpoint_files(folder)
    files["lexicon.txt"] = b"hello\th e l l o |\n"
    files["lm/lm.arpa"] = b"\\data\\\n"
    fake_hub.add_commit("org/with-lm", files)

    loaded = ds2.load_model("org/with-lm", device="cpu")
    assert loaded.lexicon_path.read_bytes() == files["lexicon.txt"]
    assert loaded.lm_path.read_bytes() == files["lm/lm.arpa"]
    assert loaded.decoder_defaults == {"lm_weight": 0.5}

    del files["lm/lm.arpa"]
    fake_hub.add_commit("org/lm-missing", files)
    with pytest.raises(CheckpointError, match="names lm file 'lm/lm.arpa', but the repo lacks"):
        ds2.load_model("org/lm-missing", device="cpu")


def test_ds2_model_env_names_a_hub_repo(fake_hub, weights, monkeypatch):
    fake_hub.add_commit("org/tiny", checkpoint_files(weights[1]))
    monkeypatch.setenv("DS2_MODEL", "org/tiny")
    loaded = ds2.load_model(device="cpu")
    assert loaded.name == "org/tiny"
    assert torch.equal(log_probs(loaded), log_probs(ds2.load_folder(weights[1])))


# --------------------------------------------------------------------------------------------
# Names: shipped folders, DEFAULT, DS2_MODELS, DS2_MODEL


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A checkpoints/ folder with models 'beta', 'alpha', 'gamma' and a non-model folder."""
    root = tmp_path / "checkpoints"
    for seed, name in enumerate(["beta", "alpha", "gamma"]):
        make_tiny_checkpoint(root / name, seed=seed)
    (root / "notes").mkdir()
    (root / "notes" / "README.md").write_text("not a model\n")
    monkeypatch.setattr(hub, "CHECKPOINTS_DIR", root)
    monkeypatch.delenv("DS2_MODEL", raising=False)
    monkeypatch.delenv("DS2_MODELS", raising=False)
    return root


def test_available_models_alphabetical_without_default(shipped):
    assert ds2.available_models() == ["alpha", "beta", "gamma"]


def test_available_models_default_first_then_env_repos(shipped, monkeypatch):
    (shipped / "DEFAULT").write_text("# the model the app opens with\ngamma\n")
    monkeypatch.setenv("DS2_MODELS", "org/a, org/b@v2,,alpha")
    assert ds2.available_models() == ["gamma", "alpha", "beta", "org/a", "org/b@v2"]


def test_default_naming_nothing_is_ignored_with_a_warning(shipped):
    (shipped / "DEFAULT").write_text("no such model\n")
    with pytest.warns(UserWarning, match="ignoring it"):
        assert ds2.available_models() == ["alpha", "beta", "gamma"]


def test_load_model_by_name_default_and_env(shipped, monkeypatch):
    expect = {n: log_probs(ds2.load_folder(shipped / n)) for n in ("alpha", "beta", "gamma")}

    loaded = ds2.load_model("beta", device="cpu")
    assert loaded.name == "beta" and loaded.folder == shipped / "beta"
    assert torch.equal(log_probs(loaded), expect["beta"])

    (shipped / "DEFAULT").write_text("gamma\n")
    assert torch.equal(log_probs(ds2.load_model(device="cpu")), expect["gamma"])

    monkeypatch.setenv("DS2_MODEL", "alpha")
    assert torch.equal(log_probs(ds2.load_model(device="cpu")), expect["alpha"])

    monkeypatch.setenv("DS2_MODEL", str(shipped / "beta"))
    assert torch.equal(log_probs(ds2.load_model(device="cpu")), expect["beta"])
    # An explicit spec wins over DS2_MODEL.
    assert torch.equal(log_probs(ds2.load_model("gamma", device="cpu")), expect["gamma"])


def test_load_model_from_paths(shipped):
    expect = log_probs(ds2.load_folder(shipped / "alpha"))
    assert torch.equal(log_probs(ds2.load_model(shipped / "alpha", device="cpu")), expect)
    assert torch.equal(log_probs(ds2.load_model(str(shipped / "alpha"), device="cpu")), expect)
    # A file of a checkpoint stands for its folder.
    config = shipped / "alpha" / "config.json"
    assert torch.equal(log_probs(ds2.load_model(config, device="cpu")), expect)

    with pytest.raises(CheckpointError, match="is not a ds2 checkpoint: it has no config.json"):
        ds2.load_model(shipped / "notes", device="cpu")
    with pytest.raises(CheckpointError, match="is a file"):
        ds2.load_model(shipped / "notes" / "README.md", device="cpu")


def test_unknown_name_lists_the_choices(shipped):
    with pytest.raises(CheckpointError, match=r"cannot find model 'nope'.*alpha, beta, gamma"):
        ds2.load_model("nope", device="cpu")


def test_no_model_anywhere_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "CHECKPOINTS_DIR", tmp_path / "empty")
    monkeypatch.delenv("DS2_MODEL", raising=False)
    monkeypatch.delenv("DS2_MODELS", raising=False)
    assert ds2.available_models() == []
    with pytest.raises(CheckpointError, match="set DS2_MODEL"):
        ds2.load_model(device="cpu")


def test_repo_spec_parsing():
    assert hub._parse_repo_spec("org/name") == ("org/name", None)
    assert hub._parse_repo_spec("org/name@v1.0") == ("org/name", "v1.0")
    assert hub._parse_repo_spec("org/name@refs/pr/3") == ("org/name", "refs/pr/3")
    for bad in ("name", "org/name@", "a/b/c", "/abs/path", "./x", "org/../x", "org/x.git"):
        assert hub._parse_repo_spec(bad) is None, bad


# --------------------------------------------------------------------------------------------
# Devices


def test_resolve_device_cpu_and_auto(monkeypatch):
    assert hub.resolve_device("cpu") == torch.device("cpu")
    assert hub.resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hub.resolve_device("auto") == torch.device("cpu")
    assert hub.resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hub.resolve_device("auto") == torch.device("cuda")


def test_resolve_device_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for spec in ("cuda", "cuda:1", "CUDA"):
        with pytest.raises(DS2Error, match="no CUDA GPU is available"):
            hub.resolve_device(spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert hub.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DS2Error, match=r"only 1 CUDA device"):
        hub.resolve_device("cuda:1")


def test_resolve_device_rejects_nonsense():
    for spec in ("gpu", "banana", "cuda:x"):
        with pytest.raises(DS2Error, match="device"):
            hub.resolve_device(spec)


def test_load_model_on_an_unavailable_device_fails_before_loading(shipped, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DS2Error, match="no CUDA GPU"):
        ds2.load_model("alpha", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_load_model_on_cuda(shipped):
    loaded = ds2.load_model("alpha", device="auto")
    assert loaded.device.type == "cuda"
    feats = torch.randn(1, 201, 60, device="cuda")
    with torch.no_grad():
        out, lengths = loaded.model(feats, torch.tensor([60]))
    assert out.device.type == "cuda" and out.shape[1] == int(lengths[0])
