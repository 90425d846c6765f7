"""The shipped default checkpoint transcribes the bundled example clips (trained weights: slow).

Run with ``python -m pytest -m slow tests/test_shipped_model.py``.
"""

import json
from pathlib import Path

import pytest

import ds2

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = json.loads((REPO / "examples" / "examples.json").read_text())
MAX_CER = 0.15  # issue target for the shipped model on a bundled clip


def cer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.cer(ref, hyp)


@pytest.fixture(scope="module")
def shipped():
    names = [n for n in ds2.available_models() if (REPO / "checkpoints" / n).is_dir()]
    if not names:
        pytest.skip("no checkpoint ships in checkpoints/")
    return ds2.load_model(names[0], device="cpu")


@pytest.mark.slow
def test_default_model_is_a_trained_shipped_checkpoint(shipped):
    assert shipped.config["training"].get("steps", 0) > 0
    assert shipped.lm_path is not None and shipped.lexicon_path is not None


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e["file"] for e in EXAMPLES])
def test_bundled_clip_is_transcribed(shipped, example):
    result = ds2.transcribe(shipped, REPO / "examples" / example["file"], decoder="beam")
    ref = ds2.normalize_text(example["text"])
    assert cer(ref, result.text) < MAX_CER, (ref, result.text, result.greedy.text)


@pytest.mark.slow
def test_command_line_prints_the_bundled_clips(shipped):
    """`python -m ds2 transcribe` with no options: the shipped model, beam search with its LM."""
    import os
    import subprocess
    import sys

    files = [str(REPO / "examples" / e["file"]) for e in EXAMPLES]
    proc = subprocess.run(
        [sys.executable, "-m", "ds2", "transcribe", "--quiet", *files],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "DS2_MODEL": ""},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert list(printed) == files
    for e, path in zip(EXAMPLES, files, strict=True):
        ref = ds2.normalize_text(e["text"])
        assert cer(ref, printed[path]) < MAX_CER, (ref, printed[path])
        beam = ds2.transcribe(shipped, path, decoder="beam").text
        assert printed[path] == beam  # the same search, the model's own LM
