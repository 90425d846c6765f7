"""ds2: a DeepSpeech2 speech recognizer you can look into.

    >>> import ds2
    >>> m = ds2.load_model()                 # shipped default, a folder, or "org/name@rev"
    >>> r = ds2.transcribe(m, "clip.wav", decoder="beam")
    >>> r.text, r.words[0]
"""

from .audio import SAMPLE_RATE, load_audio
from .checkpoint import LoadedModel, load_folder, save_pretrained
from .errors import AudioError, CheckpointError, DecoderError, DS2Error
from .features import FeatureConfig, compute_features
from .model import PRESETS, DeepSpeech2, ModelConfig, preset
from .text import normalize_text
from .vocab import Vocabulary

# Hub access and transcription pull in huggingface_hub and the beam decoder: import them on
# first use so that `import ds2` (and the training code) stays light.
_LAZY = {
    "available_models": "hub",
    "load_model": "hub",
    "TranscribeOptions": "transcribe",
    "Transcription": "transcribe",
    "transcribe": "transcribe",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ds2' has no attribute {name!r}")


__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "CheckpointError",
    "DecoderError",
    "DS2Error",
    "DeepSpeech2",
    "FeatureConfig",
    "LoadedModel",
    "ModelConfig",
    "PRESETS",
    "TranscribeOptions",
    "Transcription",
    "Vocabulary",
    "available_models",
    "compute_features",
    "load_audio",
    "load_folder",
    "load_model",
    "normalize_text",
    "preset",
    "save_pretrained",
    "transcribe",
]
