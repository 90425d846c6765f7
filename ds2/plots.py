"""Pictures of what the model hears and says: spectrogram and per-frame CTC posteriors.

Every figure puts time in seconds on the x axis with the same figure width and the same axes
margins, so the spectrogram and the posterior heatmap line up column for column whether they
are drawn as two images stacked on a page or as one figure with two shared-x axes
(:func:`combined_figure`). Long inputs are max-pooled over time down to at most
``MAX_COLUMNS`` image columns: the whole duration is always shown, and short events (a
character spike one frame wide) survive the downsampling because pooling keeps the maximum.

Figures are plain :class:`matplotlib.figure.Figure` objects drawn on the Agg canvas, without
pyplot's global state, so a web server may draw several at once from different threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .audio import SAMPLE_RATE

FIG_WIDTH = 12.0  # inches; 1200 px at DPI
DPI = 100  # pixels per inch of saved PNGs
SPEC_HEIGHT = 3.0  # inches, spectrogram panel
POST_HEIGHT = 3.6  # inches, posterior panel (29 character rows)
AXES_LEFT = 0.07  # figure fraction where every time axis starts
AXES_RIGHT = 0.895  # figure fraction where every time axis ends
CBAR_LEFT = 0.91  # figure fraction of the colour bar's left edge
CBAR_WIDTH = 0.012  # figure fraction
MAX_COLUMNS = 2000  # image columns drawn at most; longer inputs are max-pooled over time
MAX_WORD_LABELS = 80  # more words than this: boundaries drawn, labels left out (unreadable)
LABEL_CHAR_PX = 5.5  # width of one character of an 8-pt word label, pixels
DB_RANGE = 80.0  # dB shown below the loudest bin
N_FFT = 400  # 25 ms at 16 kHz, as the model's features
HOP = 160  # 10 ms at 16 kHz
CHUNK_SECONDS = 60.0  # audio processed per STFT chunk, bounds memory for hour-long inputs

TOKEN_LABELS = {"<blank>": "\u2205 blank", " ": "\u2423 space"}  # readable row names


def pool_time(x: np.ndarray, factor: int) -> np.ndarray:
    """Max over groups of ``factor`` frames along the last axis; a short last group is kept.

    x : np.ndarray, shape = (n_rows, n_frames)
    returns : np.ndarray, shape = (n_rows, ceil(n_frames / factor))
    """
    if factor <= 1:
        return x
    n_frames = x.shape[-1]
    n_cols = math.ceil(n_frames / factor)
    pad = n_cols * factor - n_frames
    if pad:
        # pad with the row minimum so the padding never wins the max
        fill = x.min(axis=-1, keepdims=True)
        x = np.concatenate([x, np.broadcast_to(fill, (*x.shape[:-1], pad))], axis=-1)
    return x.reshape(*x.shape[:-1], n_cols, factor).max(axis=-1)  # (rows, cols, f) -> (rows, cols)


def max_pool_time(x: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, int]:
    """Max-pool the last (time) axis so that it has at most ``max_columns`` columns.

    x : np.ndarray, shape = (n_rows, n_frames)
    returns : (pooled, factor) with pooled shape = (n_rows, ceil(n_frames / factor)); column j
        is the maximum over frames ``[j * factor, (j + 1) * factor)``. The last column may pool
        fewer frames: nothing is cut off.
    """
    factor = max(1, math.ceil(x.shape[-1] / max_columns))
    return pool_time(x, factor), factor


def spectrogram_db(
    audio,
    sample_rate: int = SAMPLE_RATE,
    *,
    n_samples: int | None = None,
    n_fft: int = N_FFT,
    hop: int = HOP,
    max_columns: int = MAX_COLUMNS,
) -> tuple[np.ndarray, float]:
    """Power spectrogram in dB (0 dB = loudest bin), max-pooled over time for display.

    audio : np.ndarray, shape = (n_samples,), float32, or an iterable of such blocks (a file
        streamed from disk); blocks need ``n_samples``, the total length, to plan the pooling
    returns : (db, seconds_per_column) with db shape = (n_fft // 2 + 1, n_columns), values in
        [-DB_RANGE, 0]. Frame ``t`` is centred on sample ``t * hop`` (as torch.stft(center=True),
        with zero padding at the edges).

    The STFT runs over chunks of about ``CHUNK_SECONDS`` whose frame count is a multiple of the
    pooling factor, so an hour of audio never holds more than a chunk's full spectrogram.
    """
    import torch

    if isinstance(audio, np.ndarray):
        n = len(audio)
        blocks = [audio.reshape(-1)]
    else:
        if n_samples is None:
            raise ValueError("audio given as blocks needs n_samples")
        n, blocks = int(n_samples), audio
    n_frames = n // hop + 1
    factor = max(1, math.ceil(n_frames / max_columns))
    chunk_frames = max(1, int(CHUNK_SECONDS * sample_rate / hop) // factor) * factor
    half = n_fft // 2
    window = torch.hamming_window(n_fft, periodic=True)

    def padded():  # the samples of the padded signal, exactly n of them between the pads
        yield np.zeros(half, dtype=np.float32)
        got = 0
        for b in blocks:
            b = np.asarray(b, dtype=np.float32).reshape(-1)[: n - got]
            got += len(b)
            yield b
            if got >= n:
                break
        yield np.zeros(n - got + half, dtype=np.float32)

    columns = []
    buf, buf_start, f0 = np.zeros(0, dtype=np.float32), 0, 0  # buf[0] is padded sample buf_start
    for piece in padded():
        buf = np.concatenate([buf, piece]) if len(buf) else piece
        while f0 < n_frames:
            f1 = min(f0 + chunk_frames, n_frames)
            need = (f1 - 1) * hop + n_fft  # end of the last frame's window, padded samples
            if buf_start + len(buf) < need:
                break
            seg = np.ascontiguousarray(buf[f0 * hop - buf_start : need - buf_start])
            seg = torch.from_numpy(seg)
            spec = torch.stft(
                seg, n_fft, hop, n_fft, window=window, center=False, return_complex=True
            )  # (n_bins, f1 - f0)
            columns.append(pool_time(spec.abs().square_().numpy(), factor))
            f0 = f1
            drop = f0 * hop - buf_start
            buf, buf_start = buf[drop:], buf_start + drop
    power = np.concatenate(columns, axis=-1)
    db = 10.0 * np.log10(np.maximum(power, 1e-20))
    db = np.maximum(db - db.max(), -DB_RANGE)
    return db.astype(np.float32), factor * hop / sample_rate


def _new_figure(height: float) -> Figure:
    fig = Figure(figsize=(FIG_WIDTH, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _panel_axes(fig: Figure, bottom: float, height: float, **kw):
    """An axes spanning the shared time-axis margins, and its colour bar axes to the right."""
    ax = fig.add_axes((AXES_LEFT, bottom, AXES_RIGHT - AXES_LEFT, height), **kw)
    cax = fig.add_axes((CBAR_LEFT, bottom, CBAR_WIDTH, height))
    return ax, cax


def _draw_spectrogram(ax, cax, audio, sample_rate, duration, max_columns):
    n_samples = None if isinstance(audio, np.ndarray) else int(round(duration * sample_rate))
    db, col_seconds = spectrogram_db(
        audio, sample_rate, n_samples=n_samples, max_columns=max_columns
    )
    # column j covers [j, j + 1) * col_seconds, centred near the frames it pools
    x0 = -HOP / sample_rate / 2
    im = ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(x0, x0 + db.shape[1] * col_seconds, 0, sample_rate / 2),
        vmin=-DB_RANGE,
        vmax=0.0,
        interpolation="nearest" if db.shape[1] < 400 else "antialiased",
    )
    ax.set_xlim(0, duration)
    ax.set_ylabel("frequency (Hz)")
    cbar = ax.figure.colorbar(im, cax=cax)
    cbar.set_label("power (dB)")
    return col_seconds


def _draw_posteriors(ax, cax, log_probs, tokens_vocab, frame_seconds, duration, path, max_columns):
    probs = np.exp(np.asarray(log_probs, dtype=np.float32)).T  # (T', V) -> (V, T')
    n_rows, n_frames = probs.shape
    pooled, factor = max_pool_time(probs, max_columns)
    x0 = -frame_seconds / 2
    im = ax.imshow(
        pooled,
        origin="upper",
        aspect="auto",
        cmap="viridis",
        extent=(x0, x0 + pooled.shape[1] * factor * frame_seconds, n_rows - 0.5, -0.5),
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    if factor == 1 and n_frames:
        # the greedy path: the most likely symbol of every frame, as a step line
        best = probs.argmax(axis=0)
        t = np.arange(n_frames) * frame_seconds
        ax.step(t, best, where="mid", color="white", linewidth=0.6, alpha=0.55)
    if path is not None and len(path[0]):
        ids, steps = path
        ax.scatter(
            np.asarray(steps) * frame_seconds,
            ids,
            s=14 if factor == 1 else 4,
            facecolors="none",
            edgecolors="#ff4f4f",
            linewidths=0.9,
            zorder=3,
        )
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([TOKEN_LABELS.get(t, t) for t in tokens_vocab], fontsize=6.5)
    ax.set_xlim(0, duration)
    ax.set_ylim(n_rows - 0.5, -0.5)
    cbar = ax.figure.colorbar(im, cax=cax)
    cbar.set_label("posterior probability")
    return factor


def _draw_words(ax, words, *, labels: bool, color="white"):
    """Word boundaries as vertical lines; the words as labels above the axes."""
    if not words:
        return
    starts = [w.start for w in words]
    ends = [w.end for w in words]
    lw = 0.8 if len(words) <= MAX_WORD_LABELS else 0.3
    ax.vlines(
        starts, 0, 1, transform=ax.get_xaxis_transform(), colors=color, linewidth=lw, alpha=0.8
    )
    ax.vlines(
        ends,
        0,
        1,
        transform=ax.get_xaxis_transform(),
        colors=color,
        linewidth=lw,
        linestyles="dashed",
        alpha=0.5,
    )
    if labels and len(words) <= MAX_WORD_LABELS:
        # A label may use its word's span plus half of the gaps to its neighbours; longer
        # words are shortened with an ellipsis rather than drawn over each other.
        x_min, x_max = ax.get_xlim()
        px_per_s = ax.get_position().width * ax.figure.get_figwidth() * DPI / (x_max - x_min)
        mids = [(w.start + w.end) / 2 for w in words]
        for i, w in enumerate(words):
            left = (mids[i] - mids[i - 1]) / 2 if i else mids[i] - x_min
            right = (mids[i + 1] - mids[i]) / 2 if i + 1 < len(words) else x_max - mids[i]
            n_chars = int(2 * min(left, right) * px_per_s / LABEL_CHAR_PX)
            if n_chars < 1:
                continue
            text = w.word if len(w.word) <= n_chars else w.word[: max(n_chars - 1, 1)] + "\u2026"
            ax.text(
                mids[i],
                1.01,
                text,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                clip_on=False,
            )


def _time_label(ax, pooled_seconds=None):
    label = "time (s)"
    if pooled_seconds:
        label += f"   [long input: each column is the maximum over {pooled_seconds * 1000:.0f} ms]"
    ax.set_xlabel(label)


def _audio_duration(audio, sample_rate, duration):
    if duration is not None:
        return float(duration)
    if not isinstance(audio, np.ndarray):
        raise ValueError("audio given as blocks needs duration=")
    return len(audio) / sample_rate


def _greedy_path(hypothesis):
    if hypothesis is None:
        return None
    return list(hypothesis.tokens), list(hypothesis.timesteps)


def spectrogram_figure(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    words=None,
    duration: float | None = None,
    title: str | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Figure:
    """Spectrogram: seconds on x, Hz on y, a dB colour bar; optional word boundaries.

    audio : np.ndarray, shape = (n_samples,), float32 at ``sample_rate``, or an iterable of
        such blocks (a long file streamed from disk; then ``duration`` is required)
    words : list of ds2.decoding.Word, optional
    duration : seconds on the x axis (default: the length of ``audio``)
    """
    duration = _audio_duration(audio, sample_rate, duration)
    fig = _new_figure(SPEC_HEIGHT)
    ax, cax = _panel_axes(fig, 0.16, 0.70)
    col_seconds = _draw_spectrogram(ax, cax, audio, sample_rate, duration, max_columns)
    _draw_words(ax, words, labels=True)
    _time_label(ax, col_seconds if col_seconds > HOP / sample_rate else None)
    if title:
        ax.set_title(title, fontsize=10, loc="left", pad=14 if words else 4)
    return fig


def posterior_figure(
    log_probs: np.ndarray,
    vocab,
    frame_seconds: float = 0.02,
    *,
    greedy=None,
    words=None,
    duration: float | None = None,
    title: str | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Figure:
    """CTC posterior heatmap: one row per symbol (blank included), one column per output frame.

    log_probs : np.ndarray, shape = (n_frames, vocab_size), per-frame log-probabilities
    vocab : ds2.vocab.Vocabulary (row names)
    greedy : ds2.decoding.Hypothesis, optional; its emitted tokens are circled, and for inputs
        short enough to draw frame by frame the per-frame argmax is drawn as a line
    words : list of ds2.decoding.Word, optional; boundaries drawn as lines, words as labels
    duration : seconds on the x axis (default: ``n_frames * frame_seconds``)
    """
    log_probs = np.asarray(log_probs)
    duration = duration if duration is not None else log_probs.shape[0] * frame_seconds
    fig = _new_figure(POST_HEIGHT)
    ax, cax = _panel_axes(fig, 0.13, 0.76)
    factor = _draw_posteriors(
        ax,
        cax,
        log_probs,
        vocab.tokens,
        frame_seconds,
        duration,
        _greedy_path(greedy),
        max_columns,
    )
    _draw_words(ax, words, labels=True)
    _time_label(ax, factor * frame_seconds if factor > 1 else None)
    if title:
        ax.set_title(title, fontsize=10, loc="left", pad=14 if words else 4)
    return fig


def combined_figure(
    audio: np.ndarray,
    log_probs: np.ndarray,
    vocab,
    frame_seconds: float = 0.02,
    *,
    sample_rate: int = SAMPLE_RATE,
    greedy=None,
    words=None,
    duration: float | None = None,
    title: str | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Figure:
    """Spectrogram above posteriors in one figure, the two axes sharing the time axis.

    Same inputs as :func:`spectrogram_figure` and :func:`posterior_figure`.
    """
    duration = _audio_duration(audio, sample_rate, duration)
    height = SPEC_HEIGHT + POST_HEIGHT
    fig = _new_figure(height)
    # Heights in inches converted to figure fractions so each panel keeps its own look.
    bottom_post = 0.45 / height
    h_post = (POST_HEIGHT - 0.55) / height
    bottom_spec = bottom_post + h_post + 0.15 / height
    h_spec = (SPEC_HEIGHT - 0.55) / height
    ax_post, cax_post = _panel_axes(fig, bottom_post, h_post)
    ax_spec, cax_spec = _panel_axes(fig, bottom_spec, h_spec, sharex=ax_post)
    col_seconds = _draw_spectrogram(ax_spec, cax_spec, audio, sample_rate, duration, max_columns)
    _draw_posteriors(
        ax_post,
        cax_post,
        log_probs,
        vocab.tokens,
        frame_seconds,
        duration,
        _greedy_path(greedy),
        max_columns,
    )
    ax_spec.tick_params(labelbottom=False)
    _draw_words(ax_spec, words, labels=True)
    _draw_words(ax_post, words, labels=False)
    _time_label(ax_post, col_seconds if col_seconds > HOP / sample_rate else None)
    if title:
        ax_spec.set_title(title, fontsize=10, loc="left", pad=14 if words else 4)
    return fig


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``DPI`` and free it. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()
    return path
