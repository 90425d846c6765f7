"""The conv stack on the CPU with its weights in PyTorch's default layout and in channels-last.

    python benchmarks/conv_layout.py                        # ds2-small and ds2-large
    python benchmarks/conv_layout.py --presets ds2-large --repeats 9

``DeepSpeech2.to_device("cpu")`` (what loading a model and the trainer do) stores the conv
weights channels-last, where oneDNN runs the convolutions much faster. This times the two conv
layers with their batch norm and clipping, the two layouts interleaved round by round so that a
busy machine slows both alike, and prints the median of ``--repeats`` rounds (one warm-up round
first):

- inference: one clip of ``--clip-seconds`` (30) under ``torch.inference_mode``;
- training: forward and backward on a batch of ``--batch-seconds`` (150) of 4-s clips.

The outputs of the two layouts are compared too (the same maths, summed in another order).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ds2.model import DeepSpeech2, preset  # noqa: E402

LAYOUTS = {"default": torch.contiguous_format, "channels-last": torch.channels_last}


def conv_stack(name: str, layout) -> torch.nn.Module:
    torch.manual_seed(0)
    convs = torch.nn.Sequential(*DeepSpeech2(preset(name)).convs)
    return convs.to(memory_format=layout)


def time_round(stack: torch.nn.Module, x: torch.Tensor, train: bool) -> float:
    t0 = time.perf_counter()
    if train:
        stack.train()
        stack(x).sum().backward()
        stack.zero_grad(set_to_none=True)
    else:
        stack.eval()
        with torch.inference_mode():
            stack(x)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--presets", nargs="+", default=["ds2-small", "ds2-large"])
    p.add_argument("--clip-seconds", type=float, default=30.0, help="inference clip length")
    p.add_argument("--batch-seconds", type=float, default=150.0, help="training batch (4-s clips)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per case")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    for name in args.presets:
        n_features = preset(name).n_features
        cases = {
            "inference": (torch.randn(1, 1, n_features, int(args.clip_seconds * 100) + 1), False),
            "training": (torch.randn(int(args.batch_seconds // 4), 1, n_features, 401), True),
        }
        for case, (x, train) in cases.items():
            stacks = {k: conv_stack(name, v) for k, v in LAYOUTS.items()}
            with torch.no_grad():
                outs = [s.eval()(x) for s in stacks.values()]
            diff = (outs[0] - outs[1]).abs().max().item() / outs[0].abs().max().item()
            times = {k: [] for k in stacks}
            for r in range(args.repeats + 1):
                for k, s in stacks.items():
                    dt = time_round(s, x, train)
                    if r:  # the first round warms up
                        times[k].append(dt)
            med = {k: statistics.median(v) for k, v in times.items()}
            shape = "x".join(map(str, x.shape))
            print(f"{name} {case} ({shape}): "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in med.items())
                  + f"; channels-last {med['default'] / med['channels-last']:.2f}x as fast;"
                  f" outputs differ by {diff:.1e} of their largest")  # fmt: skip


if __name__ == "__main__":
    main()
