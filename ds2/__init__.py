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
from .hub import available_models, load_model
from .model import PRESETS, DeepSpeech2, ModelConfig, preset
from .text import normalize_text

# Bound after the submodule is imported, so `ds2.transcribe` is the function, as in whisper.
from .transcribe import TranscribeOptions, Transcription, transcribe
from .vocab import Vocabulary

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
