"""Training data: manifest rows -> filtered utterances -> length-bucketed batches of features.

The pipeline, per utterance (in DataLoader workers):

    audio file --load_audio--> waveform --[gain, noise]--> compute_features --[SpecAugment]-->
    features (n_bins, n_frames) + label ids

Batches are built by :class:`BucketBatchSampler`: utterances of similar length go together so
little compute is spent on padding, and a batch is capped by *padded seconds of audio*
(``batch_size * longest_utterance``), the quantity that sets its cost. Every random choice
(batch order, augmentation) is drawn from a generator seeded by ``(seed, epoch, index)``, so a
resumed run sees exactly the data it would have seen without the interruption.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ds2.audio import SAMPLE_RATE, load_audio
from ds2.errors import DS2Error
from ds2.features import FeatureConfig, compute_features, pad_features
from ds2.model import ModelConfig
from ds2.vocab import Vocabulary
from train.augment import speed_perturb


class DataError(DS2Error, ValueError):
    """A manifest is missing, malformed, or leaves no usable utterance."""


# ---------------------------------------------------------------------------------------------
# Manifests


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSONL manifest, audio paths resolved to absolute paths.

    Uses ``train.manifest.read_manifest`` when it is available, so both agree on the format:
    ``{"audio": path, "duration": seconds, "text": normalised text, "speaker": str}`` per line,
    relative audio paths being relative to the manifest's folder.
    """
    try:
        from train.manifest import read_manifest as _read
    except ImportError:
        _read = None
    if _read is not None:
        try:
            return _read(path)
        except DS2Error:
            raise
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"could not read manifest '{path}': {e}") from None
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: '{path}'")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio = Path(row["audio"])
            row["audio"] = str(audio if audio.is_absolute() else (path.parent / audio).resolve())
            row["duration"] = float(row["duration"])
            row["text"] = str(row["text"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}:{n}: not a manifest row ({e}): {line[:80]!r}") from None
        rows.append(row)
    return rows


def read_manifests(paths) -> list[dict]:
    rows = []
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        rows.extend(read_manifest(p))
    return rows


# ---------------------------------------------------------------------------------------------
# Filtering


def ctc_min_frames(ids: list[int]) -> int:
    """Fewest output frames CTC needs for ``ids``: one per label plus a blank between repeats."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def prepare_utterances(
    rows: list[dict],
    vocab: Vocabulary,
    feature_cfg: FeatureConfig,
    model_cfg: ModelConfig,
    *,
    min_duration: float = 0.0,
    max_duration: float = float("inf"),
) -> tuple[list[dict], Counter]:
    """Encode labels and drop utterances that cannot train.

    Returns ``(items, dropped)``: items are ``{"audio", "duration", "text", "ids"}`` dicts, in
    manifest order; ``dropped`` counts the reasons: ``"too_short"``, ``"too_long"``,
    ``"empty_text"``, ``"bad_chars"`` (characters outside the vocabulary) and
    ``"label_too_long"`` (more characters than the model emits frames, which CTC cannot align).
    """
    items, dropped = [], Counter()
    for row in rows:
        dur = float(row["duration"])
        text = row["text"]
        if dur < min_duration:
            dropped["too_short"] += 1
            continue
        if dur > max_duration:
            dropped["too_long"] += 1
            continue
        if not text.strip():
            dropped["empty_text"] += 1
            continue
        try:
            ids = vocab.encode(text)
        except ValueError:
            dropped["bad_chars"] += 1
            continue
        n_frames = feature_cfg.n_frames(int(round(dur * feature_cfg.sample_rate)))
        if ctc_min_frames(ids) > int(model_cfg.output_lengths(n_frames)):
            dropped["label_too_long"] += 1
            continue
        items.append({"audio": row["audio"], "duration": dur, "text": text, "ids": ids})
    return items, dropped


# ---------------------------------------------------------------------------------------------
# Augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Cheap waveform augmentation (training only)."""

    gain_db: float = 6.0  # random gain in [-gain_db, +gain_db] dB
    noise_prob: float = 0.5  # chance of adding white noise to an utterance
    noise_snr_db: tuple[float, float] = (10.0, 40.0)  # SNR range of that noise, dB
    speed_prob: float = 0.0  # chance of playing an utterance faster or slower, like a tape
    speed_range: tuple[float, float] = (0.9, 1.1)  # its speed factor, drawn uniformly


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment masks on the normalised features (training only); masked cells become 0."""

    freq_masks: int = 2
    freq_mask_max: int = 27  # bins (of 201)
    time_masks: int = 2
    time_mask_max: int = 40  # frames (10 ms each)
    time_mask_max_ratio: float = 0.1  # never mask more than this fraction of a short clip per mask


def augment_waveform(audio: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random speed (with ``cfg.speed_prob``), gain, then white noise at a random SNR.

    audio : np.ndarray, shape = (n_samples,), float32. A speed change resamples like a tape
    (Kaldi's speed perturbation): tempo, pitch and formants move together, so the clip becomes
    a new pseudo-talker, and its length becomes ``n_samples / factor``.
    """
    if cfg.speed_prob > 0 and rng.random() < cfg.speed_prob:
        audio = speed_perturb(audio, float(rng.uniform(*cfg.speed_range)))
    audio = audio * np.float32(10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20))
    if rng.random() < cfg.noise_prob:
        snr = rng.uniform(*cfg.noise_snr_db)
        power = float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
        sigma = math.sqrt(power / 10 ** (snr / 10))
        audio = audio + rng.normal(0.0, sigma, size=audio.shape).astype(np.float32)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)


