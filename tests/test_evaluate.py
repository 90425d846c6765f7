"""Evaluation: metrics and error analysis on known pairs, then a full run on a tiny model."""

import json

import pytest
import soundfile as sf
import torch

from ds2.checkpoint import load_folder
from ds2.errors import DS2Error
from tests.utils import espeak
from train.evaluate import (
    _batches,
    align_words,
    cached_log_probs,
    error_analysis,
    error_rates,
    error_rates_by,
    evaluate,
    infer_log_probs,
    main,
    worst_utterances,
)
from train.manifest import group_key

REFS = ["the cat sat on the mat", "hello world"]
HYPS = ["the bat sat on mat", "hello there world"]


def test_error_rates_hand_computed():
    r = error_rates(REFS, HYPS)
    # 8 reference words: cat->bat, -the, +there
    assert (r["substitutions"], r["deletions"], r["insertions"]) == (1, 1, 1)
    assert r["ref_words"] == 8
    assert r["wer"] == pytest.approx(3 / 8)
    # 33 reference characters (spaces count): c->b, "the " deleted (4), "there " inserted (6)
    assert r["ref_chars"] == 33
    assert r["char_errors"] == 11
    assert r["cer"] == pytest.approx(11 / 33)
    assert r["sentence_errors"] == 2
    assert error_rates(REFS, REFS)["wer"] == 0.0


def test_empty_hypothesis_is_all_deletions():
    r = error_rates(["a b c"], [""])
    assert r["wer"] == 1.0 and r["deletions"] == 3
    with pytest.raises(ValueError):
        error_rates(["a"], ["a", "b"])


def test_error_analysis_counts_words_and_chars():
    refs = ["the cat sat", "a cat ran", "the dog"]
    hyps = ["the bat sat", "a bat ran up", "dog"]
    e = error_analysis(refs, hyps)
    assert e["substitutions"][0] == {"ref": "cat", "hyp": "bat", "count": 2}
    assert e["deletions"] == [{"word": "the", "count": 1}]
    assert e["insertions"] == [{"word": "up", "count": 1}]
    assert {"ref": "c", "hyp": "b", "count": 2} in e["char_substitutions"]


def test_align_words_and_worst_utterances():
    assert align_words("the cat sat", "the bat sat down") == (2, "the [cat->bat] sat [+down]")
    assert align_words("a b", "b") == (1, "[-a] b")
    worst = worst_utterances(["u1", "u2", "u3"], [*REFS, "ok"], [*HYPS, "ok"], n=5)
    assert [w["id"] for w in worst] == ["u1", "u2"]  # u3 is right: not listed
    assert worst[0]["errors"] == 2 and worst[0]["diff"] == "the [cat->bat] sat on [-the] mat"
    assert worst[1]["errors"] == 1 and worst[1]["wer"] == pytest.approx(1 / 2)


def test_group_key_picks_speakers_then_engines():
    few = [{"speaker": f"v{i % 3}", "engine": "e"} for i in range(9)]
    assert group_key(few) == "speaker"
    many = [{"speaker": f"v{i}", "engine": f"e{i % 2}"} for i in range(40)]
    assert group_key(many) == "engine"  # 40 voices: too many for a table
    assert group_key([{"speaker": "one"}, {"speaker": "one"}]) is None
    assert group_key([{"speaker": "a"}, {"text": "no speaker"}]) is None


def test_error_rates_by_sums_within_each_group():
    refs = REFS + ["a b c d"]
    hyps = HYPS + ["a b c d"]
    by = error_rates_by(["x", "y", "x"], refs, hyps)
    assert set(by) == {"x", "y"}
    assert by["x"]["utterances"] == 2
    assert by["x"]["wer"] == pytest.approx(2 / 10)  # 1 sub + 1 del over 6 + 4 words
    assert by["y"]["wer"] == pytest.approx(1 / 2) and by["y"]["cer"] > 0


