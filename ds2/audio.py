"""Audio in: any common file or array -> mono float32 at 16 kHz.

``load_audio`` is the single entry point. It accepts a path (wav, flac, ogg, mp3 through
libsndfile; anything else through ffmpeg when it is installed), raw file bytes, or a numpy array
with its sample rate. Every problem with the input is raised as :class:`ds2.errors.AudioError`
with a message a person can act on.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000  # Hz; every model in ds2 runs at this rate
MIN_SAMPLES = 400  # 25 ms: one analysis window, the shortest clip that yields an output frame
SILENCE_PEAK = 1e-4  # peak amplitude below which a clip counts as silent (-80 dBFS)


def _describe(source) -> str:
    return f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the audio"


def _read_with_soundfile(data, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        audio, sr = sf.read(data, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        # error_string is libsndfile's own words, without the repr of a BytesIO source.
        raise _Unreadable(getattr(e, "error_string", "") or str(e)) from None
    except (RuntimeError, TypeError, EOFError) as e:  # some libsndfile builds raise these
        raise _Unreadable(str(e)) from None
    return audio, sr


class _Unreadable(Exception):
    pass


def _read_with_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise _Unreadable("ffmpeg is not installed")
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1"]
    cmd += ["-ar", str(SAMPLE_RATE), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise _Unreadable(lines[-1] if lines else f"ffmpeg exited with {proc.returncode}")
    return np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, 1), SAMPLE_RATE


def _ffmpeg_or_fail(path: str, first: Exception, what: str) -> tuple[np.ndarray, int]:
    """Second chance for what libsndfile could not read; ``first`` is libsndfile's complaint."""
    try:
        return _read_with_ffmpeg(path)
    except _Unreadable:
        hint = "" if shutil.which("ffmpeg") else " (install ffmpeg to read more formats)"
        raise AudioError(
            f"{what} not a supported audio file or is damaged ({first}){hint}"
        ) from None


def _read_bytes_with_ffmpeg(data: bytes, first: Exception) -> tuple[np.ndarray, int]:
    # ffmpeg reads containers such as m4a only from a seekable file, not from a pipe.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ds2-audio-") as tmp:
        path = os.path.join(tmp, "upload")
        with open(path, "wb") as f:
            f.write(data)
        return _ffmpeg_or_fail(path, first, "the data is")


