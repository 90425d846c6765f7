"""Find and load models: shipped folders, local folders, and Hugging Face Hub repos.

``load_model`` takes one ``spec`` and works out what it names::

    load_model()                          # $DS2_MODEL, else the default shipped model
    load_model("ds2-small")               # a name from available_models()
    load_model("runs/exp1/checkpoints/last")  # a checkpoint folder
    load_model("org/ds2-small@v1.0")      # a Hub repo at a branch, tag or commit

Hub files land in the standard Hugging Face cache, so a model fetched once loads offline
(``HF_HUB_OFFLINE=1``) and keeps loading when the Hub is down. All files of one load come from
one commit: ``config.json`` is fetched first, its commit is read from the cache path, and every
other file is fetched at that commit, so a push that lands mid-download cannot pair one commit's
config with another's weights. ``LoadedModel.folder`` is then the snapshot folder, whose name is
that commit hash.

``HF_ENDPOINT``, ``HF_HUB_CACHE`` / ``HF_HOME`` and ``HF_HUB_OFFLINE`` are read on every call, not
once at import: apps (gradio among them) import huggingface_hub long before their code sets these.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, LoadedModel, load_folder, read_config
from .errors import CheckpointError, DS2Error

# Shipped checkpoints live beside the package in a source checkout (and in the Space).
CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_FILE = "DEFAULT"  # checkpoints/DEFAULT: one line naming the default model

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}


# --------------------------------------------------------------------------------------------
# Devices


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` into a usable torch.device.

    ``"auto"`` (or None) is CUDA when a GPU is visible, else the CPU. Asking for a device that
    is not there raises :class:`DS2Error` rather than failing later inside the model.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise DS2Error(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DS2Error(
                f"device {device!r} was requested but no CUDA GPU is available "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                "use device='cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DS2Error(
                f"device {device!r} was requested but only {count} CUDA device(s) exist "
                f"(cuda:0..cuda:{count - 1})"
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DS2Error(f"device {device!r} was requested but MPS is not available")
    elif dev.type != "cpu":
        raise DS2Error(f"unsupported device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return dev


# --------------------------------------------------------------------------------------------
# Names


def _shipped_folders() -> dict[str, Path]:
    root = Path(CHECKPOINTS_DIR)
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / CONFIG_NAME).is_file()}


def _default_name() -> str | None:
    path = Path(CHECKPOINTS_DIR) / DEFAULT_FILE
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _env_repo_ids() -> list[str]:
    return [s.strip() for s in os.environ.get("DS2_MODELS", "").split(",") if s.strip()]


def available_models() -> list[str]:
    """Names :func:`load_model` accepts besides paths: shipped folders, then ``$DS2_MODELS``.

    Shipped models are the subfolders of ``checkpoints/`` that hold a ``config.json``, default
    first (``checkpoints/DEFAULT`` names it), the rest alphabetically. Hub repo ids listed in
    ``$DS2_MODELS`` (comma-separated, ``org/name[@rev]``) follow.
    """
    shipped = list(_shipped_folders())
    default = _default_name()
    names = []
    if default is not None:
        if default in shipped or _parse_repo_spec(default) is not None:
            names.append(default)
        else:
            warnings.warn(
                f"{Path(CHECKPOINTS_DIR) / DEFAULT_FILE} names {default!r}, which is neither a "
                "folder there nor a Hub repo id; ignoring it",
                stacklevel=2,
            )
    names += [n for n in shipped if n not in names]
    names += [r for r in _env_repo_ids() if r not in names]
    return names


def _parse_repo_spec(spec: str) -> tuple[str, str | None] | None:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; None when ``spec`` is not a repo id."""
    repo_id, _, revision = spec.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        return None
    if "@" in spec and not revision:
        return None
    return repo_id, (revision or None)


# --------------------------------------------------------------------------------------------
# Loading


def load_model(spec: str | os.PathLike | None = None, device="auto") -> LoadedModel:
    """Load a model by folder, shipped name or Hub repo id.

    Parameters
    ----------
    spec : str | os.PathLike | None
        A checkpoint folder; a name from :func:`available_models`; a Hub repo id
        ``org/name`` with an optional ``@revision`` (branch, tag or commit); or None for
        ``$DS2_MODEL``, else the first of :func:`available_models`.
    device : str | torch.device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Returns
    -------
    LoadedModel
        In eval mode on ``device``. Each call builds a new model: callers may move or train it.

    Raises
    ------
    CheckpointError
        The spec names nothing loadable, the download failed and nothing is cached, or the
        checkpoint is corrupt. The message says what to do.
    DS2Error
        The device is not available.
    """
    dev = resolve_device(device)
    if spec is None:
        spec = os.environ.get("DS2_MODEL", "").strip() or None
    if spec is None:
        names = available_models()
        if not names:
            raise CheckpointError(
                f"no model given and none is shipped in {CHECKPOINTS_DIR}: pass a checkpoint "
                "folder or a Hub repo id (org/name), or set DS2_MODEL"
            )
        spec = names[0]

    if isinstance(spec, os.PathLike):
        return _load_local(Path(spec), dev)
    spec = str(spec).strip()
    if not spec:
        raise CheckpointError("the model name is empty: pass a folder, a name or org/name")
    path = Path(spec).expanduser()
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        return _load_local(path, dev)
    shipped = _shipped_folders()
    if spec in shipped:
        return load_folder(shipped[spec], device=dev, name=spec)
    if path.exists():
        return _load_local(path, dev)  # a folder without config.json, or a file: explains itself
    parsed = _parse_repo_spec(spec)
    if parsed is not None:
        return _load_from_hub(*parsed, spec=spec, device=dev)
    known = ", ".join(available_models()) or "none"
    raise CheckpointError(
        f"cannot find model {spec!r}: it is not a folder, not a shipped model ({known}), and "
        "not a Hub repo id (org/name or org/name@revision)"
    )


