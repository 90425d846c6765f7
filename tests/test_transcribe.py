"""transcribe(): fields, file == array, errors, LMs, and long inputs in stitched windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ds2.audio import SAMPLE_RATE, load_audio, save_wav
from ds2.checkpoint import LoadedModel, load_folder, save_pretrained
from ds2.decoding import BeamSearchDecoder, ctc_collapse, write_lexicon
from ds2.errors import AudioError, DecoderError
from ds2.features import FeatureConfig, compute_features
from ds2.model import ConvSpec, DeepSpeech2, ModelConfig
from ds2.transcribe import (
    TranscribeOptions,
    Transcription,
    _beam_long,
    beam_segments,
    plan_windows,
    prepare_decoder,
    transcribe,
)
from ds2.vocab import Vocabulary
from tests.utils import tiny_config

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model(tiny_checkpoint) -> LoadedModel:
    return load_folder(tiny_checkpoint)


@pytest.fixture(scope="module")
def speech(speech_wav) -> np.ndarray:
    return load_audio(speech_wav)


def long_speech(speech: np.ndarray, seconds: float, seed: int = 0) -> np.ndarray:
    """``seconds`` of the test sentence over and over, with pauses and a little noise."""
    rng = np.random.default_rng(seed)
    parts, n = [], 0
    while n < seconds * SAMPLE_RATE:
        pause = np.zeros(int(rng.uniform(0.1, 0.8) * SAMPLE_RATE), np.float32)
        parts += [speech * rng.uniform(0.5, 1.0), pause]
        n += len(speech) + len(pause)
    x = np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]
    return (x + 0.002 * rng.standard_normal(len(x))).astype(np.float32)


class LocalModel(torch.nn.Module):
    """A model without recurrence: output frame t sees input frames 2t-5 .. 2t+5 only.

    Windowed inference of such a model must reproduce a single pass exactly, which tests the
    window arithmetic (offsets, seams, edge padding, normalisation) with nothing to blur it.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(1)
        self.conv = torch.nn.Conv1d(cfg.n_features, cfg.vocab_size, 11, stride=2, padding=5)

    def forward(self, features, lengths):
        logits = self.conv(features).transpose(1, 2)  # (B, V, T') -> (B, T', V)
        return logits.log_softmax(-1), self.cfg.output_lengths(lengths)


def local_model() -> LoadedModel:
    cfg = tiny_config()
    return LoadedModel(LocalModel(cfg).eval(), FeatureConfig(), Vocabulary(), {}, name="local")


# ---------------------------------------------------------------------------------------------
# One window


