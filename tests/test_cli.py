"""`python -m ds2`: every output format, batches with bad files, exit codes, progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ds2.cli import _Progress, main
from tests.test_subtitles import parse_srt, parse_vtt

REPO = Path(__file__).resolve().parent.parent


def run_ds2(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ds2", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def notes(tmp_path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("these are not audio samples\n")
    return path


def test_batch_with_bad_files_reports_each_and_exits_2(tiny_checkpoint, speech_wav, notes):
    missing = notes.parent / "missing.wav"
    proc = run_ds2(
        "transcribe", speech_wav, missing, notes, "--model", tiny_checkpoint, "--format", "jsonl"
    )
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    assert len(lines) == 1  # the good file still came through
    row = json.loads(lines[0])
    assert row["file"] == str(speech_wav) and row["duration"] == pytest.approx(1.9, abs=0.5)
    assert set(row) >= {"text", "greedy", "beam", "words", "timings_ms", "rtf"}
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in proc.stderr
    assert errors[0].startswith("ds2: error: ") and "missing.wav" in errors[0]
    assert errors[1].startswith("ds2: error: ") and "notes.wav" in errors[1]


def test_bad_model_and_device_exit_2(speech_wav, tmp_path):
    proc = run_ds2("transcribe", speech_wav, "--model", tmp_path / "no-such-model")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("ds2: error: ") and "no-such-model" in proc.stderr


def test_srt_to_stdout_with_beam(tiny_checkpoint, speech_wav):
    proc = run_ds2(
        "transcribe", speech_wav, "--model", tiny_checkpoint, "--format", "srt", "--decoder", "beam"
    )
    assert proc.returncode == 0, proc.stderr
    cues = parse_srt(proc.stdout)
    assert cues and cues[0][0] == 1 and cues[-1][2] <= 2.5


def test_txt_and_json(tiny_checkpoint, speech_wav, capsys):
    assert main(["transcribe", str(speech_wav), "--model", str(tiny_checkpoint)]) == 0
    text = capsys.readouterr().out
    assert text.endswith("\n") and text.count("\n") == 1

    argv = ["transcribe", str(speech_wav), "--model", str(tiny_checkpoint), "--format", "json"]
    assert main(argv + ["--nbest", "2"]) == 0  # beam search is the default, as in the app
    d = json.loads(capsys.readouterr().out)
    assert d["decoder"] == "beam" and 1 <= len(d["beam"]) <= 2 and d["text"] == d["beam"][0]["text"]
    assert d["text"] + "\n" == text  # txt prints the same transcript
    assert main(argv + ["--decoder", "greedy"]) == 0
    g = json.loads(capsys.readouterr().out)
    assert g["decoder"] == "greedy" and g["beam"] == [] and g["text"] == d["greedy"]["text"]
    assert main(argv + ["--decoder", "beam", "--nbest", "2", "--no-lm"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["decoder"] == "beam" and 1 <= len(d["beam"]) <= 2 and d["text"] == d["beam"][0]["text"]
    assert " ".join(w["word"] for w in d["words"]) == d["text"]
    for w in d["words"]:
        assert 0 <= w["start"] < w["end"] and 0 <= w["confidence"] <= 1
    assert d["timings_ms"]["beam"] >= 0 and d["timings_ms"]["total"] > 0

    # several files: txt lines carry the file name, json becomes one array
    assert (
        main(["transcribe", str(speech_wav), str(speech_wav), "--model", str(tiny_checkpoint)]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{speech_wav}: {text.strip()}"] * 2
    assert main(argv[:2] + [str(speech_wav)] + argv[2:]) == 0
    assert [r["file"] for r in json.loads(capsys.readouterr().out)] == [str(speech_wav)] * 2


def test_subtitles_into_a_folder_and_beside_the_input(
    tiny_checkpoint, speech_wav, tmp_path, capsys
):
    first, other = tmp_path / "a" / "hello.wav", tmp_path / "b" / "hello.wav"  # same names
    for path in (first, other):
        path.parent.mkdir()
        path.write_bytes(speech_wav.read_bytes())
    out_dir = tmp_path / "subs"
    argv = ["transcribe", str(first), str(other), "--model", str(tiny_checkpoint)]
    assert main(argv + ["--format", "vtt", "--output-dir", str(out_dir)]) == 0
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["hello-2.vtt", "hello.vtt"]
    for name in written:
        parse_vtt((out_dir / name).read_text())
    assert "wrote" in capsys.readouterr().err

    # several files without --output-dir: each subtitle file lands beside its audio
    assert main(argv + ["--format", "srt", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    for audio in (first, other):
        parse_srt(audio.with_suffix(".srt").read_text())

    assert main(argv + ["--format", "jsonl", "--output-dir", str(out_dir)]) == 0
    rows = (out_dir / "transcripts.jsonl").read_text().splitlines()
    assert [json.loads(r)["file"] for r in rows] == [str(first), str(other)]


def test_models_and_help(capsys):
    assert main(["models"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["transcribe", "--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    assert "--beam-width" in help_text and "(default: 128)" in help_text
    with pytest.raises(SystemExit) as e:
        main([])  # a command is required
    assert e.value.code == 2


def test_progress_bar_only_for_windowed_files(capsys):
    bar = _Progress("talk.wav", enabled=True)
    bar(1.0)  # a single pass: no bar
    assert bar.bar is None
    for f in (0.25, 0.5, 1.0):
        bar(f)
    assert bar.bar.n == 100
    bar.close()
    assert "talk.wav" in capsys.readouterr().err
    quiet = _Progress("talk.wav", enabled=False)
    quiet(0.5)
    assert quiet.bar is None