def test_batches_bound_padded_seconds():
    durations = [1.0, 9.0, 2.0, 8.0, 3.0, 30.0]
    batches = _batches(durations, batch_seconds=18.0)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert [5] in batches  # longer than the budget: alone
    for b in batches:
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 18.0


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """A 2-utterance manifest of espeak speech and a small LM over its words."""
    from train.lm import main as build_lm

    d = tmp_path_factory.mktemp("evalset")
    rows = []
    for i, text in enumerate(["hello world this is a test", "the cat sat on the mat"]):
        wav = espeak(text, d / f"utt{i}.wav")
        rows.append({"audio": wav.name, "duration": sf.info(wav).duration, "text": text,
                     "speaker": "espeak"})  # fmt: skip
    manifest = d / "test.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "lm.txt").write_text("hello world\nthe cat sat on the mat\nthis is a test\n")
    build_lm(["--text", str(d / "lm.txt"), "--order", "2", "--out", str(d / "lm")])
    return manifest, d / "lm"


def test_batched_inference_matches_one_by_one(tiny_checkpoint, test_set):
    from train.manifest import read_manifest

    model = load_folder(tiny_checkpoint)
    rows = read_manifest(test_set[0])
    together = infer_log_probs(model, rows, batch_seconds=1000.0)
    alone = infer_log_probs(model, rows, batch_seconds=0.1)
    for a, b in zip(together, alone):
        assert a.shape == b.shape and a.shape[1] == 29
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_evaluate_end_to_end(tiny_checkpoint, test_set, tmp_path):
    manifest, lm = test_set
    out = tmp_path / "eval"
    r = evaluate(
        str(tiny_checkpoint), [f"test={manifest}"], "greedy,beam,beam_lm", beam_width=4,
        lm=lm, lm_weight=0.5, word_score=1.0, device="cpu", out=out,
    )  # fmt: skip
    assert r["modes"] == ["greedy", "beam", "beam_lm"]
    assert r["decoding"]["lm_weight"] == 0.5 and r["decoding"]["lm"].endswith("lm.arpa")
    s = r["sets"]["test"]
    assert s["utterances"] == 2 and s["hours"] > 0
    for mode in r["modes"]:
        m = s["modes"][mode]
        assert m["ref_words"] == 12 and m["utterances"] == 2
        assert m["wer"] == pytest.approx(
            (m["substitutions"] + m["deletions"] + m["insertions"]) / 12
        )
        assert set(m["errors"]) >= {"substitutions", "deletions", "insertions"}
        lines = (out / "hyps" / f"test.{mode}.jsonl").read_text().splitlines()
        hyps = [json.loads(x) for x in lines]
        assert [h["ref"] for h in hyps] == ["hello world this is a test", "the cat sat on the mat"]
        # the report agrees with the hypotheses it wrote
        assert error_rates([h["ref"] for h in hyps], [h["hyp"] for h in hyps])["wer"] == m["wer"]

    assert json.loads((out / "results.json").read_text())["sets"]["test"]["utterances"] == 2
    md = (out / "results.md").read_text()
    assert "| test | 0.00 | 2 | beam_lm |" in md
    assert f"{100 * s['modes']['greedy']['wer']:.2f}" in md
    assert (out / "wer.png").stat().st_size > 1000


def test_beam_lm_without_lm_is_skipped_with_a_note(tiny_checkpoint, test_set, tmp_path, capsys):
    main(["--model", str(tiny_checkpoint), "--manifest", str(test_set[0]), "--out",
          str(tmp_path), "--modes", "greedy,beam_lm", "--device", "cpu"])  # fmt: skip
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["modes"] == ["greedy"]
    assert "beam_lm skipped" in r["notes"][0]
    assert "| test | 0.00 | 2 | greedy |" in capsys.readouterr().out
    with pytest.raises(DS2Error, match="unknown decoding mode"):
        evaluate(str(tiny_checkpoint), [test_set[0]], "greedy,viterbi")


