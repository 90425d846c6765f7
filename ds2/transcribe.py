"""Speech to text in one call: audio -> features -> model -> greedy and beam transcripts.

:func:`transcribe` returns a :class:`Transcription` that keeps every intermediate a viewer wants
to look at (spectrogram, per-frame log-probs, both transcripts, word timings, timings in ms).

Long recordings are run in overlapping windows (``window_seconds`` 30 s, ``overlap_seconds``
4 s) and stitched at the log-prob level: each window keeps its central output frames and the
seam between two windows lies in the middle of their overlap, so every kept frame has at least
``overlap_seconds / 2`` of real audio on each side. The stitched log-probs are then decoded
once, so no word is duplicated or lost at a seam. Features of long inputs are normalised with
statistics of the whole recording (one streaming pass first), which makes a window's features
identical to the same frames of a single pass over the whole input; only the recurrent
context differs. Files longer than one window are streamed from disk in blocks (resampled on
the fly), so memory stays bounded: an hour never sits in memory as float32 samples or features.
Greedy decoding runs over the whole stitched output; beam search over a long input runs on
window-sized segments cut in pauses (a single flashlight search keeps every frame's hypotheses:
gigabytes for an hour), and the segments' n-best lists are merged into an exact n-best.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from .audio import MIN_SAMPLES, SAMPLE_RATE, SILENCE_PEAK, iter_blocks, load_audio
from .checkpoint import LoadedModel
from .decoding import DEFAULT_BEAM_WIDTH, Hypothesis, Word, greedy_decode
from .errors import AudioError, DecoderError
from .features import FeatureConfig, compute_features, log_spectrogram, pad_features
from .vocab import Vocabulary

WINDOW_SECONDS = 30.0  # audio per network pass for long inputs
OVERLAP_SECONDS = 4.0  # shared by neighbouring windows: 2 s of context on each side of a seam
# Windows per forward pass. On the CPU one at a time is fastest (batches of 4 ran 2-7x slower
# per frame) and keeps the conv workspace small; a GPU wants the parallelism.
BATCH_WINDOWS = {"cpu": 1, "cuda": 8}
BLOCK_SECONDS = 60.0  # audio per step of the streaming passes (statistics, file reading)
NORM_EPS = 1e-5  # as ds2.features.normalize


@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe. Every field can also be passed to :func:`transcribe` as a keyword."""

    decoder: str = "greedy"  # "greedy" or "beam"; greedy is always computed as well
    beam_width: int = DEFAULT_BEAM_WIDTH  # hypotheses kept per frame by the beam search
    nbest: int = 5  # beam hypotheses returned, best first
    lm: str | os.PathLike | None = "auto"  # "auto": the model's own LM if it ships one; None: no LM
    lexicon: str | os.PathLike | None = None  # None: the model's lexicon when its LM is used
    lm_weight: float | None = None  # None: the model's tuned weight (own LM) or the decoder's
    word_score: float | None = None  # None: the model's tuned score (own LM) or the decoder's
    window_seconds: float = WINDOW_SECONDS  # longer inputs are run in overlapping windows
    overlap_seconds: float = OVERLAP_SECONDS  # audio shared by two neighbouring windows
    batch_windows: int | None = None  # windows per forward pass; None: 1 on CPU, 8 on GPU
    keep_features: bool | None = None  # None: keep for inputs of one window; True: always

    def __post_init__(self):
        if self.decoder not in ("greedy", "beam"):
            raise DecoderError(f"decoder must be 'greedy' or 'beam', got {self.decoder!r}")
        if self.beam_width < 1 or self.nbest < 1:
            raise DecoderError("beam_width and nbest must be at least 1")
        if not self.window_seconds > 0 or not 0 <= self.overlap_seconds < self.window_seconds:
            raise DecoderError(
                f"need window_seconds > overlap_seconds >= 0, got {self.window_seconds} and "
                f"{self.overlap_seconds}"
            )
        if self.batch_windows is not None and self.batch_windows < 1:
            raise DecoderError("batch_windows must be at least 1")


