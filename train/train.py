"""Train a DeepSpeech2 model with CTC. One loop, top to bottom.

    python -m train.train --config train/configs/ds2_small.toml \\
        --train data/synth/train.jsonl --valid data/synth/valid.jsonl --exp exp/ds2_small
    python -m train.train --config train/configs/ds2_small.toml --exp exp/ds2_small --resume
    torchrun --nproc_per_node 4 -m train.train --config train/configs/ds2_large.toml ...

Every knob lives in :class:`TrainConfig` with a note on when to change it; a TOML preset
(``--config``) sets them, flags override the preset; on ``--resume`` the checkpoint's saved
settings win over the preset, and flags still win over both. ``EXP/`` receives ``log.jsonl``
(one JSON object per event), ``loss.png``, ``tb/`` (TensorBoard), ``checkpoints/last/`` (every
few minutes and at each epoch end), ``checkpoints/step-N/`` (a few kept) and
``checkpoints/best/`` (lowest valid CER). Each checkpoint folder is a ds2 model
(``ds2.load_folder`` reads it) plus the trainer state, so ``--resume`` continues exactly where
the run stopped.

The recipe, and why the system it replaces never learned (Adam at lr 1e-5 for 8 h, loss stuck
at 2.4): CTC first learns to emit only blanks (the "blank plateau", loss ~3 nats/char) and needs
a large step size for long enough to leave it. Here AdamW warms up to 1e-3 in a few hundred
steps and holds it for a large part of the run before a cosine decay; SortaGrad shows short
clips first; gradients are clipped; the loss is normalised per target character so its scale
does not depend on the batch.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ds2.checkpoint import load_folder
from ds2.errors import DS2Error
from ds2.features import FeatureConfig
from ds2.model import DeepSpeech2, ModelConfig, preset
from ds2.vocab import BLANK, Vocabulary
from train import checkpointing as ckpt
from train.data import (
    AugmentConfig,
    BucketBatchSampler,
    DataError,
    SpecAugmentConfig,
    SpeechDataset,
    collate,
    prepare_utterances,
    read_manifests,
)
from train.plots import audio_hours_seen, peak_lr, plot_losses, read_log


def _knob(default, help: str, **kw):
    """A config field with its help text (shown by --help and written next to it in presets)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # --- model --------------------------------------------------------------------------------
    preset: str = _knob(
        "ds2-small",
        "model preset: ds2-small (3.9 M params) for CPU, ds2-large "
        "(25.8 M) when a GPU and 100+ h of audio are available",
    )
    model_overrides: dict = _knob(
        {},
        "ModelConfig fields replacing the preset's, as JSON, e.g. "
        '\'{"rnn_hidden": 256, "dropout": 0.1}\'; for experiments',
    )
    vocab: str = _knob(
        "default",
        "output symbols: 'default' (blank, space, ' a-z), a JSON list "
        "file, or the characters after the blank; change for another language",
    )
    init_from: str = _knob(
        "",
        "start from these weights (folder or hub spec) to fine-tune; "
        "its model config and features replace the preset's",
    )
    new_vocab: bool = _knob(
        False,
        "with --init-from: replace the output layer for --vocab (rows of shared symbols are kept)",
    )
    freeze_convs: bool = _knob(
        False, "with --init-from: keep the conv front end fixed; for small fine-tuning sets"
    )
    freeze_rnn_layers: int = _knob(
        0,
        "with --init-from: also keep the first N recurrent layers (and the convs) fixed; "
        "nothing below them is back-propagated, so a fine-tune of the top layers runs faster",
    )
    # --- data ---------------------------------------------------------------------------------
    train: list = _knob([], "training manifests (JSONL)")
    valid: list = _knob([], "validation manifests (JSONL); none = no validation")
    min_duration: float = _knob(0.3, "drop training clips shorter than this (s)")
    max_duration: float = _knob(
        16.0,
        "drop training clips longer than this (s); raise it if "
        "memory allows and the corpus has long clips",
    )
    batch_seconds: float = _knob(
        300.0,
        "padded audio seconds per batch (per process): the "
        "batch size; raise on a GPU (1000-3000), lower if out of memory",
    )
    max_batch_size: int = _knob(64, "at most this many clips per batch, whatever their length")
    num_workers: int = _knob(
        1, "DataLoader worker processes computing features; 1 on a 2-core CPU, ~4-8 per GPU"
    )
    sortagrad: bool = _knob(
        True, "first epoch shortest-first (helps CTC start); off when fine-tuning"
    )
    eval_max_utterances: int = _knob(
        400,
        "validate on at most this many clips (evenly spread "
        "over the manifest) to keep validation short",
    )
    # --- augmentation -------------------------------------------------------------------------
    augment: bool = _knob(
        True, "random gain, white noise and speed (--speed-prob) on the waveform; off to overfit"
    )
    noise_prob: float = _knob(0.5, "share of clips that get white noise (SNR 10-40 dB)")
    speed_prob: float = _knob(
        0.0,
        "share of clips played --speed-min to --speed-max times as fast, like a tape (tempo, "
        "pitch and formants together): new pseudo-talkers for voices the corpus lacks",
    )
    speed_min: float = _knob(
        AugmentConfig.speed_range[0], "slowest speed factor of --speed-prob (drawn uniformly)"
    )
    speed_max: float = _knob(AugmentConfig.speed_range[1], "fastest speed factor of --speed-prob")
    spec_augment: bool = _knob(
        True,
        "SpecAugment time and frequency masks; off to overfit or "
        "for the first minutes of a tiny-data run",
    )
    freq_masks: int = _knob(2, "frequency masks per clip")
    freq_mask_max: int = _knob(27, "widest frequency mask (bins of 201)")
    time_masks: int = _knob(2, "time masks per clip")
    time_mask_max: int = _knob(40, "widest time mask (10-ms frames)")
    # --- optimizer and schedule ---------------------------------------------------------------
    lr: float = _knob(
        1e-3,
        "peak learning rate (AdamW): 1e-3 for ds2-small, ~5e-4 for ds2-large, "
        "1e-4 to fine-tune; 1e-5 never leaves the blank plateau",
    )
    min_lr_ratio: float = _knob(0.05, "final learning rate as a fraction of --lr")
    warmup_steps: int = _knob(300, "linear warm-up steps; raise if the loss spikes early")
    hold_fraction: float = _knob(
        0.5,
        "fraction of the run held at the peak lr before the cosine "
        "decay; CTC needs a long high-lr phase",
    )
    weight_decay: float = _knob(0.01, "AdamW weight decay on weight matrices (not biases, norms)")
    beta2: float = _knob(0.98, "AdamW beta2; 0.98 adapts faster than 0.999 to RNN gradients")
    clip_grad: float = _knob(5.0, "clip the global gradient norm; RNN+CTC gradients spike")
    # --- length -------------------------------------------------------------------------------
    max_steps: int = _knob(
        20000, "optimizer steps in the run (sets the lr schedule); 0 = use --max-hours only"
    )
    max_hours: float = _knob(
        0.0,
        "wall-clock budget in hours (0 = none); with it the schedule "
        "follows the larger of step and time progress",
    )
    stop_at_step: int = _knob(
        0,
        "stop (with a checkpoint) at this step without ending the "
        "schedule; for time-sliced jobs and tests",
    )
    # --- precision and hardware ---------------------------------------------------------------
    device: str = _knob("auto", "auto (CUDA when present), cpu or cuda")
    precision: str = _knob(
        "auto",
        "bf16 (autocast) or fp32; auto = bf16 on CUDA and on CPUs with AVX512-BF16/AMX "
        "(1.6x fp32's speed there), fp32 elsewhere (emulated bf16 measured ~60x slower on AVX2)",
    )
    threads: int = _knob(0, "torch CPU threads in the training process (0 = torch default)")
    seed: int = _knob(1234, "seed of the weights, batch order and augmentation")
    # --- logging, validation, checkpoints -------------------------------------------------------
    log_every: int = _knob(10, "steps between train-loss log events")
    eval_every_steps: int = _knob(500, "validate every this many steps (0 = never by steps)")
    eval_every_minutes: float = _knob(
        20.0, "...or every this many minutes, whichever comes first (0 = never by time)"
    )
    examples: int = _knob(3, "example transcripts shown at each validation")
    checkpoint_minutes: float = _knob(5.0, "write checkpoints/last every this many minutes")
    save_every_steps: int = _knob(2000, "also keep a checkpoints/step-N copy every this many steps")
    keep_checkpoints: int = _knob(3, "step-N copies to keep (oldest are deleted)")
    tensorboard: bool = _knob(True, "also log to EXP/tb when tensorboard is installed")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DS2Error(f"unknown config keys {unknown}; see python -m train.train --help")
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Command line


