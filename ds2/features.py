"""Log-spectrogram features, computed with torch so the CPU and the GPU share one code path.

The settings are a :class:`FeatureConfig` stored in every checkpoint. With the defaults a
16-kHz clip gives 201 frequency bins (25 ms window, n_fft 400) every 10 ms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .audio import SAMPLE_RATE
from .errors import AudioError


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE  # Hz
    n_fft: int = 400  # 25 ms at 16 kHz -> n_fft // 2 + 1 = 201 frequency bins
    win_length: int = 400  # 25 ms analysis window
    hop_length: int = 160  # 10 ms between frames
    window: str = "hamming"  # periodic window, as librosa/scipy "fftbins=True"
    pad_mode: str = "reflect"  # how torch.stft(center=True) pads the edges
    normalize: str = "utterance"  # "utterance": per-bin mean/std over the clip; "none"

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frame_seconds(self) -> float:
        """Seconds between two feature frames (10 ms)."""
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def n_frames(self, n_samples: int | torch.Tensor):
        """Feature frames for ``n_samples`` samples (torch.stft with center=True)."""
        return n_samples // self.hop_length + 1


_WINDOWS = {
    "hamming": torch.hamming_window,
    "hann": torch.hann_window,
}


def _window(cfg: FeatureConfig, device) -> torch.Tensor:
    try:
        return _WINDOWS[cfg.window](cfg.win_length, periodic=True, device=device)
    except KeyError:
        raise ValueError(f"unknown window {cfg.window!r}; choose from {sorted(_WINDOWS)}") from None


def magnitude_spectrogram(audio: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """|STFT| of ``audio``.

    audio : torch.Tensor, shape = (n_samples,) or (batch, n_samples), float32
    returns : torch.Tensor, shape = (n_bins, n_frames) or (batch, n_bins, n_frames)
    """
    if audio.ndim not in (1, 2) or audio.shape[-1] <= cfg.n_fft // 2:
        # center=True reflect-pads n_fft // 2 samples per side, which needs more samples than that.
        raise AudioError(
            f"cannot compute features of audio shaped {tuple(audio.shape)}: expected "
            f"(n_samples,) or (batch, n_samples) with more than {cfg.n_fft // 2} samples"
        )
    spec = torch.stft(
        audio.float(),
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg, audio.device),
        center=True,
        pad_mode=cfg.pad_mode,
        return_complex=True,
    )
    return spec.abs()


def log_spectrogram(audio: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """log(1 + |STFT|), the un-normalised feature. Same shapes as :func:`magnitude_spectrogram`."""
    return torch.log1p(magnitude_spectrogram(audio, cfg))


def normalize(spec: torch.Tensor, cfg: FeatureConfig, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance normalisation: each frequency bin to zero mean and unit variance over time.

    spec : torch.Tensor, shape = (n_bins, n_frames) for ONE utterance (no padding)
    """
    if cfg.normalize == "none":
        return spec
    if cfg.normalize != "utterance":
        raise ValueError(f"unknown normalisation {cfg.normalize!r}")
    mean = spec.mean(dim=-1, keepdim=True)
    std = spec.std(dim=-1, keepdim=True, unbiased=False)
    return (spec - mean) / (std + eps)


def compute_features(audio, cfg: FeatureConfig, device=None) -> torch.Tensor:
    """Model input features of one utterance.

    audio : np.ndarray | torch.Tensor, shape = (n_samples,), float32 at cfg.sample_rate
    returns : torch.Tensor, shape = (n_bins, n_frames), float32
    """
    wave = torch.as_tensor(audio, dtype=torch.float32, device=device)
    return normalize(log_spectrogram(wave, cfg), cfg)


def pad_features(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack utterances of different lengths into a zero-padded batch.

    feats : list of torch.Tensor, each shape = (n_bins, n_frames_i)
    returns : (features, lengths): features shape = (batch, n_bins, max_frames), lengths (batch,)
    """
    lengths = torch.tensor([f.shape[-1] for f in feats], dtype=torch.long)
    batch = feats[0].new_zeros(len(feats), feats[0].shape[0], int(lengths.max()))
    for i, f in enumerate(feats):
        batch[i, :, : f.shape[-1]] = f
    return batch, lengths
