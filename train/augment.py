"""Waveform augmentation for 16-kHz mono float32 audio (numpy; sox for tempo and pitch).

Every function takes ``audio : np.ndarray, shape = (n_samples,)`` float32 and returns a new
array; none changes its input. They serve both the corpus builder (:mod:`train.synth`, once per
utterance at build time) and a data loader (on the fly). Randomness always comes from a
``np.random.Generator`` passed in, so a seed reproduces the same result.

- :func:`change_tempo` (duration changes, pitch kept; sox ``tempo``, WSOLA),
- :func:`pitch_shift` (pitch changes in cents, duration kept; sox ``pitch``),
- :func:`speed_perturb` (resampling: tempo and pitch together, Kaldi-style, pure numpy),
- :func:`add_reverb` (a synthetic room impulse response: exponentially decaying noise),
- :func:`add_noise` (white, pink or brown noise at a given SNR in dB),
- :func:`band_limit` / :func:`telephone` (300-3400 Hz band, 8-kHz round trip, mu-law),
- :func:`apply_gain` and :func:`random_augment` (a random chain with a description of it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ds2.audio import SAMPLE_RATE
from ds2.errors import AudioError

TELEPHONE_BAND = (300.0, 3400.0)  # Hz, the classic narrow-band telephone channel


def _sox(audio: np.ndarray, effects: list[str], sr: int = SAMPLE_RATE) -> np.ndarray:
    """Run ``audio`` through ``sox`` with ``effects``, raw float32 in and out (no temp files)."""
    sox = shutil.which("sox")
    if sox is None:
        raise AudioError("sox is not installed (apt-get install sox); it is needed for this effect")
    fmt = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(sr)]
    cmd = [sox, "-D", "-V1", *fmt, "-", *fmt, "-", *effects]
    data = np.asarray(audio, np.float32).tobytes()
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise AudioError(f"sox {' '.join(effects)} did not finish in 120 s") from None
    if proc.returncode != 0:
        raise AudioError(f"sox {' '.join(effects)} failed: {proc.stderr.decode().strip()}")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def change_tempo(audio: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``factor`` times faster, pitch unchanged: the length becomes ``n / factor``."""
    if factor == 1.0:
        return np.array(audio, np.float32)
    return _sox(audio, ["tempo", "-s", f"{factor:.4f}"], sr)