def read_toml(path: str | os.PathLike) -> dict:
    """A preset file, its [sections] flattened (sections only group knobs)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise DS2Error(f"config file not found: '{path}'") from None
    except tomllib.TOMLDecodeError as e:
        raise DS2Error(f"{path}: invalid TOML ({e})") from None
    dict_knobs = {k for k, v in asdict(TrainConfig()).items() if isinstance(v, dict)}
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key not in dict_knobs:
            flat.update(value)
        else:
            flat[key] = value
    TrainConfig.from_dict(flat)  # unknown keys are an error now, not after an hour of training
    return flat


def build_parser(defaults: TrainConfig, suppress: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train.train",
        description="Train a DeepSpeech2 model with CTC (see train/configs/*.toml).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS if suppress else None,
    )
    p.add_argument("--config", type=Path, help="TOML preset; flags override its values")
    p.add_argument("--exp", type=Path, help="experiment folder (logs, checkpoints, plots)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from EXP/checkpoints/last (starts fresh if there is none)",
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        kw = {"help": f.metadata["help"]}
        if not suppress:
            kw["default"] = value
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(value, list):
            p.add_argument(flag, nargs="+", metavar="PATH", **kw)
        elif isinstance(value, dict):
            p.add_argument(flag, type=json.loads, metavar="JSON", **kw)
        else:
            p.add_argument(flag, type=type(value), **kw)
    return p


def parse_args(argv=None) -> tuple[TrainConfig, argparse.Namespace, dict, dict]:
    """(config from defaults + preset, the parsed flags, the flags given explicitly, the preset)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    preset = read_toml(known.config) if known.config else {}
    base = asdict(TrainConfig())
    base.update(preset)
    defaults = TrainConfig.from_dict(base)
    args = build_parser(defaults).parse_args(argv)
    explicit = vars(build_parser(defaults, suppress=True).parse_args(argv))
    fields = dataclasses.fields(TrainConfig)
    cfg = TrainConfig.from_dict({f.name: getattr(args, f.name) for f in fields})
    if args.exp is None:
        raise SystemExit("train: error: --exp is required")
    return cfg, args, explicit, preset


