"""train.vocode: WORLD pseudo-talkers with pitch and vocal tract moved apart."""

import json

import numpy as np
import pytest
import soundfile as sf

from ds2.audio import SAMPLE_RATE
from train import vocode


def _voiced(seconds=1.5, f0=120.0, formant_hz=900.0):
    """Harmonics of ``f0`` shaped by one resonance at ``formant_hz``, under a syllable envelope."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = np.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        gain = 1.0 / (1.0 + ((k * f0 - formant_hz) / 150.0) ** 2)
        x += gain * np.sin(2 * np.pi * k * f0 * t)
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return (0.5 * x * env / np.abs(x).max()).astype(np.float32)


def test_warp_frequency_moves_a_peak_by_the_factor():
    n = 513
    m = np.zeros((2, n))
    m[:, 100] = 1.0
    assert np.array_equal(vocode.warp_frequency(m, 1.0), m)
    up, down = vocode.warp_frequency(m, 1.1), vocode.warp_frequency(m, 0.9)
    assert int(np.argmax(up[0])) == 110 and int(np.argmax(down[0])) == 90
    assert up.shape == m.shape and np.isfinite(down).all()


def test_draw_is_per_clip_deterministic_and_in_range():
    rows = [{"id": f"u{i}", "audio": f"a/{i}.flac"} for i in range(200)]
    a = [vocode.draw(r, seed=3) for r in rows]
    assert a == [vocode.draw(r, seed=3) for r in reversed(rows)][::-1]  # order does not matter
    assert a != [vocode.draw(r, seed=4) for r in rows]
    f0s, formants = np.array(a).T
    assert f0s.min() >= 0.75 and f0s.max() <= 1.35 and formants.min() >= 0.88
    assert formants.max() <= 1.14
    assert f0s.min() < 0.85 and f0s.max() > 1.2  # the range is used, not one value
    assert vocode.draw(rows[0], 3, (2.0, 2.0), (1.0, 1.0)) == (2.0, 1.0)


def test_only_clips_without_baked_in_noise_or_reverb_are_clean():
    assert vocode.is_clean({"audio": "a"}) and vocode.is_clean({"aug": {"gain_db": 2.0}})
    assert not vocode.is_clean({"aug": {"rt60": 0.3, "gain_db": 1.0}})
    assert not vocode.is_clean({"aug": {"snr_db": 20, "noise": "pink"}})


def _median_f0(x):
    pw = pytest.importorskip("pyworld")
    f0, _ = pw.dio(x.astype(np.float64), SAMPLE_RATE, frame_period=5.0)
    return float(np.median(f0[f0 > 0]))


def _envelope_peak_hz(x):
    pw = pytest.importorskip("pyworld")
    xd = x.astype(np.float64)
    f0, t = pw.dio(xd, SAMPLE_RATE, frame_period=5.0)
    sp = pw.cheaptrick(xd, pw.stonemask(xd, f0, t, SAMPLE_RATE), t, SAMPLE_RATE)
    mean = sp[f0 > 0].mean(axis=0)
    return float(np.argmax(mean)) * (SAMPLE_RATE / 2) / (len(mean) - 1)


def test_vocode_moves_pitch_and_formants_apart():
    pytest.importorskip("pyworld")
    x = _voiced()
    same = vocode.vocode(x)
    assert same.dtype == np.float32 and len(same) == len(x)
    assert _median_f0(same) == pytest.approx(120.0, rel=0.05)

    higher = vocode.vocode(x, f0_scale=1.3)
    assert _median_f0(higher) == pytest.approx(156.0, rel=0.05)
    assert _envelope_peak_hz(higher) == pytest.approx(_envelope_peak_hz(same), rel=0.12)

    shorter_tract = vocode.vocode(x, formant=1.14)
    assert _median_f0(shorter_tract) == pytest.approx(120.0, rel=0.05)  # the pitch stays
    assert _envelope_peak_hz(shorter_tract) > 1.08 * _envelope_peak_hz(same)
    loud = vocode.vocode(4 * x)
    assert np.abs(loud).max() <= 0.99 + 1e-6


def test_vocode_manifest_writes_clean_clips_only_and_rebuilds_the_same(tmp_path):
    pytest.importorskip("pyworld")
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i, (f0, aug) in enumerate([(110, None), (180, {"gain_db": 1.0}), (140, {"rt60": 0.4})]):
        path = src / f"c{i}.wav"
        sf.write(path, _voiced(1.0, f0), SAMPLE_RATE)
        row = {"audio": str(path), "duration": 1.0, "text": f"clip {i}", "speaker": f"v{i}",
               "id": f"c{i}"}  # fmt: skip
        if aug:
            row["aug"] = aug
        rows.append(row)
    one = vocode.vocode_manifest(rows, tmp_path / "one", 10.0, seed=5, jobs=1, progress=False)
    two = vocode.vocode_manifest(rows, tmp_path / "two", 10.0, seed=5, jobs=2, progress=False)
    assert [r["id"] for r in one] == ["c0", "c1"]  # the reverberant clip is left out
    for a, b in zip(one, two, strict=True):
        assert a["speaker"].endswith("+world") and a["text"] == b["text"]
        assert a["aug"]["vocoder"] == "world" and a["aug"] == b["aug"]
        assert a["duration"] == pytest.approx(1.0, abs=0.01)
        assert sf.read(a["audio"])[0].tolist() == sf.read(b["audio"])[0].tolist()
    with pytest.raises(vocode.DS2Error, match="no clip"):
        vocode.vocode_manifest(rows[2:], tmp_path / "none", 1.0, progress=False)


def test_command_line(tmp_path, capsys):
    pytest.importorskip("pyworld")
    path = tmp_path / "c.wav"
    sf.write(path, _voiced(1.0), SAMPLE_RATE)
    manifest = tmp_path / "m.jsonl"
    row = {"audio": str(path), "duration": 1.0, "text": "a clip", "speaker": "v"}
    manifest.write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    vocode.main(["--manifest", str(manifest), "--out", str(out), "--f0", "1.2,1.2"])
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["aug"]["f0"] == 1.2 and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        vocode.main(["--manifest", str(manifest), "--out", str(out), "--f0", "1.3,1.1"])