def read_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file as it is: returns (samples [n, channels] float32, sample rate)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: '{path}'")
    if os.path.isdir(path):
        raise AudioError(f"'{path}' is a folder, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"'{path}' is empty (0 bytes)")
    try:
        return _read_with_soundfile(path, path)
    except _Unreadable as first:
        return _ffmpeg_or_fail(path, first, f"could not read '{path}' as audio: it is")


def iter_blocks(path: str | os.PathLike, block_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Stream a (long) file as mono float32 blocks at 16 kHz, resampled on the fly.

    Only one block is in memory at a time, so an hour of audio can be processed in bounded
    memory. Only formats libsndfile reads (wav, flac, ogg, mp3) can be streamed.

    yields : np.ndarray, shape = (n_samples,), about ``block_seconds`` each
    """
    import soundfile as sf
    import soxr

    path = os.fspath(path)
    with sf.SoundFile(path) as f:
        in_rate = int(f.samplerate)
        block = max(1, int(block_seconds * in_rate))
        resampler = None
        if in_rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(in_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        while True:
            x = f.read(block, dtype="float32", always_2d=True)  # (n, channels)
            last = len(x) < block
            mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
            if len(mono):
                yield mono
            if last:
                return


def to_mono_float(samples: np.ndarray) -> np.ndarray:
    """Scale integer PCM to [-1, 1] and average the channels: [n] or [n, ch] -> [n] float32."""
    samples = np.asarray(samples)
    if samples.dtype.kind not in "iuf":
        raise AudioError(f"audio samples must be numbers, got dtype {samples.dtype}")
    if samples.dtype.kind == "i":
        samples = samples.astype(np.float32) / float(2 ** (8 * samples.dtype.itemsize - 1))
    elif samples.dtype.kind == "u":  # unsigned PCM (8-bit wav) is centred on 2**(bits-1)
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        samples = (samples.astype(np.float32) - half) / half
    else:
        samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        # An empty (0, channels) read must stay empty, not become the mean of nothing (NaN).
        return np.zeros(0, dtype=np.float32)
    if samples.ndim == 2:
        # Channels are the short axis: gradio gives [n, ch], some libraries give [ch, n].
        if samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8:
            samples = samples.T
        samples = samples.mean(axis=1)
    elif samples.ndim != 1:
        raise AudioError(
            f"audio must be 1-D or 2-D (samples x channels), got shape {samples.shape}"
        )
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling (soxr, the library librosa uses)."""
    if orig_sr == target_sr:
        return audio
    import soxr

    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32)


def load_audio(
    source,
    sample_rate: int | None = None,
    *,
    allow_silence: bool = False,
) -> np.ndarray:
    """Load ``source`` as mono float32 samples at 16 kHz.

    Parameters
    ----------
    source : str | os.PathLike | bytes | np.ndarray | tuple[int, np.ndarray]
        A file path, the bytes of a file, an array (``sample_rate`` required), or gradio's
        ``(sample_rate, array)`` tuple.
    sample_rate : int, optional
        The rate of an array ``source``.
    allow_silence : bool
        Accept clips whose peak is below -80 dBFS (streaming chunks); otherwise they are an error.

    Returns
    -------
    np.ndarray, shape = (n_samples,), float32 in [-1, 1] at 16 kHz

    Raises
    ------
    AudioError
        The source is missing, not audio, empty, too short, silent, or holds NaN/inf samples.
    """
    what = _describe(source)
    if isinstance(source, tuple) and len(source) == 2 and np.isscalar(source[0]):
        sample_rate, source = int(source[0]), source[1]
    if isinstance(source, (str, os.PathLike)):
        samples, sample_rate = read_file(source)
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError("the audio data is empty (0 bytes)")
        try:
            samples, sample_rate = _read_with_soundfile(io.BytesIO(source), "bytes")
        except _Unreadable as first:
            samples, sample_rate = _read_bytes_with_ffmpeg(bytes(source), first)
    elif isinstance(source, np.ndarray) or hasattr(source, "numpy"):
        samples = source.numpy() if hasattr(source, "numpy") else source
        if sample_rate is None:
            raise AudioError("an audio array needs its sample rate (sample_rate=...)")
    else:
        raise AudioError(
            f"cannot load audio from a {type(source).__name__}; give a file path, file bytes, "
            "or a numpy array with its sample rate"
        )
    if not sample_rate or sample_rate <= 0:
        raise AudioError(f"invalid sample rate {sample_rate!r}")

    audio = to_mono_float(samples)
    if audio.size == 0:
        raise AudioError(f"{what} contains no samples (zero length)")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioError(f"{what} contains {bad} NaN or infinite samples; it is damaged")
    audio = resample(audio, int(sample_rate))
    if audio.size < MIN_SAMPLES:
        raise AudioError(
            f"{what} is too short: {audio.size / SAMPLE_RATE * 1000:.1f} ms, "
            f"at least {MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms is needed"
        )
    peak = float(np.abs(audio).max())
    if peak > 1.0:
        # Float data outside [-1, 1] (unnormalised recordings): scale instead of clipping.
        audio = audio / peak
    if not allow_silence and peak < SILENCE_PEAK:
        raise AudioError(f"{what} is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    return audio


def duration(audio: np.ndarray) -> float:
    """Seconds of 16-kHz ``audio``."""
    return len(audio) / SAMPLE_RATE


def save_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav (used for examples and tests)."""
    import soundfile as sf

    sf.write(str(path), np.asarray(audio, dtype=np.float32), sample_rate, subtype="PCM_16")
