"""Checkpoints in Hugging Face Hub layout: a folder with ``config.json`` + ``model.safetensors``.

``config.json``::

    {
      "format": "ds2", "format_version": 1,
      "model":    {...ModelConfig...},
      "features": {...FeatureConfig...},
      "vocab":    ["<blank>", " ", "'", "a", ..., "z"],
      "decoder":  {"lexicon": "lexicon.txt", "lm": "lm.bin", "lm_weight": 0.8, "word_score": 1.0},
      "training": {...free-form metadata: data, hours, steps, hardware, results...}
    }

``decoder`` is optional; its file names are relative to the folder. Weights are only ever
read with safetensors: a checkpoint holds no pickles. A corrupt or mismatched checkpoint raises
:class:`ds2.errors.CheckpointError` and nothing is half-loaded.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError
from .features import FeatureConfig
from .model import DeepSpeech2, ModelConfig
from .vocab import Vocabulary

FORMAT = "ds2"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class LoadedModel:
    """A model with everything needed to use it: features, vocabulary, decoder files."""

    model: DeepSpeech2
    feature_config: FeatureConfig
    vocab: Vocabulary
    config: dict  # the raw config.json
    folder: Path | None = None
    name: str = ""
    decoder_files: dict = field(default_factory=dict)  # {"lexicon": Path, "lm": Path}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def lm_path(self) -> Path | None:
        return self.decoder_files.get("lm")

    @property
    def lexicon_path(self) -> Path | None:
        return self.decoder_files.get("lexicon")

    @property
    def decoder_defaults(self) -> dict:
        """LM weight and word score tuned for this model (empty if none were tuned)."""
        d = self.config.get("decoder") or {}
        return {k: d[k] for k in ("lm_weight", "word_score") if k in d}

    def to(self, device) -> LoadedModel:
        self.model.to_device(device)
        return self


def build_config(
    model_cfg: ModelConfig,
    feature_cfg: FeatureConfig,
    vocab: Vocabulary,
    training: dict | None = None,
    decoder: dict | None = None,
) -> dict:
    cfg = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_cfg.to_dict(),
        "features": feature_cfg.to_dict(),
        "vocab": vocab.to_list(),
    }
    if decoder:
        cfg["decoder"] = decoder
    cfg["training"] = training or {}
    return cfg


def safetensors_bytes(state: dict, metadata: dict | None = None) -> bytes:
    """``state`` as safetensors bytes, the same bytes for the same tensors and metadata.

    safetensors writes ``__metadata__`` from a Rust hash map, whose key order changes from one
    call to the next; the header is rewritten here with its metadata keys sorted (and padded to
    the length it had, so the tensor offsets hold).
    """
    from safetensors.torch import save

    data = save(state, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:  # the same keys and values: never longer than what safetensors wrote
        raise AssertionError(f"safetensors header grew from {n} to {len(text)} bytes")
    return data[:8] + text.ljust(n, b" ") + data[8 + n :]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temporary file + rename), readable by all (0644)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make a published checkpoint private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_pretrained(
    folder: str | os.PathLike,
    model: DeepSpeech2,
    feature_cfg: FeatureConfig,
    vocab: Vocabulary,
    training: dict | None = None,
    decoder: dict | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` to ``folder`` (each file atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_NAME, safetensors_bytes(state, {"format": "pt"}))
    cfg = build_config(model.cfg, feature_cfg, vocab, training, decoder)
    atomic_write_bytes(folder / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
    return folder


def read_config(folder: str | os.PathLike) -> dict:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"'{folder}' is not a ds2 checkpoint: it has no {CONFIG_NAME}")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt: not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f'{path} is not a ds2 config (no "format": "ds2")')
    version = cfg.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} is corrupt: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {cfg['format_version']}, newer than this ds2 reads "
            f"({FORMAT_VERSION}); upgrade ds2"
        )
    return cfg


def fine_tuned_from(training: dict) -> str | None:
    """The checkpoint a run started from (``config["training"]["init_from"]``), or None.

    The trainer writes ``{"spec": ..., "name": ...}``; a bare string is taken as the spec. The
    run's steps, hours and data in ``training`` are then its own, not the model's whole history.
    """
    init = training.get("init_from")
    spec = init.get("spec") if isinstance(init, dict) else init
    return spec if isinstance(spec, str) and spec else None


def is_number(x) -> bool:
    """True for an int or float that is not a bool (JSON records may hold either)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def hardware_label(hw, full: bool = False) -> str:
    """Where a run trained, from its ``training["hardware"]`` record: the GPU, else "N CPU cores".

    ``full`` adds the CPU count beside a GPU, the platform and the torch version, and says
    "unknown" rather than "" when nothing is recorded.
    """
    if not isinstance(hw, dict):
        return (str(hw) if hw else "unknown") if full else ""
    cores = f"{hw['cpu_count']} CPU cores" if hw.get("cpu_count") else ""
    if not full:
        return hw.get("gpu") or cores
    torch_version = f"torch {hw['torch']}" if hw.get("torch") else ""
    parts = [hw.get("gpu"), cores, hw.get("platform"), torch_version]
    return ", ".join(p for p in parts if p) or "unknown"


