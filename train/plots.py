"""Loss curves of a training run, drawn from ``EXP/log.jsonl``.

    python -m train.plots exp/ds2_small          # writes exp/ds2_small/loss.png

Left panel: train loss (raw and smoothed) and valid loss per step, in nats per character (the
CTC loss the trainer optimises). Right panel: valid greedy CER and WER (%).

A model trained in stages (each run starting from the one before) gets its whole history in one
figure, the stages' logs end to end in the order given:

    python -m train.plots --history scratch=exp/a/log.jsonl exp/b/log.jsonl --out history.png
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


def _plot_train(ax, steps: list[int], losses: list[float], **kwargs) -> None:
    """The smoothed train loss on ``ax``; a run or stage that logged a single train point (one
    stopped early) gets it marked, since a line through one point draws nothing."""
    ax.plot(steps, _smooth(losses), marker="o" if len(steps) == 1 else None, **kwargs)


def _save(fig, out_path: str | os.PathLike) -> Path:
    """Write ``fig`` to the PNG ``out_path`` atomically (a reader never sees half a file)."""
    import matplotlib.pyplot as plt

    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out_path)
    return out_path


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
        _plot_train(ax_loss, steps, losses, color="tab:blue", label="train (smoothed)")
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
    return _save(fig, out_path)


def _stage_name(spec: str) -> tuple[str, Path]:
    """``NAME=LOG`` or ``LOG`` (named by its file: ``deep2_log.jsonl`` is deep2, ``exp/b/log.jsonl``
    is b)."""
    name, sep, path = spec.partition("=")
    if not sep:
        path = Path(spec)
        name = path.stem.removesuffix("_log") if path.stem != "log" else path.parent.name
    return name, Path(path)


def history_runs(stages: list[tuple[str, str | os.PathLike]]) -> list[tuple]:
    """``(name, first step, train events, valid events, audio hours heard, validation clips)``
    of each stage whose log has a train event, the stages laid end to end: a stage starts where
    the one before it ended (its last logged step). A resumed run logs the steps after its
    checkpoint again; the later record of a step is kept. Validation clips: the size of the
    stage's validation set as its last ``data`` event gives it (None if none does)."""
    runs = []
    offset = 0
    for name, log in stages:
        events = read_log(log)
        train = [e for e in events if e.get("event") == "train" and "loss" in e]
        valid = [e for e in events if e.get("event") == "valid" and "cer" in e]
        if not train:
            continue
        train = sorted({e["step"]: e for e in train}.values(), key=lambda e: e["step"])
        valid = sorted({e["step"]: e for e in valid}.values(), key=lambda e: e["step"])
        sizes = [e.get("valid_utterances") for e in events if e.get("event") == "data"]
        clips = next((n for n in reversed(sizes) if n is not None), None)
        runs.append((name, offset, train, valid, audio_hours_seen(events), clips))
        offset += _last_step(train, valid)
    return runs


VALID_MARKERS = "os^Dv<>p*h"


def valid_markers(runs: list[tuple]) -> dict:
    """A marker for each validation set size among the stages that validated, in order of first
    use: stages validated on differently sized sets are told apart in the figure's legend."""
    sizes: dict = {}
    for *_, valid, _hours, clips in runs:
        if valid and clips not in sizes:
            sizes[clips] = VALID_MARKERS[len(sizes) % len(VALID_MARKERS)]
    return sizes


def _last_step(train: list[dict], valid: list[dict]) -> int:
    """The last step a stage logged, where the next stage starts."""
    return max(e["step"] for e in train + valid)


def plot_history(
    stages: list[tuple[str, str | os.PathLike]], out_path: str | os.PathLike
) -> Path | None:
    """Draw the logs of a model's training ``stages`` (``(name, log.jsonl)``, in training order)
    end to end into the PNG ``out_path`` (atomically), over the steps of all stages together.

    Top: each stage's train loss (smoothed within the stage, a log scale). Bottom: each
    stage's validation CER (%). A stage validates on its own set, so its curve is drawn apart
    from the others'. Stage boundaries are marked and named; None if no log has a train event.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = history_runs(stages)
    if not runs:
        return None
    _, start, train, valid, *_ = runs[-1]
    total_steps = start + _last_step(train, valid)
    markers = valid_markers(runs)
    fig, (ax_loss, ax_cer) = plt.subplots(
        2, 1, figsize=(12, 6.5), sharex=True, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    total_hours = 0.0
    for i, (name, start, train, valid, hours, clips) in enumerate(runs):
        color = colors[i % len(colors)]
        _plot_train(
            ax_loss,
            [start + e["step"] for e in train],
            [e["loss"] for e in train],
            color=color,
            markersize=3,
        )
        if valid:
            ax_cer.plot(
                [start + e["step"] for e in valid],
                [100 * e["cer"] for e in valid],
                "-",
                marker=markers[clips],
                color=color,
                markersize=3,
            )
        for ax in (ax_loss, ax_cer):
            ax.axvline(start, color="0.8", linewidth=0.6, zorder=0)
        ax_loss.annotate(
            name,
            (start, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color=color,
        )
        total_hours += hours or 0.0
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("train loss (nats / char)")
    ax_loss.grid(True, which="both", axis="y", alpha=0.3)
    ax_loss.set_title(
        f"{len(runs)} stages end to end: {total_steps:,} steps, {total_hours:,.1f} h of audio heard"
    )
    ax_cer.set_ylabel("validation CER (%), greedy")
    ax_cer.set_xlabel("step (all stages)")
    ax_cer.set_ylim(bottom=0)
    ax_cer.grid(True, axis="y", alpha=0.3)
    if markers:
        for clips, marker in markers.items():
            what = f"{clips:,} clips" if clips is not None else "a set of unrecorded size"
            label = f"validated on {what}"
            ax_cer.plot([], [], linestyle="", marker=marker, color="0.3", label=label)
        ax_cer.legend(loc="upper right", fontsize=8, title="each stage on its own set")
    return _save(fig, out_path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description="Plot the loss curves of a training run, or of a model's training stages.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("exp", type=Path, nargs="?", help="experiment folder holding log.jsonl")
    p.add_argument(
        "--history",
        nargs="+",
        metavar="[NAME=]LOG",
        help="instead of EXP: the log.jsonl of each training stage, in order, drawn end to end",
    )
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default: EXP/loss.png)")
    args = p.parse_args(argv)
    if args.history:
        if args.exp is not None or args.out is None:
            p.error("--history takes the stages' logs and --out, and no EXP")
        stages = [_stage_name(spec) for spec in args.history]
        missing = [str(log) for _, log in stages if not log.is_file()]
        if missing:
            p.error(f"no such log: {', '.join(missing)}")
        out = plot_history(stages, args.out)
        print(out if out else "nothing to plot: no stage's log has a train event")
        return
    if args.exp is None:
        p.error("give an experiment folder, or --history")
    out = plot_losses(args.exp / "log.jsonl", args.out or args.exp / "loss.png")
    print(out if out else f"nothing to plot in {args.exp / 'log.jsonl'}")


if __name__ == "__main__":
    main()