def spec_augment(
    features: torch.Tensor, cfg: SpecAugmentConfig, rng: np.random.Generator
) -> torch.Tensor:
    """Frequency and time masks (Park et al. 2019), in place.

    features : torch.Tensor, shape = (n_bins, n_frames)
    """
    n_bins, n_frames = features.shape
    for _ in range(cfg.freq_masks):
        w = int(rng.integers(0, cfg.freq_mask_max + 1))
        f0 = int(rng.integers(0, max(1, n_bins - w)))
        features[f0 : f0 + w, :] = 0.0
    t_max = min(cfg.time_mask_max, int(cfg.time_mask_max_ratio * n_frames))
    for _ in range(cfg.time_masks):
        w = int(rng.integers(0, t_max + 1))
        t0 = int(rng.integers(0, max(1, n_frames - w)))
        features[:, t0 : t0 + w] = 0.0
    return features


# ---------------------------------------------------------------------------------------------
# Dataset


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances -> features and label ids.

    Indexed by ``(epoch, index)`` pairs (what :class:`BucketBatchSampler` yields) or plain ints:
    the epoch seeds the augmentation, so an utterance is augmented differently every epoch but
    identically across runs and resumes.
    """

    def __init__(
        self,
        items: list[dict],
        feature_cfg: FeatureConfig,
        *,
        augment: AugmentConfig | None = None,
        spec_augment: SpecAugmentConfig | None = None,
        seed: int = 0,
    ):
        self.items = items
        self.feature_cfg = feature_cfg
        self.augment = augment
        self.spec_augment = spec_augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key):
        epoch, idx = key if isinstance(key, tuple) else (0, key)
        item = self.items[idx]
        try:
            audio = load_audio(item["audio"], allow_silence=True)
        except DS2Error as e:
            # One unreadable file must not kill a days-long run: collate drops it and counts it.
            return {"index": idx, "error": str(e)}
        rng = np.random.default_rng((self.seed, epoch, idx))
        if self.augment is not None:
            audio = augment_waveform(audio, self.augment, rng)
        feats = compute_features(audio, self.feature_cfg)
        if self.spec_augment is not None:
            feats = spec_augment(feats, self.spec_augment, rng)
        return {
            "index": idx,
            "features": feats,
            "ids": torch.tensor(item["ids"], dtype=torch.long),
            "text": item["text"],
            "seconds": len(audio) / SAMPLE_RATE,
        }


@dataclass
class Batch:
    features: torch.Tensor  # (batch, n_bins, max_frames), zero-padded
    lengths: torch.Tensor  # (batch,) valid feature frames
    targets: torch.Tensor  # (sum of label lengths,) concatenated label ids
    target_lengths: torch.Tensor  # (batch,)
    texts: list[str]
    indices: list[int]
    seconds: float  # audio seconds in the batch (unpadded)
    errors: list[str]  # files that could not be read and were dropped

    def __len__(self) -> int:
        return len(self.texts)


def collate(samples: list[dict]) -> Batch:
    ok = [s for s in samples if "features" in s]
    errors = [s["error"] for s in samples if "error" in s]
    if not ok:
        empty = torch.zeros(0, dtype=torch.long)
        return Batch(torch.zeros(0, 0, 0), empty, empty, empty, [], [], 0.0, errors)
    feats, lengths = pad_features([s["features"] for s in ok])
    return Batch(
        features=feats,
        lengths=lengths,
        targets=torch.cat([s["ids"] for s in ok]),
        target_lengths=torch.tensor([len(s["ids"]) for s in ok], dtype=torch.long),
        texts=[s["text"] for s in ok],
        indices=[s["index"] for s in ok],
        seconds=float(sum(s["seconds"] for s in ok)),
        errors=errors,
    )


# ---------------------------------------------------------------------------------------------
# Sampling


class BucketBatchSampler(torch.utils.data.Sampler):
    """Length-bucketed batches capped by padded seconds of audio, with SortaGrad.

    Epoch 0 (with ``sortagrad``) runs shortest-first: CTC learns alignments on short clips
    before it meets long ones (Amodei et al. 2016). Later epochs sort by a jittered duration, so
    batches change from epoch to epoch while staying length-homogeneous, and shuffle the batch
    order. Each batch holds at most ``max_batch_size`` utterances and at most ``batch_seconds``
    of *padded* audio (``n * longest``).

    With ``world_size > 1`` every rank builds the same global batch list and takes every
    ``world_size``-th batch; the list is padded by repeating its first batches so all ranks run
    the same number of steps. ``set_epoch(epoch, start_batch)`` selects the epoch and skips the
    batches a resumed run has already trained on.

    Yields lists of ``(epoch, index)`` pairs.
    """

    def __init__(
        self,
        durations,
        batch_seconds: float,
        max_batch_size: int = 10_000,
        *,
        shuffle: bool = True,
        sortagrad: bool = True,
        jitter: float = 0.15,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        if batch_seconds <= 0:
            raise ValueError("batch_seconds must be positive")
        self.batch_seconds = batch_seconds
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.sortagrad = sortagrad
        self.jitter = jitter
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def global_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of ``epoch`` across all ranks, in training order."""
        rng = np.random.default_rng((self.seed, epoch, 0xBA7C))
        randomize = self.shuffle and not (self.sortagrad and epoch == 0)
        keys = self.durations
        if randomize and self.jitter > 0:
            keys = keys * (1.0 + self.jitter * rng.uniform(-1.0, 1.0, size=len(keys)))
        order = np.argsort(keys, kind="stable")
        batches, cur, longest = [], [], 0.0
        for i in order:
            d = self.durations[i]
            new_longest = max(longest, d)
            if cur and (
                (len(cur) + 1) * new_longest > self.batch_seconds or len(cur) >= self.max_batch_size
            ):
                batches.append(cur)
                cur, new_longest = [], d
            cur.append(int(i))
            longest = new_longest
        if cur:
            batches.append(cur)
        if randomize:
            perm = rng.permutation(len(batches))
            batches = [batches[j] for j in perm]
        return batches

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``."""
        batches = self.global_batches(epoch)
        if self.world_size > 1:
            n = math.ceil(len(batches) / self.world_size) * self.world_size
            batches = batches + batches[: n - len(batches)]
            batches = batches[self.rank :: self.world_size]
        return batches

    def __iter__(self):
        for batch in self.batches(self.epoch)[self.start_batch :]:
            yield [(self.epoch, i) for i in batch]

    def epoch_length(self) -> int:
        """This rank's batches in a whole epoch (``len`` counts only those left after a skip)."""
        return math.ceil(len(self.global_batches(self.epoch)) / self.world_size)

    def __len__(self) -> int:
        return self.epoch_length() - self.start_batch
