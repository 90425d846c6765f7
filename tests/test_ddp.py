"""DistributedDataParallel: two CPU processes (gloo) train a tiny model for a few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ds2
from tests.test_train import make_corpus, tiny_args
from train import checkpointing as ckpt

ROOT = Path(__file__).resolve().parents[1]


def test_two_process_gloo_run(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 8)
    exp = tmp_path / "exp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train.train", *tiny_args(manifest, exp, "--max-steps", "4", "--threads", "1"),
        "--valid", str(manifest),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0 and "gloo" in proc.stderr.lower() and "not available" in proc.stderr:
        pytest.skip("this torch build has no gloo backend")
    assert proc.returncode == 0, proc.stderr[-3000:]

    events = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    # Only rank 0 logs: every step appears once, the run ends once.
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2, 3, 4]
    assert sum(e["event"] == "end" for e in events) == 1
    assert sum(e["event"] == "valid" for e in events) == 1
    # The sampler split 8 utterances over 2 ranks: each step trains on both ranks' audio.
    data = next(e for e in events if e["event"] == "data")
    assert data["train_utterances"] == 8
    last = exp / "checkpoints" / "last"
    meta = ckpt.load_trainer_state(last)[0]
    assert meta["step"] == 4
    loaded = ds2.load_folder(last)  # rank 0 saved the unwrapped model, not the DDP wrapper
    assert loaded.config["training"]["world_size"] == 2
    assert not list((exp / "checkpoints").glob(".tmp-*"))
