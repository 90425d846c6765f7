"""Training checkpoints: a ds2 model folder plus everything needed to resume, without pickles.

A training checkpoint is a folder::

    config.json                  ds2 checkpoint config (model, features, vocab, "training" metadata)
    model.safetensors            weights: ``ds2.load_folder`` reads the folder as a plain model
    trainer_state.json           step, epoch, sampler position, elapsed time, best CER, the recipe,
                                 optimizer param groups, non-tensor RNG state
    trainer_state.safetensors    optimizer state tensors and RNG states, flattened

Folders are written atomically: into a hidden temporary folder next to the target, then renamed
into place. Replacing an existing folder takes two renames (old out of the way, new in); if a
crash falls between them, :func:`resolve_resume_folder` finds the previous checkpoint under its
``.old-`` name, so at every instant one complete checkpoint exists.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ds2.checkpoint import (
    CONFIG_NAME,
    atomic_write_bytes,
    fine_tuned_from,
    read_config,
    save_pretrained,
    training_stages,
)
from ds2.errors import CheckpointError

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Optimizer and RNG state <-> (tensors, JSON)


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors and JSON-able metadata.

    Tensors go to ``"optim/<param index>/<name>"``; every other value, and the param groups,
    go to the metadata.
    """
    tensors, scalars = {}, {}
    for pid, pstate in state_dict["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim/{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`flatten_optimizer`: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if not key.startswith("optim/"):
            continue
        _, pid, name = key.split("/", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Torch (CPU and CUDA), numpy (legacy global) and Python RNG states as (tensors, JSON)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, pstate, pgauss = random.getstate()
    tensors["rng/python"] = torch.tensor(pstate, dtype=torch.int64)
    meta = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [version, pgauss],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state(
        (kind, tensors["rng/numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss)
    )
    version, pgauss = meta["python"]
    random.setstate((version, tuple(int(x) for x in tensors["rng/python"].tolist()), pgauss))


# ---------------------------------------------------------------------------------------------
# Folders


def _fsync_folder(folder: Path) -> None:
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def _make_tmp(target: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    tmp.chmod(0o755)  # mkdtemp's 0700 would make the published checkpoint private
    return tmp


def _publish_permissions(folder: Path) -> None:
    for f in folder.iterdir():
        f.chmod(0o644)


def atomic_replace_folder(tmp: Path, target: Path) -> None:
    """Move the complete folder ``tmp`` to ``target``, replacing whatever was there."""
    old = target.with_name(f".old-{target.name}")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(
    target: str | os.PathLike,
    model,
    feature_cfg,
    vocab,
    *,
    training: dict,
    trainer_state: dict | None = None,
    optimizer=None,
    copies: list[str | os.PathLike] = (),
) -> Path:
    """Write a checkpoint folder atomically to ``target`` and to each of ``copies``.

    ``trainer_state`` (JSON-able) and ``optimizer`` are omitted for a model-only folder (e.g. the
    best-CER model); RNG states are saved with the trainer state.
    """
    from safetensors.torch import save_file

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_tmp(target)
    try:
        save_pretrained(tmp, model, feature_cfg, vocab, training=training)
        if trainer_state is not None:
            tensors, rng_meta = rng_state()
            meta = {"version": STATE_VERSION, **trainer_state, "rng": rng_meta}
            if optimizer is not None:
                opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
                tensors.update(opt_tensors)
                meta["optimizer"] = opt_meta
            save_file(tensors, str(tmp / STATE_TENSORS))
            (tmp / STATE_JSON).write_text(json.dumps(meta, indent=2) + "\n")
        _publish_permissions(tmp)
        _fsync_folder(tmp)
        for extra in copies:
            extra = Path(extra)
            extra_tmp = _make_tmp(extra)
            shutil.copytree(tmp, extra_tmp, dirs_exist_ok=True)
            atomic_replace_folder(extra_tmp, extra)
        atomic_replace_folder(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_resume_folder(folder: str | os.PathLike) -> Path | None:
    """``folder`` if it holds a complete training checkpoint, else its ``.old-`` twin, else None."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(f".old-{folder.name}")):
        if (cand / STATE_JSON).is_file() and (cand / STATE_TENSORS).is_file():
            return cand
    return None


def load_trainer_state(folder: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON metadata, tensors) of a training checkpoint folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / STATE_JSON).read_text())
        tensors = load_file(str(folder / STATE_TENSORS))
    except FileNotFoundError:
        raise CheckpointError(
            f"'{folder}' is not a training checkpoint (no {STATE_JSON})"
        ) from None
    except (json.JSONDecodeError, SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"training state in '{folder}' is corrupt: {e}") from None
    if meta.get("version", 0) > STATE_VERSION:
        raise CheckpointError(
            f"'{folder}' was written by a newer trainer (state v{meta['version']})"
        )
    return meta, tensors


def compact_optimizer_state(folder: str | os.PathLike, dtype=torch.bfloat16) -> int:
    """Store the optimizer moments of a training checkpoint in ``dtype``, in place; bytes saved.

    For a resume point kept in git: AdamW's two fp32 moments are twice the weights, and bf16
    (fp32's exponent range, 8 bits of mantissa) halves them at a ~0.4 % relative error in the
    moment estimates. ``optimizer.load_state_dict`` casts them back to the parameters' dtype,
    so the trainer resumes from such a folder unchanged, though no longer bit for bit.
    """
    from safetensors.torch import save

    folder = Path(folder)
    meta, tensors = load_trainer_state(folder)
    path = folder / STATE_TENSORS
    before = path.stat().st_size
    for key, value in tensors.items():
        if key.startswith("optim/") and not key.endswith("/step") and value.is_floating_point():
            tensors[key] = value.to(dtype)
    atomic_write_bytes(path, save(tensors))
    meta["optimizer_moments_dtype"] = str(dtype).removeprefix("torch.")
    atomic_write_bytes(folder / STATE_JSON, (json.dumps(meta, indent=2) + "\n").encode())
    return before - path.stat().st_size


def prune_step_folders(folder: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``step-N`` folders in ``folder``; returns the deleted."""
    steps = []
    for p in Path(folder).iterdir():
        m = re.fullmatch(r"step-(\d+)", p.name)
        if m and p.is_dir():
            steps.append((int(m.group(1)), p))
    steps.sort()
    doomed = [p for _, p in steps[: max(0, len(steps) - keep)]]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Shrink a training checkpoint for keeping in git: optimizer moments to bf16."
    )
    p.add_argument("folders", nargs="+", help="training checkpoint folders (changed in place)")
    for folder in p.parse_args(argv).folders:
        saved = compact_optimizer_state(folder)
        size = (Path(folder) / STATE_TENSORS).stat().st_size
        print(f"{folder}: optimizer moments in bf16, {STATE_TENSORS} {size / 2**20:.1f} MiB "
              f"({saved / 2**20:.1f} MiB saved)")  # fmt: skip


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------------------------------------
# Lineage: the runs behind a fine-tune


def lineage(training: dict, _depth: int = 0) -> list[dict]:
    """``ds2.checkpoint.training_stages(training)``, rebuilding a missing ``earlier_stages``.

    Records written before the trainer copied lineages lack ``earlier_stages``; for those, the
    stages are read back through ``init_from`` while it names a local checkpoint folder. Where
    the chain leaves this machine (a Hub spec, a deleted folder), the oldest stage known keeps
    its ``init_from`` and ``training_totals`` reports the history as incomplete.
    """
    spec = fine_tuned_from(training)
    if "earlier_stages" not in training and spec and _depth < 64:
        parent = Path(spec)
        if (parent / CONFIG_NAME).is_file():
            try:
                parent_training = read_config(parent).get("training")
            except CheckpointError:
                parent_training = None
            if isinstance(parent_training, dict):
                training = {**training, "earlier_stages": lineage(parent_training, _depth + 1)}
    return training_stages(training)
