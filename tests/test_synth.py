import importlib.util
import json
import os

import numpy as np
import pytest
import soundfile as sf

from ds2.audio import SAMPLE_RATE
from ds2.text import normalize_text
from train import synth
from train.manifest import read_manifest
from train.text_corpus import (
    Sentence,
    make_sentences,
    short_sentences,
    split_sentences,
    text_split,
    wordnet_glosses,
)

HAVE = synth.available_engines()
SENTENCES = {
    "train": [
        Sentence("he ran fast", "He ran fast.", "t"),
        Sentence("the dog slept by the warm fire", "The dog slept by the warm fire.", "t"),
        Sentence("a dying fire", "A dying fire.", "t"),
        Sentence("she can breathe better when the air is clean",
                 "She can breathe better, when the air is clean.", "t"),
    ],
    "valid": [Sentence("the cars raced down the avenue", "The cars raced down the avenue.", "t")],
    "test": [Sentence("these glasses break easily", "These glasses break easily.", "t")],
}  # fmt: skip


def _items(engine, names, n=2):
    voices = [v for v in synth.list_voices([engine]) if v.name in names]
    assert voices, f"no {engine} voice among {names}"
    items = []
    for k in range(n):
        s = SENTENCES["train"][k]
        v = voices[k % len(voices)]
        items.append(synth.Item(f"train-{k:07d}", "train", s.text, s.speak, v, 1.1, [0, k]))
    return items


@pytest.mark.parametrize(
    "engine, names",
    [
        ("espeak", {"gmw/en-US+f2", "gmw/en-GB-scotland+klatt"}),
        ("flite", {"slt", "kal"}),
        ("festival", {"ked_diphone", "cmu_us_slt_arctic_hts"}),
        ("piper", {"joe"}),
        ("kokoro", {"am_michael", "bf_emma"}),
        ("pico", {"en-US", "en-GB"}),
        ("rhvoice", {"bdl", "lyubov"}),
        ("mbrola", {"us2", "en1"}),
        ("mbrola_accent", {"de2", "fr4"}),
        ("festvox", {"rab_diphone", "us2_mbrola"}),
    ],
)
def test_each_engine_synthesizes_16k_flac(tmp_path, engine, names):
    if not HAVE[engine]:
        pytest.skip(f"{engine} is not installed (train/setup_tts.sh)")
    if engine == "piper" and not names <= set(synth.piper_voice_models()):
        pytest.skip(f"Piper voices {sorted(names)} are not installed")
    if engine == "kokoro" and not names <= set(synth.kokoro_voices()):
        pytest.skip(f"Kokoro voices {sorted(names)} are not installed")
    items = _items(engine, names, n=3 if engine in synth.FESTIVAL_ENGINES else 2)
    rows = synth.synth_task(items, str(tmp_path))
    assert [r.get("error") for r in rows] == [None] * len(items)
    for it, row in zip(items, rows):
        audio, sr = sf.read(row["audio"])
        assert sr == SAMPLE_RATE and audio.ndim == 1
        assert row["duration"] == pytest.approx(len(audio) / sr, abs=1e-3)
        assert row["speaker"] == it.voice.id and row["text"] == it.text
        # Speech at a human rate: 6-30 characters a second, and not silent.
        assert 6 < len(it.text) / row["duration"] < 30
        assert np.sqrt(np.mean(audio**2)) > 0.005
        assert row["audio"].endswith(".flac") and os.path.dirname(row["audio"]).startswith(
            str(tmp_path / "audio" / "train")
        )


def test_available_engines_probes_only_the_engines_asked_about(monkeypatch):
    def no_probe():
        raise AssertionError("probed an engine nobody asked about")

    monkeypatch.setattr(synth, "kokoro_model", no_probe)
    monkeypatch.setattr(synth, "piper_voice_models", no_probe)
    assert list(synth.available_engines(["espeak", "pico"])) == ["espeak", "pico"]
    assert synth.available_engines(["flite"]) == {"flite": HAVE["flite"]}
    with pytest.raises(AssertionError):
        synth.available_engines(["kokoro"])


