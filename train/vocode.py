"""New talkers from a corpus's clips through a vocoder: pitch and vocal tract moved apart.

    python -m train.vocode --manifest data/synth_deep30/train.jsonl --out data/vocoded \\
        --hours 1.5 --seed 0 --jobs 2

Each clip is analysed with WORLD (``pyworld``: F0, spectral envelope, aperiodicity), then
resynthesised with its F0 scaled by a factor drawn log-uniformly from ``--f0`` and its
envelope (formants) and aperiodicity stretched along the frequency axis by one from
``--formant``. Tempo stays. Unlike the corpus's pitch shifts and training's speed changes,
which resample (tempo, pitch and formants move together, a longer or shorter tape), this moves
the voice's pitch and its vocal tract independently, and every clip comes out with a
vocoder's sound, as the statistical-parametric voices do (flite's ``rms``, the unseen talker,
among them): a low voice with a short vocal tract, a high one with a long tract.

Only clips with no noise or reverberation baked in are used (``aug`` holds nothing but a
gain): WORLD's analysis of reverberant speech is poor, and the trainer adds noise itself.
Each clip's draw depends on ``--seed`` and its row alone, so a rebuild with other ``--jobs`` is
the same. Writes ``OUT/audio/*.flac`` and ``OUT/train.jsonl`` (rows as the source's, with
``speaker`` suffixed ``+world`` and ``aug`` holding ``{"vocoder": "world", "f0": ...,
"formant": ...}``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ds2.audio import SAMPLE_RATE
from ds2.errors import DS2Error

FRAME_MS = 5.0
F0_RANGE = (0.75, 1.35)
FORMANT_RANGE = (0.88, 1.14)


def _require_pyworld():
    try:
        import pyworld
    except ImportError:
        raise DS2Error(
            "train.vocode needs pyworld: pip install -r train/requirements-tts.txt"
        ) from None
    return pyworld


def warp_frequency(m: np.ndarray, alpha: float) -> np.ndarray:
    """``m`` (frames, bins over 0..Nyquist) with its frequency axis stretched by ``alpha``: bin
    ``k`` takes the value at ``k / alpha`` (linear interpolation; the top bin past the edge).
    ``alpha`` > 1 moves every formant up (a shorter vocal tract)."""
    n = m.shape[1]
    src = np.clip(np.arange(n) / alpha, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    return m[:, lo] * (1 - w) + m[:, hi] * w


def vocode(audio: np.ndarray, f0_scale: float = 1.0, formant: float = 1.0, sr=SAMPLE_RATE):
    """``audio`` (float, mono) analysed and resynthesised by WORLD with its F0 times
    ``f0_scale`` and its envelope and aperiodicity warped by ``formant``; the same length,
    float32, peak at most 0.99."""
    pw = _require_pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pw.dio(x, sr, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    if formant != 1.0:
        sp = warp_frequency(sp, formant)
        ap = warp_frequency(ap, formant)
    y = pw.synthesize(f0 * f0_scale, np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr,
                      FRAME_MS)  # fmt: skip
    y = y[: len(x)]
    if len(y) < len(x):
        y = np.pad(y, (0, len(x) - len(y)))
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def is_clean(row: dict) -> bool:
    """No noise or reverberation baked into the clip (a gain alone is fine)."""
    return set(row.get("aug") or {}) <= {"gain_db"}


def draw(row: dict, seed: int, f0_range=F0_RANGE, formant_range=FORMANT_RANGE) -> tuple:
    """The clip's (f0 scale, formant warp): log-uniform in the ranges, from ``seed`` and the
    row's id (or audio path) alone."""
    key = zlib.crc32(str(row.get("id") or row["audio"]).encode())
    rng = np.random.default_rng([seed, key])

    def log_uniform(lo, hi):
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return round(log_uniform(*f0_range), 3), round(log_uniform(*formant_range), 3)


def _one(job) -> dict:
    import soundfile as sf

    from ds2.audio import load_audio

    row, path, f0, formant = job
    y = vocode(load_audio(row["audio"]), f0, formant)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SAMPLE_RATE, subtype="PCM_16")
    return {
        **row,
        "audio": str(path.resolve()),
        "duration": round(len(y) / SAMPLE_RATE, 3),
        "speaker": f"{row.get('speaker', row.get('engine', 'voice'))}+world",
        "aug": {"vocoder": "world", "f0": f0, "formant": formant},
    }


def vocode_manifest(
    rows: list[dict],
    out: str,
    hours: float,
    *,
    seed: int = 0,
    jobs: int = 1,
    f0_range=F0_RANGE,
    formant_range=FORMANT_RANGE,
    progress: bool = True,
) -> list[dict]:
    """Vocoded copies of about ``hours`` of ``rows``' clean clips (drawn with ``seed``), written
    under ``out/audio``; returns their rows in the draw's order."""
    from tqdm import tqdm

    from .manifest import sample_hours

    _require_pyworld()
    clean = [r for r in rows if is_clean(r)]
    if not clean:
        raise DS2Error("no clip without baked-in noise or reverberation to vocode")
    picked = sample_hours(clean, hours, seed)
    out_dir = Path(out)
    todo = []
    for i, r in enumerate(picked):
        f0, formant = draw(r, seed, f0_range, formant_range)
        path = out_dir / "audio" / f"{i // 1000:04d}" / f"{i:06d}-{Path(r['audio']).stem}.flac"
        todo.append((r, path, f0, formant))
    with contextlib.ExitStack() as stack:
        mapper = map
        if jobs > 1:
            pool = stack.enter_context(ProcessPoolExecutor(jobs))
            mapper = functools.partial(pool.map, chunksize=8)
        rows = mapper(_one, todo)
        return list(tqdm(rows, total=len(todo), desc="vocode", unit="clip", disable=not progress))


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, not {text!r}") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 < LOW <= HIGH, not {text!r}")
    return lo, hi


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m train.vocode",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--manifest", required=True, help="source JSONL manifest")
    ap.add_argument("--out", required=True, help="folder for audio/ and train.jsonl")
    ap.add_argument("--hours", type=float, default=1.5, help="how much of the clean clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--f0", type=_range, default=F0_RANGE, help="F0 scale LOW,HIGH")
    ap.add_argument("--formant", type=_range, default=FORMANT_RANGE, help="formant warp LOW,HIGH")
    args = ap.parse_args(argv)
    from .manifest import manifest_stats, read_manifest, write_manifest

    try:
        rows = vocode_manifest(
            read_manifest(args.manifest),
            args.out,
            args.hours,
            seed=args.seed,
            jobs=args.jobs,
            f0_range=args.f0,
            formant_range=args.formant,
        )
    except DS2Error as e:
        raise SystemExit(f"error: {e}") from None
    path = write_manifest(Path(args.out) / "train.jsonl", rows)
    print(f"wrote {path}: {manifest_stats(rows)}")


if __name__ == "__main__":
    main()