@dataclass
class Transcription:
    """Everything :func:`transcribe` computed for one input.

    log_probs : np.ndarray, shape = (n_out_frames, vocab_size), float32
        Per-frame CTC log-posteriors; output frame ``t`` covers ``t * frame_seconds`` seconds.
    features : torch.Tensor, shape = (n_bins, n_frames), float32, on the CPU, or None
        The normalised spectrogram the model saw (None for inputs longer than one window,
        unless ``keep_features=True``).
    audio : np.ndarray, shape = (n_samples,), float32 at 16 kHz, or None
        None when a long file was streamed from disk rather than loaded.
    """

    duration: float  # seconds of audio
    audio: np.ndarray | None
    features: torch.Tensor | None
    log_probs: np.ndarray
    frame_seconds: float  # seconds per output frame (0.02)
    vocab: Vocabulary
    greedy: Hypothesis
    beam: list[Hypothesis] = field(default_factory=list)  # n-best, best first; empty for greedy
    timings: dict[str, float] = field(default_factory=dict)  # ms: load, features, model, ...
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    windows: int = 1  # network passes the input was split into
    decoder_settings: dict = field(default_factory=dict)  # lm, lexicon, weights actually used
    model_name: str = ""
    source: str | None = None  # the file path, when the input was a file

    @property
    def best(self) -> Hypothesis:
        """The best beam hypothesis when beam search ran, else the greedy one."""
        return self.beam[0] if self.beam else self.greedy

    @property
    def text(self) -> str:
        return self.best.text

    @property
    def words(self) -> list[Word]:
        return self.best.words

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio (below 1 is faster)."""
        return self.timings.get("total", 0.0) / 1000.0 / max(self.duration, 1e-9)

    def to_dict(self) -> dict:
        """A JSON-ready summary: both transcripts, n-best, words, timings (no arrays)."""

        def hyp(h: Hypothesis) -> dict:
            return {"text": h.text, "score": round(h.score, 4)}

        return {
            "file": self.source,
            "model": self.model_name,
            "duration": round(self.duration, 3),
            "text": self.text,
            "decoder": self.options.decoder,
            "greedy": hyp(self.greedy),
            "beam": [hyp(h) for h in self.beam],
            "words": [
                {
                    "word": w.word,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "confidence": round(w.confidence, 4),
                }
                for w in self.words
            ],
            "decoder_settings": {
                k: (str(v) if isinstance(v, Path) else v) for k, v in self.decoder_settings.items()
            },
            "windows": self.windows,
            "timings_ms": {k: round(v, 1) for k, v in self.timings.items()},
            "rtf": round(self.rtf, 4),
        }


# ---------------------------------------------------------------------------------------------
# Audio sources: random-access arrays and files streamed in blocks


class _ArraySource:
    """16-kHz samples already in memory."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.n = len(audio)

    def cursor(self) -> _ArraySource:
        return self

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.audio[start:stop]


class _FileSource:
    """A file read in blocks as mono float32 at 16 kHz, resampled on the fly (soxr stream).

    ``scan()`` makes one pass to count samples and find the peak; ``cursor()`` starts a fresh
    pass whose ``read(start, stop)`` calls must not go backwards in ``start``.
    """

    def __init__(self, path: str, block_seconds: float = BLOCK_SECONDS):
        import soundfile as sf

        self.path = path
        info = sf.info(path)
        self.in_rate = int(info.samplerate)
        self.block = max(1, int(block_seconds * self.in_rate))
        self.n = 0

    def blocks(self) -> Iterator[np.ndarray]:
        return iter_blocks(self.path, self.block / self.in_rate)

    def scan(self) -> tuple[int, float, int]:
        """(16-kHz samples, peak |sample|, non-finite samples) of the whole file."""
        n, peak, bad = 0, 0.0, 0
        for b in self.blocks():
            n += len(b)
            finite = np.isfinite(b)
            if not finite.all():
                bad += int((~finite).sum())
                b = b[finite]
            if len(b):
                peak = max(peak, float(np.abs(b).max()))
        return n, peak, bad

    def cursor(self) -> _Cursor:
        return _Cursor(self.blocks())


class _Cursor:
    """Monotone range reads over a stream of blocks, keeping only what may still be read."""

    def __init__(self, blocks: Iterator[np.ndarray]):
        self.blocks = blocks
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0  # sample index of buf[0]
        self.done = False

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self.buf_start:
            raise RuntimeError("stream reads must not go backwards")
        parts = [self.buf]
        have = self.buf_start + len(self.buf)
        while have < stop and not self.done:
            b = next(self.blocks, None)
            if b is None:
                self.done = True
            else:
                parts.append(b)
                have += len(b)
        if len(parts) > 1:
            self.buf = np.concatenate(parts)
        self.buf = self.buf[start - self.buf_start :]  # drop what no later read can need
        self.buf_start = start
        return self.buf[: stop - start]


