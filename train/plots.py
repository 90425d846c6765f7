"""Loss curves of a training run, drawn from ``EXP/log.jsonl``.

    python -m train.plots exp/ds2_small          # writes exp/ds2_small/loss.png

Left panel: train loss (raw and smoothed) and valid loss per step, in nats per character (the
CTC loss the trainer optimises). Right panel: valid greedy CER and WER (%).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ds2.checkpoint import is_number


def read_log(path: str | os.PathLike, upto: int | None = None) -> list[dict]:
    """Events of a ``log.jsonl`` (up to step ``upto``, when given: what a crashed run logged past
    a checkpoint is not that checkpoint's); a half-written last line (a run killed mid-write) is
    skipped."""
    events = []
    path = Path(path)
    if not path.is_file():
        return events
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if upto is None or event.get("step", 0) <= upto:
            events.append(event)
    return events


def audio_hours_seen(events: list[dict]) -> float | None:
    """Hours of training audio the run has been through, estimated from its ``train`` events.

    Each event logs the throughput of the steps since the one before (``audio_s_per_s``, all ranks
    together) and the cumulative training time, so their product summed over events is the audio
    seen; resumes are seamless because ``elapsed`` carries over. The steps after the last
    ``train`` event are not counted, so it runs short by up to ``log_every`` steps (the trainer's
    own count, ``audio_seconds`` in its state, is exact). None when no event has both.
    """
    total, prev, seen = 0.0, 0.0, False
    for e in events:
        if e.get("event") != "train" or "elapsed" not in e or "audio_s_per_s" not in e:
            continue
        total += e["audio_s_per_s"] * max(0.0, e["elapsed"] - prev)
        prev, seen = e["elapsed"], True
    return total / 3600 if seen else None


def peak_lr(events: list[dict]) -> float | None:
    """The highest learning rate the run's ``train`` events logged; None when none logged one."""
    lrs = [e.get("lr") for e in events if e.get("event") == "train"]
    lrs = [lr for lr in lrs if is_number(lr)]
    return max(lrs) if lrs else None


def _smooth(values: list[float]) -> list[float]:
    """Centred moving average over ~1/15 of the run (no lag, unlike an EMA), edges shrunk."""
    half = len(values) // 30
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(sum(window) / len(window))
    return out


def plot_losses(log_path: str | os.PathLike, out_path: str | os.PathLike) -> Path | None:
    """Draw the curves of ``log_path`` into the PNG ``out_path`` (atomically). None if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = read_log(log_path)
    train = [e for e in events if e.get("event") == "train" and "loss" in e]
    valid = [e for e in events if e.get("event") == "valid" and "loss" in e]
    if not train and not valid:
        return None
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    if train:
        steps = [e["step"] for e in train]
        losses = [e["loss"] for e in train]
        ax_loss.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax_loss.plot(steps, _smooth(losses), color="tab:blue", label="train (smoothed)")
    if valid:
        ax_loss.plot(
            [e["step"] for e in valid],
            [e["loss"] for e in valid],
            "o-",
            color="tab:orange",
            label="valid",
        )
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("CTC loss (nats / character)")
    ax_loss.set_yscale("log")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend()
    ax_loss.set_title("loss")
    if valid:
        vs = [e["step"] for e in valid]
        ax_err.plot(vs, [100 * e["cer"] for e in valid], "o-", color="tab:green", label="CER")
        ax_err.plot(vs, [100 * e["wer"] for e in valid], "s--", color="tab:red", label="WER")
        best = min(valid, key=lambda e: e["cer"])
        ax_err.annotate(
            f"best CER {100 * best['cer']:.1f}%",
            (best["step"], 100 * best["cer"]),
            textcoords="offset points",
            xytext=(0, 10),
            ha="center",
        )
        ax_err.legend()
    else:
        ax_err.text(
            0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax_err.transAxes
        )
    ax_err.set_xlabel("step")
    ax_err.set_ylabel("error rate (%), greedy decoding")
    ax_err.set_ylim(bottom=0)
    ax_err.grid(True, alpha=0.3)
    ax_err.set_title("validation")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out_path)
    return out_path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description="Plot the loss curves of a training run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("exp", type=Path, help="experiment folder holding log.jsonl")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default: EXP/loss.png)")
    args = p.parse_args(argv)
    out = plot_losses(args.exp / "log.jsonl", args.out or args.exp / "loss.png")
    print(out if out else f"nothing to plot in {args.exp / 'log.jsonl'}")


if __name__ == "__main__":
    main()