def test_cached_log_probs_are_reused_only_for_the_same_model_and_rows(
    tiny_checkpoint, test_set, tmp_path, monkeypatch
):
    import train.evaluate as ev
    from train.manifest import read_manifest

    model = load_folder(tiny_checkpoint)
    rows = read_manifest(test_set[0])
    cache = tmp_path / "lp" / "valid.safetensors"
    first = cached_log_probs(model, rows, cache)
    assert cache.read_bytes()[:8] != b"\x80\x04" and cache.stat().st_size > 1000  # no pickle
    runs = []
    real = ev.infer_log_probs
    monkeypatch.setattr(ev, "infer_log_probs", lambda *a, **k: runs.append(1) or real(*a, **k))
    again = cached_log_probs(model, rows, cache)
    assert runs == [] and len(again) == len(first)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # another set, or changed weights: the network runs again and the cache is replaced
    assert len(cached_log_probs(model, rows[:1], cache)) == 1 and runs == [1]
    with torch.no_grad():
        next(model.model.parameters()).add_(0.5)
    changed = cached_log_probs(model, rows, cache)
    assert runs == [1, 1] and not torch.equal(changed[0], first[0])
    assert torch.equal(cached_log_probs(model, rows, cache)[0], changed[0]) and runs == [1, 1]


def test_evaluate_log_probs_dir_decodes_again_without_the_network(
    tiny_checkpoint, test_set, tmp_path, monkeypatch
):
    import train.evaluate as ev

    manifest, lm = test_set
    runs = []
    real = ev.infer_log_probs
    monkeypatch.setattr(ev, "infer_log_probs", lambda *a, **k: runs.append(1) or real(*a, **k))
    cache = tmp_path / "lp"
    args = ["--model", str(tiny_checkpoint), "--manifest", f"test={manifest}", "--device", "cpu",
            "--modes", "greedy,beam_lm", "--beam-width", "4", "--lm", str(lm),
            "--log-probs", str(cache)]  # fmt: skip
    main([*args, "--out", str(tmp_path / "a"), "--lm-weight", "0.5"])
    first = json.loads((tmp_path / "a" / "results.json").read_text())["sets"]["test"]
    assert runs == [1] and (cache / "test.safetensors").is_file()
    assert first["inference_rtf"] > 0 and "inference_cached" not in first
    # other LM settings on the same model and set: decoded from the kept output, same greedy
    main([*args, "--out", str(tmp_path / "b"), "--lm-weight", "2.0"])
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert runs == [1] and again["decoding"]["lm_weight"] == 2.0
    s = again["sets"]["test"]
    assert s["inference_cached"] is True and "inference_rtf" not in s
    assert s["modes"]["greedy"]["wer"] == first["modes"]["greedy"]["wer"]
    uncached = evaluate(str(tiny_checkpoint), [f"test={manifest}"], "greedy,beam_lm",
                        beam_width=4, lm=lm, lm_weight=2.0, device="cpu")  # fmt: skip
    assert runs == [1, 1]
    for mode in ("greedy", "beam_lm"):
        assert s["modes"][mode]["wer"] == uncached["sets"]["test"]["modes"][mode]["wer"]
    # another set under the same name is not mistaken for the first
    main([*args, "--out", str(tmp_path / "c"), "--limit", "1"])
    assert runs == [1, 1, 1]