# ---------------------------------------------------------------------------------------------
# Features of long inputs, frame-exact


def _log_spec_frames(
    cursor, f0: int, f1: int, n: int, cfg: FeatureConfig, device, peak_scale: float
) -> torch.Tensor:
    """Frames ``f0 .. f1 - 1`` of the un-normalised log-spectrogram of the whole input.

    Computed from a chunk with ``margin`` extra frames each side, so that the chunk's own edge
    padding only touches frames that are dropped; at the input's true edges the chunk starts or
    ends there, where torch.stft pads exactly as it does for the whole input.

    returns : torch.Tensor, shape = (n_bins, f1 - f0)
    """
    hop = cfg.hop_length
    margin = -(-(cfg.n_fft // 2) // hop)  # frames reached by a frame's half window: 2
    g0 = max(0, f0 - margin)
    s0 = g0 * hop
    s1 = min(n, (f1 - 1 + margin) * hop + 1)
    chunk = cursor.read(s0, s1)
    if peak_scale != 1.0:
        chunk = chunk / peak_scale  # as load_audio scales float data that exceeds [-1, 1]
    spec = log_spectrogram(torch.as_tensor(chunk, device=device), cfg)  # (n_bins, frames)
    return spec[:, f0 - g0 : f1 - g0]


def _global_stats(source, n: int, cfg: FeatureConfig, device, peak_scale: float, block: int):
    """Per-bin mean and std of the log-spectrogram over the whole input, in one pass.

    returns : (mean, std), each torch.Tensor, shape = (n_bins, 1)
    """
    n_frames = int(cfg.n_frames(n))
    total = torch.zeros(cfg.n_bins, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    cursor = source.cursor()
    for f0 in range(0, n_frames, block):
        spec = _log_spec_frames(cursor, f0, min(f0 + block, n_frames), n, cfg, device, peak_scale)
        spec = spec.double()
        total += spec.sum(dim=1)
        total_sq += (spec * spec).sum(dim=1)
    mean = total / n_frames
    var = (total_sq / n_frames - mean * mean).clamp(min=0.0)
    return mean.float()[:, None], var.sqrt().float()[:, None]


def plan_windows(n_frames: int, window: int, overlap: int, stride: int) -> list[tuple[int, int]]:
    """Split ``n_frames`` input frames into overlapping ``(start, end)`` windows.

    Starts are multiples of ``stride`` (so output frames of every window fall on the global
    output grid); the last window is aligned to the end of the input rather than left short.
    """
    if n_frames <= window:
        return [(0, n_frames)]
    step = window - overlap
    windows = [(0, window)]
    while windows[-1][1] < n_frames:
        start = windows[-1][0] + step
        if start + window >= n_frames:
            start = max(windows[-1][0], (n_frames - window) // stride * stride)
            if start == windows[-1][0]:
                windows[-1] = (start, n_frames)
                break
            windows.append((start, n_frames))
            break
        windows.append((start, start + window))
    return windows


# ---------------------------------------------------------------------------------------------
# Beam decoders, cached per settings


_DECODERS: OrderedDict[tuple, object] = OrderedDict()
_DECODERS_LOCK = threading.Lock()
_MAX_DECODERS = 8  # the search graphs and LMs behind them are shared by ds2.decoding's own cache


def _file_key(path) -> tuple | None:
    """A path with its size and mtime, so an LM rebuilt in place is not served stale."""
    if path is None:
        return None
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def _beam_decoder(vocab: Vocabulary, settings: dict, frame_seconds: float, device: str):
    """A BeamSearchDecoder for ``settings``, built once (building one re-reads the lexicon)."""
    from .decoding import BeamSearchDecoder

    kwargs = {k: v for k, v in settings.items() if v is not None}
    files = (_file_key(kwargs.get("lm")), _file_key(kwargs.get("lexicon")))
    key = (vocab.tokens, frame_seconds, device, files, tuple(sorted(map(str, kwargs.items()))))
    with _DECODERS_LOCK:
        if key in _DECODERS:
            _DECODERS.move_to_end(key)
            return _DECODERS[key]
    decoder = BeamSearchDecoder(vocab, frame_seconds=frame_seconds, device=device, **kwargs)
    with _DECODERS_LOCK:
        decoder = _DECODERS.setdefault(key, decoder)
        while len(_DECODERS) > _MAX_DECODERS:
            _DECODERS.popitem(last=False)
    return decoder


def beam_segments(log_probs: np.ndarray, vocab: Vocabulary, target: int, search: int):
    """Cut points for a long beam search: ``[(start, end), ...]`` covering all output frames.

    Each segment is at most ``target`` frames. A cut goes in the middle of the longest run of
    frames whose most likely symbol is blank or space within the last ``search`` frames before
    the limit: a pause between words, where no path the beam cares about emits a character.

    log_probs : np.ndarray, shape = (n_out_frames, vocab_size)
    """
    n = len(log_probs)
    if n <= target:
        return [(0, n)]
    path = log_probs.argmax(axis=1)  # (n_out_frames,)
    quiet = (path == vocab.blank_id) | (path == vocab.space_id)
    cuts = [0]
    while n - cuts[-1] > target:
        lo, hi = cuts[-1] + max(1, target - search), cuts[-1] + target
        q = np.concatenate([[False], quiet[lo:hi], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(q))  # run starts and ends, alternating
        starts, ends = edges[0::2], edges[1::2]
        if len(starts):
            k = int(np.argmax(ends - starts))
            cuts.append(lo + int((starts[k] + ends[k]) // 2))
        else:
            cuts.append(hi)
    cuts.append(n)
    return list(zip(cuts[:-1], cuts[1:]))


def _beam_long(decoder, log_probs: np.ndarray, vocab, frame_seconds, nbest, segments):
    """N-best of a long input as the best combinations of per-segment n-best lists.

    Segments are cut at pauses (:func:`beam_segments`), so they are decoded independently and
    their scores add: the k best sums are kept segment by segment (an exact k-best merge).
    """
    lists = [list(decoder(torch.from_numpy(log_probs[a:b]))) for a, b in segments]
    combos = [(0.0, ())]  # (summed score, index of the hypothesis chosen in each segment)
    for hyps in lists:
        merged = [(s + h.score, c + (j,)) for s, c in combos for j, h in enumerate(hyps)]
        combos = sorted(merged, key=lambda x: -x[0])[:nbest]
    out, seen = [], set()
    for score, choice in combos:
        tokens, timesteps, words, texts = [], [], [], []
        for (offset, _), hyps, j in zip(segments, lists, choice):
            h = hyps[j]
            if not h.tokens:
                continue
            if tokens:
                # the segment dropped its trailing space; put one right after the last word
                tokens.append(vocab.space_id)
                timesteps.append(min(timesteps[-1] + 1, offset + h.timesteps[0]))
            tokens += h.tokens
            timesteps += [offset + t for t in h.timesteps]
            shift = offset * frame_seconds
            words += [
                Word(w.word, round(w.start + shift, 4), round(w.end + shift, 4), w.confidence)
                for w in h.words
            ]
            texts.append(h.text)
        text = " ".join(texts)
        if text not in seen:
            seen.add(text)
            out.append(Hypothesis(text, score, tokens, timesteps, words))
    return out


def _decoder_settings(model: LoadedModel, opts: TranscribeOptions) -> dict:
    """LM, lexicon and weights for the beam search, resolved against the model's own files."""

    def existing(path, what) -> Path:
        path = Path(path)
        if not path.is_file():
            raise DecoderError(f"{what} file not found: '{path}'")
        return path

    tuned: dict = {}
    if opts.lm == "auto":
        lm = model.lm_path
        lexicon = opts.lexicon or (model.lexicon_path if lm else None)
        if lm:
            tuned = model.decoder_defaults
    elif opts.lm is None or str(opts.lm) in ("", "none"):
        lm, lexicon = None, opts.lexicon
    else:
        lm = existing(opts.lm, "language model")
        lexicon = opts.lexicon or model.lexicon_path
        if model.lm_path and lm.resolve() == Path(model.lm_path).resolve():
            tuned = model.decoder_defaults
    if lexicon is not None:
        lexicon = existing(lexicon, "lexicon")
    return {
        "beam_width": opts.beam_width,
        "nbest": opts.nbest,
        "lm": lm,
        "lexicon": lexicon,
        "lm_weight": opts.lm_weight if opts.lm_weight is not None else tuned.get("lm_weight"),
        "word_score": opts.word_score if opts.word_score is not None else tuned.get("word_score"),
    }


# ---------------------------------------------------------------------------------------------
# The API


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _long_file(audio, opts: TranscribeOptions) -> _FileSource | None:
    """A streaming source for a soundfile-readable file longer than one window, else None."""
    if not isinstance(audio, (str, os.PathLike)) or not os.path.isfile(audio):
        return None
    try:
        import soundfile as sf

        info = sf.info(os.fspath(audio))
    except Exception:  # not readable by libsndfile: load_audio tries ffmpeg and reports errors
        return None
    if info.frames <= 0 or info.frames / info.samplerate <= opts.window_seconds:
        return None
    return _FileSource(os.fspath(audio))


def _options(options: TranscribeOptions | None, overrides: dict) -> TranscribeOptions:
    opts = options or TranscribeOptions()
    if overrides:
        unknown = set(overrides) - {f.name for f in fields(TranscribeOptions)}
        if unknown:
            raise TypeError(f"unknown transcribe option(s): {', '.join(sorted(unknown))}")
        opts = replace(opts, **overrides)
    return opts


def prepare_decoder(model: LoadedModel, options: TranscribeOptions | None = None, **overrides):
    """Build (and cache) now the beam-search decoder :func:`transcribe` will use with these
    options, so that the first transcription does not wait for the LM and lexicon to load.
    Returns the :class:`ds2.decoding.BeamSearchDecoder`; raises DecoderError as transcribe would.
    """
    opts = _options(options, overrides)
    frame_seconds = model.feature_config.frame_seconds * model.model.cfg.time_stride
    settings = _decoder_settings(model, opts)
    return _beam_decoder(model.vocab, settings, frame_seconds, str(model.device))


def transcribe(
    model: LoadedModel | str,
    audio,
    options: TranscribeOptions | None = None,
    *,
    sample_rate: int | None = None,
    progress: Callable[[float], None] | None = None,
    **overrides,
) -> Transcription:
    """Transcribe one recording.

    Parameters
    ----------
    model : LoadedModel | str
        A loaded model, or a spec for :func:`ds2.load_model` (folder, Hub repo id, name).
    audio : str | os.PathLike | bytes | np.ndarray | tuple[int, np.ndarray]
        Anything :func:`ds2.audio.load_audio` accepts (``sample_rate`` for an array).
    options : TranscribeOptions, optional
        Decoding and windowing settings; ``**overrides`` replace single fields
        (``transcribe(m, "a.wav", decoder="beam", beam_width=64)``).
    progress : callable, optional
        Called with the fraction done (0..1] after each window of the network pass; inputs
        longer than one window also get a first call with 0.0 before any work.

    Returns
    -------
    Transcription

    Raises
    ------
    AudioError
        Unreadable, empty, silent or too short audio.
    DecoderError
        Bad options, or an LM / lexicon file that does not exist.
    """
    t_start = time.perf_counter()
    opts = _options(options, overrides)
    if isinstance(model, (str, os.PathLike)):
        from .hub import load_model

        model = load_model(model)
    settings = _decoder_settings(model, opts) if opts.decoder == "beam" else {}

    net = model.model
    cfg = model.feature_config
    device = model.device
    stride = net.cfg.time_stride
    frame_seconds = cfg.frame_seconds * stride
    window = max(stride, int(round(opts.window_seconds / cfg.frame_seconds)) // stride * stride)
    overlap = int(round(opts.overlap_seconds / cfg.frame_seconds)) // (2 * stride) * (2 * stride)
    overlap = min(overlap, window - stride)
    timings = {"load": 0.0, "features": 0.0, "model": 0.0}

    t0 = time.perf_counter()
    source: _ArraySource | _FileSource
    file_source = _long_file(audio, opts)
    peak_scale = 1.0
    if file_source is not None:
        n, peak, bad = file_source.scan()
        what = f"'{os.fspath(audio)}'"
        if bad:
            raise AudioError(f"{what} contains {bad} NaN or infinite samples; it is damaged")
        if peak < SILENCE_PEAK:
            raise AudioError(f"{what} is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
        if n < MIN_SAMPLES:
            raise AudioError(f"{what} is too short")
        peak_scale = peak if peak > 1.0 else 1.0
        file_source.n = n
        source, samples = file_source, None
    else:
        samples = load_audio(audio, sample_rate)
        n = len(samples)
        source = _ArraySource(samples)
    timings["load"] = _ms(t0)

    n_frames = int(cfg.n_frames(n))
    n_out = int(net.cfg.output_lengths(n_frames))
    if n_out < 1:
        raise AudioError(
            f"the audio is too short for this model: {n / SAMPLE_RATE * 1000:.0f} ms gives no "
            "output frame"
        )
    plan = plan_windows(n_frames, window, overlap, stride)
    keep_features = opts.keep_features if opts.keep_features is not None else len(plan) == 1

    log_probs = np.empty((n_out, len(model.vocab)), dtype=np.float32)
    features = None
    with torch.inference_mode():
        if len(plan) == 1:
            t0 = time.perf_counter()
            feats = compute_features(samples, cfg, device=device)  # (n_bins, n_frames)
            _sync(device)
            timings["features"] += _ms(t0)
            t0 = time.perf_counter()
            lengths = torch.tensor([n_frames])
            lp, out_len = net(feats[None], lengths)  # (1, n_out, V)
            log_probs[:] = lp[0, : int(out_len[0])].cpu().numpy()
            timings["model"] += _ms(t0)
            if keep_features:
                features = feats.cpu()
            if progress is not None:
                progress(1.0)
        else:
            if progress is not None:
                progress(0.0)  # a long job has started: lets a caller open its bar now
            block = max(1, int(BLOCK_SECONDS / cfg.frame_seconds))
            t0 = time.perf_counter()
            if cfg.normalize == "utterance":
                mean, std = _global_stats(source, n, cfg, device, peak_scale, block)
            elif cfg.normalize == "none":
                mean, std = None, None
            else:
                raise ValueError(f"unknown normalisation {cfg.normalize!r}")
            timings["features"] += _ms(t0)
            if keep_features:
                features = torch.empty((cfg.n_bins, n_frames), dtype=torch.float32)
            # Seams in output frames: the middle of each overlap.
            seams = [0]
            for (_, end), (nxt, _) in zip(plan[:-1], plan[1:]):
                seams.append((nxt + end) // 2 // stride)
            seams.append(n_out)
            cursor = source.cursor()
            per_batch = opts.batch_windows or BATCH_WINDOWS.get(device.type, 1)
            for b0 in range(0, len(plan), per_batch):
                batch = list(range(b0, min(b0 + per_batch, len(plan))))
                t0 = time.perf_counter()
                feats = []
                for k in batch:
                    start, end = plan[k]
                    spec = _log_spec_frames(cursor, start, end, n, cfg, device, peak_scale)
                    if mean is not None:
                        spec = (spec - mean) / (std + NORM_EPS)
                    feats.append(spec)
                    if features is not None:
                        features[:, start:end] = spec.cpu()
                x, lengths = pad_features(feats)  # (B, n_bins, T), (B,)
                _sync(device)
                timings["features"] += _ms(t0)
                t0 = time.perf_counter()
                lp, _ = net(x, lengths)  # (B, T', V)
                lp = lp.cpu().numpy()
                timings["model"] += _ms(t0)
                for i, k in enumerate(batch):
                    offset = plan[k][0] // stride  # global output frame of the window's frame 0
                    lo, hi = seams[k], seams[k + 1]
                    log_probs[lo:hi] = lp[i, lo - offset : hi - offset]
                    if progress is not None:
                        progress((k + 1) / len(plan))
                del x, lp, feats

    t0 = time.perf_counter()
    greedy = greedy_decode(log_probs, model.vocab, frame_seconds)
    timings["greedy"] = _ms(t0)
    beam: list[Hypothesis] = []
    if opts.decoder == "beam":
        t0 = time.perf_counter()
        decoder = _beam_decoder(model.vocab, settings, frame_seconds, str(device))
        if len(plan) == 1:
            beam = list(decoder(torch.from_numpy(log_probs)))
        else:
            # One search over an hour keeps every frame's hypotheses (gigabytes): search
            # window-sized segments cut at pauses instead.
            target = window // stride
            segments = beam_segments(log_probs, model.vocab, target, target // 3)
            beam = _beam_long(decoder, log_probs, model.vocab, frame_seconds, opts.nbest, segments)
        timings["beam"] = _ms(t0)
    timings["total"] = _ms(t_start)
    return Transcription(
        duration=n / SAMPLE_RATE,
        audio=samples,
        features=features,
        log_probs=log_probs,
        frame_seconds=frame_seconds,
        vocab=model.vocab,
        greedy=greedy,
        beam=beam,
        timings=timings,
        options=opts,
        windows=len(plan),
        decoder_settings=settings,
        model_name=model.name,
        source=os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else None,
    )
