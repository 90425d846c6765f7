import shutil

import numpy as np
import pytest

from ds2.audio import SAMPLE_RATE
from tests.utils import tone
from train import augment

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


def _speechlike(seconds=2.0, seed=0):
    """Harmonics of a gliding 120-200 Hz pitch under a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 160 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 20))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (0.3 * x * env / np.abs(x).max()).astype(np.float32)


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return spec[(f >= lo) & (f < hi)].sum() / spec.sum()


@pytest.mark.parametrize("snr", [5.0, 15.0, 30.0])
@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_noise_at_requested_snr(snr, color):
    x = _speechlike()
    y = augment.add_noise(x, snr, np.random.default_rng(1), color)
    noise = y - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr, abs=0.2)
    assert y.dtype == np.float32 and len(y) == len(x)


def test_noise_colour_shapes_the_spectrum():
    rng = np.random.default_rng(0)
    silence_ish = np.full(SAMPLE_RATE, 0.1, np.float32)  # DC only: the noise is all the rest
    low = {
        c: _band_energy(augment.add_noise(silence_ish, 0, rng, c) - silence_ish, 1, 500)
        for c in ("white", "pink", "brown")
    }
    assert low["white"] < low["pink"] < low["brown"]


def test_band_limit_removes_energy_outside_the_telephone_band():
    rng = np.random.default_rng(0)
    white = rng.standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
    y = augment.band_limit(white)
    assert _band_energy(white, 300, 3400) == pytest.approx(3100 / 8000, abs=0.03)
    assert _band_energy(y, 300, 3400) > 0.97
    assert _band_energy(y, 0, 150) < 0.005 and _band_energy(y, 4500, 8000) < 0.005
    t = augment.telephone(white)
    assert len(t) == len(white) and _band_energy(t, 4100, 8000) < 0.01


def test_reverb_spreads_energy_in_time_and_keeps_length_and_peak():
    click = np.zeros(SAMPLE_RATE, np.float32)
    click[1000] = 0.5
    y = augment.add_reverb(click, np.random.default_rng(0), rt60=0.5)
    assert len(y) == len(click) and np.abs(y).max() == pytest.approx(0.5, rel=1e-5)
    tail = y[1000 + int(0.05 * SAMPLE_RATE) : 1000 + int(0.3 * SAMPLE_RATE)]
    assert np.sqrt(np.mean(tail**2)) > 1e-3  # energy 50-300 ms after the click
    # Decay: the late tail is much weaker than the early one (RT60 0.5 s -> ~-24 dB at 0.2 s).
    early = np.mean(y[1100 : 1100 + 1600] ** 2)
    late = np.mean(y[1000 + 4800 : 1000 + 6400] ** 2)
    assert 10 * np.log10(early / late) > 15


def test_gain_and_speed_perturb():
    x = tone(1.0) * 0.1
    assert np.abs(augment.apply_gain(x, 6.0)).max() == pytest.approx(0.03 * 10**0.3, rel=1e-3)
    assert np.abs(augment.apply_gain(x, 40.0)).max() == 1.0  # clipped
    y = augment.speed_perturb(tone(1.0, freq=440.0), 1.25)
    assert len(y) == pytest.approx(SAMPLE_RATE / 1.25, abs=2)
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * SAMPLE_RATE / len(y)
    assert peak_hz == pytest.approx(550.0, abs=3)


@needs_sox
@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_tempo_changes_duration_not_pitch(factor):
    x = tone(2.0, freq=300.0)
    y = augment.change_tempo(x, factor)
    assert len(y) / SAMPLE_RATE == pytest.approx(2.0 / factor, rel=0.02)
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * SAMPLE_RATE / len(y)
    assert peak_hz == pytest.approx(300.0, abs=5)


@needs_sox
@pytest.mark.parametrize("cents", [-300, 300])
def test_pitch_shift_keeps_duration(cents):
    x = tone(1.0, freq=300.0)
    y = augment.pitch_shift(x, cents)
    assert len(y) == len(x)
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * SAMPLE_RATE / len(y)
    assert peak_hz == pytest.approx(300.0 * 2 ** (cents / 1200), rel=0.02)


def test_random_augment_is_reproducible_and_reports_what_it_did():
    x = _speechlike()
    a, info_a = augment.random_augment(x, np.random.default_rng(5), p_reverb=1, p_noise=1)
    b, info_b = augment.random_augment(x, np.random.default_rng(5), p_reverb=1, p_noise=1)
    assert np.array_equal(a, b) and info_a == info_b
    assert {"rt60", "snr_db", "noise", "gain_db"} <= set(info_a)
    assert 5 <= info_a["snr_db"] <= 30 and len(a) == len(x)
    assert np.abs(a).max() <= 1.0
    assert not np.array_equal(x, a)
    assert np.array_equal(x, _speechlike())  # the input is not modified


def test_perturbed_copies_are_new_speakers_at_each_speed(tmp_path):
    import soundfile as sf

    from train.manifest import read_manifest, write_manifest

    x = _speechlike(1.0)
    sf.write(tmp_path / "a.flac", x, SAMPLE_RATE)
    src = write_manifest(
        tmp_path / "src.jsonl",
        [{"audio": str(tmp_path / "a.flac"), "duration": 1.0, "text": "hi", "speaker": "amy"}],
    )
    augment.main(["--manifest", str(src), "--out", str(tmp_path / "sp"), "--speeds", "0.8", "1.25"])
    rows = read_manifest(tmp_path / "sp" / "perturbed.jsonl")
    assert [r["speaker"] for r in rows] == ["amy-sp0.8", "amy-sp1.25"]
    assert [r["duration"] for r in rows] == pytest.approx([1.25, 0.8], abs=0.002)
    assert all(r["text"] == "hi" and r["aug"]["speed"] in (0.8, 1.25) for r in rows)
    for r in rows:
        y, sr = sf.read(r["audio"])
        assert sr == SAMPLE_RATE and len(y) == round(r["duration"] * SAMPLE_RATE)
    # Speed only: the slowed copy is the same signal, its pitch lowered by the factor.
    plain = augment.perturb_manifest(
        str(src), str(tmp_path / "p"), [0.8], augment=False, progress=False
    )
    y, _ = sf.read(plain[0]["audio"])
    f = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    f0_in = f[np.argmax(np.abs(np.fft.rfft(x, len(y))))]
    f0_out = f[np.argmax(np.abs(np.fft.rfft(y)))]
    assert f0_out == pytest.approx(0.8 * f0_in, rel=0.1)
    with pytest.raises(SystemExit):
        augment.main(["--manifest", str(src), "--out", str(tmp_path / "z"), "--speeds", "3"])