# ---------------------------------------------------------------------------------------------
# Pieces of the loop


def augment_config(cfg: TrainConfig) -> AugmentConfig | None:
    """The waveform augmentation the flags ask for (None with --no-augment)."""
    if not cfg.augment:
        return None
    return AugmentConfig(
        noise_prob=cfg.noise_prob,
        speed_prob=cfg.speed_prob,
        speed_range=(cfg.speed_min, cfg.speed_max),
    )


def make_vocab(spec: str) -> Vocabulary:
    if spec == "default":
        return Vocabulary()
    path = Path(spec)
    if path.suffix == ".json" and path.is_file():
        tokens = json.loads(path.read_text())
        return Vocabulary(tuple(tokens if tokens[0] == BLANK else [BLANK, *tokens]))
    return Vocabulary((BLANK, *spec))


def load_init(spec: str):
    """A LoadedModel from a folder, or from a hub spec when ds2.hub is available."""
    if Path(spec).is_dir():
        return load_folder(spec, decoder_files=False)  # the weights; no LM needed to train
    try:
        from ds2.hub import load_model
    except ImportError:
        return load_folder(spec)  # raises a clear CheckpointError
    return load_model(spec, device="cpu")


def replace_head(model: DeepSpeech2, old_vocab: Vocabulary, new_vocab: Vocabulary) -> DeepSpeech2:
    """A copy of ``model`` with an output layer for ``new_vocab``; shared symbols keep their row."""
    cfg = ModelConfig.from_dict({**model.cfg.to_dict(), "vocab_size": len(new_vocab)})
    new = DeepSpeech2(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    new.load_state_dict(state, strict=False)
    old_index = {t: i for i, t in enumerate(old_vocab.tokens)}
    with torch.no_grad():
        for i, tok in enumerate(new_vocab.tokens):
            if tok in old_index:
                new.head.weight[i] = model.head.weight[old_index[tok]]
                new.head.bias[i] = model.head.bias[old_index[tok]]
    return new


def freeze_convs(model: DeepSpeech2) -> None:
    """Stop gradients and BatchNorm statistics updates in the conv front end."""
    for p in model.convs.parameters():
        p.requires_grad_(False)
    for m in model.convs.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def freeze_rnn_layers(model: DeepSpeech2, n: int) -> None:
    """Stop gradients in the first ``n`` recurrent layers (both directions)."""
    if not 0 <= n <= model.cfg.rnn_layers:
        raise DS2Error(
            f"--freeze-rnn-layers {n}: the model has {model.cfg.rnn_layers} recurrent layers"
        )
    for name, p in model.rnn.named_parameters():
        layer = int(re.search(r"_l(\d+)", name).group(1))
        if layer < n:
            p.requires_grad_(False)


def freeze(model: DeepSpeech2, cfg: TrainConfig) -> None:
    """Apply ``--freeze-convs`` / ``--freeze-rnn-layers``; frozen RNN layers imply frozen convs."""
    if cfg.freeze_convs or cfg.freeze_rnn_layers:
        freeze_convs(model)
    if cfg.freeze_rnn_layers:
        freeze_rnn_layers(model, cfg.freeze_rnn_layers)


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over ``warmup_steps``, hold at ``lr`` until ``hold_fraction`` of the run,
    then cosine down to ``lr * min_lr_ratio``. ``progress`` in [0, 1] is the share of the run done.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay = (progress - cfg.hold_fraction) / max(1e-9, 1.0 - cfg.hold_fraction)
    decay = min(1.0, max(0.0, decay))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * decay))