def pitch_shift(audio: np.ndarray, cents: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Raise the pitch by ``cents`` (100 cents = a semitone), length unchanged."""
    if cents == 0:
        return np.array(audio, np.float32)
    out = _sox(audio, ["pitch", f"{cents:.1f}", "rate", "-h", str(sr)], sr)
    return _fit_length(out, len(audio))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def speed_perturb(audio: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``factor`` times faster, like a tape: tempo and pitch (and formants) move together."""
    import soxr

    if factor == 1.0:
        return np.array(audio, np.float32)
    # Resampling to sr / factor and playing back at sr shortens by factor.
    return soxr.resample(audio, sr * factor, sr, quality="HQ").astype(np.float32)


def apply_gain(audio: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels, then clip to [-1, 1]."""
    return np.clip(audio * np.float32(10 ** (db / 20)), -1.0, 1.0).astype(np.float32)


def _colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    exponent = {"pink": 0.5, "brown": 1.0}.get(color)
    if exponent is None:
        raise ValueError(f"unknown noise colour {color!r}: use white, pink or brown")
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = f[1] if len(f) > 1 else 1.0
    return np.fft.irfft(spec / f**exponent, n)


def add_noise(
    audio: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white"
) -> np.ndarray:
    """Add noise so that signal power / noise power = ``snr_db`` dB (power over the whole clip)."""
    noise = _colored_noise(len(audio), color, rng)
    p_signal = float(np.mean(np.asarray(audio, np.float64) ** 2))
    if p_signal == 0.0:
        return np.array(audio, np.float32)
    noise *= np.sqrt(p_signal / (10 ** (snr_db / 10)) / np.mean(noise**2))
    return (audio + noise).astype(np.float32)


def room_impulse_response(
    rt60: float, rng: np.random.Generator, sr: int = SAMPLE_RATE, direct_ratio_db: float = 3.0
) -> np.ndarray:
    """A synthetic RIR: a direct path then noise decaying by 60 dB over ``rt60`` seconds."""
    n = max(int(rt60 * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 60 dB of amplitude
    tail[: int(0.002 * sr)] = 0.0  # first reflections arrive a few ms after the direct sound
    tail *= np.sqrt(10 ** (-direct_ratio_db / 10) / max(np.sum(tail**2), 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def add_reverb(
    audio: np.ndarray,
    rng: np.random.Generator,
    rt60: float = 0.4,
    sr: int = SAMPLE_RATE,
    direct_ratio_db: float = 3.0,
) -> np.ndarray:
    """Convolve with :func:`room_impulse_response`; same length, same peak level."""
    from scipy.signal import fftconvolve

    rir = room_impulse_response(rt60, rng, sr, direct_ratio_db)
    out = fftconvolve(audio, rir)[: len(audio)]
    peak_in, peak_out = float(np.abs(audio).max(initial=0)), float(np.abs(out).max(initial=0))
    if peak_out > 0:
        out *= peak_in / peak_out
    return out.astype(np.float32)


def band_limit(
    audio: np.ndarray,
    low: float = TELEPHONE_BAND[0],
    high: float = TELEPHONE_BAND[1],
    sr: int = SAMPLE_RATE,
    order: int = 8,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass ``low``..``high`` Hz."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    return sosfiltfilt(sos, audio).astype(np.float32)


def telephone(audio: np.ndarray, sr: int = SAMPLE_RATE, mu_law: bool = True) -> np.ndarray:
    """A narrow-band phone line: 300-3400 Hz band, 8 kHz sampling, 8-bit mu-law companding."""
    import soxr

    x = band_limit(audio, sr=sr)
    x = soxr.resample(x, sr, 8000).astype(np.float32)
    if mu_law:
        mu = 255.0
        y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
        y = np.round(y * 127) / 127
        x = (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
    return _fit_length(soxr.resample(x, 8000, sr).astype(np.float32), len(audio))


def random_augment(
    audio: np.ndarray,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
    *,
    p_reverb: float = 0.3,
    p_noise: float = 0.4,
    p_telephone: float = 0.1,
    snr_db: tuple[float, float] = (5.0, 30.0),
    rt60: tuple[float, float] = (0.15, 0.8),  # seconds: small room to hall
    gain_db: tuple[float, float] = (-12.0, 3.0),
) -> tuple[np.ndarray, dict]:
    """A random chain (reverb, telephone, noise, gain); returns (audio, what was applied).

    Tempo and pitch are left to the caller: they define pseudo-speakers in :mod:`train.synth`.
    """
    info: dict = {}
    x = np.asarray(audio, np.float32)
    if rng.random() < p_reverb:
        info["rt60"] = round(float(rng.uniform(*rt60)), 3)
        x = add_reverb(x, rng, info["rt60"], sr)
    if rng.random() < p_telephone:
        info["telephone"] = True
        x = telephone(x, sr)
    if rng.random() < p_noise:
        info["snr_db"] = round(float(rng.uniform(*snr_db)), 1)
        info["noise"] = str(rng.choice(["white", "pink", "brown"]))
        x = add_noise(x, info["snr_db"], rng, info["noise"])
    peak = float(np.abs(x).max(initial=0))
    if peak > 0:
        # Gain relative to a -1 dBFS peak, so clips never saturate by accident.
        info["gain_db"] = round(float(rng.uniform(*gain_db)), 1)
        x = apply_gain(x * np.float32(0.891 / peak), info["gain_db"])
    return x, info


def perturb_manifest(
    manifest: str,
    out: str,
    speeds=(0.85, 0.92, 1.08, 1.15),
    *,
    seed: int = 0,
    augment: bool = True,
    progress: bool = True,
) -> list[dict]:
    """Speed-perturbed (and randomly augmented) copies of every clip of ``manifest``.

    Each speed factor makes a pseudo-speaker (tempo, pitch and formants move together, as in
    Kaldi's 3-way speed perturbation), so a few minutes of one real voice become several voices;
    with ``augment`` each copy also goes through :func:`random_augment` (reverb, telephone band,
    noise, gain). Writes ``out/audio/<speed>/*.flac`` and returns the new manifest's rows
    (the caller writes them); the row's ``aug`` key says what was done. Deterministic in ``seed``.
    """
    import soundfile as sf
    from tqdm import tqdm

    from ds2.audio import load_audio

    from .manifest import read_manifest

    rows = read_manifest(manifest)
    out_dir = Path(out)
    new = []
    jobs = [(s, i, r) for s in speeds for i, r in enumerate(rows)]
    for s, i, r in tqdm(jobs, desc="perturb", disable=not progress):
        path = out_dir / "audio" / f"sp{s:g}" / f"{i:06d}-{Path(r['audio']).stem}.flac"
        rng = np.random.default_rng([seed, i, int(round(s * 1000))])
        x = speed_perturb(load_audio(r["audio"]), s)
        info: dict = {"speed": s}
        if augment:
            x, extra = random_augment(x, rng)
            info.update(extra)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x, SAMPLE_RATE, subtype="PCM_16")
        new.append(
            {
                **r,
                "audio": str(path),
                "duration": round(len(x) / SAMPLE_RATE, 3),
                "speaker": f"{r['speaker']}-sp{s:g}",
                "aug": info,
            }
        )
    return new


def main(argv=None) -> None:
    import argparse

    from .manifest import write_manifest

    p = argparse.ArgumentParser(
        description="Speed-perturbed, augmented copies of a manifest's clips (pseudo-speakers), "
        "e.g. to stretch a few minutes of real speech.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help="folder for the audio and OUT/perturbed.jsonl")
    p.add_argument("--speeds", type=float, nargs="+", default=[0.85, 0.92, 1.08, 1.15])
    p.add_argument("--no-augment", action="store_true", help="speed only: no noise or reverb")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if any(not 0.5 <= s <= 2.0 for s in args.speeds):
        p.error("speeds must lie in 0.5..2.0")
    rows = perturb_manifest(
        args.manifest, args.out, args.speeds, seed=args.seed, augment=not args.no_augment
    )
    path = write_manifest(Path(args.out) / "perturbed.jsonl", rows)
    hours = sum(r["duration"] for r in rows) / 3600
    print(f"{len(rows)} clips, {hours:.2f} h -> {path}")


if __name__ == "__main__":
    main()