def _load_local(path: Path, device: torch.device) -> LoadedModel:
    if path.is_file() and path.name in (CONFIG_NAME, WEIGHTS_NAME):
        path = path.parent  # a file of a checkpoint stands for its folder
    elif path.is_file():
        raise CheckpointError(
            f"'{path}' is a file; a ds2 model is a folder holding {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    return load_folder(path, device=device)


def _offline() -> bool:
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or bool(
        constants.HF_HUB_OFFLINE
    )


def _cache_dir() -> str | None:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None  # huggingface_hub's own default


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or None


def _safe_relative(name: str, repo: str, key: str) -> str:
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith("/") or ".." in parts or ":" in parts[0]:
        raise CheckpointError(
            f"{repo}: config.json names {key} file {name!r}, which is not a path inside the repo"
        )
    return "/".join(p for p in parts if p not in ("", "."))


def _load_from_hub(
    repo_id: str, revision: str | None, *, spec: str, device: torch.device
) -> LoadedModel:
    where = f"{repo_id}@{revision}" if revision else repo_id
    offline = _offline()
    config_path = Path(_download(repo_id, CONFIG_NAME, revision, spec=spec, offline=offline))
    snapshot = config_path.parent
    commit = snapshot.name
    if not _COMMIT.match(commit):  # the cache layout changed under us: fall back to the revision
        commit = revision
    cfg = read_config(snapshot)  # a non-ds2 repo fails here, before downloading its weights
    _download(repo_id, WEIGHTS_NAME, commit, spec=spec, offline=offline)
    decoder = cfg.get("decoder") or {}
    if isinstance(decoder, dict):
        for key in ("lexicon", "lm"):
            if decoder.get(key):
                rel = _safe_relative(str(decoder[key]), where, key)
                _download(repo_id, rel, commit, spec=spec, offline=offline, named_by=key)
    return load_folder(snapshot, device=device, name=spec)


def _download(
    repo_id: str,
    filename: str,
    revision: str | None,
    *,
    spec: str,
    offline: bool,
    named_by: str | None = None,
) -> str:
    """hf_hub_download with every failure turned into a CheckpointError that says what to do."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    where = f"{repo_id}@{revision}" if revision else repo_id
    shown = spec if "@" in spec else where  # the user's revision, not the commit we pinned
    try:
        return hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=_cache_dir(),
            endpoint=_endpoint(),
            local_files_only=offline,
            library_name="ds2",
        )
    except hf_errors.GatedRepoError:
        raise CheckpointError(
            f"Hub repo '{repo_id}' is gated: accept its conditions on its page on the Hub, then "
            "log in (`hf auth login`, or set HF_TOKEN)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        also = f" and there is no local folder '{spec}'" if "@" not in spec else ""
        raise CheckpointError(
            f"Hub repo '{repo_id}' not found{also}: check the name; if the repo is private, "
            "log in (`hf auth login`, or set HF_TOKEN)"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise CheckpointError(
            f"revision '{revision}' not found in Hub repo '{repo_id}': use a branch, tag or "
            "commit hash that exists in the repo"
        ) from None
    except hf_errors.RemoteEntryNotFoundError:
        if named_by:
            msg = f"config.json of '{shown}' names {named_by} file '{filename}', "
            msg += "but the repo lacks it"
        else:
            msg = f"Hub repo '{shown}' has no {filename}: it is not a ds2 checkpoint"
        raise CheckpointError(msg) from None
    except hf_errors.LocalEntryNotFoundError as e:
        cache = _cache_dir() or "the Hugging Face cache"
        if offline:
            why = "offline mode is on (HF_HUB_OFFLINE)"
        elif isinstance(e.__cause__, hf_errors.FileMetadataError):
            why = f"{_endpoint() or 'the Hub'} did not answer like a Hugging Face Hub"
        else:
            why = "the Hub cannot be reached"
        raise CheckpointError(
            f"cannot load '{shown}': {why} and {filename} is not in {cache}; run once online "
            "or pass a local folder"
        ) from None
    except hf_errors.HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        hint = "log in (`hf auth login`, or set HF_TOKEN)" if status in (401, 403) else "try again"
        raise CheckpointError(
            f"the Hub refused {filename} of '{shown}' (HTTP {status}) and it is not cached: {hint}"
        ) from None
    except hf_errors.HFValidationError as e:
        raise CheckpointError(f"'{spec}' is not a valid Hub repo id or revision: {e}") from None
    except (OSError, ValueError) as e:
        # Network drops mid-download, size mismatches, a full disk, a read-only cache.
        raise CheckpointError(
            f"downloading {filename} of '{shown}' failed: {e}; try again, or pass a local folder"
        ) from None
    except Exception as e:
        # httpx errors (proxy, TLS, protocol) share no base class with the above; anything else
        # from huggingface_hub is still a failed download to the user. The cause stays chained.
        raise CheckpointError(
            f"downloading {filename} of '{shown}' failed ({type(e).__name__}: {e}); check "
            "your network or proxy settings, or pass a local folder"
        ) from e
