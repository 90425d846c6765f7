"""Average the weights of several checkpoints of one run (icefall's ``--avg``).

    python -m train.average --exp exp/ds2_small_synth --last 4 --out exp/avg
    python -m train.average exp/x/checkpoints/step-2500 exp/x/checkpoints/step-2750 --out exp/avg
    python -m train.average exp/a/avg exp/b/avg --mixed --weights 2 1 --out exp/soup

At a high learning rate the weights wander around a good region; their mean often decodes
better than any one of them, much as a learning-rate decay would, at no training cost. The
output is a model folder (``config.json`` + ``model.safetensors``) that ``train.evaluate`` and
``train.export`` take like any checkpoint; its ``config.json`` records which steps went in
(``training.averaged_steps``). No optimizer state is written: the average is for inference.
Checkpoints of several runs are refused unless ``--mixed`` is given, since the record kept is
the newest checkpoint's; with it, each source is listed in ``training.averaged_from``.
``--weights`` takes a weighted mean (one relative weight per folder, in the order given), recorded
in ``training.averaged_weights``.

A shipped model folder (``train.export``'s fp16 or 6/7-bit weights) is read as the float32
weights it stands for, so the mean of one such folder is its float32 copy, the start a new
round's soup needs on a machine that has only the shipped folder::

    python -m train.average checkpoints/ds2-large-synth --out exp/ds2_large_soup21/avg

The output names no LM (``decoder`` is dropped: its files are not copied along).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from ds2.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_write_bytes,
    dequantize_weights,
    read_config,
    safetensors_bytes,
)
from ds2.errors import CheckpointError, DS2Error


def _step(folder: Path, cfg: dict | None = None) -> int:
    """The training step of checkpoint ``folder`` (``cfg``: its config.json, if already read)."""
    steps = (cfg if cfg is not None else read_config(folder)).get("training", {}).get("steps")
    if isinstance(steps, int):
        return steps
    m = re.fullmatch(r"step-(\d+)", folder.name)
    if m is None:
        raise CheckpointError(f"cannot tell which step '{folder}' is (no training.steps)")
    return int(m.group(1))


def newest_checkpoints(exp: str | Path, n: int) -> list[Path]:
    """The ``n`` newest distinct steps among ``EXP/checkpoints/{step-*,last}``, oldest first."""
    root = Path(exp) / "checkpoints"
    cands = [p for p in root.glob("step-*") if (p / WEIGHTS_NAME).is_file()]
    if (root / "last" / WEIGHTS_NAME).is_file():
        cands.append(root / "last")
    by_step: dict[int, Path] = {}
    for p in cands:
        by_step.setdefault(_step(p), p)  # a step-N folder and `last` at the same step: one vote
    if len(by_step) < n:
        raise CheckpointError(
            f"{root} has {len(by_step)} distinct checkpoints, fewer than --last {n}; "
            "train with a smaller --save-every-steps to keep more"
        )
    return [by_step[s] for s in sorted(by_step)[-n:]]


def _run_of(cfg: dict) -> tuple:
    """What tells runs apart: the seed and the starting model (both fixed over resumes)."""
    training = cfg.get("training", {})
    settings = training.get("config", {})
    return settings.get("seed"), (training.get("init_from") or {}).get("spec")


def average_checkpoints(
    folders: list[Path], out: str | Path, mixed: bool = False, weights=None
) -> Path:
    """Write the mean of ``folders``' weights to ``out``; the newest folder's config is kept.

    ``weights`` (one positive number per folder, in the same order; normalized to sum to 1)
    makes it a weighted mean.

    The checkpoints must come from one run, as the kept config describes only the newest one's:
    ``mixed=True`` averages several runs anyway and lists each source (folder, step, seed,
    starting model) under ``training.averaged_from``."""
    from safetensors.torch import load_file

    if not folders:
        raise CheckpointError("nothing to average")
    if weights is None:
        weights = [1.0] * len(folders)
    weights = [float(w) for w in weights]
    if len(weights) != len(folders) or not all(w > 0 for w in weights):
        raise DS2Error(
            f"--weights needs one positive number per checkpoint ({len(folders)}), got {weights}"
        )
    runs = []  # (stages recorded, step, folder, its config.json, weight), each config read once
    for f, w in zip(map(Path, folders), weights):
        cfg = read_config(f)
        runs.append(
            (len(cfg.get("training", {}).get("earlier_stages") or []), _step(f, cfg), f, cfg, w)
        )
    # Newest last: a run started from another's weights records that run among its earlier
    # stages, so across runs the one with more stages is the later, whatever its step count;
    # within a run, the higher step.
    runs.sort(key=lambda r: r[:2])
    _, steps, folders, configs, weights = (list(x) for x in zip(*runs))
    share = [w / sum(weights) for w in weights]
    for f, c in zip(folders[1:], configs[1:]):
        if c["model"] != configs[0]["model"] or c["vocab"] != configs[0]["vocab"]:
            raise CheckpointError(f"'{f}' has another model or vocabulary than '{folders[0]}'")
    runs = [_run_of(c) for c in configs]  # (seed, starting model) of each checkpoint
    runs_seen = set(runs)
    if len(runs_seen) > 1 and not mixed:
        raise CheckpointError(
            f"the checkpoints come from {len(runs_seen)} runs (seed, starting model: "
            f"{', '.join(map(str, sorted(runs_seen, key=str)))}); the average's record would "
            "describe only the newest: pass --mixed to average them anyway"
        )
    total: dict[str, torch.Tensor] = {}
    newest: dict[str, torch.Tensor] = {}
    for f, w in zip(folders, share):
        try:
            state = load_file(str(f / WEIGHTS_NAME))
        except Exception as e:
            raise CheckpointError(f"{f / WEIGHTS_NAME} is unreadable ({e})") from None
        state = dequantize_weights(state)  # a shipped folder: the float32 it stands for
        if total and state.keys() != total.keys():
            raise CheckpointError(f"'{f}' holds other tensors than '{folders[0]}'")
        for k, v in state.items():
            if v.is_floating_point():
                total[k] = total.get(k, 0) + w * v.double()  # float64 sum: no rounding drift
            else:
                total[k] = v
        newest = state
    # Integer buffers (BatchNorm's batch counters) come from the newest checkpoint.
    avg = {
        k: v.to(newest[k].dtype) if newest[k].is_floating_point() else newest[k]
        for k, v in total.items()
    }
    cfg = {k: v for k, v in configs[-1].items() if k != "decoder"}
    cfg["training"] = {
        k: v for k, v in (cfg.get("training") or {}).items() if k != "exported_weights"
    }
    if len(folders) > 1 or "averaged_steps" not in cfg["training"]:
        # the mean of one folder is its float32 copy: an average it copies keeps its own record
        cfg["training"]["averaged_steps"] = steps
    if len(set(share)) > 1:
        cfg["training"]["averaged_weights"] = [round(w, 6) for w in share]
    if len(runs_seen) > 1:
        cfg["training"]["averaged_from"] = [
            {"folder": str(f), "step": s, "seed": seed, "init_from": parent}
            for f, s, (seed, parent) in zip(folders, steps, runs)
        ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / WEIGHTS_NAME, safetensors_bytes(avg, {"format": "pt"}))
    atomic_write_bytes(out / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m train.average",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("checkpoints", nargs="*", help="checkpoint folders to average")
    ap.add_argument("--exp", default=None, help="experiment folder (with --last)")
    ap.add_argument("--last", type=int, default=0, help="average the N newest checkpoints")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument(
        "--mixed",
        action="store_true",
        help="allow checkpoints of several runs (each is listed in training.averaged_from)",
    )
    ap.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=None,
        help="relative weight of each checkpoint, in the order given (default: equal)",
    )
    args = ap.parse_args(argv)
    try:
        if args.checkpoints and args.exp:
            raise DS2Error("give checkpoint folders or --exp/--last, not both")
        if args.exp:
            if args.last < 1:
                raise DS2Error("--exp needs --last N (N >= 1)")
            folders = newest_checkpoints(args.exp, args.last)
        elif args.checkpoints:
            folders = [Path(p) for p in args.checkpoints]
        else:
            raise DS2Error("give checkpoint folders, or --exp and --last")
        out = average_checkpoints(folders, args.out, mixed=args.mixed, weights=args.weights)
    except DS2Error as e:
        raise SystemExit(f"average: error: {e}") from None
    steps = ", ".join(map(str, read_config(out)["training"]["averaged_steps"]))
    if len(folders) == 1:  # a copy, in float32
        print(f"{folders[0]} in float32 (averaged steps {steps}) -> {out}")
    else:
        print(f"averaged {len(folders)} checkpoints (steps {steps}) -> {out}")


if __name__ == "__main__":
    main()