@pytest.mark.parametrize("engine", ["rhvoice", "mbrola", "festvox"])
def test_debian_voices_follow_tempo_and_pitch_shift(tmp_path, engine):
    # Their rate settings undo the resampling's tempo change (festvox: sox's tempo and pitch):
    # the clip's length follows the tempo alone, whatever the shift.
    if not HAVE[engine]:
        pytest.skip(f"{engine} is not installed (train/setup_tts.sh)")
    name = {"rhvoice": "bdl", "mbrola": "us2", "festvox": "rab_diphone"}[engine]
    s = SENTENCES["train"][3]
    items = []
    for k, (shift, tempo) in enumerate([(0, 1.0), (0, 0.8), (300, 1.0), (-300, 1.0)]):
        v = synth.Voice(f"{engine}-{name}-c{shift:+d}", engine, name, f"{engine}-{name}", shift)
        items.append(synth.Item(f"train-{k:07d}", "train", s.text, s.speak, v, tempo, [0, k]))
    rows = synth.synth_task(items, str(tmp_path))
    assert [r.get("error") for r in rows] == [None] * 4
    d = [r["duration"] for r in rows]
    assert d[1] / d[0] == pytest.approx(1.25, rel=0.12)  # slower by 1/0.8
    assert d[2] / d[0] == pytest.approx(1.0, rel=0.12)
    assert d[3] / d[0] == pytest.approx(1.0, rel=0.12)


def test_a_festival_task_of_two_voices_speaks_each_in_its_own_voice(tmp_path):
    # One festival process speaks one voice: a task that mixes voices must not read them all in
    # the first one's. Each clip equals the same item synthesized alone.
    if not HAVE["festvox"] or not {"rab_diphone", "us2_mbrola"} <= set(synth.festvox_voices()):
        pytest.skip("festvox-rablpc16k and festvox-us2 are not installed (train/setup_tts.sh)")
    s = SENTENCES["train"][1]
    items = [
        synth.Item(f"train-{k:07d}", "train", s.text, s.speak, _voice("festvox", n, n), 1.0, [0])
        for k, n in enumerate(["rab_diphone", "us2_mbrola"])
    ]
    together = synth.synth_task(items, str(tmp_path / "together"))
    alone = [synth.synth_task([it], str(tmp_path / f"alone{k}"))[0] for k, it in enumerate(items)]
    clips = [sf.read(r["audio"])[0] for r in together]
    assert [len(c) for c in clips] == [len(sf.read(r["audio"])[0]) for r in alone]
    assert len(clips[0]) != len(clips[1])


def test_a_held_out_espeak_clip_does_not_depend_on_what_its_worker_spoke_before(tmp_path):
    # espeak-ng's library carries state across utterances, and a pool decides what each worker
    # speaks first: a held-out clip must come out the same whatever came before it, so a test set
    # rebuilt elsewhere is the same set. (A training clip is allowed to differ: it is not scored.)
    if not HAVE["espeak"]:
        pytest.skip("espeak-ng is not installed")
    s, o = SENTENCES["test"][0], SENTENCES["train"][3]
    voice = _voice("espeak", "gmw/en-US+f2", "en-US+f2")
    held = synth.Item(
        "test_unseen_voice-0000000", "test_unseen_voice", s.text, s.speak, voice, 1.0, [0, 1]
    )
    first = synth.synth_task([held], str(tmp_path / "first"))[0]
    others = [
        synth.Item(
            f"train-{k:07d}", "train", o.text, o.speak, _voice("espeak", name, name), 0.9, [0, k]
        )
        for k, name in enumerate(["gmw/en+m3", "gmw/en-GB-scotland+klatt"])
    ]
    after = synth.synth_task([*others, held], str(tmp_path / "after"))
    assert [r.get("error") for r in after] == [None] * 3
    assert np.array_equal(sf.read(first["audio"])[0], sf.read(after[2]["audio"])[0])


def test_festvox_mbrola_voices_need_mbrola_not_espeak(monkeypatch):
    # festival runs the mbrola program itself: its MBROLA voices are there without espeak-ng,
    # and gone without mbrola or the voice's diphones.
    if not HAVE["festvox"] or "us2_mbrola" not in synth.festvox_voices():
        pytest.skip("festvox-us2 is not installed (train/setup_tts.sh)")
    which = synth.shutil.which
    monkeypatch.setattr(synth.shutil, "which", lambda b: None if b == "espeak-ng" else which(b))
    assert "us2_mbrola" in synth.festvox_voices()
    monkeypatch.setattr(synth.shutil, "which", lambda b: None if b == "mbrola" else which(b))
    voices = synth.festvox_voices()
    assert not any(v.endswith("_mbrola") for v in voices) and "rab_diphone" in voices
    monkeypatch.setattr(synth, "MBROLA_ROOTS", ("/nonexistent",))
    monkeypatch.setattr(synth.shutil, "which", which)
    assert not any(v.endswith("_mbrola") for v in synth.festvox_voices())


