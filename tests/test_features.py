"""Log-spectrogram features, pinned against librosa's STFT."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from ds2.errors import AudioError
from ds2.features import (
    FeatureConfig,
    compute_features,
    log_spectrogram,
    normalize,
    pad_features,
)
from tests.utils import tone

SR = 16000  # Hz


def signal(n_samples: int, seed: int = 0) -> np.ndarray:
    """A 440-Hz tone with noise: every bin has some energy, so normalisation is well defined."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n_samples)).astype(
        np.float32
    )


def librosa_log_spec(y: np.ndarray, window: str = "hamming", n_fft: int = 400) -> np.ndarray:
    spec = librosa.stft(
        y,
        n_fft=n_fft,
        hop_length=160,
        win_length=n_fft,
        window=window,
        center=True,
        pad_mode="reflect",
    )
    return np.log1p(np.abs(spec))


def per_bin_normalised(spec: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return (spec - spec.mean(axis=1, keepdims=True)) / (spec.std(axis=1, keepdims=True) + eps)


def test_defaults_are_the_documented_settings():
    cfg = FeatureConfig()
    assert (cfg.sample_rate, cfg.n_fft, cfg.win_length, cfg.hop_length) == (16000, 400, 400, 160)
    assert cfg.n_bins == 201
    assert cfg.frame_seconds == pytest.approx(0.010)
    assert cfg.win_length / cfg.sample_rate == pytest.approx(0.025)
    assert FeatureConfig.from_dict({**cfg.to_dict(), "unknown_key": 1}) == cfg


# librosa warns when the clip is shorter than n_fft; the reflect-padded STFT is still defined.
@pytest.mark.filterwarnings("ignore:n_fft=400 is too large")
@pytest.mark.parametrize("n_samples", [201, 400, 401, 1234, 16000, 16159, 16160, 33333])
def test_log_spectrogram_matches_librosa(n_samples):
    y = signal(n_samples, seed=n_samples)
    ours = log_spectrogram(torch.from_numpy(y), FeatureConfig()).numpy()
    ref = librosa_log_spec(y)
    assert ours.shape == ref.shape == (201, n_samples // 160 + 1)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_samples", [400, 8000, 16000, 48000])
def test_features_match_librosa_with_per_bin_normalisation(n_samples):
    y = signal(n_samples, seed=1)
    feats = compute_features(y, FeatureConfig())
    assert feats.dtype == torch.float32
    np.testing.assert_allclose(feats.numpy(), per_bin_normalised(librosa_log_spec(y)), atol=2e-4)


def test_hann_window_and_other_fft_sizes_match_librosa():
    y = signal(8000)
    cfg = FeatureConfig(n_fft=512, win_length=512, window="hann", normalize="none")
    assert cfg.n_bins == 257
    ours = compute_features(y, cfg).numpy()
    np.testing.assert_allclose(ours, librosa_log_spec(y, "hann", 512), atol=1e-5, rtol=1e-5)


def test_each_bin_has_zero_mean_and_unit_variance():
    feats = compute_features(signal(32000), FeatureConfig())
    np.testing.assert_allclose(feats.mean(dim=1).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(feats.std(dim=1, unbiased=False).numpy(), 1, atol=1e-3)


def test_frame_count_formula_and_10ms_hop():
    cfg = FeatureConfig()
    for n in [201, 399, 400, 401, 559, 560, 1600, 16000, 16001, 160 * 997 + 159]:
        assert (
            compute_features(signal(n), cfg).shape == (201, cfg.n_frames(n)) == (201, n // 160 + 1)
        )
    lengths = torch.tensor([400, 16000, 16159])
    assert torch.equal(cfg.n_frames(lengths), torch.tensor([3, 101, 101]))
    # One second is 100 hops of 10 ms, plus the frame centred on the last sample.
    assert cfg.n_frames(SR) == round(1 / cfg.frame_seconds) + 1


def test_a_tone_lands_in_its_frequency_bin():
    cfg = FeatureConfig(normalize="none")
    for freq in (250.0, 1000.0, 3000.0, 7000.0):
        spec = compute_features(tone(0.5, freq=freq), cfg)
        bin_hz = SR / cfg.n_fft  # 40 Hz per bin
        assert int(spec.mean(dim=1).argmax()) == round(freq / bin_hz)


def test_inputs_numpy_torch_float64_and_batches_agree():
    cfg = FeatureConfig()
    y = signal(12345)
    ref = compute_features(y, cfg)
    assert torch.equal(compute_features(torch.from_numpy(y), cfg), ref)
    np.testing.assert_allclose(compute_features(y.astype(np.float64), cfg).numpy(), ref, atol=1e-6)

    batch = torch.stack([torch.from_numpy(signal(8000, s)) for s in range(3)])
    spec = log_spectrogram(batch, cfg)
    assert spec.shape == (3, 201, 51)
    for i in range(3):
        assert torch.allclose(spec[i], log_spectrogram(batch[i], cfg), atol=1e-6)


def test_silence_gives_finite_features():
    feats = compute_features(np.zeros(4000, dtype=np.float32), FeatureConfig())
    assert torch.isfinite(feats).all() and feats.abs().max() == 0


def test_too_short_or_misshapen_audio_is_a_clear_error():
    cfg = FeatureConfig()
    for bad in (np.zeros(0), np.zeros(200), np.zeros((2, 3, 500))):
        with pytest.raises(AudioError, match="cannot compute features"):
            compute_features(bad.astype(np.float32), cfg)


def test_unknown_settings_are_errors():
    with pytest.raises(ValueError, match="unknown window"):
        compute_features(signal(1000), FeatureConfig(window="kaiser"))
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(torch.zeros(201, 5), FeatureConfig(normalize="global"))


def test_pad_features():
    feats = [
        compute_features(signal(n, s), FeatureConfig()) for s, n in enumerate([800, 3200, 1600])
    ]
    batch, lengths = pad_features(feats)
    assert batch.shape == (3, 201, 21)
    assert lengths.tolist() == [6, 21, 11]
    for f, row, n in zip(feats, batch, lengths):
        assert torch.equal(row[:, :n], f)
        assert not row[:, n:].any()