_STAGE_KEYS = (
    "steps",
    "elapsed_hours",
    "audio_hours_seen",
    "train_hours",
    "precision",
    "best_valid_cer",
    "averaged_steps",
)


def stage_summary(training: dict) -> dict:
    """One training run's own figures from its ``training`` record, as a lineage entry.

    Keys: ``init_from`` (the spec it started from, or None) and, where the record has them,
    steps, elapsed_hours, audio_hours_seen, train_hours, precision, best_valid_cer,
    averaged_steps, ``lr`` (the peak learning rate: ``peak_lr``, else the configured one) and
    ``hardware`` (``gpu`` / ``cpu_count``).
    """
    out = {k: training[k] for k in _STAGE_KEYS if k in training}
    out["init_from"] = fine_tuned_from(training)
    cfg = training.get("config")
    if is_number(training.get("peak_lr")):  # the highest applied, whatever the last --lr was
        out["lr"] = training["peak_lr"]
    elif isinstance(cfg, dict) and is_number(cfg.get("lr")):  # a record from before peak_lr
        out["lr"] = cfg["lr"]
    hw = training.get("hardware")
    if isinstance(hw, dict):
        out["hardware"] = {k: hw[k] for k in ("gpu", "cpu_count") if hw.get(k)}
    return out


def training_stages(training: dict) -> list[dict]:
    """Every run that made these weights, oldest first, as :func:`stage_summary` entries.

    A fine-tune's record carries the runs before it under ``earlier_stages`` (the trainer copies
    them from its ``--init-from`` model); the last entry is the record's own run.
    """
    earlier = training.get("earlier_stages")
    earlier = [s for s in earlier if isinstance(s, dict)] if isinstance(earlier, list) else []
    return earlier + [stage_summary(training)]


def training_totals(training: dict, stages: list[dict] | None = None) -> dict:
    """The sums over :func:`training_stages`: ``stages`` and, where every stage has them,
    ``steps``, ``elapsed_hours`` and ``audio_hours_seen``. ``complete`` is False when the oldest
    stage known was itself a fine-tune of a model whose history was not recorded. ``stages``:
    ``training_stages(training)``, if the caller has it already."""
    stages = training_stages(training) if stages is None else stages
    totals: dict = {"stages": len(stages), "complete": stages[0]["init_from"] is None}
    for key in ("steps", "elapsed_hours", "audio_hours_seen"):
        values = [s.get(key) for s in stages]
        if all(is_number(v) for v in values):
            totals[key] = sum(values)
    return totals


def _check_features(cfg: FeatureConfig) -> None:
    """Raise ValueError for feature settings that compute_features cannot honour."""
    from .features import _WINDOWS

    for name in ("sample_rate", "n_fft", "win_length", "hop_length"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"features.{name} must be a positive integer, got {value!r}")
    if cfg.win_length > cfg.n_fft:
        raise ValueError(f"features.win_length {cfg.win_length} exceeds n_fft {cfg.n_fft}")
    if cfg.window not in _WINDOWS:
        raise ValueError(f"features.window {cfg.window!r} is not one of {sorted(_WINDOWS)}")
    if cfg.normalize not in ("utterance", "none"):
        raise ValueError(f"features.normalize {cfg.normalize!r} is not 'utterance' or 'none'")


QUANT_SCALE = ".q_scale"  # suffix of a quantized weight's float32 scales, one per row
QUANT_SHAPE = ".q_shape"  # suffix of its int64 [bits, *shape]; the weight itself is packed bits