def test_transcription_fields(model, speech_wav, speech):
    r = transcribe(model, speech_wav)
    assert isinstance(r, Transcription)
    assert r.duration == pytest.approx(len(speech) / SAMPLE_RATE)
    np.testing.assert_array_equal(r.audio, speech)
    feats = compute_features(speech, model.feature_config)
    assert r.features.shape == feats.shape == (201, len(speech) // 160 + 1)
    torch.testing.assert_close(r.features, feats)
    n_out = int(model.model.cfg.output_lengths(feats.shape[1]))
    assert r.log_probs.shape == (n_out, 29) and r.log_probs.dtype == np.float32
    np.testing.assert_allclose(np.logaddexp.reduce(r.log_probs, axis=1), 0.0, atol=1e-4)
    with torch.inference_mode():
        direct, _ = model.model(feats[None], torch.tensor([feats.shape[1]]))
    np.testing.assert_allclose(r.log_probs, direct[0].numpy(), atol=1e-5)
    assert r.frame_seconds == pytest.approx(0.02)
    assert r.windows == 1 and r.beam == [] and r.best is r.greedy

    # greedy text is the CTC collapse of the per-frame argmax, spaces tidied
    text = model.vocab.decode(ctc_collapse(r.log_probs.argmax(axis=1)))
    assert r.greedy.text == " ".join(text.split()) == r.text
    assert " ".join(w.word for w in r.words) == r.text
    for w in r.words:
        assert 0.0 <= w.start < w.end <= r.duration + r.frame_seconds
        assert 0.0 <= w.confidence <= 1.0

    for key in ("load", "features", "model", "greedy", "total"):
        assert r.timings[key] >= 0.0
    assert r.timings["total"] >= r.timings["model"] + r.timings["features"]
    assert r.rtf == pytest.approx(r.timings["total"] / 1000 / r.duration)
    d = r.to_dict()
    assert json.loads(json.dumps(d))["greedy"]["text"] == r.greedy.text
    assert d["file"] == str(speech_wav) and d["words"][0]["word"] == r.words[0].word


def test_file_equals_array(model, speech_wav, speech):
    from_file = transcribe(model, speech_wav)
    from_array = transcribe(model, speech, sample_rate=SAMPLE_RATE)
    from_gradio = transcribe(model, (SAMPLE_RATE, (speech * 32767).astype(np.int16)))
    np.testing.assert_array_equal(from_file.log_probs, from_array.log_probs)
    assert from_file.greedy == from_array.greedy
    np.testing.assert_allclose(from_gradio.log_probs, from_array.log_probs, atol=1e-3)


def test_options_and_overrides(model, speech):
    r = transcribe(model, speech, TranscribeOptions(decoder="beam"), sample_rate=SAMPLE_RATE)
    assert r.options.decoder == "beam"
    r = transcribe(model, speech, sample_rate=SAMPLE_RATE, decoder="beam", nbest=3)
    assert 1 <= len(r.beam) <= 3 and r.text == r.beam[0].text
    assert r.timings["beam"] >= 0.0 and r.decoder_settings["lm"] is None
    assert [h.score for h in r.beam] == sorted((h.score for h in r.beam), reverse=True)
    with pytest.raises(TypeError, match="beam_widht"):
        transcribe(model, speech, sample_rate=SAMPLE_RATE, beam_widht=3)
    with pytest.raises(DecoderError):
        TranscribeOptions(decoder="viterbi")
    with pytest.raises(DecoderError):
        TranscribeOptions(window_seconds=5, overlap_seconds=5)
    with pytest.raises(DecoderError, match="not found"):
        transcribe(model, speech, sample_rate=SAMPLE_RATE, decoder="beam", lm="/no/such/lm.arpa")


def test_too_short_and_bad_audio(model, tmp_path):
    with pytest.raises(AudioError, match="too short"):
        transcribe(model, np.full(100, 0.1, np.float32), sample_rate=SAMPLE_RATE)
    with pytest.raises(AudioError, match="not found"):
        transcribe(model, tmp_path / "missing.wav")
    (tmp_path / "notes.wav").write_text("not audio at all")
    with pytest.raises(AudioError):
        transcribe(model, tmp_path / "notes.wav")
    # a model whose convs need more frames than a 30-ms clip has: no output frame at all
    cfg = ModelConfig(
        name="wide", convs=(ConvSpec(2, (3, 21), (2, 2), (1, 0)),), rnn_layers=1, rnn_hidden=8
    )
    wide = LoadedModel(DeepSpeech2(cfg).eval(), FeatureConfig(), Vocabulary(), {})
    clip = 0.1 * np.sin(np.arange(480) / 5).astype(np.float32)
    with pytest.raises(AudioError, match="no output frame"):
        transcribe(wide, clip, sample_rate=SAMPLE_RATE)


ARPA = """\\data\\
ngram 1=7
ngram 2=3

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.6\thello\t-0.3
-0.7\tworld\t-0.3
-0.8\ttest\t-0.3
-0.9\tthis\t-0.3

\\2-grams:
-0.2\t<s> hello
-0.2\thello world
-0.3\tthis test

\\end\\
"""


@pytest.fixture(scope="module")
def model_with_lm(tiny_checkpoint, tmp_path_factory) -> LoadedModel:
    folder = tmp_path_factory.mktemp("lm") / "tiny-lm"
    base = load_folder(tiny_checkpoint)
    decoder = {"lexicon": "lexicon.txt", "lm": "lm.arpa", "lm_weight": 0.5, "word_score": 1.5}
    save_pretrained(folder, base.model, base.feature_config, base.vocab, decoder=decoder)
    (folder / "lm.arpa").write_text(ARPA)
    write_lexicon(["hello", "world", "test", "this"], folder / "lexicon.txt")
    return load_folder(folder)


def test_model_lm_auto_none_and_override(model_with_lm, speech):
    m = model_with_lm
    r = transcribe(m, speech, sample_rate=SAMPLE_RATE, decoder="beam")
    s = r.decoder_settings
    assert s["lm"] == m.lm_path and s["lexicon"] == m.lexicon_path
    assert (s["lm_weight"], s["word_score"]) == (0.5, 1.5)
    assert set(r.text.split()) <= {"hello", "world", "test", "this"}  # the lexicon binds
    assert r.text  # the word score makes some word worth spelling

    r = transcribe(m, speech, sample_rate=SAMPLE_RATE, decoder="beam", lm=None)
    assert r.decoder_settings["lm"] is None and r.decoder_settings["lexicon"] is None

    r = transcribe(m, speech, sample_rate=SAMPLE_RATE, decoder="beam", lm=m.lm_path, lm_weight=2)
    assert r.decoder_settings["lm_weight"] == 2 and r.decoder_settings["word_score"] == 1.5


# ---------------------------------------------------------------------------------------------
# Long inputs


def test_plan_windows_tiles_the_input():
    for n in (1, 999, 1000, 1001, 1003, 2500, 12345):
        plan = plan_windows(n, window=1000, overlap=200, stride=2)
        assert plan[0][0] == 0 and plan[-1][1] == n
        for (s0, e0), (s1, e1) in zip(plan, plan[1:]):
            assert s1 % 2 == 0 and s0 < s1
            assert e0 - s1 >= 200  # every seam has >= overlap / 2 of context each side
            assert e1 > e0
        assert all(e - s <= 1001 for s, e in plan)
    assert plan_windows(800, 1000, 200, 2) == [(0, 800)]


def test_windows_reproduce_a_single_pass_exactly_for_a_local_model(speech):
    m = local_model()
    audio = long_speech(speech, 41.3)
    whole = transcribe(m, audio, sample_rate=SAMPLE_RATE, window_seconds=100)
    windowed = transcribe(
        m, audio, sample_rate=SAMPLE_RATE, window_seconds=8, overlap_seconds=2, keep_features=True
    )
    assert whole.windows == 1 and windowed.windows >= 5
    assert windowed.log_probs.shape == whole.log_probs.shape
    np.testing.assert_allclose(windowed.log_probs, whole.log_probs, atol=2e-4)
    torch.testing.assert_close(windowed.features, whole.features, atol=2e-4, rtol=1e-4)
    # the same frames decode to the same words: nothing duplicated or dropped at a seam
    assert windowed.greedy.text == whole.greedy.text
    assert [(w.word, w.start, w.end) for w in windowed.words] == [
        (w.word, w.start, w.end) for w in whole.words
    ]
    # ... and words do straddle seams, so the comparison means something
    plan = plan_windows(len(whole.features[0]), 800, 200, 2)
    seams = [(nxt + end) / 2 * 0.01 for (_, end), (nxt, _) in zip(plan, plan[1:])]
    assert any(w.start < t < w.end for t in seams for w in whole.words)


def test_windows_match_a_single_pass_for_the_recurrent_model(model, speech):
    audio = long_speech(speech, 70.0)
    whole = transcribe(model, audio, sample_rate=SAMPLE_RATE, window_seconds=1000)
    calls = []
    windowed = transcribe(model, audio, sample_rate=SAMPLE_RATE, progress=calls.append)
    assert windowed.windows == 3 and windowed.features is None
    assert windowed.audio is not None and windowed.duration == pytest.approx(70.0)
    assert calls == sorted(calls) and len(calls) == 4 and calls[0] == 0.0 and calls[-1] == 1.0
    # the BiLSTM sees 2 s of real context at every seam: its output barely moves
    np.testing.assert_allclose(windowed.log_probs, whole.log_probs, atol=1e-3)
    assert windowed.greedy.text == whole.greedy.text


def test_long_file_is_streamed_and_equals_the_array(model, speech, tmp_path):
    audio = long_speech(speech, 40.0, seed=3)
    path = tmp_path / "long.wav"
    save_wav(path, audio)
    opts = TranscribeOptions(window_seconds=12, overlap_seconds=4)
    from_file = transcribe(model, path, opts)
    from_array = transcribe(model, load_audio(path), opts, sample_rate=SAMPLE_RATE)
    assert from_file.audio is None and from_file.features is None and from_file.windows == 5
    np.testing.assert_allclose(from_file.log_probs, from_array.log_probs, atol=1e-6)
    assert from_file.greedy.text == from_array.greedy.text

    # another rate, two channels, float samples beyond [-1, 1]: resampled and scaled on the fly
    rng = np.random.default_rng(0)
    import soxr

    x = soxr.resample(audio, SAMPLE_RATE, 22050) * 3.0
    stereo = np.stack([x, 0.5 * x + 0.01 * rng.standard_normal(len(x))], axis=1)
    path = tmp_path / "long22k.wav"
    sf.write(path, stereo.astype(np.float32), 22050, subtype="FLOAT")
    from_file = transcribe(model, path, opts)
    from_array = transcribe(model, load_audio(path), opts, sample_rate=SAMPLE_RATE)
    assert from_file.duration == pytest.approx(from_array.duration)
    np.testing.assert_allclose(from_file.log_probs, from_array.log_probs, atol=1e-5)


def test_long_file_errors(model, tmp_path):
    silent = tmp_path / "silent.wav"
    save_wav(silent, np.zeros(40 * SAMPLE_RATE, np.float32))
    with pytest.raises(AudioError, match="silent"):
        transcribe(model, silent, window_seconds=10, overlap_seconds=2)
    broken = np.full(40 * SAMPLE_RATE, 0.1, np.float32)
    broken[123456] = np.nan
    sf.write(tmp_path / "nan.wav", broken, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        transcribe(model, tmp_path / "nan.wav", window_seconds=10, overlap_seconds=2)


def spelled(segments: list[str], pause_frames: int = 40) -> torch.Tensor:
    """Peaky log-probs spelling each sentence (2 frames per character), pauses in between."""
    vocab = Vocabulary()
    ids = []
    for text in segments:
        for word in text.split():
            for c in word:
                ids += [vocab.encode(c)[0]] * 2 + [0]
            ids += [vocab.space_id, 0]
        ids += [0] * pause_frames
    probs = torch.full((len(ids), len(vocab)), 0.05 / (len(vocab) - 1))
    probs[torch.arange(len(ids)), torch.tensor(ids)] = 0.95
    return probs.log()


def test_long_beam_search_cuts_at_pauses():
    vocab = Vocabulary()
    sentences = ["the cat sat on the mat", "a dog ran off", "birds sing at dawn"] * 6
    lp = spelled(sentences).numpy()
    segments = beam_segments(lp, vocab, target=300, search=100)
    assert segments[0][0] == 0 and segments[-1][1] == len(lp) and len(segments) > 3
    assert all(b == c for (_, b), (c, _) in zip(segments, segments[1:]))
    assert all(0 < b - a <= 300 for a, b in segments)
    path = lp.argmax(axis=1)
    for _, cut in segments[:-1]:
        assert (path[cut - 15 : cut + 15] == 0).all()  # in the middle of a pause

    decoder = BeamSearchDecoder(vocab, beam_width=8, nbest=3)
    whole = decoder(torch.from_numpy(lp))
    joined = _beam_long(decoder, lp, vocab, 0.02, 3, segments)
    assert joined[0].text == whole[0].text == " ".join(sentences)
    assert joined[0].tokens == whole[0].tokens
    chars = [i for i, tok in enumerate(whole[0].tokens) if tok != vocab.space_id]
    assert [joined[0].timesteps[i] for i in chars] == [whole[0].timesteps[i] for i in chars]
    for a, b in zip(joined[0].words, whole[0].words):
        assert (a.word, a.start, a.end) == (b.word, pytest.approx(b.start), pytest.approx(b.end))
    assert joined[0].score == pytest.approx(whole[0].score, rel=1e-3)
    assert len(joined) == 3 and joined[0].score >= joined[1].score >= joined[2].score


HOUR_SCRIPT = r"""
import json, re, sys
import numpy as np
from ds2.checkpoint import load_folder
from ds2.transcribe import transcribe

def kib(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))

model = load_folder(sys.argv[2])
rng = np.random.default_rng(0)
warm = (0.05 * rng.standard_normal(130 * 16000)).astype(np.float32)
transcribe(model, warm, sample_rate=16000, batch_windows=4)  # same window shapes as below
del warm
base = kib("VmHWM")
calls = []
r = transcribe(model, sys.argv[1], batch_windows=4, progress=calls.append)
print(json.dumps({
    "growth_mib": (kib("VmHWM") - base) / 1024, "duration": r.duration, "windows": r.windows,
    "calls": len(calls), "last": calls[-1], "frames": r.log_probs.shape[0],
    "features": r.features is None, "audio": r.audio is None, "timings": r.timings,
}))
"""


def test_one_hour_runs_in_bounded_memory(tmp_path):
    """An hour (115 MB of wav, 230 MB as float32, 290 MB as features) in far less memory."""
    # A model small enough that the hour takes seconds: the memory at stake is the pipeline's.
    fc = FeatureConfig(n_fft=64, win_length=64)
    cfg = ModelConfig(
        name="micro",
        n_features=fc.n_bins,
        convs=(ConvSpec(1, (3, 3), (2, 2), (1, 1)),),
        rnn_type="gru",
        rnn_layers=1,
        rnn_hidden=4,
    )
    torch.manual_seed(0)
    save_pretrained(tmp_path / "micro", DeepSpeech2(cfg).eval(), fc, Vocabulary())
    path = tmp_path / "hour.wav"
    t = np.arange(60 * SAMPLE_RATE) / SAMPLE_RATE
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    minute = (0.05 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32)  # whole cycles
    with sf.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as f:
        for _ in range(60):  # written a minute at a time: this process never holds the hour
            f.write(minute)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", HOUR_SCRIPT, str(path), str(tmp_path / "micro")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["duration"] == pytest.approx(3600.0)
    assert out["frames"] == 180001 and out["windows"] == out["calls"] - 1 > 100
    assert out["last"] == 1.0
    assert out["features"] and out["audio"]
    # log-probs are 21 MB; one float32 copy of the audio alone would be 230 MB
    assert out["growth_mib"] < 120


def test_prepare_decoder_builds_the_decoder_transcribe_then_uses(
    model_with_lm, speech, monkeypatch
):
    ready = prepare_decoder(model_with_lm, decoder="beam", beam_width=8, lm="auto")
    assert ready.lm is not None and ready.lm_weight == 0.5 and ready.word_score == 1.5
    built = []
    monkeypatch.setattr(BeamSearchDecoder, "__init__", lambda *a, **k: built.append(a))
    r = transcribe(model_with_lm, speech, sample_rate=SAMPLE_RATE, decoder="beam", beam_width=8,
                   lm="auto")  # fmt: skip
    assert built == [] and r.beam  # nothing new was built: the prepared decoder searched
    with pytest.raises(DecoderError, match="not found"):
        prepare_decoder(model_with_lm, decoder="beam", lm="/nonexistent/lm.arpa")
