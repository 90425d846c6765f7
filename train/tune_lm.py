"""Tune the beam search's LM weight (alpha) and word score (beta) on a validation set.

    python -m train.tune_lm --model exp/export --manifest data/valid.jsonl --lm exp/lm \\
        --out exp/tune --write-config

The network runs once; every (alpha, beta) pair then decodes the cached log-probabilities with
the lexicon + LM beam search and is scored by WER (CER breaks ties). ``--log-probs FILE`` keeps
them in a safetensors file, so tuning another LM on the same model and set skips the network.
A grid (default) or random search over the ranges below; ``OUT/tune.json`` lists every trial,
``OUT/tune.png`` shows the WER over the grid. ``--write-config`` stores the best pair in the
model folder's ``config.json["decoder"]``, which is where ``ds2.transcribe`` and
``train.evaluate`` read it.

Tune on validation text only: tuning on the test set makes its WER optimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ds2.checkpoint import CONFIG_NAME, read_config
from ds2.errors import DecoderError, DS2Error
from ds2.text import normalize_text
from train.evaluate import (
    cached_log_probs,
    error_rates,
    infer_log_probs,
    load,
    make_decoder,
    resolve_lm,
)

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # LM weight: 0 = no LM, > 2 rarely helps
BETAS = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)  # word score: offsets the LM's per-word cost
BEAM_WIDTH = 16  # smaller than for the final evaluation: the ranking of pairs changes little
LIMIT = 400  # validation utterances used; enough for a stable ranking at a few % WER


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def tune(
    model,
    manifest,
    *,
    lm=None,
    lexicon=None,
    alphas=ALPHAS,
    betas=BETAS,
    trials: int | None = None,
    beam_width: int = BEAM_WIDTH,
    limit: int | None = LIMIT,
    device="auto",
    seed: int = 0,
    log_probs_cache: str | os.PathLike | None = None,
) -> dict:
    """Search (lm_weight, word_score) for the lowest WER on ``manifest``.

    model : LoadedModel or a spec for :func:`ds2.load_model`
    manifest : path of a JSONL manifest, or a list of manifest rows
    lm, lexicon : the LM (file or folder) and lexicon; default the model's own
    alphas, betas : the grid; with ``trials`` the search instead draws that many pairs
        uniformly from [min, max] of each range
    limit : use the first ``limit`` utterances (None: all)
    log_probs_cache : safetensors file for the network's output (:func:`cached_log_probs`)

    Returns ``{"best": {"lm_weight", "word_score", "wer", "cer"}, "trials": [...] (best first),
    "greedy": {"wer", "cer"}, ...}``.
    """
    from train.manifest import read_manifest

    loaded = load(model, device)
    lm_path, lexicon_path = resolve_lm(loaded, lm, lexicon)
    if lm_path is None:
        raise DecoderError("nothing to tune: the model ships no LM and --lm was not given")
    rows = list(manifest) if isinstance(manifest, (list, tuple)) else read_manifest(manifest)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise DS2Error("the tuning manifest has no utterances")
    refs = [normalize_text(r["text"]) for r in rows]
    if log_probs_cache:
        log_probs = cached_log_probs(loaded, rows, log_probs_cache, desc="tuning set: inference")
    else:
        log_probs = infer_log_probs(loaded, rows, desc="tuning set: inference")

    if trials:
        rng = random.Random(seed)
        pairs = [
            (
                round(rng.uniform(min(alphas), max(alphas)), 3),
                round(rng.uniform(min(betas), max(betas)), 3),
            )
            for _ in range(trials)
        ]
    else:
        pairs = [(float(a), float(b)) for a in alphas for b in betas]

    greedy = error_rates(refs, make_decoder(loaded, "greedy")(log_probs))
    results = []
    t0 = time.time()
    bar = tqdm(pairs, desc="alpha/beta search", unit="pair")
    for a, b in bar:
        decode = make_decoder(
            loaded,
            "beam_lm",
            beam_width=beam_width,
            lm=lm_path,
            lexicon=lexicon_path,
            lm_weight=a,
            word_score=b,
        )
        s = error_rates(refs, decode(log_probs))
        results.append({"lm_weight": a, "word_score": b, "wer": s["wer"], "cer": s["cer"]})
        best = min(results, key=lambda r: (r["wer"], r["cer"]))
        bar.set_postfix(best=f"{best['wer']:.2%} @ {best['lm_weight']}, {best['word_score']}")
    results.sort(key=lambda r: (r["wer"], r["cer"]))
    return {
        "best": results[0],
        "greedy": {"wer": greedy["wer"], "cer": greedy["cer"]},
        "trials": results,
        "search": "random" if trials else "grid",
        "beam_width": beam_width,
        "utterances": len(rows),
        "lm": str(lm_path),
        "lexicon": str(lexicon_path) if lexicon_path else None,
        "manifest": str(manifest) if not isinstance(manifest, (list, tuple)) else None,
        "seconds": round(time.time() - t0, 1),
    }


def write_decoder_config(folder: str | os.PathLike, lm_weight: float, word_score: float) -> Path:
    """Store tuned weights in ``folder/config.json["decoder"]`` (rewritten atomically)."""
    folder = Path(folder)
    cfg = read_config(folder)
    decoder = cfg.setdefault("decoder", {})
    if not decoder.get("lm"):
        raise DS2Error(
            f"{folder}/config.json names no LM, so tuned weights would not be used; export the "
            "model with --lm first (python -m train.export ... --lm DIR)"
        )
    decoder["lm_weight"] = float(lm_weight)
    decoder["word_score"] = float(word_score)
    path = folder / CONFIG_NAME
    tmp = path.with_name(f".{CONFIG_NAME}.tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(path)
    return path


def plot_grid(result: dict, path: str | os.PathLike) -> Path | None:
    """Heat map of WER (%) over the (alpha, beta) grid, the best pair circled."""
    if result["search"] != "grid":
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = sorted({t["lm_weight"] for t in result["trials"]})
    betas = sorted({t["word_score"] for t in result["trials"]})
    grid = np.full((len(alphas), len(betas)), np.nan)  # (n_alphas, n_betas)
    for t in result["trials"]:
        grid[alphas.index(t["lm_weight"]), betas.index(t["word_score"])] = 100 * t["wer"]
    fig, ax = plt.subplots(
        figsize=(max(4.0, 1.5 + 0.8 * len(betas)), max(3.0, 1.2 + 0.45 * len(alphas)))
    )
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis_r")
    mid = np.nanmean([np.nanmin(grid), np.nanmax(grid)])
    for i in range(len(alphas)):
        for j in range(len(betas)):
            # dark text on the light (low-WER) cells, light text on the dark ones
            color = "k" if grid[i, j] <= mid else "w"
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7, color=color)
    best = result["best"]
    ax.scatter(
        [betas.index(best["word_score"])],
        [alphas.index(best["lm_weight"])],
        s=300,
        facecolors="none",
        edgecolors="red",
        linewidths=2,
    )
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("word score (beta)")
    ax.set_ylabel("LM weight (alpha)")
    ax.set_title(f"WER % (greedy {100 * result['greedy']['wer']:.1f})")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Tune the beam search's LM weight and word score on a validation set.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", default=None, help="folder, Hub repo id or shipped model name")
    ap.add_argument("--manifest", required=True, help="validation manifest (never the test set)")
    ap.add_argument("--lm", default=None, help="LM file or folder (default: the model's own)")
    ap.add_argument("--lexicon", default=None, help="lexicon (default: beside the LM)")
    ap.add_argument("--alphas", type=_floats, default=ALPHAS, help="comma-separated LM weights")
    ap.add_argument("--betas", type=_floats, default=BETAS, help="comma-separated word scores")
    ap.add_argument(
        "--trials", type=int, default=None, help="random search with N pairs instead of the grid"
    )
    ap.add_argument("--beam-width", type=int, default=BEAM_WIDTH)
    ap.add_argument("--limit", type=int, default=LIMIT, help="validation utterances (0 = all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for tune.json and tune.png")
    ap.add_argument(
        "--log-probs",
        default=None,
        metavar="FILE",
        help="keep the network's output in this safetensors file and reuse it when the model "
        "and the set are the same (tuning several LMs runs the network once)",
    )
    ap.add_argument(
        "--write-config",
        action="store_true",
        help="store the best pair in the model folder's config.json",
    )
    args = ap.parse_args(argv)

    result = tune(
        args.model,
        args.manifest,
        lm=args.lm,
        lexicon=args.lexicon,
        alphas=args.alphas,
        betas=args.betas,
        trials=args.trials,
        beam_width=args.beam_width,
        limit=args.limit or None,
        device=args.device,
        seed=args.seed,
        log_probs_cache=args.log_probs,
    )
    best = result["best"]
    print(
        f"best: --lm-weight {best['lm_weight']} --word-score {best['word_score']} "
        f"(WER {best['wer']:.2%}, CER {best['cer']:.2%}; greedy WER {result['greedy']['wer']:.2%})"
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "tune.json").write_text(json.dumps(result, indent=2) + "\n")
        plot_grid(result, out / "tune.png")
        print(f"wrote {out}/tune.json")
    if args.write_config:
        if args.model is None or not Path(args.model).is_dir():
            raise DS2Error("--write-config needs --model to be a local model folder")
        path = write_decoder_config(args.model, best["lm_weight"], best["word_score"])
        print(f"wrote the best pair to {path}")


if __name__ == "__main__":
    main()