def test_festvox_mbrola_voices_are_mbrolas_talkers():
    # festival's us2_mbrola is MBROLA's us2 talker (another front end, the same recorded person).
    assert synth.TALKERS["festvox-us2_mbrola"] == "mbrola-us2"
    if HAVE["festvox"]:
        talkers = {v.name: v.talker for v in synth.list_voices(["festvox"])}
        assert talkers.get("rab_diphone", "festvox-rab_diphone") == "festvox-rab_diphone"
        assert all(talkers[f"{n}_mbrola"] == f"mbrola-{n}" for n in synth.MBROLA_VOICES
                   if f"{n}_mbrola" in talkers)  # fmt: skip


def test_rhvoice_slt_is_the_talker_slt():
    voices = [synth.Voice(f"rhvoice-{n}-c+0", "rhvoice", n, "x") for n in ("slt", "bdl")]
    if HAVE["rhvoice"]:
        voices = [v for v in synth.list_voices(["rhvoice"]) if v.pitch == 0]
    talkers = {v.name: v.talker for v in voices}
    assert synth.TALKERS.get("rhvoice-slt") == "slt"
    if HAVE["rhvoice"]:
        assert talkers["slt"] == "slt" and talkers["bdl"] == "rhvoice-bdl"


def test_opt_in_voices_are_looked_up_once(monkeypatch):
    # An opt-in engine is found by its voices: one lookup finds it and lists them.
    calls = []
    monkeypatch.setattr(synth, "pico_voices", lambda: calls.append(1) or ("en-US", "en-GB"))
    voices = synth.list_voices(["pico"])
    assert len(calls) == 1
    assert sorted({v.name for v in voices}) == ["en-GB", "en-US"]
    assert {v.pitch for v in voices} == set(synth.PITCH_SHIFTS)
    monkeypatch.setattr(synth, "pico_voices", lambda: ())
    assert synth.list_voices(["pico"]) == []


def test_voices_are_many_with_stable_ids():
    voices = synth.list_voices()
    ids = [v.id for v in voices]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert synth.list_voices() == voices
    if HAVE["espeak"]:
        assert sum(v.engine == "espeak" for v in voices) >= 24
    held = synth.heldout_talkers(voices, seed=0)
    assert held == synth.heldout_talkers(voices, seed=0)
    assert sum(v.talker in held for v in voices) >= 2
    assert any(v.talker not in held for v in voices)


def _voice(engine, name, talker, shift=0):
    return synth.Voice(f"{engine}-{name}-c{shift:+d}", engine, name, talker, shift)


def test_opt_in_talkers_never_move_the_classic_held_out_talkers():
    # Adding Piper, Kokoro or Pico voices to a corpus must not move its test split to other
    # talkers.
    base = [_voice("flite", n, n, c) for n in ("awb", "rms", "slt") for c in (-150, 0, 150)]
    base += [_voice("espeak", f"en+{v}", f"en+{v}") for v in ("m1", "m2", "f1", "f2")]
    joe = [_voice("piper", "joe", "piper-joe", c) for c in (-150, 0, 150)]
    pico = [_voice("pico", n, f"pico-{n}", c) for n in ("en-US", "en-GB") for c in (-150, 0)]
    debian = [_voice("rhvoice", n, f"rhvoice-{n}") for n in synth.RHVOICE_VOICES]
    debian += [_voice("mbrola", n, f"mbrola-{n}") for n in synth.MBROLA_VOICES]
    accent = [_voice("mbrola_accent", n, f"mbrola_accent-{n}") for n in synth.MBROLA_ACCENTS]
    festvox = [
        _voice("festvox", n, synth.TALKERS.get(f"festvox-{n}", f"festvox-{n}"))
        for n in synth.FESTVOX_VOICES
    ]
    names = [f"{a}{g}_{n}" for a in "ab" for g in "fm" for n in ("x", "y", "z", "w")]
    kokoro = [_voice("kokoro", n, f"kokoro-{n}", c) for n in names for c in (0, 150)]
    for seed in range(6):
        held = synth.heldout_talkers(base, seed)
        assert synth.heldout_talkers(base + joe, seed) == held
        assert "piper-joe" not in held
        assert synth.heldout_talkers(base + joe + pico, seed) == held
        assert synth.heldout_talkers(base + joe + pico + debian, seed) == held
        assert synth.heldout_talkers(base + joe + pico + debian + festvox, seed) == held
        # MBROLA's 16 accented talkers: 2 held out, drawn on their own.
        with_accent = synth.heldout_talkers(base + joe + pico + debian + accent, seed)
        assert len(with_accent - held) == 2 and held <= with_accent
        assert with_accent - held <= {v.talker for v in accent}
        # Kokoro's 16 talkers: a seventh of them (2) held out too, drawn on their own.
        with_kokoro = synth.heldout_talkers(base + joe + kokoro, seed)
        assert with_kokoro - held <= {f"kokoro-{n}" for n in names}
        assert len(with_kokoro - held) == 2 and held <= with_kokoro
        assert synth.heldout_talkers(kokoro, seed) == with_kokoro - held
    # One Piper talker alone cannot make a test split.
    with pytest.raises(synth.SynthError, match="talkers available"):
        synth.heldout_talkers(joe, 0)