def quantize_weights(
    state: dict[str, torch.Tensor], bits: int = 8, finer: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """Weights for storage in ``bits``-bit integers (2-8): ``bits`` / 32 of float32's size.

    Weights whose names start with one of ``finer`` take one bit more (at most 8): the
    recurrent matrices, whose rounding errors compound over the frames, are worth the bytes.

    Each floating tensor of two or more dimensions (linear, recurrent and conv weights) is
    rounded to ``q`` in ``[-L, L]``, ``L = 2 ** (bits - 1) - 1``, with one float32 scale per row
    (its first dimension: an output unit or channel), ``w ~= q * scale``, ``scale = max|row| / L``.
    The codes ``q + L`` are packed ``bits`` to a code into a uint8 vector under the weight's name,
    the scales go under ``NAME + QUANT_SCALE`` and ``[bits, *shape]`` under ``NAME +
    QUANT_SHAPE``. Vectors (biases, BatchNorm statistics) become float16; integers are kept.
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be 2-8, got {bits}")
    finer = tuple(finer)
    # only the tensors that are quantized at all (floating, two or more dimensions) count
    matched = {
        p for p in finer for k, v in state.items()
        if k.startswith(p) and v.is_floating_point() and v.dim() >= 2
    }  # fmt: skip
    if set(finer) - matched:
        raise ValueError(f"no weight is named like {', '.join(sorted(set(finer) - matched))}")
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v
        elif v.dim() < 2:
            out[k] = v.half()
        else:
            b = min(bits + 1, 8) if k.startswith(finer) else bits
            top = 2 ** (b - 1) - 1
            rows = v.detach().float().reshape(v.shape[0], -1)
            scale = rows.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / top
            codes = (torch.round(rows / scale[:, None]) + top).to(torch.uint8).numpy().ravel()
            planes = (codes[:, None] >> np.arange(b, dtype=np.uint8)) & 1  # (n, b)
            out[k] = torch.from_numpy(np.packbits(planes.ravel(), bitorder="little"))
            out[k + QUANT_SCALE] = scale
            out[k + QUANT_SHAPE] = torch.tensor([b, *v.shape], dtype=torch.int64)
    return out


def dequantize_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights a stored state stands for: :func:`quantize_weights` undone, and
    float16 or bfloat16 tensors (its vectors, a ``--half`` export's) in float32; a float32
    checkpoint passes as it is."""
    suffixes = (QUANT_SCALE, QUANT_SHAPE)
    out = {
        k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
        for k, v in state.items()
        if not k.endswith(suffixes)
    }
    names = {k[: -len(sfx)] for k in state for sfx in suffixes if k.endswith(sfx)}
    for name in sorted(names):
        packed, scale, meta = (state.get(name + sfx) for sfx in ("", *suffixes))
        if packed is None or scale is None or meta is None or meta.dim() != 1 or len(meta) < 3:
            raise CheckpointError(f"quantized weight {name} lacks its packed bits, scales or shape")
        bits, shape = int(meta[0]), [int(d) for d in meta[1:]]
        n = math.prod(shape)
        if not 2 <= bits <= 8 or scale.shape != (shape[0],) or packed.numel() * 8 < n * bits:
            raise CheckpointError(
                f"quantized weight {name} does not fit its scales and shape {[bits, *shape]}"
            )
        planes = np.unpackbits(packed.numpy(), count=n * bits, bitorder="little").reshape(n, bits)
        codes = np.zeros(n, dtype=np.uint8)
        for b in range(bits):
            codes |= planes[:, b] << np.uint8(b)
        rows = torch.from_numpy(codes).float().sub_(2 ** (bits - 1) - 1).reshape(shape[0], -1)
        out[name] = (rows * scale.float()[:, None]).reshape(shape)
    return out


def load_folder(
    folder: str | os.PathLike, device="cpu", name: str = "", decoder_files: bool = True
) -> LoadedModel:
    """Load a checkpoint folder fully, or raise CheckpointError without side effects.

    ``decoder_files=False`` leaves out the lexicon and LM its config names (they need not be
    there): for training from its weights, which need neither."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = read_config(folder)
    try:
        model_cfg = ModelConfig.from_dict(cfg["model"])
        feature_cfg = FeatureConfig.from_dict(cfg["features"])
        _check_features(feature_cfg)
        if not isinstance(cfg["vocab"], list) or not all(isinstance(t, str) for t in cfg["vocab"]):
            raise ValueError("vocab must be a list of strings")
        vocab = Vocabulary(tuple(cfg["vocab"]))
        decoder = cfg.get("decoder") or {}
        if not isinstance(decoder, dict):
            raise ValueError(f"decoder must be an object, got {type(decoder).__name__}")
        for key in ("lexicon", "lm"):
            if decoder.get(key) is not None and not isinstance(decoder[key], str):
                raise ValueError(f"decoder.{key} must be a file name")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise CheckpointError(f"{folder / CONFIG_NAME} is incomplete or invalid: {what}") from None
    if model_cfg.vocab_size != len(vocab):
        raise CheckpointError(
            f"{folder}: the model has {model_cfg.vocab_size} outputs but the vocabulary has "
            f"{len(vocab)} symbols"
        )
    if model_cfg.n_features != feature_cfg.n_bins:
        raise CheckpointError(
            f"{folder}: the model expects {model_cfg.n_features} frequency bins but the feature "
            f"settings give {feature_cfg.n_bins}"
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"'{folder}' has no {WEIGHTS_NAME}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or truncated ({e})") from None
    try:
        state = dequantize_weights(state)
    except CheckpointError as e:
        raise CheckpointError(f"{weights}: {e}") from None

    try:
        model = DeepSpeech2(model_cfg)
    except (TypeError, ValueError, IndexError, RuntimeError, ZeroDivisionError) as e:
        raise CheckpointError(
            f"{folder / CONFIG_NAME} describes a model that cannot be built: {e}"
        ) from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{k} has shape {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
            )
        raise CheckpointError(f"{weights} does not match its config.json: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    model.eval().to_device(device)

    files = {}
    for key in ("lexicon", "lm") if decoder_files else ():
        rel = decoder.get(key)
        if rel:
            path = folder / rel
            if not path.is_file():
                raise CheckpointError(f"{folder}: config.json names {key} file '{rel}', not found")
            files[key] = path
    return LoadedModel(
        model=model,
        feature_config=feature_cfg,
        vocab=vocab,
        config=cfg,
        folder=folder,
        name=name or folder.name,
        decoder_files=files,
    )
