"""Training pipeline for ds2: data (manifests, LibriSpeech, synthetic speech), training, LM, export.

Data side: :mod:`train.manifest` (the JSONL corpus format), :mod:`train.librispeech`,
:mod:`train.text_corpus` (sentences from Debian text packages), :mod:`train.synth` (a synthetic
corpus from espeak-ng, flite and festival), :mod:`train.augment` (waveform augmentation) and
:mod:`train.realspeech` (a small real human-speech dev set).
"""