def test_kokoro_voices_are_the_english_styles_of_a_folder(tmp_path, monkeypatch):
    for name in ("af_heart", "bm_george", "jf_alpha", "zm_yunxi", "af_heart.json"):
        (tmp_path / f"{name}.bin").write_bytes(np.zeros(510 * 256, np.float32).tobytes())
    monkeypatch.setenv("DS2_KOKORO_VOICES", str(tmp_path))
    assert synth.kokoro_voices() == {
        "af_heart": tmp_path / "af_heart.bin",
        "bm_george": tmp_path / "bm_george.bin",
    }
    monkeypatch.setenv("DS2_KOKORO_VOICES", str(tmp_path / "missing"))
    assert synth.kokoro_voices() == {}


def test_kokoro_blends_are_new_training_talkers_of_training_voices_only():
    names = [f"{a}{g}_{n}" for a in "ab" for g in "fm" for n in ("x", "y", "z", "w")]
    kokoro = [_voice("kokoro", n, f"kokoro-{n}", c) for n in names for c in synth.PITCH_SHIFTS]
    held = synth.heldout_talkers(kokoro, 0)
    held_names = {t.removeprefix("kokoro-") for t in held}
    blends = synth.kokoro_blends(kokoro, held, 20, seed=3)
    assert blends == synth.kokoro_blends(kokoro, held, 20, seed=3)
    assert blends != synth.kokoro_blends(kokoro, held, 20, seed=4)
    talkers = {v.talker for v in blends}
    assert len(talkers) == 20 and len(blends) == 20 * len(synth.PITCH_SHIFTS)
    assert talkers.isdisjoint(v.talker for v in kokoro)
    for v in blends:
        a, rest = v.name.split("+")
        b, share = rest.split("@")
        assert v.engine == "kokoro" and v.talker == f"kokoro-{v.name}"
        assert a != b and a[1] == b[1]  # one gender
        assert {a, b}.isdisjoint(held_names)  # the unseen voices stay unheard
        assert 30 <= int(share) <= 70
    # More blends asked for than pairs exist: every same-gender pair once (8 voices a gender).
    assert len({v.talker for v in synth.kokoro_blends(kokoro, set(), 10_000, 0)}) == 2 * 28
    assert synth.kokoro_blends(kokoro, held, 0, 0) == []


def test_kokoro_blends_without_kokoro_is_a_usage_error(capsys):
    for argv in (["--engines", "espeak", "--kokoro-blends", "4"], ["--kokoro-blends", "-1"]):
        with pytest.raises(SystemExit) as e:
            synth.main([*argv, "--list-voices"])
        assert e.value.code == 2
        assert "--kokoro-blends" in capsys.readouterr().err


def test_a_kokoro_blend_speaks(tmp_path):
    if not HAVE["kokoro"] or not {"am_michael", "bm_george"} <= set(synth.kokoro_voices()):
        pytest.skip("Kokoro and its voices are not installed (train/requirements-tts.txt)")
    name = "am_michael+bm_george@40"
    v = synth.Voice(f"kokoro-{name}-c+150", "kokoro", name, f"kokoro-{name}", 150)
    s = SENTENCES["train"][1]
    [row] = synth.synth_task([synth.Item("train-0000000", "train", s.text, s.speak, v, 1.0)],
                             str(tmp_path))  # fmt: skip
    assert row.get("error") is None and row["speaker"] == v.id
    audio, sr = sf.read(row["audio"])
    assert sr == SAMPLE_RATE and 6 < len(s.text) / row["duration"] < 30
    assert np.sqrt(np.mean(audio**2)) > 0.005


def test_flite_f0_voices_are_more_configurations_of_training_talkers_only():
    base = [_voice("flite", n, n, c) for n in ("awb", "rms", "slt") for c in (-150, 0, 150)]
    base += [_voice("espeak", "en+m1", "en+m1")]
    more = synth.flite_f0_voices(base, {"rms"}, [190, 95, 95])
    assert [v.id for v in more] == sorted(
        f"flite-{n}-f{f}-c{c:+d}" for n in ("awb", "slt") for f in (95, 190) for c in (-150, 0, 150)
    )
    assert {(v.talker, v.name) for v in more} == {("awb", "awb"), ("slt", "slt")}
    assert {v.f0 for v in more} == {95, 190} and all(v.engine == "flite" for v in more)
    # The shift rides along: a variant is its base configuration with another mean F0.
    assert next(v for v in more if v.id == "flite-slt-f95-c-150").pitch == -150
    # Same talkers, so the held-out draw cannot move; and none without the option.
    for seed in range(4):
        assert synth.heldout_talkers(base + more, seed) == synth.heldout_talkers(base, seed)
    assert synth.flite_f0_voices(base, {"rms"}, []) == []
    with pytest.raises(synth.SynthError, match="out of 40..400"):
        synth.flite_f0_voices(base, set(), [30])


