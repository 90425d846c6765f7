"""Training throughput of a DeepSpeech2 preset, in seconds of audio trained per second.

    python benchmarks/train_throughput.py                         # ds2-small, synthetic clips
    python benchmarks/train_throughput.py --manifest data/synth/train.jsonl --steps 10
    python benchmarks/train_throughput.py --preset ds2-large --precisions fp32 bf16

For each precision (fp32, bf16 autocast on the CPU, and bf16 on CUDA when a GPU is there) it
runs ``--warmup`` untimed steps and then ``--steps`` timed full training steps (forward, CTC
loss, backward, clipping, AdamW) on batches of ``--batch-seconds`` padded audio, and prints
audio-seconds per second. Feature extraction is timed separately (it runs in DataLoader workers
during training). On a shared CPU the figures are noisy: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ds2.audio import SAMPLE_RATE  # noqa: E402
from ds2.features import FeatureConfig, compute_features  # noqa: E402
from ds2.model import DeepSpeech2, preset  # noqa: E402
from ds2.vocab import Vocabulary  # noqa: E402
from train.data import Batch, collate, prepare_utterances, read_manifest  # noqa: E402
from train.train import cpu_has_fast_bf16, ctc_loss  # noqa: E402

CHARS_PER_SECOND = 14  # typical read speech: ~14 characters (with spaces) per second


def synthetic_batch(batch_seconds: float, clip_seconds: float, seed: int = 0) -> list[dict]:
    """Clips of band-limited noise with random lowercase labels at a speech-like rate."""
    rng = np.random.default_rng(seed)
    n = max(1, int(batch_seconds // clip_seconds))
    letters = list(" abcdefghijklmnopqrstuvwxyz'")
    samples = []
    for _ in range(n):
        dur = clip_seconds * rng.uniform(0.85, 1.0)
        audio = rng.normal(0, 0.1, int(dur * SAMPLE_RATE)).astype(np.float32)
        audio = np.convolve(audio, np.ones(4, np.float32) / 4, mode="same")
        text = "".join(rng.choice(letters, size=int(dur * CHARS_PER_SECOND))).strip() or "a"
        samples.append({"audio": audio, "text": text, "seconds": dur})
    return samples


def featurize(samples: list[dict], vocab: Vocabulary) -> tuple[Batch, float]:
    """(batch, feature seconds): computes features the way the training DataLoader does."""
    t0 = time.perf_counter()
    rows = []
    for i, s in enumerate(samples):
        feats = compute_features(s["audio"], FeatureConfig())
        rows.append({"index": i, "features": feats, "text": s["text"], "seconds": s["seconds"],
                     "ids": torch.tensor(vocab.encode(s["text"]), dtype=torch.long)})  # fmt: skip
    return collate(rows), time.perf_counter() - t0


def manifest_batch(path: Path, batch_seconds: float, model_cfg) -> list[dict]:
    """The first clips of a manifest (shortest-first would flatter the figure: take them as is)."""
    from ds2.audio import load_audio

    items, _ = prepare_utterances(read_manifest(path), Vocabulary(), FeatureConfig(), model_cfg)
    if not items:
        raise SystemExit(f"no usable utterance in {path}")
    out, longest = [], 0.0
    for it in items:
        longest = max(longest, it["duration"])
        if out and (len(out) + 1) * longest > batch_seconds:
            break
        audio = load_audio(it["audio"], allow_silence=True)
        out.append({"audio": audio, "text": it["text"], "seconds": len(audio) / SAMPLE_RATE})
    return out


def time_steps(
    model, batch: Batch, device, precision: str, warmup: int, steps: int, conv_layout=None
) -> list[float]:
    """Seconds per full training step, ``steps`` of them after ``warmup`` untimed ones; the conv
    weights in ``conv_layout`` if given, else the trainer's (``DeepSpeech2.to_device``)."""
    model.to_device(device).train()
    if conv_layout is not None:
        model.convs.to(memory_format=conv_layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    feats = batch.features.to(device)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            log_probs, out_lengths = model(feats, batch.lengths)
        targets = batch.targets.to(device)
        loss = ctc_loss(log_probs.float(), out_lengths.to(device),
                        Batch(feats, batch.lengths, targets, batch.target_lengths.to(device),
                              batch.texts, batch.indices, batch.seconds, []))  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="ds2-small", help="model preset to train")
    p.add_argument("--manifest", type=Path, default=None,
                   help="take clips from this manifest instead of synthetic ones")  # fmt: skip
    p.add_argument("--batch-seconds", type=float, default=100.0, help="audio seconds per batch")
    p.add_argument("--clip-seconds", type=float, default=4.0, help="synthetic clip length (s)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per precision")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                   help="CPU precisions to time")  # fmt: skip
    p.add_argument("--torch-gru", action="store_true",
                   help="also time a GRU preset on the CPU with nn.GRU's own backward "
                        "(ds2.gru's is the default)")  # fmt: skip
    p.add_argument("--default-conv-layout", action="store_true",
                   help="also time the CPU runs with the conv weights in PyTorch's default "
                        "layout (the trainer's, channels-last, is the default)")  # fmt: skip
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    vocab = Vocabulary()
    model_cfg = preset(args.preset)
    if args.manifest:
        samples = manifest_batch(args.manifest, args.batch_seconds, model_cfg)
    else:
        samples = synthetic_batch(args.batch_seconds, args.clip_seconds)
    batch, feat_time = featurize(samples, vocab)
    print(f"{args.preset}: {len(batch)} clips, {batch.seconds:.1f} s of audio per batch "
          f"(padded to {batch.features.shape[-1] / 100:.1f} s each), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")  # fmt: skip
    print(f"  features (1 process):    {batch.seconds / feat_time:8.1f} audio-s/s")

    runs = [("cpu", prec, True, None) for prec in args.precisions]
    if args.torch_gru and model_cfg.rnn_type == "gru":
        runs += [("cpu", prec, False, None) for prec in args.precisions]
    if args.default_conv_layout:
        runs += [("cpu", prec, True, torch.contiguous_format) for prec in args.precisions]
    if torch.cuda.is_available():
        runs.append(("cuda", "bf16", True, None))
    for dev, prec, fast_gru, layout in runs:
        torch.manual_seed(0)
        model = DeepSpeech2(model_cfg)
        model.fast_cpu_gru = fast_gru
        warmup, steps, note = args.warmup, args.steps, ""
        if dev == "cpu" and prec == "bf16" and not cpu_has_fast_bf16():
            # Emulated bf16 takes minutes per step: one step tells the story.
            warmup, steps, note = 0, 1, "  [no native bf16 on this CPU: emulated]"
        times = time_steps(model, batch, torch.device(dev), prec, warmup, steps, layout)
        med = statistics.median(times)
        label = f"train {dev} {prec}{'' if fast_gru else ' nn.GRU'}"
        label += " default convs:" if layout is not None else ":"
        print(f"  {label:24s} {batch.seconds / med:8.1f} audio-s/s  "
              f"({med:.2f} s/step, median of {len(times)}){note}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
