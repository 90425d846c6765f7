import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ds2.audio import SAMPLE_RATE
from train import realspeech
from train.manifest import read_manifest

HAVE_ANY = any(
    os.path.exists(p)
    for p in (realspeech.ALSA_DIR, realspeech.KLETTRES_DIR, realspeech.KTUBERLING_DIR)
)


def test_name_to_text_mappings():
    if os.path.isdir(realspeech.ALSA_DIR):
        alsa = {os.path.basename(i["src"]): i["text"] for i in realspeech.alsa_items()}
        assert alsa.get("Front_Center.wav") == "front center"
        assert "Noise.wav" not in alsa  # noise, not speech
    klettres = realspeech.klettres_items()
    if klettres:
        letters = {i["text"] for i in klettres if i["kind"] == "letter"}
        assert set("abcdefghijklmnopqrstuvwxyz") <= letters  # a spoken letter is the letter
        assert all(i["text"] == i["text"].lower() for i in klettres)
    tuber = realspeech.ktuberling_items()
    if tuber:
        words = {i["text"] for i in tuber}
        assert {"camel", "palm tree", "broccoli"} <= words  # theme prefix off, names fixed
        assert not any("_" in w or "egypt" in w for w in words)


@pytest.mark.skipif(not HAVE_ANY, reason="none of alsa-utils, klettres-data, ktuberling-data")
def test_build_writes_a_16k_manifest(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(realspeech, "asterisk_items", lambda: [])  # tested on its own below
    realspeech.main(["--out", str(tmp_path)])
    rows = read_manifest(tmp_path / "real_dev.jsonl")
    assert len(rows) >= 9
    assert len({r["audio"] for r in rows}) == len(rows)
    for r in rows[:: max(1, len(rows) // 15)]:
        info = sf.info(r["audio"])
        assert info.samplerate == SAMPLE_RATE and info.channels == 1
        assert r["duration"] == pytest.approx(info.frames / SAMPLE_RATE, abs=1e-3)
        assert r["text"] and r["kind"] in {"phrase", "word", "syllable", "letter"}
    assert "real_dev.jsonl:" in capsys.readouterr().out


def test_nothing_installed_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(realspeech, "alsa_items", lambda: [])
    monkeypatch.setattr(realspeech, "klettres_items", lambda: [])
    monkeypatch.setattr(realspeech, "ktuberling_items", lambda: [])
    with pytest.raises(realspeech.AudioError, match="no real speech found"):
        realspeech.build(tmp_path, verbose=False)


PROMPTS = """; Core Asterisk Sounds in English

agent-pass: Please enter your password followed by the pound key.
agent-user: Please enter your agent number.
digits/10: ten
letters/a: a
beep: [this is a simple beep tone]
dictate/forhelp: press * for help
conf-muted: You are now umuted.
no-file: This prompt has no recording.
"""


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg decodes G.722")
def test_asterisk_prompts_from_a_stand_in(tmp_path):
    """A stand-in for the Asterisk packages: G.722 files and a gzipped core-sounds-en.txt."""
    root, text = tmp_path / "Allison", tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(text, "wt") as f:
        f.write(PROMPTS)
    keys = ["agent-pass", "agent-user", "digits/10", "letters/a", "beep", "dictate/forhelp"]
    for i, key in enumerate(keys + ["conf-muted"]):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        src = f"sine=frequency={300 + 100 * i}:duration={0.5 + 0.25 * i}"
        cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", src, "-ar", "16000"]
        subprocess.run(cmd + ["-c:a", "g722", "-f", "g722", f"{root / key}.g722"], check=True)
    realspeech.ASTERISK_FIXES["umuted"] = "unmuted"  # the table fixes typos word by word
    try:
        texts = realspeech.asterisk_transcripts(text)
    finally:
        del realspeech.ASTERISK_FIXES["umuted"]
    assert texts == {
        "agent-pass": "please enter your password followed by the pound key",
        "agent-user": "please enter your agent number",
        "digits/10": "ten",
        "letters/a": "a",
        "conf-muted": "you are now unmuted",
        "no-file": "this prompt has no recording",
    }  # no bracketed non-speech, no "*" read out as a word

    items = realspeech.asterisk_items(str(root), str(text))
    by_key = {Path(i["src"]).relative_to(root).with_suffix("").as_posix(): i for i in items}
    assert set(by_key) == {"agent-pass", "agent-user", "digits/10", "letters/a", "conf-muted"}
    assert by_key["letters/a"]["kind"] == "letter" and by_key["digits/10"]["kind"] == "word"
    assert by_key["agent-pass"]["kind"] == "phrase"
    # Prompts that open alike ("please enter your ...") fall on the same side of the split.
    assert by_key["agent-pass"]["split"] == by_key["agent-user"]["split"]
    assert {i["split"] for i in items} <= {"train", "test"}
    sides = {realspeech.asterisk_is_test(f"word{n} two three") for n in range(200)}
    assert sides == {True, False}  # both sides happen: the hash really splits

    audio = realspeech.load_audio(f"{root / 'digits/10'}.g722")  # ffmpeg reads raw G.722
    assert audio.dtype == np.float32 and len(audio) == pytest.approx(1.0 * SAMPLE_RATE, abs=400)
    rows = realspeech.convert(items, tmp_path / "out", verbose=False)
    assert len(rows) == 5 and all(sf.info(r["audio"]).samplerate == SAMPLE_RATE for r in rows)
    (root / "broken.g722").write_bytes(b"")
    with pytest.raises(realspeech.AudioError, match="broken.g722"):
        realspeech.load_audio(root / "broken.g722")