def _median_f0(audio):
    import librosa

    f0, voiced, _ = librosa.pyin(audio, fmin=60, fmax=400, sr=SAMPLE_RATE)
    return float(np.nanmedian(f0[voiced]))


def test_a_flite_f0_voice_speaks_at_its_pitch(tmp_path):
    if not HAVE["flite"]:
        pytest.skip("flite is not installed (train/setup_tts.sh)")
    s = SENTENCES["train"][1]
    own = synth.Voice("flite-slt-c+0", "flite", "slt", "slt")
    low = synth.Voice("flite-slt-f100-c+0", "flite", "slt", "slt", 0, 100)
    items = [synth.Item(f"train-{k:07d}", "train", s.text, s.speak, v, 1.0, [0, k])
             for k, v in enumerate((own, low))]  # fmt: skip
    rows = synth.synth_task(items, str(tmp_path))
    assert [r.get("error") for r in rows] == [None, None]
    assert [r["speaker"] for r in rows] == [own.id, low.id]
    f0 = [_median_f0(sf.read(r["audio"])[0]) for r in rows]
    # slt's own voice is around 180 Hz; the variant within 15 % of its 100.
    assert f0[0] > 150 and 85 < f0[1] < 115, f0
    # Same words at about the same rate: the pitch moved, not the timing.
    assert rows[1]["duration"] == pytest.approx(rows[0]["duration"], rel=0.2)


def test_cli_lists_flite_f0_voices_and_refuses_a_bad_f0(capsys):
    if not HAVE["flite"]:
        pytest.skip("flite is not installed (train/setup_tts.sh)")
    synth.main(["--engines", "flite", "--list-voices", "--flite-f0", "120"])
    out = capsys.readouterr().out.splitlines()
    held = {line.split()[0] for line in out if "(held out)" in line}
    f0 = [line.split()[0] for line in out if "-f120-" in line]
    assert f0 and "(held out)" not in " ".join(line for line in out if "-f120-" in line)
    assert {v.replace("-f120", "") for v in f0}.isdisjoint(held)
    with pytest.raises(SystemExit, match="out of 40..400"):
        synth.main(["--engines", "flite", "--list-voices", "--flite-f0", "1000"])


def test_heldout_seed_keeps_a_first_corpus_unseen_voices_out_of_a_second_one(tmp_path):
    if not HAVE["espeak"]:
        pytest.skip("espeak-ng is not installed")
    first, held = synth.corpus_voices(["espeak"], seed=0, test_split=True)
    assert held and held == synth.heldout_talkers(first, 0)
    # A training-only corpus of another seed: by default it holds nothing out ...
    assert synth.corpus_voices(["espeak"], seed=5, test_split=False)[1] == set()
    # ... and with --heldout-seed 0, exactly what the first corpus tests on.
    assert synth.corpus_voices(["espeak"], seed=5, test_split=False, heldout_seed=0)[1] == held
    summary = synth.build(tmp_path / "c", 0.003, seed=5, jobs=1, engines=["espeak"],
                          valid_fraction=0, test_fraction=0, progress=False,
                          sentences=SENTENCES, heldout_seed=0)  # fmt: skip
    assert summary["heldout_talkers"] == sorted(held)
    speakers = {r["speaker"] for r in read_manifest(tmp_path / "c" / "train.jsonl")}
    assert speakers and speakers.isdisjoint(summary["heldout_voices"])


def test_piper_voices_come_from_packages_and_a_folder(tmp_path, monkeypatch):
    if importlib.util.find_spec("piper") is None:
        pytest.skip("piper-tts is not installed (train/requirements-tts.txt)")
    (tmp_path / "en_GB-alba-medium.onnx").write_bytes(b"")
    (tmp_path / "en_GB-alba-medium.onnx.json").write_text("{}")
    (tmp_path / "no-config.onnx").write_bytes(b"")  # a model without its .json is not a voice
    monkeypatch.setenv("DS2_PIPER_VOICES", str(tmp_path))
    found = synth.piper_voice_models()
    assert found["alba"] == tmp_path / "en_GB-alba-medium.onnx"
    assert "no-config" not in found
    voices = [v for v in synth.list_voices(["piper"]) if v.name == "alba"]
    assert sorted(v.id for v in voices) == sorted(f"piper-alba-c{c:+d}" for c in synth.PITCH_SHIFTS)
    assert {v.talker for v in voices} == {"piper-alba"}


