"""ds2.plots: figures render to PNGs of a sane size, long inputs are pooled, not truncated."""

import numpy as np
import pytest
from PIL import Image

from ds2 import plots
from ds2.audio import SAMPLE_RATE
from ds2.decoding import Word, greedy_decode
from ds2.vocab import Vocabulary
from tests.utils import tone

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_log_probs(n_frames: int, vocab: Vocabulary, seed: int = 0) -> np.ndarray:
    """Peaky per-frame log-probabilities, mostly blank, as a trained CTC model gives."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (n_frames, len(vocab))).astype(np.float32)
    logits[:, 0] += 4.0  # blank dominates
    spikes = rng.random(n_frames) < 0.15
    logits[spikes, rng.integers(1, len(vocab), spikes.sum())] += 10.0
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def image_artists(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def check_png(path, width, height):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert im.size == (width, height)
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 10, "the image is blank"
    assert path.stat().st_size < 2_000_000


def test_max_pool_keeps_peaks_and_the_end():
    x = np.zeros((3, 10_001), dtype=np.float32)
    x[1, 5] = 1.0  # a one-frame spike
    x[2, -1] = 2.0  # the very last frame
    pooled, factor = plots.max_pool_time(x, max_columns=100)
    assert factor == 101 and pooled.shape == (3, 100)
    assert pooled[1, 0] == 1.0 and pooled[2, -1] == 2.0
    same, f1 = plots.max_pool_time(x[:, :50], max_columns=100)
    assert f1 == 1 and same.shape == (3, 50)


def test_spectrogram_db_matches_torch_stft():
    import torch

    audio = tone(1.0, freq=1000.0)
    db, col_seconds = plots.spectrogram_db(audio)
    spec = torch.stft(
        torch.from_numpy(audio), 400, 160, 400, window=torch.hamming_window(400),
        center=True, pad_mode="constant", return_complex=True,
    ).abs() ** 2  # fmt: skip
    ref = 10 * np.log10(np.maximum(spec.numpy(), 1e-20))
    ref = np.maximum(ref - ref.max(), -plots.DB_RANGE)
    assert db.shape == ref.shape == (201, 101)
    np.testing.assert_allclose(db, ref, atol=1e-3)
    assert col_seconds == pytest.approx(0.01)
    assert db[:, 50].argmax() * SAMPLE_RATE / 400 == pytest.approx(1000.0)


def test_spectrogram_from_blocks_equals_array():
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(SAMPLE_RATE * 75 + 37)).astype(np.float32)
    whole, s1 = plots.spectrogram_db(audio)
    blocks = (audio[i : i + 12_345] for i in range(0, len(audio), 12_345))
    streamed, s2 = plots.spectrogram_db(blocks, n_samples=len(audio))
    assert s1 == s2 and whole.shape == streamed.shape
    assert whole.shape[1] <= plots.MAX_COLUMNS
    np.testing.assert_allclose(whole, streamed, atol=1e-4)


def test_figures_render_to_png(tmp_path, speech_wav):
    from ds2.audio import load_audio

    vocab = Vocabulary()
    audio = load_audio(speech_wav)
    lp = fake_log_probs(len(audio) // 320 + 1, vocab)
    hyp = greedy_decode(lp, vocab)
    words = [Word("hello", 0.1, 0.5, 0.9), Word("world", 0.6, 1.1, 0.4)]

    fig = plots.spectrogram_figure(audio, words=words, title="t")
    spec = plots.save_png(fig, tmp_path / "s.png")
    post = plots.save_png(
        plots.posterior_figure(lp, vocab, greedy=hyp, words=words), tmp_path / "p.png"
    )
    comb = plots.save_png(
        plots.combined_figure(audio, lp, vocab, greedy=hyp, words=words), tmp_path / "c.png"
    )
    width = int(plots.FIG_WIDTH * plots.DPI)
    check_png(spec, width, int(plots.SPEC_HEIGHT * plots.DPI))
    check_png(post, width, int(plots.POST_HEIGHT * plots.DPI))
    check_png(comb, width, int((plots.SPEC_HEIGHT + plots.POST_HEIGHT) * plots.DPI))


def test_time_axes_line_up():
    """Spectrogram and posteriors share margins and x limits, so stacked images align."""
    vocab = Vocabulary()
    audio = tone(3.0)
    lp = fake_log_probs(150, vocab)
    spec = plots.spectrogram_figure(audio)
    post = plots.posterior_figure(lp, vocab, duration=3.0)
    comb = plots.combined_figure(audio, lp, vocab)
    ax_s, ax_p = spec.axes[0], post.axes[0]
    assert ax_s.get_xlim() == ax_p.get_xlim() == (0.0, 3.0)
    for a, b in [(ax_s, ax_p), (comb.axes[0], comb.axes[2])]:
        pa, pb = a.get_position(), b.get_position()
        assert pa.x0 == pytest.approx(pb.x0) and pa.x1 == pytest.approx(pb.x1)
    assert comb.axes[0].get_xlim() == comb.axes[2].get_xlim() == (0.0, 3.0)


def test_posteriors_rows_are_the_vocabulary():
    vocab = Vocabulary()
    lp = fake_log_probs(200, vocab)
    fig = plots.posterior_figure(lp, vocab, greedy=greedy_decode(lp, vocab))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(vocab) and "blank" in labels[0] and labels[3] == "a"
    (im,) = image_artists(fig)
    assert im.get_array().shape == (len(vocab), 200)
    np.testing.assert_allclose(im.get_array().sum(axis=0), 1.0, rtol=1e-4)  # probabilities


def test_long_input_is_downsampled_not_truncated():
    """An hour of output frames: at most MAX_COLUMNS image columns covering the full hour."""
    vocab = Vocabulary()
    frame = 0.02
    n = int(3600 / frame)  # one hour of 20-ms frames
    lp = np.full((n, len(vocab)), np.log(1e-4), dtype=np.float32)
    lp[:, 0] = 0.0
    lp[n - 1, 5] = 0.0  # a character in the very last frame
    fig = plots.posterior_figure(lp, vocab, frame, duration=n * frame)
    (im,) = image_artists(fig)
    data = im.get_array()
    assert data.shape[1] <= plots.MAX_COLUMNS
    x0, x1 = im.get_extent()[:2]
    assert x0 <= 0.0 and x1 >= n * frame - frame
    assert fig.axes[0].get_xlim() == (0.0, n * frame)
    assert data[5, -1] == pytest.approx(1.0)  # the last frame's spike survived the pooling
    assert "maximum over" in fig.axes[0].get_xlabel()


def test_long_audio_spectrogram_covers_the_duration(tmp_path):
    seconds = 600.0
    audio = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    audio[-SAMPLE_RATE:] = tone(1.0)  # sound only in the last second
    fig = plots.spectrogram_figure(audio)
    (im,) = image_artists(fig)
    data = im.get_array()
    assert data.shape[1] <= plots.MAX_COLUMNS
    assert im.get_extent()[1] >= seconds - 0.01
    assert fig.axes[0].get_xlim() == (0.0, seconds)
    assert data[:, -1].max() > -10 and data[:, 0].max() == -plots.DB_RANGE
    check_png(plots.save_png(fig, tmp_path / "long.png"), 1200, 300)


def test_word_labels_fit_or_are_left_out():
    vocab = Vocabulary()
    lp = fake_log_probs(500, vocab)
    few = [Word("hello", 1.0, 1.6, 0.9), Word("world", 2.0, 2.5, 0.8)]
    fig = plots.posterior_figure(lp, vocab, words=few)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["hello", "world"]
    many = [Word(f"w{i}", i * 0.1, i * 0.1 + 0.05, 0.5) for i in range(plots.MAX_WORD_LABELS + 1)]
    fig = plots.posterior_figure(lp, vocab, words=many)
    assert len(fig.axes[0].texts) == 0 and len(fig.axes[0].collections) >= 2  # lines, no labels


def test_blocks_need_a_duration():
    with pytest.raises(ValueError, match="duration"):
        plots.spectrogram_figure(iter([tone(1.0)]))
