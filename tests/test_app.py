"""The Gradio app: the real server in a subprocess, called through gradio_client.

The server runs ``python app.py --host 127.0.0.1 --port FREE`` with ``DS2_MODEL`` pointing at
an untrained tiny checkpoint, exactly as a user starts it; a few helpers are also tested in
process (word diff, error rates, the live-microphone buffer, starting without any model).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ds2.audio import SAMPLE_RATE, save_wav
from ds2.decoding import Word
from tests.utils import tone

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STARTUP_SECONDS = 240  # gradio + torch import on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(model_dir: Path, log_path: Path, **env) -> tuple[subprocess.Popen, str]:
    """Start app.py on a free port and wait until it answers; returns (process, url)."""
    import httpx

    port = free_port()
    full_env = {**os.environ, "DS2_MODEL": str(model_dir), "GRADIO_ANALYTICS_ENABLED": "False"}
    full_env.update({k: str(v) for k, v in env.items()})
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_app(proc)
    raise RuntimeError(f"app.py did not answer in {STARTUP_SECONDS} s:\n{log_path.read_text()}")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "server.log"
    proc, url = start_app(tiny_checkpoint, log, DS2_MAX_SECONDS=30)
    yield url, proc, log
    stop_app(proc)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def transcribe(client, path, reference="", run_beam=True):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(path)) if path else None,
        None,  # model: the server's default ($DS2_MODEL)
        run_beam,
        16,  # beam width
        False,  # LM
        0.8,
        0.0,
        reference,
        api_name="/transcribe",
    )


def test_transcribes_speech_with_figures_and_subtitles(client, speech_wav):
    out = transcribe(client, speech_wav, reference="hello world this is a test")
    text, summary, player, spec, post, greedy, beam, nbest, words, subs, timings = out
    assert isinstance(text, str)
    assert "WER" in summary and "2 s of audio" in summary
    for png in (spec, post):
        assert Path(png).read_bytes()[:8] == PNG_MAGIC
    assert Path(player["value"]).is_file() and player["subtitles"].endswith(".vtt")
    beam_text = "".join(t["token"] for t in beam)
    assert beam_text == text  # the transcript is the best beam hypothesis
    assert len(nbest["data"]) >= 1 and nbest["data"][0][1] == text
    assert [row[0] for row in words["data"]] == text.split()
    srt, vtt = sorted(subs, key=lambda p: Path(p).suffix)
    assert Path(srt).suffix == ".srt" and Path(vtt).suffix == ".vtt"
    assert Path(vtt).read_text().startswith("WEBVTT")
    if text:
        assert "-->" in Path(srt).read_text()
    assert "network" in timings and "Real-time factor" in timings


def test_greedy_only(client, speech_wav):
    text, _, _, spec, post, greedy, beam, nbest, *_ = transcribe(client, speech_wav, run_beam=False)
    assert "".join(t["token"] for t in greedy) == text
    assert not beam
    assert nbest["data"] in ([], [["", "", ""]], [[None, None, None]])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"this is not audio at all\n" * 20, "not a supported audio file"),
        ("empty.wav", b"", "empty"),
        ("silence.wav", None, "silent"),
        ("long.wav", "tone", "accepts up to"),
    ],
)
def test_bad_input_gives_a_message_not_a_crash(client, server, tmp_path, name, content, message):
    from gradio_client.exceptions import AppError

    path = tmp_path / name
    if content is None:
        save_wav(path, np.zeros(SAMPLE_RATE, dtype=np.float32))
    elif content == "tone":
        save_wav(path, tone(31.0))  # the test server accepts up to 30 s
    else:
        path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        transcribe(client, path)
    assert server[1].poll() is None, "the server died"
    assert "Traceback" not in server[2].read_text()


def test_no_audio_is_an_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="No audio"):
        transcribe(client, None)


# ------------------------------------------------------------------------------------------
# In process


@pytest.fixture(scope="module")
def app_module():
    import app

    return app


def test_word_diff_marks_changes(app_module):
    left, right = app_module.word_diff("the cat sat on mat", "the cat sat on the mat")
    assert ("the", "beam only") in right
    assert all(label is None for _, label in left)
    left, right = app_module.word_diff("a big dog", "a pig dog ran")
    assert ("big", "differs") in left and ("pig", "differs") in right
    assert ("ran", "beam only") in right
    assert "".join(t for t, _ in left) == "a big dog"


def test_error_rates(app_module):
    wer, cer = app_module.error_rates("The cat sat.", "the cat sat")
    assert wer == 0.0 and cer == 0.0
    wer, _ = app_module.error_rates("one two three four", "one too three")
    assert wer == pytest.approx(0.5)


def test_live_session_buffer_stays_bounded(app_module, tiny_checkpoint, speech_wav):
    from ds2 import load_folder
    from ds2.audio import load_audio

    model = load_folder(tiny_checkpoint)
    speech = load_audio(speech_wav)
    rate = 48_000  # browsers record at 44.1 or 48 kHz
    from ds2.audio import resample

    recording = np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32)] * 8)  # ~24 s
    pcm = (resample(recording, SAMPLE_RATE, rate) * 32767).astype(np.int16)
    session = app_module.LiveSession()
    step = int(app_module.LIVE_EVERY * rate)
    for i in range(0, len(pcm), step):
        text = session.add(model, rate, pcm[i : i + step])
        assert isinstance(text, str)
        limit = (app_module.LIVE_WINDOW + app_module.LIVE_EVERY) * SAMPLE_RATE
        assert len(session.buffer) <= limit
    assert session.seconds == pytest.approx(len(recording) / SAMPLE_RATE, abs=0.01)
    assert session.committed or session.tail_text  # the long session was cut at least once
    final = session.finish(model, decoder="greedy")
    assert final == session.text and len(session.buffer) == 0


def test_live_commit_cuts_between_words(app_module):
    session = app_module.LiveSession()
    session.buffer = np.zeros(int(14 * SAMPLE_RATE), dtype=np.float32)
    words = [Word("one", 1.0, 1.5, 1.0), Word("two", 3.0, 3.6, 1.0), Word("three", 12.0, 13.0, 1)]
    session._commit(words)
    assert session.committed == ["one", "two"]
    cut = (3.6 + 12.0) / 2  # halfway through the pause
    assert len(session.buffer) == pytest.approx((14 - cut) * SAMPLE_RATE, abs=1)


def test_starts_and_says_so_without_a_model(app_module, monkeypatch, tmp_path):
    import ds2.hub

    monkeypatch.setattr(ds2.hub, "CHECKPOINTS_DIR", tmp_path)
    monkeypatch.delenv("DS2_MODEL", raising=False)
    monkeypatch.delenv("DS2_MODELS", raising=False)
    assert app_module.default_model_spec() is None
    demo = app_module.build_demo()  # the page builds
    assert demo is not None
    status, *_ = app_module.on_model_change(None)
    assert "No model is available" in status
    save_wav(tmp_path / "x.wav", tone(1.0))
    with pytest.raises(Exception, match="No model is available"):
        app_module.transcribe_audio(str(tmp_path / "x.wav"), None, True, 8, False, 0.8, 0.0, "")


def test_input_limits(app_module, monkeypatch, tmp_path):
    from ds2.errors import AudioError

    path = tmp_path / "a.wav"
    save_wav(path, tone(2.0))
    app_module.check_input(str(path))
    monkeypatch.setattr(app_module, "MAX_SECONDS", 1.5)
    with pytest.raises(AudioError, match="2 s long"):
        app_module.check_input(str(path))
    monkeypatch.setattr(app_module, "MAX_UPLOAD_MB", 0.01)
    with pytest.raises(AudioError, match="MB"):
        app_module.check_input(str(path))


def test_model_status_flags_untrained(app_module, tiny_checkpoint, tmp_path):
    from ds2 import load_folder
    from tests.utils import make_tiny_checkpoint

    assert "untrained" in app_module.describe_model(load_folder(tiny_checkpoint))
    trained = make_tiny_checkpoint(tmp_path / "t", hours=1.5, steps=1000)
    status = app_module.describe_model(load_folder(trained))
    assert "untrained" not in status and "Training: 1,000 steps" in status
    foreign = make_tiny_checkpoint(tmp_path / "f", hours=1.5, dataset="mine")
    assert "hours: 1.5" in app_module.describe_model(load_folder(foreign))  # shown as they are


def test_training_summary_reads_like_a_sentence(app_module):
    training = {
        "steps": 2020,
        "elapsed_hours": 2.12,
        "train_hours": 98.0,
        "train_utterances": 104893,
        "audio_hours_seen": 49.46,
        "best_valid_cer": 0.3292,
        "averaged_steps": [1750, 2000, 2020],
        "config": {"lr": 1e-3},
    }
    line = app_module.training_summary(training)
    assert line == (
        "2,020 steps in 2.1 h · 49.5 h of audio heard from a 98.0 h corpus (104,893 clips) · "
        "best validation CER 32.9% · weights: mean of 3 checkpoints"
    )
    assert app_module.training_summary({"steps": 5}) == "5 steps"
    on_gpu = {"steps": 5, "elapsed_hours": 0.5, "hardware": {"gpu": "H100", "cpu_count": 16}}
    assert app_module.training_summary(on_gpu) == "5 steps in 30 min on H100"
    assert app_module.training_summary({}) == ""
    tuned = {"steps": 5, "init_from": {"spec": "exp/base/avg", "name": "avg"}}
    assert app_module.training_summary(tuned) == (
        "fine-tuned from exp/base/avg for 5 steps (its earlier training is not recorded)"
    )
    # a fine-tune that carries the runs before it: the line sums them all
    stages = {**training, "hardware": {"cpu_count": 2}, "init_from": {"spec": "exp/base/avg"},
              "earlier_stages": [{"steps": 9000, "elapsed_hours": 10.4, "audio_hours_seen": 210.0,
                                  "init_from": None, "hardware": {"cpu_count": 2}}]}  # fmt: skip
    assert app_module.training_summary(stages) == (
        "2 training stages, 11,020 steps in 12.5 h on 2 CPU cores · 259.5 h of audio heard · "
        "last stage: 2,020 steps on a 98.0 h corpus · best validation CER 32.9% · "
        "weights: mean of 3 checkpoints"
    )
    soup = {
        **training,
        "averaged_steps": [419, 448],
        "averaged_from": [{"step": 419}, {"step": 448}],
    }
    assert app_module.training_summary(soup).endswith(
        " · last run's best validation CER 32.9% · weights: mean of 2 runs' weights"
    )
    orphan = {**stages, "earlier_stages": [{"steps": 10, "init_from": "org/foreign"}]}
    assert app_module.training_summary(orphan).startswith(
        "2 training stages, 2,030 steps after org/foreign (its own training not recorded) · "
    )


def tiny_lm_checkpoint(folder: Path, words: list[str]) -> Path:
    """A tiny model whose config.json names a lexicon and a bigram ARPA LM of ``words``."""
    import json
    import math

    from tests.utils import make_tiny_checkpoint

    make_tiny_checkpoint(folder, hours=1.0)
    (folder / "lexicon.txt").write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in words))
    uni = ["<s>", "</s>", "<unk>", *words]
    p = math.log10(1 / len(uni))
    arpa = f"\\data\\\nngram 1={len(uni)}\nngram 2={len(words) - 1}\n\n\\1-grams:\n"
    arpa += "".join(f"{p:.4f}\t{w}\t-0.3\n" for w in uni) + "\n\\2-grams:\n"
    arpa += "".join(f"-0.3\t{a} {b}\n" for a, b in zip(words, words[1:])) + "\n\\end\\\n"
    (folder / "lm.arpa").write_text(arpa)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["decoder"] = {"lexicon": "lexicon.txt", "lm": "lm.arpa"}
    cfg["decoder"].update(lm_weight=0.5, word_score=1.5)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_model_with_a_word_lm(app_module, tmp_path, speech_wav):
    words = ["hello", "world", "this", "is", "a", "test"]
    spec = str(tiny_lm_checkpoint(tmp_path / "tiny-lm", words))
    status, weight, bonus, use_lm = app_module.on_model_change(spec)
    assert "word LM: yes" in status
    assert weight["value"] == 0.5 and weight["interactive"] is True and bonus["value"] == 1.5
    assert use_lm["value"] is True and use_lm["interactive"] is True
    text, *_ = app_module.transcribe_audio(str(speech_wav), spec, True, 8, True, 0.5, 1.5, "")
    assert set(text.split()) <= set(words)  # the lexicon allows no other word
    status, *_ = app_module.on_model_change(str(tmp_path / "missing"))
    assert status.startswith("⚠️") and "missing" in status


def test_warm_up_builds_the_decoder_the_first_request_uses(app_module, tmp_path, speech_wav):
    """The decoder built at start-up is the one the page's first beam + LM request gets."""
    from ds2.transcribe import _DECODERS, _DECODERS_LOCK

    words = ["hello", "world", "this", "is", "a", "test"]
    spec = str(tiny_lm_checkpoint(tmp_path / "tiny-lm", words))
    with _DECODERS_LOCK:
        _DECODERS.clear()
    thread = app_module.warm_up(app_module.get_model(spec))
    thread.join(timeout=120)
    assert not thread.is_alive()
    (warm,) = _DECODERS.values()
    assert warm.lm is not None and warm.lm_weight == 0.5

    # the first request, with the values on_model_change puts in the controls
    _, weight, bonus, use_lm = app_module.on_model_change(spec)
    controls = (
        True,
        app_module.DEFAULT_BEAM_WIDTH,
        use_lm["value"],
        weight["value"],
        bonus["value"],
    )
    app_module.transcribe_audio(str(speech_wav), spec, *controls, "")
    (used,) = _DECODERS.values()
    assert used is warm
