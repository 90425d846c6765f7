import os

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
def test_build_writes_a_16k_manifest(tmp_path, capsys):
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