def test_tune_lm_finds_and_writes_best(tiny_checkpoint, test_set, tmp_path):
    import shutil

    from train.tune_lm import plot_grid, tune, write_decoder_config

    manifest, lm = test_set
    r = tune(str(tiny_checkpoint), manifest, lm=lm, alphas=[0.0, 1.0], betas=[0.0, 2.0],
             beam_width=4, device="cpu", log_probs_cache=tmp_path / "lp.safetensors")  # fmt: skip
    assert (tmp_path / "lp.safetensors").is_file()
    # a second LM search on the cached output gives the same trials
    assert tune(str(tiny_checkpoint), manifest, lm=lm, alphas=[0.0, 1.0], betas=[0.0, 2.0],
                beam_width=4, device="cpu",
                log_probs_cache=tmp_path / "lp.safetensors")["trials"] == r["trials"]  # fmt: skip
    assert len(r["trials"]) == 4
    assert r["best"] == r["trials"][0]
    assert [t["wer"] for t in r["trials"]] == sorted(t["wer"] for t in r["trials"])
    assert plot_grid(r, tmp_path / "tune.png").stat().st_size > 1000

    # tuned weights go into a model folder that ships the LM
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    with pytest.raises(DS2Error, match="names no LM"):
        write_decoder_config(folder, 1.0, 2.0)
    shutil.copy(lm / "lm.arpa", folder)
    shutil.copy(lm / "lexicon.txt", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["decoder"] = {"lm": "lm.arpa", "lexicon": "lexicon.txt"}
    (folder / "config.json").write_text(json.dumps(cfg))
    write_decoder_config(folder, r["best"]["lm_weight"], r["best"]["word_score"])
    assert load_folder(folder).decoder_defaults == {
        "lm_weight": r["best"]["lm_weight"],
        "word_score": r["best"]["word_score"],
    }


def test_evaluate_breaks_a_set_down_by_voice(tiny_checkpoint, test_set, tmp_path):
    manifest, _ = test_set
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    for i, r in enumerate(rows):
        r["speaker"] = f"voice-{i}"
        r["audio"] = str(manifest.parent / r["audio"])
    two = tmp_path / "two.jsonl"
    two.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    r = evaluate(
        str(tiny_checkpoint), [f"t={two}"], "greedy,beam", beam_width=4, device="cpu", out=out
    )
    s = r["sets"]["t"]
    assert s["group_by"] == "speaker"
    hyps = [json.loads(x) for x in (out / "hyps" / "t.greedy.jsonl").read_text().splitlines()]
    for mode in ("greedy", "beam"):
        by = s["modes"][mode]["by_group"]
        assert list(by) == ["voice-0", "voice-1"]
        assert by["voice-1"]["utterances"] == 1
    assert s["modes"]["greedy"]["by_group"]["voice-0"]["wer"] == pytest.approx(
        error_rates([hyps[0]["ref"]], [hyps[0]["hyp"]])["wer"]
    )
    # the clips the scores belong to: one hash per set and per voice, each over its own files
    from train.manifest import audio_hashes, combined_hash

    assert s["audio_sha256"] == combined_hash(audio_hashes(rows))
    assert s["audio_sha256_by_group"] == {
        f"voice-{i}": combined_hash(audio_hashes([row])) for i, row in enumerate(rows)
    }
    md = (out / "results.md").read_text()
    assert "## By voice" in md and "| speaker | utterances | greedy | beam |" in md
    assert "| voice-1 | 1 |" in md
    assert (out / "voices.png").stat().st_size > 1000


def test_a_rebuilt_clip_changes_the_set_hash_and_the_log_probs_cache(
    tiny_checkpoint, test_set, tmp_path, monkeypatch
):
    """Re-synthesis keeps a clip's path and duration but not its bytes: the set's recorded hash
    moves, and log-probs cached for the old clip are not reused."""
    import shutil

    import train.evaluate as ev

    manifest, _ = test_set
    d = tmp_path / "set"
    shutil.copytree(manifest.parent, d)
    kw = dict(device="cpu", log_probs_dir=tmp_path / "lp")
    first = evaluate(str(tiny_checkpoint), [f"t={d / manifest.name}"], "greedy", **kw)
    runs = []
    real = ev.infer_log_probs
    monkeypatch.setattr(ev, "infer_log_probs", lambda *a, **k: runs.append(1) or real(*a, **k))
    same = evaluate(str(tiny_checkpoint), [f"t={d / manifest.name}"], "greedy", **kw)
    assert runs == [] and same["sets"]["t"]["inference_cached"]
    assert same["sets"]["t"]["audio_sha256"] == first["sets"]["t"]["audio_sha256"]
    clip = d / "utt1.wav"
    audio, sr = sf.read(clip, dtype="int16")
    audio[len(audio) // 2] += 1  # one sample one step off: the same length, other bytes
    sf.write(clip, audio, sr)
    rebuilt = evaluate(str(tiny_checkpoint), [f"t={d / manifest.name}"], "greedy", **kw)
    assert runs == [1] and "inference_cached" not in rebuilt["sets"]["t"]
    assert rebuilt["sets"]["t"]["audio_sha256"] != first["sets"]["t"]["audio_sha256"]


def test_audio_hashes_name_a_missing_clip(tmp_path):
    from train.manifest import ManifestError, audio_hashes

    with pytest.raises(ManifestError, match="gone.wav"):
        audio_hashes([{"audio": str(tmp_path / "gone.wav")}])