def ctc_loss(log_probs, out_lengths, batch) -> torch.Tensor:
    """CTC loss in nats per target character: summed over the batch, divided by its characters.

    Per-character normalisation keeps the loss scale independent of batch size and clip length,
    and every character weighs the same whatever the length of its clip (a per-utterance mean
    would favour short clips). ``zero_infinity`` zeroes the rare clip whose label cannot be
    aligned (the loader already drops those it can predict).

    log_probs : torch.Tensor, shape = (batch, n_out_frames, vocab), float32
    """
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),  # (B, T, V) -> (T, B, V) as ctc_loss wants
        batch.targets,
        out_lengths,
        batch.target_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )
    return loss / batch.target_lengths.sum().clamp(min=1)


def greedy_texts(
    log_probs: torch.Tensor, out_lengths: torch.Tensor, vocab: Vocabulary
) -> list[str]:
    """Best-path transcripts. log_probs : (batch, n_out_frames, vocab)."""
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    texts = []
    for ids, n in zip(best, out_lengths.tolist()):
        ids = torch.unique_consecutive(ids[:n]).tolist()
        # A blank between two spaces leaves a double space: tidy as ds2.greedy_decode does.
        texts.append(" ".join(vocab.decode(ids).split()))
    return texts


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (strings or lists of words)."""
    try:
        from rapidfuzz.distance import Levenshtein

        return Levenshtein.distance(a, b)
    except ImportError:
        prev = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            cur = [i]
            for j, y in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
            prev = cur
        return prev[-1]


@torch.no_grad()
def evaluate(model, loader, vocab, device, autocast, n_examples: int = 3) -> dict:
    """Valid loss (nats/char) and greedy CER/WER over ``loader``."""
    was_training = model.training
    model.eval()
    loss_sum = chars = char_err = words = word_err = 0.0
    examples = []
    for batch in loader:
        if not len(batch):
            continue
        with autocast:
            log_probs, out_lengths = model(batch.features.to(device), batch.lengths)
        n = batch.target_lengths.sum().item()
        loss_sum += ctc_loss(log_probs.float().cpu(), out_lengths, batch).item() * n
        for ref, hyp in zip(batch.texts, greedy_texts(log_probs, out_lengths, vocab)):
            chars += len(ref)
            char_err += edit_distance(ref, hyp)
            words += len(ref.split())
            word_err += edit_distance(ref.split(), hyp.split())
            if len(examples) < n_examples:
                examples.append({"ref": ref, "hyp": hyp})
    model.train(was_training)
    return {
        "loss": loss_sum / max(chars, 1),
        "cer": char_err / max(chars, 1),
        "wer": word_err / max(words, 1),
        "examples": examples,
    }


class EventLog:
    """``EXP/log.jsonl`` (+ TensorBoard scalars); only rank 0 writes."""

    def __init__(self, exp: Path, enabled: bool, tensorboard: bool):
        self.path = exp / "log.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(exp / "tb"))
            except ImportError:
                pass

    def truncate_after(self, step: int) -> None:
        """Forget events a crashed run logged after the checkpoint we resume from."""
        if not self.enabled or not self.path.is_file():
            return
        kept = read_log(self.path, upto=step)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
        os.replace(tmp, self.path)

    def __call__(self, event: str, **fields) -> None:
        if not self.enabled:
            return
        row = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None and "step" in fields:
            for k, v in fields.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{event}/{k}", v, fields["step"])
            self.tb.flush()


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); else oneDNN emulates it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, cuda: bool, fast_cpu_bf16: bool) -> str:
    """bf16 or fp32 for ``--precision``: auto takes bf16 where it is native (CUDA, AVX512-BF16/AMX).

    On a 2-core Sapphire Rapids (AMX) ds2-small trained at 35.5 audio-s/s in bf16 against 21.9
    in fp32; on AVX2 CPUs oneDNN emulates bf16 and it is many times slower than fp32.
    """
    if requested == "auto":
        return "bf16" if cuda or fast_cpu_bf16 else "fp32"
    if requested not in ("bf16", "fp32"):
        raise DS2Error(f"precision must be bf16, fp32 or auto, got {requested!r}")
    return requested


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# ---------------------------------------------------------------------------------------------
# The run


def train(cfg: TrainConfig, exp: Path, resume: bool = False) -> dict:
    """Run (or continue) a training run in ``exp``; returns a summary dict."""
    # --- distributed setup and device ---------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if want_cuda else "cpu")
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if want_cuda else "gloo")
        if want_cuda:
            torch.cuda.set_device(device)
    is_main = rank == 0
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    elif world > 1 and not want_cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    fast_cpu_bf16 = cpu_has_fast_bf16()
    precision = resolve_precision(cfg.precision, want_cuda, fast_cpu_bf16)
    if precision == "bf16" and device.type == "cpu" and not fast_cpu_bf16:
        print("train: warning: this CPU has no native bf16 (AVX512-BF16/AMX); bf16 autocast is "
              "emulated and far slower than fp32 here", file=sys.stderr)  # fmt: skip
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    if cfg.max_steps <= 0 and cfg.max_hours <= 0:
        raise DS2Error("set --max-steps or --max-hours: the run needs an end for its lr schedule")
    for name in ("noise_prob", "speed_prob"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            flag = "--" + name.replace("_", "-")
            raise DS2Error(f"{flag} is a share of clips, 0 to 1; got {getattr(cfg, name)}")
    if not 0.5 <= cfg.speed_min <= cfg.speed_max <= 2.0:
        raise DS2Error(
            "--speed-min and --speed-max are speed factors with 0.5 <= min <= max <= 2; "
            f"got {cfg.speed_min:g} and {cfg.speed_max:g}"
        )

    exp = Path(exp)
    ckpt_dir = exp / "checkpoints"
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    log = EventLog(exp, is_main, cfg.tensorboard)

    def say(msg: str) -> None:
        if is_main:
            tqdm.write(msg)

    # --- model, vocabulary, trainer state ------------------------------------------------------
    state = {
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "elapsed": 0.0,
        "best_cer": None,
        "best_step": None,
        "skipped_steps": 0,
        "audio_seconds": 0.0,  # unpadded training audio gone through, all ranks together
        "peak_lr": 0.0,  # the highest lr applied, over every resume (a restart may lower --lr)
    }
    resume_from = ckpt.resolve_resume_folder(ckpt_dir / "last") if resume else None
    init_info = None
    earlier_stages: list[dict] = []  # the runs behind an --init-from model, oldest first
    if resume_from is not None:
        loaded = load_folder(resume_from)
        model, feature_cfg, vocab = loaded.model, loaded.feature_config, loaded.vocab
        meta, tensors = ckpt.load_trainer_state(resume_from)
        state.update({k: meta[k] for k in state if k in meta})
        if "audio_seconds" not in meta or "peak_lr" not in meta:
            # a checkpoint from before the trainer counted them: estimate from the run's log up
            # to its step (a crashed run may have logged past it)
            events = read_log(exp / "log.jsonl", upto=state["step"])
            if "audio_seconds" not in meta:
                state["audio_seconds"] = 3600 * (audio_hours_seen(events) or 0.0)
            if "peak_lr" not in meta:
                state["peak_lr"] = peak_lr(events) or 0.0
        init_info = meta.get("init_from")
        # the runs before this one, as the checkpoint's record lists them (rebuilt from the
        # init folder for a run from before lineages were kept)
        earlier_stages = ckpt.lineage(loaded.config.get("training") or {})[:-1]
        say(f"resuming from {resume_from} at step {state['step']} (epoch {state['epoch']})")
    elif cfg.init_from:
        loaded = load_init(cfg.init_from)
        model, feature_cfg, vocab = loaded.model, loaded.feature_config, loaded.vocab
        init_info = {"spec": cfg.init_from, "name": loaded.name}
        init_training = loaded.config.get("training")
        if isinstance(init_training, dict) and init_training:  # {}: its history is unknown
            earlier_stages = ckpt.lineage(init_training)
        if cfg.new_vocab:
            new_vocab = make_vocab(cfg.vocab)
            model, vocab = replace_head(model, vocab, new_vocab), new_vocab
        elif cfg.vocab != "default" and make_vocab(cfg.vocab) != vocab:
            raise DS2Error("--vocab differs from the --init-from model's; add --new-vocab")
        say(f"initialised from {cfg.init_from} ({model.num_parameters() / 1e6:.1f} M params)")
    else:
        vocab = make_vocab(cfg.vocab)
        feature_cfg = FeatureConfig()
        torch.manual_seed(cfg.seed)
        model_cfg = ModelConfig.from_dict(
            {**preset(cfg.preset).to_dict(), **cfg.model_overrides, "vocab_size": len(vocab)}
        )
        model = DeepSpeech2(model_cfg)
    model.to_device(device).train()  # before the optimizer and DDP take the parameters
    freeze(model, cfg)

    # --- data ---------------------------------------------------------------------------------
    if not cfg.train:
        raise DataError(
            "no training data: pass --train MANIFEST.jsonl (or set train in the config)"
        )
    rows = read_manifests(cfg.train)
    items, dropped = prepare_utterances(
        rows,
        vocab,
        feature_cfg,
        model.cfg,
        min_duration=cfg.min_duration,
        max_duration=cfg.max_duration,
    )
    train_hours = sum(it["duration"] for it in items) / 3600
    if not items:
        raise DataError(f"every training utterance was dropped: {dict(dropped)}")
    say(f"train: {len(items)} utterances, {train_hours:.2f} h; dropped {dict(dropped) or 'none'}")
    valid_items, valid_dropped = [], Counter()
    if cfg.valid:
        vrows = read_manifests(cfg.valid)
        valid_items, valid_dropped = prepare_utterances(vrows, vocab, feature_cfg, model.cfg)
        if len(valid_items) > cfg.eval_max_utterances > 0:
            stride = len(valid_items) / cfg.eval_max_utterances
            valid_items = [valid_items[int(i * stride)] for i in range(cfg.eval_max_utterances)]
        say(f"valid: {len(valid_items)} utterances; dropped {dict(valid_dropped) or 'none'}")
    if state["step"] == 0:
        log(
            "data",
            step=0,
            train_utterances=len(items),
            train_hours=train_hours,
            dropped=dict(dropped),
            valid_utterances=len(valid_items),
            valid_dropped=dict(valid_dropped),
        )

    sampler = BucketBatchSampler(
        [it["duration"] for it in items],
        cfg.batch_seconds,
        cfg.max_batch_size,
        sortagrad=cfg.sortagrad,
        seed=cfg.seed,
        rank=rank,
        world_size=world,
    )
    dataset = SpeechDataset(
        items,
        feature_cfg,
        augment=augment_config(cfg),
        spec_augment=SpecAugmentConfig(
            cfg.freq_masks, cfg.freq_mask_max, cfg.time_masks, cfg.time_mask_max
        )
        if cfg.spec_augment
        else None,
        seed=cfg.seed,
    )

    def loader_for(ds, batch_sampler):
        # A private generator keeps DataLoader seeding off the global RNG: resume stays exact.
        return torch.utils.data.DataLoader(
            ds,
            batch_sampler=batch_sampler,
            collate_fn=collate,
            num_workers=cfg.num_workers,
            worker_init_fn=_worker_init if cfg.num_workers else None,
            generator=torch.Generator(),
            pin_memory=want_cuda,
        )

    train_loader = loader_for(dataset, sampler)
    valid_loader = None
    if valid_items and is_main:
        vs = BucketBatchSampler(
            [it["duration"] for it in valid_items],
            2 * cfg.batch_seconds,
            cfg.max_batch_size,
            shuffle=False,
            sortagrad=False,
        )
        valid_loader = loader_for(SpeechDataset(valid_items, feature_cfg), vs)

    # --- optimizer ----------------------------------------------------------------------------
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, cfg.beta2),
        eps=1e-8,
    )
    if resume_from is not None:
        optimizer.load_state_dict(ckpt.unflatten_optimizer(tensors, meta["optimizer"]))
        ckpt.set_rng_state(tensors, meta["rng"])
        log.truncate_after(state["step"])
    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if want_cuda else None
        )

    # --- checkpoint writers -------------------------------------------------------------------
    def training_meta() -> dict:
        return {
            "recipe": "train/train.py",
            "config": asdict(cfg),
            "train_manifests": [str(p) for p in cfg.train],
            "valid_manifests": [str(p) for p in cfg.valid],
            "train_utterances": len(items),
            "train_hours": round(train_hours, 3),
            "steps": state["step"],
            "audio_hours_seen": round(state["audio_seconds"] / 3600, 2),
            # passes' worth of audio; batches skipped on a resume into a changed manifest
            # do not count, unlike a position in the epoch would
            "epochs": round(state["audio_seconds"] / 3600 / max(train_hours, 1e-9), 3),
            "elapsed_hours": round(state["elapsed"] / 3600, 4),
            "precision": precision,
            "world_size": world,
            "hardware": hardware(),
            "peak_lr": state["peak_lr"] or None,
            "best_valid_cer": state["best_cer"],
            "best_step": state["best_step"],
            "init_from": init_info,
            "earlier_stages": earlier_stages,
        }

    def save(reason: str) -> None:
        if not is_main:
            return
        step = state["step"]
        copies = []
        if cfg.save_every_steps and step and step % cfg.save_every_steps == 0:
            copies.append(ckpt_dir / f"step-{step}")
        trainer_state = {**state, "config": asdict(cfg), "init_from": init_info}
        ckpt.save_checkpoint(
            ckpt_dir / "last",
            raw_model,
            feature_cfg,
            vocab,
            training=training_meta(),
            trainer_state=trainer_state,
            optimizer=optimizer,
            copies=copies,
        )
        ckpt.prune_step_folders(ckpt_dir, cfg.keep_checkpoints)
        log("checkpoint", step=step, reason=reason, folder=str(ckpt_dir / "last"))

    def validate() -> None:
        if valid_loader is None:
            return
        t0 = time.time()
        r = evaluate(raw_model, valid_loader, vocab, device, autocast, cfg.examples)
        freeze(raw_model, cfg)
        best = state["best_cer"] is None or r["cer"] < state["best_cer"]
        if best:
            state["best_cer"], state["best_step"] = r["cer"], state["step"]
        log(
            "valid",
            step=state["step"],
            loss=r["loss"],
            cer=r["cer"],
            wer=r["wer"],
            seconds=round(time.time() - t0, 2),
            examples=r["examples"],
        )
        say(
            f"step {state['step']}: valid loss {r['loss']:.3f}  CER {100 * r['cer']:.1f}%  "
            f"WER {100 * r['wer']:.1f}%" + ("  (best)" if best else "")
        )
        for ex in r["examples"]:
            say(f"    ref: {ex['ref']}\n    hyp: {ex['hyp']}")
        if best:
            ckpt.save_checkpoint(
                ckpt_dir / "best", raw_model, feature_cfg, vocab, training=training_meta()
            )
        plot_losses(log.path, exp / "loss.png")

    # --- stop requests ------------------------------------------------------------------------
    stop_signal = []

    def on_signal(signum, frame):
        if stop_signal:  # a second Ctrl-C really stops
            raise KeyboardInterrupt
        stop_signal.append(signum)
        say(f"signal {signum}: saving a checkpoint and stopping (again to abort)")

    old_handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (e.g. inside a test runner)
            old_handlers[sig] = signal.signal(sig, on_signal)

    def progress() -> float:
        p = state["step"] / cfg.max_steps if cfg.max_steps > 0 else 0.0
        if cfg.max_hours > 0:
            p = max(p, state["elapsed"] / (3600 * cfg.max_hours))
        return p

    def should_stop() -> bool:
        stop = bool(stop_signal) or progress() >= 1.0
        stop = stop or (cfg.stop_at_step > 0 and state["step"] >= cfg.stop_at_step)
        if world > 1:  # every rank must leave the loop at the same step
            import torch.distributed as dist

            flag = torch.tensor([int(stop)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    # --- the loop -----------------------------------------------------------------------------
    t_start, elapsed0 = time.time(), state["elapsed"]
    last_save = last_eval = time.time()
    window = {"loss": 0.0, "n": 0, "seconds": 0.0, "t": time.time(), "grad_norm": 0.0}
    bar = tqdm(
        total=cfg.max_steps or None,
        initial=state["step"],
        disable=not is_main,
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    done = should_stop()
    try:
        while not done:
            sampler.set_epoch(state["epoch"], state["batch_in_epoch"])
            trained, unreadable = 0, []  # this pass over the epoch
            for batch in train_loader:
                if batch.errors:
                    log("data_error", step=state["step"], errors=batch.errors)
                if not len(batch):
                    if world > 1:
                        raise DataError(f"a whole batch was unreadable: {batch.errors[:3]}")
                    unreadable += batch.errors[: 3 - len(unreadable)]  # the first few only
                    state["batch_in_epoch"] += 1
                    continue
                trained += 1
                lr = lr_at(cfg, state["step"], progress())
                state["peak_lr"] = max(state["peak_lr"], lr)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                with autocast:
                    log_probs, out_lengths = model(batch.features.to(device), batch.lengths)
                loss = ctc_loss(log_probs.float(), out_lengths.to(device), _to(batch, device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad).item()
                if math.isfinite(grad_norm):
                    optimizer.step()
                else:  # one bad batch (overflow, corrupt clip) must not poison the weights
                    state["skipped_steps"] += 1
                state["step"] += 1
                state["batch_in_epoch"] += 1
                state["elapsed"] = elapsed0 + time.time() - t_start
                step = state["step"]
                window["loss"] += loss.item()
                window["grad_norm"] += grad_norm if math.isfinite(grad_norm) else 0.0
                window["n"] += 1
                window["seconds"] += batch.seconds * world
                state["audio_seconds"] += batch.seconds * world
                bar.update(1)

                if step % cfg.log_every == 0 and window["n"]:
                    dt = time.time() - window["t"]
                    speed = window["seconds"] / max(dt, 1e-9)
                    avg = window["loss"] / window["n"]
                    log(
                        "train",
                        step=step,
                        epoch=state["epoch"],
                        loss=avg,
                        lr=lr,
                        grad_norm=window["grad_norm"] / window["n"],
                        audio_s_per_s=speed,
                        elapsed=round(state["elapsed"], 1),
                    )
                    post = {"loss": f"{avg:.3f}", "lr": f"{lr:.2e}", "audio-s/s": f"{speed:.0f}"}
                    if cfg.max_hours > 0:
                        left = 3600 * cfg.max_hours - state["elapsed"]
                        post["eta"] = time.strftime("%H:%M:%S", time.gmtime(max(0.0, left)))
                    bar.set_postfix(post, refresh=False)
                    window.update(loss=0.0, n=0, seconds=0.0, t=time.time(), grad_norm=0.0)

                done = should_stop()
                now = time.time()
                if is_main and (validation_due(step, now - last_eval, cfg) or done):
                    validate()
                    last_eval = time.time()
                save_due = (now - last_save >= 60 * cfg.checkpoint_minutes) or (
                    cfg.save_every_steps > 0 and step % cfg.save_every_steps == 0
                )
                if save_due or done:
                    save("stop" if done else "periodic")
                    last_save = time.time()
                if done:
                    break
            else:
                if not trained and unreadable:  # looping on would spin forever, learning nothing
                    raise DataError(
                        "no batch of a whole epoch could be read; first errors: "
                        + "; ".join(map(str, unreadable[:3]))
                    )
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                log("epoch", step=state["step"], epoch=state["epoch"])
                # Tiny corpora finish an epoch every few steps: don't rewrite checkpoints each time.
                if time.time() - last_save >= min(60.0, 60 * cfg.checkpoint_minutes):
                    save("epoch")
                    last_save = time.time()
                done = should_stop()
                if done and is_main:
                    validate()
    finally:
        bar.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    summary = {
        "step": state["step"],
        "epoch": state["epoch"],
        "best_cer": state["best_cer"],
        "elapsed_hours": state["elapsed"] / 3600,
        "skipped_steps": state["skipped_steps"],
        "stopped_by_signal": bool(stop_signal),
    }
    if is_main:
        log("end", **summary)
        say(
            f"done: step {state['step']}, best valid CER "
            + (f"{100 * state['best_cer']:.1f}%" if state["best_cer"] is not None else "n/a")
        )
    if world > 1:
        # Rank 0 validates and saves after the last step while the others are done: leave
        # together, or a rank tearing gloo down early can abort (SIGABRT) mid-exchange.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


def _to(batch, device):
    if device.type == "cpu":
        return batch
    return dataclasses.replace(
        batch, targets=batch.targets.to(device), target_lengths=batch.target_lengths.to(device)
    )


def _worker_init(worker_id: int) -> None:
    # Workers compute one utterance's STFT at a time: more threads only fight the trainer.
    torch.set_num_threads(1)
    # Ctrl-C is the trainer's to handle (checkpoint, then stop); a worker dying on it first
    # would crash the loader before the checkpoint is written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def validation_due(step: int, seconds_since_last: float, cfg: TrainConfig) -> bool:
    """Validate every ``eval_every_steps`` steps, or after ``eval_every_minutes`` without one.

    The clock waits for a step-scheduled validation that is at most 5% of the interval away,
    so a slow host does not validate twice in a row (at step 7998 by the clock, then at 8000).
    """
    every = cfg.eval_every_steps
    if every > 0 and step % every == 0:
        return True
    if cfg.eval_every_minutes <= 0 or seconds_since_last < 60 * cfg.eval_every_minutes:
        return False
    return every <= 0 or every - step % every > max(1, every // 20)


def resume_config(saved: dict, preset: dict, explicit: dict) -> tuple[TrainConfig, list[str]]:
    """The settings a resumed run continues with, and notes on what differs from the saved ones.

    Precedence: defaults < preset file < the checkpoint's saved settings < explicit flags. The
    saved recipe is the run's own (a schedule extended with ``--max-steps`` stays extended on
    the next plain ``--resume``); the preset that started the run only fills settings the
    checkpoint predates; a flag changes the recipe on purpose.
    """
    saved = {k: v for k, v in saved.items() if k != "stop_at_step"}  # a stop, not the recipe
    base = asdict(TrainConfig())
    base.update(preset)
    base.update(saved)
    base.update({k: v for k, v in explicit.items() if k in base})
    cfg = TrainConfig.from_dict(base)
    notes = []
    changed = {k: (saved[k], v) for k, v in asdict(cfg).items() if k in saved and saved[k] != v}
    if changed:
        notes.append(f"settings changed since the checkpoint (saved, now): {changed}")
    kept = {k: v for k, v in preset.items() if k in saved and saved[k] != v and k not in explicit}
    if kept:
        notes.append(
            f"the preset's {kept} ignored: the run keeps its saved settings "
            "(pass them as flags to change them)"
        )
    return cfg, notes


def main(argv=None) -> None:
    cfg, args, explicit, preset = parse_args(argv)
    exp = args.exp
    if args.resume:
        last = ckpt.resolve_resume_folder(exp / "checkpoints" / "last")
        if last is not None:
            saved = ckpt.load_trainer_state(last)[0].get("config", {})
            cfg, notes = resume_config(saved, preset, explicit)
            for note in notes:
                print(f"resume: {note}", file=sys.stderr)
    try:
        train(cfg, exp, resume=args.resume)
    except DS2Error as e:
        raise SystemExit(f"train: error: {e}") from None


if __name__ == "__main__":
    main()
