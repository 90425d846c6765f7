"""How a model reads each voice of a test set played higher and faster, or lower and slower.

    python -m train.warp_probe --model checkpoints/ds2-large-synth \\
        --manifest data/synth/test_unseen_voice.jsonl --cents=-150,0,150,300 --out exp/warp

Each clip is resampled by ``2 ** (cents / 1200)``, like a tape played faster or slower: tempo,
pitch and formants move together, as in the corpus's pseudo-talkers and in training's speed
changes. The network reads every version; greedy CER is then given per voice (the manifest's
``speaker``, else its ``engine``) at each shift, and for a per-clip pick of the version the
model is most sure of (:func:`confidence`), which needs no reference.

A voice that reads better raised (positive cents) is one the training data is short of from
below: lower, longer voices are what to add (session 30: flite ``rms``, the unseen voice that
holds most of ``test_unseen_voice``'s errors, read 2.5 CER points better at +300 cents).

``OUT/probe.json`` holds the figures, ``OUT/probe.md`` the table, ``OUT/probe.png`` CER against
the shift per voice.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ds2.checkpoint import LoadedModel
from ds2.errors import DS2Error
from train.augment import speed_perturb
from train.evaluate import _save, error_rates, infer_log_probs, load
from train.manifest import group_key

PICKED = "most confident"


def warp(audio, cents: float):
    """``audio`` (16 kHz) played ``2 ** (cents / 1200)`` times as fast: +1200 cents is an
    octave up in half the time."""
    return speed_perturb(audio, 2 ** (cents / 1200))


def confidence(log_probs: torch.Tensor, blank: int = 0) -> float:
    """How sure the model is of a clip: the mean top log-posterior over the frames whose top
    symbol is not the blank (blank frames are sure almost everywhere and would drown the rest);
    -inf when every frame's top symbol is the blank."""
    top, ids = log_probs.max(dim=-1)
    spoken = ids != blank
    return float(top[spoken].mean()) if bool(spoken.any()) else float("-inf")


def probe(
    model: LoadedModel | str,
    rows: Sequence[dict],
    cents: Sequence[float] = (-150, 0, 150, 300),
    *,
    batch_seconds: float = 160.0,
) -> dict:
    """Greedy CER per voice of ``rows`` (manifest rows) at each shift in ``cents``.

    Returns ``{"model", "cents", "utterances", "group_by", "groups": {voice: {"utterances",
    "cer": {shift: cer}, "picked": cer, "picked_shifts": {shift: count}}}}``, with an ``"all"``
    group over every row; shifts are keys like ``"+150"``.
    """
    from ds2.decoding import greedy_decode

    model = load(model)
    rows = list(rows)
    if not rows:
        raise DS2Error("the probe has no utterances")
    cents = list(dict.fromkeys(float(c) for c in cents))
    if not cents:
        raise DS2Error("no shifts to probe (--cents)")
    refs = [r["text"] for r in rows]
    key = group_key(rows)
    groups = {"all": list(range(len(rows)))}
    if key:
        for i, r in enumerate(rows):
            groups.setdefault(str(r[key]), []).append(i)
    hyps, conf = {}, {}
    for c in cents:
        name = _shift(c)
        lps = infer_log_probs(
            model,
            rows,
            batch_seconds=batch_seconds,
            desc=f"{name} cents",
            transform=lambda a, c=c: warp(a, c),  # at 0 cents a plain copy
        )
        hyps[name] = [greedy_decode(lp, model.vocab).text for lp in lps]
        conf[name] = [confidence(lp, model.vocab.blank_id) for lp in lps]
    names = list(hyps)
    pick = [max(names, key=lambda n: conf[n][i]) for i in range(len(rows))]
    out = {}
    for g, idx in groups.items():
        sub = [refs[i] for i in idx]
        out[g] = {
            "utterances": len(idx),
            "cer": {n: error_rates(sub, [hyps[n][i] for i in idx])["cer"] for n in names},
            "picked": error_rates(sub, [hyps[pick[i]][i] for i in idx])["cer"],
            "picked_shifts": {n: sum(pick[i] == n for i in idx) for n in names},
        }
    return {
        "model": model.name,
        "cents": names,
        "utterances": len(rows),
        "group_by": key,
        "groups": out,
    }


def _shift(c: float) -> str:
    return f"{c:+g}" if c else "0"


def markdown(result: dict) -> str:
    """The probe as a table: greedy CER % per voice and shift, worst voice (as heard) first."""
    names = result["cents"]
    head = ["voice", "clips", *(f"{n} cents" for n in names), PICKED]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    as_is = "0" if "0" in names else names[0]
    groups = sorted(result["groups"].items(), key=lambda kv: (kv[0] != "all", -kv[1]["cer"][as_is]))
    for g, v in groups:
        cells = [f"{100 * v['cer'][n]:.2f}" for n in names] + [f"{100 * v['picked']:.2f}"]
        lines.append(f"| {g} | {v['utterances']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str | os.PathLike) -> Path:
    """Greedy CER against the shift, one line per voice (and a thick one for all clips)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["cents"]
    xs = [float(n) for n in names]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for g, v in result["groups"].items():
        ys = [100 * v["cer"][n] for n in names]
        if g == "all":
            ax.plot(xs, ys, "k-o", lw=2.5, label="all clips", zorder=3)
        else:
            ax.plot(xs, ys, "-o", lw=1, ms=3, alpha=0.8, label=g)
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("played higher and faster by (cents; 1200 = an octave, twice as fast)")
    ax.set_ylabel("greedy CER (%)")
    ax.set_title(f"{result['model']}: CER per voice, shifted")
    if len(result["groups"]) <= 13:
        ax.legend(fontsize=7, ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path, dpi=120)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m train.warp_probe",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", default=None, help="folder, Hub repo id or shipped name")
    ap.add_argument("--manifest", required=True, help="JSONL manifest of the clips to probe")
    ap.add_argument("--cents", default="-150,0,150,300", help="comma-separated shifts")
    ap.add_argument("--engines", default=None, help="only clips of these engines (comma list)")
    ap.add_argument("--limit", type=int, default=0, help="the first N clips only (0: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="folder for probe.json, probe.md, probe.png")
    args = ap.parse_args(argv)
    from train.manifest import read_manifest

    try:
        cents = [float(c) for c in args.cents.split(",") if c.strip()]
    except ValueError:
        ap.error(f"--cents must be numbers separated by commas, not {args.cents!r}")
    try:
        rows = read_manifest(args.manifest)
        if args.engines:
            wanted = set(args.engines.split(","))
            rows = [r for r in rows if r.get("engine") in wanted]
        if args.limit:
            rows = rows[: args.limit]
        result = probe(load(args.model, device=args.device), rows, cents)
    except DS2Error as e:
        raise SystemExit(f"error: {e}") from None
    table = markdown(result)
    print(table, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "probe.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "probe.md").write_text(table)
        plot(result, out / "probe.png")
        print(f"wrote {out}/probe.json, probe.md, probe.png")


if __name__ == "__main__":
    main()