def test_a_corpus_without_test_split_holds_no_talker_out(tmp_path):
    # An extra-voices corpus (valid and test fractions 0): all its voices train.
    if not HAVE["espeak"]:
        pytest.skip("espeak-ng is not installed")
    summary = synth.build(tmp_path / "c", 0.002, seed=1, jobs=1, engines=["espeak"],
                          valid_fraction=0, test_fraction=0, progress=False,
                          sentences=SENTENCES)  # fmt: skip
    assert summary["heldout_voices"] == [] and summary["heldout_talkers"] == []
    assert summary["splits"]["train"]["utterances"] > 0
    assert not (tmp_path / "c" / "test_unseen_voice.jsonl").exists() or not read_manifest(
        tmp_path / "c" / "test_unseen_voice.jsonl"
    )


def test_plan_is_deterministic_given_the_seed():
    voices = synth.list_voices(["espeak"]) if HAVE["espeak"] else pytest.skip("no espeak-ng")
    held = synth.heldout_talkers(voices, 0)
    a = synth.Planner(SENTENCES, voices, held, 0, synth.ENGINE_WEIGHTS)
    b = synth.Planner(SENTENCES, voices, held, 0, synth.ENGINE_WEIGHTS)
    c = synth.Planner(SENTENCES, voices, held, 1, synth.ENGINE_WEIGHTS)
    seq = [a.item("train", k) for k in range(30)]
    assert [b.item("train", k) for k in range(30)] == seq
    assert [c.item("train", k) for k in range(30)] != seq
    # Items can be drawn in any order: item k depends on (seed, split, k) only.
    assert [a.item("train", k) for k in reversed(range(30))][::-1] == seq
    assert all(it.voice.talker not in held for it in seq)
    assert all(a.item("test_unseen_voice", k).voice.talker in held for k in range(10))
    assert {it.text for it in seq} == {s.text for s in SENTENCES["train"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not HAVE["espeak"]:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = synth.build(out, 0.012, seed=3, jobs=2, engines=["espeak"], valid_fraction=0.2,
                          test_fraction=0.2, progress=False, sentences=SENTENCES)  # fmt: skip
    return out, summary


def test_build_writes_splits_with_unseen_voices_held_out(corpus):
    out, summary = corpus
    rows = {s: read_manifest(out / f"{s}.jsonl") for s in synth.SPLITS}
    assert all(rows.values())
    train_spk = {r["speaker"] for r in rows["train"]}
    test_spk = {r["speaker"] for r in rows["test_unseen_voice"]}
    assert train_spk.isdisjoint(test_spk)
    assert {r["speaker"] for r in rows["valid"]} <= set(summary["train_voices"])
    assert test_spk <= set(summary["heldout_voices"])
    assert not set(summary["heldout_voices"]) & set(summary["train_voices"])
    # Held-out text stays out of training.
    train_text = {r["text"] for r in rows["train"]}
    assert {r["text"] for r in rows["valid"] + rows["test_unseen_voice"]}.isdisjoint(train_text)
    hours = sum(r["duration"] for r in rows["train"]) / 3600
    assert hours == pytest.approx(0.012 * 0.6, rel=0.5)
    on_disk = json.loads((out / "corpus.json").read_text())
    assert on_disk["splits"]["train"]["utterances"] == len(rows["train"])
    assert on_disk["build"]["new_audio_hours"] > 0 and on_disk["build"]["errors"] == 0


def test_rerun_resumes_and_redoes_only_missing_or_broken_files(corpus):
    out, first = corpus
    rows = read_manifest(out / "train.jsonl")
    mtimes = {r["audio"]: os.stat(r["audio"]).st_mtime_ns for r in rows}
    again = synth.build(out, 0.012, seed=3, jobs=2, engines=["espeak"], valid_fraction=0.2,
                        test_fraction=0.2, progress=False, sentences=SENTENCES)  # fmt: skip
    assert again["build"]["new_audio_hours"] == 0
    assert again["splits"] == first["splits"]
    # corpus.json keeps the record of the build that made the corpus, not the no-op rerun's.
    assert json.loads((out / "corpus.json").read_text())["build"] == first["build"]
    assert {r["audio"]: os.stat(r["audio"]).st_mtime_ns for r in rows} == mtimes
    # An interrupted build: one file gone, one truncated, the manifest lost.
    gone, broken = rows[0]["audio"], rows[1]["audio"]
    os.unlink(gone)
    with open(broken, "r+b") as f:
        f.truncate(20)
    os.unlink(out / "train.jsonl")
    third = synth.build(out, 0.012, seed=3, jobs=2, engines=["espeak"], valid_fraction=0.2,
                        test_fraction=0.2, progress=False, sentences=SENTENCES)  # fmt: skip
    redone = third["build"]["new_audio_hours"] * 3600
    assert redone == pytest.approx(rows[0]["duration"] + rows[1]["duration"], abs=0.05)
    # Same manifest as before (rows rebuilt from the files lack only the "aug" record). A redone
    # clip may differ by a few ms: espeak-ng keeps some state from one utterance to the next.
    key = ("id", "audio", "text", "speaker")
    rebuilt = read_manifest(out / "train.jsonl")
    assert [[r[k] for k in key] for r in rebuilt] == [[r[k] for k in key] for r in rows]
    assert [r["duration"] for r in rebuilt] == pytest.approx(
        [r["duration"] for r in rows], abs=0.05
    )
    assert sf.info(broken).frames > 0
    for r in rows[2:]:
        assert os.stat(r["audio"]).st_mtime_ns == mtimes[r["audio"]]


def test_a_later_engine_stays_out_of_older_corpora_plans(corpus):
    out, _ = corpus
    # The plan holds the weights every corpus was planned with before Pico was added, and not
    # Pico's (unused here), so a corpus built before then still resumes.
    plan = json.loads((out / "plan.json").read_text())
    assert plan["weights"] == {
        "espeak": 0.55,
        "flite": 0.25,
        "festival": 0.2,
        "piper": 0.2,
        "kokoro": 0.2,
    }


def test_other_settings_in_the_same_folder_are_refused(corpus):
    out, _ = corpus
    with pytest.raises(synth.SynthError, match="seed"):
        synth.build(out, 0.012, seed=4, jobs=1, engines=["espeak"], progress=False,
                    sentences=SENTENCES)  # fmt: skip


def test_cli_lists_voices(capsys):
    if not HAVE["espeak"]:
        pytest.skip("espeak-ng is not installed")
    synth.main(["--list-voices", "--engines", "espeak"])
    out = capsys.readouterr().out
    assert "espeak-en-gb-scotland+klatt-p" in out and "(held out)" in out
    with pytest.raises(SystemExit):
        synth.main(["--engines", "nope", "--out", "/tmp/unused"])


def test_text_is_cut_into_speakable_sentences():
    got = make_sentences(
        'He said "go now"; then LORD knows. Mr. Smith paid $5. J. R. R. Tolkien wrote it. '
        "Ok. The NASA team flew.",
        "x",
        known_words={"lord"},
    )
    # Digits, "$", "Mr." and acronyms would be read unlike their transcript: those are dropped;
    # initials end up as one-word pieces, too short to keep.
    assert [s.text for s in got] == ["he said go now", "then lord knows", "tolkien wrote it"]
    assert got[1].speak == "then Lord knows."
    long = " ".join(["word"] * 60)
    assert all(3 <= len(s.text.split()) <= 25 for s in make_sentences(long, "x"))
    assert text_split("he ran fast") == text_split("he ran fast")
    splits = split_sentences([Sentence(f"sentence number {i} here", "", "x") for i in range(2000)])
    assert 0.9 < len(splits["train"]) / 2000 < 0.99 and splits["valid"] and splits["test"]


def test_wordnet_definitions_are_lm_text_without_held_out_sentences(tmp_path):
    def first(pattern, held_out):
        """pattern with the first made-up word that puts it in (or out of) the held-out text"""
        for i in range(10**4):
            text = pattern.format("".join("abcdefghij"[int(d)] for d in str(i)) + "z")
            if (text_split(text) != "train") == held_out:
                return text

    held = first("the {} sat on a mat", True)
    kept = first("a {} ran down the road", False)
    never = first("any {} thing at all", True)
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided to you, the LICENSEE\n"
        f'00001 03 n 01 cat 0 000 | a small domestic animal; "{held}"\n'
        f'00002 03 n 01 dog 0 000 | a Domestic Animal that barks; kept by 2 people; "{kept}"\n'
        "00003 03 n 01 fox 0 000 | a domestic animal that barks; a wild dog of the woods\n"
        f"00004 03 v 01 go 0 000 | {never}; go\n"
    )
    got = wordnet_glosses(str(tmp_path))
    # the cat's synset illustrates a held-out sentence: none of its definitions get in; digits,
    # short pieces, repeats and a definition that is itself held-out text are dropped
    assert got == ["a domestic animal that barks", "a wild dog of the woods"]
    assert "a small domestic animal" not in got


def test_short_utterances_are_words_phrases_letters_and_numbers():
    text = [
        "the cat sat on the mat",
        "the dog sat on the log",
        "a cat and a dog sat together on the mat",
        "the mat was on the log",
    ] * 2
    sentences = [Sentence(t, t, "x") for t in text]
    got = short_sentences(sentences, 300, seed=3, exclude={"the", "k", "on the mat"})
    assert len(got) == len({s.text for s in got}) == 300
    assert short_sentences(sentences, 300, seed=3, exclude={"the", "k", "on the mat"}) == got
    assert short_sentences(sentences, 300, seed=4) != got
    kinds = {s.source for s in got}
    assert kinds == {"short-word", "short-phrase", "short-letters", "short-number"}
    words = {w for t in text for w in t.split()}
    for s in got:
        assert s.text not in {"the", "k", "on the mat"}
        assert 1 <= len(s.text.split()) <= (7 if s.source == "short-number" else 5)
        assert normalize_text(s.text) == s.text
        if s.source == "short-word":
            assert s.text in words and " " not in s.text
        elif s.source == "short-phrase":
            assert any(f" {s.text} " in f" {t} " for t in text)
        elif s.source == "short-letters":
            # Spoken as capitals, which every engine reads as letter names ("K, D, P.").
            assert all(len(w) == 1 for w in s.text.split())
            assert s.speak.replace(",", "").rstrip(".").lower() == s.text
        else:
            assert normalize_text(s.speak) == s.text and not any(c.isdigit() for c in s.text)
    # "together" occurs once: too rare to be a single-word utterance.
    assert "together" not in {s.text for s in got if s.source == "short-word"}
    with pytest.raises(ValueError, match="occurs 3 times"):
        short_sentences([Sentence("one two three", "", "x")], 5)


def test_cli_builds_a_short_utterance_corpus_without_excluded_texts(tmp_path, monkeypatch):
    import train.text_corpus as tc

    if not synth.available_engines()["espeak"]:
        pytest.skip("espeak-ng is not installed")
    text = [f"alpha bravo charlie delta echo number {w}" for w in ("one", "two", "three")] * 3
    monkeypatch.setattr(tc, "load_sentences", lambda: [Sentence(t, t, "x") for t in text])
    monkeypatch.setattr(tc, "text_split", lambda t, heldout_percent=4: "train")
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(
        json.dumps({"audio": "x.flac", "duration": 1.0, "text": "Bravo", "speaker": "s"}) + "\n"
    )
    out = tmp_path / "short"
    synth.main(
        [
            "--out",
            str(out),
            "--text",
            "short",
            "--short-count",
            "40",
            "--hours",
            "0.01",
            "--valid-fraction",
            "0",
            "--test-fraction",
            "0",
            "--engines",
            "espeak",
            "--jobs",
            "1",
            "--exclude",
            str(evalset),
        ]
    )
    rows = read_manifest(out / "train.jsonl")
    assert rows and all(os.path.isfile(r["audio"]) for r in rows)
    assert all(1 <= len(r["text"].split()) <= 7 for r in rows)
    assert "bravo" not in {r["text"] for r in rows}
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path / "x"), "--exclude", str(evalset)])


