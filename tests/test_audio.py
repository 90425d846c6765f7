"""load_audio: every format and sample type in, mono float32 16 kHz out; bad input -> AudioError."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from ds2.audio import SAMPLE_RATE, duration, load_audio, resample, save_wav
from ds2.errors import AudioError, DS2Error
from tests.utils import tone

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def sine(seconds: float, freq: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum)) * sr / len(audio)


def ffmpeg_encode(src, dst, *args):
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


# --------------------------------------------------------------------------------------------
# Bad input: each one an AudioError that says what is wrong


def test_audio_error_is_a_ds2_error_and_a_value_error():
    assert issubclass(AudioError, DS2Error) and issubclass(AudioError, ValueError)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="audio file not found: '.*nope.wav'"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder, not an audio file"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"is empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)"):
        load_audio(b"")


def test_zero_length_wav(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="contains no samples"):
        load_audio(tmp_path / "zero.wav")
    # A header that promises a second of samples, followed by none of them.
    save_wav(tmp_path / "full.wav", tone(1.0))
    (tmp_path / "header.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:44])
    with pytest.raises(AudioError, match="contains no samples"):
        load_audio(tmp_path / "header.wav")
    with pytest.raises(AudioError, match="contains no samples"):
        load_audio(np.zeros((0, 2), np.int16), SAMPLE_RATE)


def test_too_short_for_one_output_frame(tmp_path):
    save_wav(tmp_path / "short.wav", tone(0.020))
    with pytest.raises(AudioError, match=r"too short: 20.0 ms, at least 25 ms"):
        load_audio(tmp_path / "short.wav")
    assert len(load_audio(tone(0.025), SAMPLE_RATE)) == 400
    # The limit is checked at 16 kHz, after resampling: 199 samples at 8 kHz are 24.9 ms.
    with pytest.raises(AudioError, match="too short"):
        load_audio(sine(199 / 8000, 440, 8000), 8000)


def test_silence(tmp_path):
    save_wav(tmp_path / "silence.wav", np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match=r"is silent \(peak -\d+ dBFS\)"):
        load_audio(tmp_path / "silence.wav")
    with pytest.raises(AudioError, match="silent"):
        load_audio(np.full(8000, 1e-6, np.float32), SAMPLE_RATE)
    quiet = load_audio(np.zeros(8000, np.float32), SAMPLE_RATE, allow_silence=True)
    assert quiet.shape == (8000,) and not quiet.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path, bad):
    audio = tone(1.0)
    audio[[10, 500]] = bad
    sf.write(tmp_path / "bad.wav", audio, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="contains 2 NaN or infinite samples"):
        load_audio(tmp_path / "bad.wav")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(audio, SAMPLE_RATE)


@pytest.mark.parametrize("name", ["noise.wav", "noise.mp3", "noise.bin"])
def test_random_bytes(tmp_path, name):
    data = np.random.default_rng(0).bytes(20000)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(AudioError, match="not a supported audio file or .*damaged"):
        load_audio(tmp_path / name)
    with pytest.raises(AudioError, match="not a supported audio file or .*damaged"):
        load_audio(data)


def test_text_file(tmp_path):
    for name in ("notes.txt", "notes.wav"):
        (tmp_path / name).write_text("this is not audio, it is text\n" * 50)
        with pytest.raises(AudioError, match=f"could not read '.*{name}' as audio"):
            load_audio(tmp_path / name)


def test_truncated_wav_loads_what_is_there(tmp_path):
    # The header claims 1 s, the file holds 0.5 s: libsndfile reads the samples that exist.
    full = tone(1.0)
    save_wav(tmp_path / "full.wav", full)
    raw = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: 44 + 2 * 8000 + 1])  # odd cut: half a sample
    try:
        audio = load_audio(tmp_path / "cut.wav")
    except AudioError as e:  # the other acceptable outcome: a clear error, never a crash
        assert "cut.wav" in str(e)
        return
    assert 7900 <= len(audio) <= 8001
    np.testing.assert_allclose(audio, load_audio(tmp_path / "full.wav")[: len(audio)], atol=1e-6)


def test_wrong_source_types():
    with pytest.raises(AudioError, match="cannot load audio from a list"):
        load_audio([0.1, 0.2, 0.3])
    with pytest.raises(AudioError, match="needs its sample rate"):
        load_audio(tone(1.0))
    with pytest.raises(AudioError, match="invalid sample rate 0"):
        load_audio(tone(1.0), 0)
    with pytest.raises(AudioError, match="1-D or 2-D"):
        load_audio(np.zeros((2, 2, 800), np.float32), SAMPLE_RATE)
    for dtype in (bool, complex, object):
        with pytest.raises(AudioError, match="must be numbers"):
            load_audio(np.ones(800, dtype=dtype), SAMPLE_RATE)


# --------------------------------------------------------------------------------------------
# Good input: rates, channels, sample types, formats


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000, 96000])
def test_any_rate_resamples_to_16k_keeping_a_tones_frequency(tmp_path, sr):
    freq = 1000.0  # Hz, below every Nyquist frequency here
    src = sine(1.0, freq, sr)
    from_array = load_audio(src, sr)
    sf.write(tmp_path / "tone.wav", src, sr, subtype="FLOAT")
    from_file = load_audio(tmp_path / "tone.wav")
    for audio in (from_array, from_file):
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - SAMPLE_RATE) <= 1
        assert dominant_hz(audio) == pytest.approx(freq, abs=1.0)
        # Steady-state amplitude survives resampling (edges aside).
        assert np.abs(audio[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(from_array, from_file, atol=1e-6)


def test_resample_function():
    audio = sine(0.5, 300, 44100)
    assert resample(audio, 44100, 44100) is audio
    out = resample(audio, 44100, 16000)
    assert out.dtype == np.float32 and abs(len(out) - 8000) <= 1
    assert dominant_hz(out) == pytest.approx(300, abs=2.0)


def test_stereo_is_averaged(tmp_path):
    left, right = sine(1.0, 440, SAMPLE_RATE, 0.4), sine(1.0, 1320, SAMPLE_RATE, 0.2)
    expected = (left + right) / 2
    stereo = np.stack([left, right], axis=1)  # (n, 2)
    sf.write(tmp_path / "stereo.wav", stereo, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "stereo.wav"), expected, atol=1e-6)
    np.testing.assert_allclose(load_audio(stereo, SAMPLE_RATE), expected, atol=1e-6)
    # Channels-first arrays (torchaudio's layout) are recognised by their short axis.
    np.testing.assert_allclose(load_audio(stereo.T.copy(), SAMPLE_RATE), expected, atol=1e-6)
    pcm = (stereo * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio((SAMPLE_RATE, pcm)), expected, atol=1e-4)


@pytest.mark.parametrize(
    "dtype, scale, offset, atol",
    [
        # Integer PCM full scale is 2**(bits - 1), the convention of libsndfile and scipy.
        (np.int16, 2**15, 0, 0.5 / 2**15),
        (np.int32, 2**31, 0, 1e-7),
        (np.uint8, 2**7, 128, 0.5 / 2**7),
        (np.float64, 1.0, 0, 1e-7),
        (np.float32, 1.0, 0, 0),
    ],
)
def test_sample_types_scale_to_unit_range(dtype, scale, offset, atol):
    x = sine(0.5, 440, SAMPLE_RATE, 0.8)
    samples = x.astype(np.float64) * scale + offset
    if np.issubdtype(dtype, np.integer):
        samples = np.round(samples)
    samples = samples.astype(dtype)
    audio = load_audio(samples, SAMPLE_RATE)
    assert audio.dtype == np.float32
    np.testing.assert_allclose(audio, x, atol=atol + 1e-7)
    # Gradio's microphone gives (rate, int16 array): same result.
    np.testing.assert_array_equal(load_audio((SAMPLE_RATE, samples)), audio)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_subtypes(tmp_path, subtype):
    x = sine(0.5, 440, SAMPLE_RATE, 0.8)
    sf.write(tmp_path / "x.wav", x, SAMPLE_RATE, subtype=subtype)
    atol = {"PCM_U8": 1 / 127, "PCM_16": 1 / 32767}.get(subtype, 1e-6)
    np.testing.assert_allclose(load_audio(tmp_path / "x.wav"), x, atol=atol)


def test_loud_float_audio_is_scaled_not_clipped():
    x = sine(0.5, 440, SAMPLE_RATE, 1.0)
    audio = load_audio(x * 300.0, SAMPLE_RATE)
    assert np.abs(audio).max() == pytest.approx(1.0)
    np.testing.assert_allclose(audio, x / np.abs(x).max(), atol=1e-6)


@pytest.mark.parametrize(
    "name, kwargs, lossless",
    [
        ("tone.wav", {"subtype": "PCM_16"}, True),
        ("tone.flac", {}, True),
        ("tone.ogg", {"format": "OGG", "subtype": "VORBIS"}, False),
        ("tone.mp3", {"format": "MP3"}, False),
    ],
)
def test_formats_through_libsndfile(tmp_path, name, kwargs, lossless):
    x = sine(1.0, 440, 22050, 0.5)
    try:
        sf.write(tmp_path / name, x, 22050, **kwargs)
    except (sf.LibsndfileError, TypeError, ValueError) as e:
        pytest.skip(f"this libsndfile cannot write {name}: {e}")
    audio = load_audio(tmp_path / name)
    assert abs(len(audio) - SAMPLE_RATE) <= 1200  # lossy codecs pad a frame or so
    assert dominant_hz(audio) == pytest.approx(440, abs=2.0)
    if lossless:
        np.testing.assert_allclose(audio, load_audio(x, 22050), atol=1e-3)
    np.testing.assert_array_equal(load_audio((tmp_path / name).read_bytes()), audio)


@needs_ffmpeg
@pytest.mark.parametrize("name, args", [("tone.m4a", ["-c:a", "aac"]), ("tone.mp3", [])])
def test_formats_through_ffmpeg(tmp_path, name, args):
    save_wav(tmp_path / "src.wav", sine(1.0, 660, 44100), 44100)
    path = ffmpeg_encode(tmp_path / "src.wav", tmp_path / name, *args)
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert abs(len(audio) - SAMPLE_RATE) <= 1200
    assert dominant_hz(audio) == pytest.approx(660, abs=2.0)
    from_bytes = load_audio(path.read_bytes())
    assert abs(len(from_bytes) - len(audio)) <= 1200
    assert dominant_hz(from_bytes) == pytest.approx(660, abs=2.0)


def test_bytes_match_the_file(tmp_path):
    save_wav(tmp_path / "a.wav", sine(0.7, 500, 8000), 8000)
    np.testing.assert_array_equal(
        load_audio((tmp_path / "a.wav").read_bytes()), load_audio(tmp_path / "a.wav")
    )
    np.testing.assert_array_equal(
        load_audio(bytearray((tmp_path / "a.wav").read_bytes())), load_audio(tmp_path / "a.wav")
    )


def test_torch_tensors_are_accepted():
    import torch

    x = sine(0.5, 440, SAMPLE_RATE)
    np.testing.assert_array_equal(load_audio(torch.from_numpy(x), SAMPLE_RATE), x)


def test_save_wav_round_trip_and_duration(tmp_path):
    x = sine(1.5, 440, SAMPLE_RATE)
    save_wav(tmp_path / "x.wav", x)
    info = sf.info(tmp_path / "x.wav")
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    audio = load_audio(tmp_path / "x.wav")
    np.testing.assert_allclose(audio, x, atol=1 / 32767)
    assert duration(audio) == pytest.approx(1.5)
