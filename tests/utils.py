"""Helpers shared by the tests: tiny models and speech made on the spot (nothing downloaded)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ds2.audio import SAMPLE_RATE, load_audio, save_wav
from ds2.checkpoint import save_pretrained
from ds2.features import FeatureConfig
from ds2.model import ConvSpec, DeepSpeech2, ModelConfig
from ds2.vocab import Vocabulary


def tiny_config(vocab_size: int = 29, n_features: int = 201) -> ModelConfig:
    """A ds2-small-shaped model small enough to train in seconds (stride 2 in time)."""
    return ModelConfig(
        name="tiny",
        n_features=n_features,
        convs=(
            ConvSpec(4, kernel=(11, 11), stride=(2, 2), padding=(5, 5)),
            ConvSpec(4, kernel=(11, 5), stride=(2, 1), padding=(5, 2)),
        ),
        rnn_type="lstm",
        rnn_layers=1,
        rnn_hidden=32,
        vocab_size=vocab_size,
    )


def make_tiny_checkpoint(folder: Path, seed: int = 0, **training) -> Path:
    """An untrained tiny model saved in ds2 checkpoint format."""
    import torch

    torch.manual_seed(seed)
    model = DeepSpeech2(tiny_config()).eval()
    return save_pretrained(folder, model, FeatureConfig(), Vocabulary(), training=training)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, path: Path, voice: str = "en-us", speed: int = 160) -> Path:
    """Synthesize ``text`` with espeak-ng into a 16-kHz wav at ``path``."""
    if not have_espeak():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    save_wav(path, load_audio(raw))
    raw.unlink()
    return path


def tone(seconds: float, freq: float = 440.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