def test_cli_reads_the_text_corpus_from_a_sentence_file(tmp_path, monkeypatch):
    import train.text_corpus as tc

    if not synth.available_engines()["espeak"]:
        pytest.skip("espeak-ng is not installed")
    sentences = [Sentence(f"the number is {w}", f"The number is {w}.", "x") for w in
                 ("one", "two", "three", "four", "five", "six", "seven", "eight")]  # fmt: skip
    path = tmp_path / tc.SENTENCES_NAME
    tc.write_sentences(sentences, path)
    assert tc.read_sentences(path) == sentences

    def no_packages(*args, **kwargs):
        raise AssertionError("the Debian text packages were read")

    monkeypatch.setattr(tc, "load_sentences", no_packages)
    monkeypatch.setattr(tc, "text_split", lambda t, heldout_percent=4: "train")
    out = tmp_path / "corpus"
    args = ["--out", str(out), "--hours", "0.005", "--valid-fraction", "0", "--test-fraction",
            "0", "--engines", "espeak", "--jobs", "1"]  # fmt: skip
    synth.main([*args, "--sentences", str(path)])
    rows = read_manifest(out / "train.jsonl")
    assert rows and {r["text"] for r in rows} <= {s.text for s in sentences}
    (tmp_path / "bad.gz").write_text("not gzip")
    with pytest.raises(SystemExit, match="not a sentence list"):
        synth.main([*args, "--sentences", str(tmp_path / "bad.gz")])
