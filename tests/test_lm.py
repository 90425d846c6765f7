"""The word n-gram LM: modified Kneser-Ney estimates, ARPA files KenLM reads, lexicons."""

import json
import math
import random
from collections import Counter

import pytest

from train.lm import (
    BOS,
    EOS,
    UNK,
    LMError,
    build_lm,
    main,
    read_arpa,
    read_sentences,
    write_arpa,
    write_lexicon,
)

WORDS = "the cat sat on a mat dog ran far away and then came back home".split()


def random_corpus(n=400, seed=0):
    rng = random.Random(seed)
    # a skewed word distribution so that counts of 1, 2, 3 and 4 all occur
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    return [" ".join(rng.choices(WORDS, weights, k=rng.randint(1, 9))) for _ in range(n)]


def contexts(lm):
    """Every context the model lists, the empty one, and one it has never seen."""
    out = [()]
    for n in range(1, lm.order):
        out += [g for g in lm.probs[n - 1] if g[-1] != EOS]
    return out + [("zebra", "the")[-(lm.order - 1) :]]


def predictable(lm):
    return [w for w in lm.vocab if w != BOS]


@pytest.mark.parametrize("prune", [None, [0, 1, 1], [0, 2, 3]])
def test_every_context_sums_to_one(prune):
    lm = build_lm(random_corpus(), order=3, prune=prune)
    for h in contexts(lm):
        total = sum(lm.prob(w, h) for w in predictable(lm))
        assert total == pytest.approx(1.0, abs=1e-4), h


def test_hand_computed_bigram_model():
    # Counts too few to estimate discounts, so the fallback D = (0.5, 1, 1.5) applies.
    # Unigram continuation counts: a 1, b 1, c 1, </s> 2 (total 5); gamma = (3 x 0.5 + 1) / 5.
    # p(w) = (a - D) / 5 + 0.5 / 5 (uniform over a, b, c, </s>, <unk>).
    lm = build_lm(["a b", "a b", "a c"], order=2)
    assert lm.prob("a") == pytest.approx(0.2)
    assert lm.prob(EOS) == pytest.approx(0.3)
    assert lm.prob(UNK) == pytest.approx(0.1)
    # Context "a": raw counts b 2, c 1 (total 3); gamma(a) = (1 + 0.5) / 3 = 0.5.
    assert lm.prob("b", ["a"]) == pytest.approx(1 / 3 + 0.5 * 0.2)
    assert lm.prob("c", ["a"]) == pytest.approx(0.5 / 3 + 0.5 * 0.2)
    assert lm.prob("a", ["a"]) == pytest.approx(0.5 * 0.2)  # backed off
    assert lm.backoffs[0][("a",)] == pytest.approx(0.5)
    # Context "<s>": a 3 (D3+ = 1.5), gamma 0.5.
    assert lm.prob("a", [BOS]) == pytest.approx(1.5 / 3 + 0.5 * 0.2)


def test_discounts_are_estimated_from_count_of_counts():
    corpus = random_corpus(2000)
    trigrams = Counter()
    for s in corpus:
        toks = [BOS, *s.split(), EOS]
        trigrams.update(zip(toks, toks[1:], toks[2:]))
    n = Counter(trigrams.values())
    y = n[1] / (n[1] + 2 * n[2])
    expected = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    lm = build_lm(corpus, order=3)
    assert lm.discounts[2] == pytest.approx(expected)
    assert lm.discounts[2] != pytest.approx((0.5, 1.0, 1.5))  # not the fallback


def test_pruning_keeps_probabilities_and_closure():
    corpus = random_corpus()
    full = build_lm(corpus, order=3)
    pruned = build_lm(corpus, order=3, prune=[0, 1, 1])
    assert sum(map(len, pruned.probs)) < sum(map(len, full.probs))
    for n in (2, 3):
        for g, p in pruned.probs[n - 1].items():
            # a listed n-gram keeps its interpolated probability ...
            assert p == pytest.approx(full.probs[n - 1][g], rel=1e-9)
            # ... and its context and suffix are listed, as ARPA needs
            assert g[:-1] in pruned.probs[n - 2]
            assert g[1:] in pruned.probs[n - 2]
    # pruned n-grams hand their mass to the backoff: no backoff weight shrinks
    for n in (1, 2):
        for h, bow in full.backoffs[n - 1].items():
            assert pruned.backoffs[n - 1].get(h, 1.0) >= bow - 1e-12
    assert any(pruned.backoffs[1].get(h, 1.0) > bow + 1e-6 for h, bow in full.backoffs[1].items())


def test_seen_bigram_beats_unseen():
    lm = build_lm(["the cat sat", "the dog ran", "a cat ran"] * 3, order=2)
    assert lm.prob("cat", ["the"]) > lm.prob("ran", ["the"])
    assert lm.prob("cat", ["the"]) > lm.prob("cat", ["sat"])


def test_arpa_round_trip_and_kenlm_agrees(tmp_path):
    kenlm_mod = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    from flashlight.lib.text.dictionary import Dictionary

    lm = build_lm(random_corpus(), order=3, prune=[0, 0, 1])
    path = write_arpa(lm, tmp_path / "lm.arpa")
    back = read_arpa(path)
    assert [len(p) for p in back.probs] == [len(p) for p in lm.probs]
    text = "the cat sat on a mat"
    assert back.sentence_log10(text)[0] == pytest.approx(lm.sentence_log10(text)[0], abs=1e-4)

    words = lm.vocab
    kenlm = kenlm_mod.KenLM(str(path), Dictionary(words))
    state = kenlm.start(False)
    hist = [BOS]
    for w in [*text.split(), "zebra", "the", EOS]:
        if w == EOS:
            state, score = kenlm.finish(state)
        else:
            idx = words.index(w) if w in words else words.index(UNK)
            state, score = kenlm.score(state, idx)
        assert score == pytest.approx(math.log10(lm.prob(w, hist)), abs=1e-4), w
        hist.append(w)


def test_beam_search_reads_lm_and_lexicon(tmp_path):
    import torch

    from ds2.decoding import BeamSearchDecoder
    from ds2.vocab import Vocabulary

    out = tmp_path / "lm"
    main(["--text", str(_write(tmp_path / "t.txt", ["the cat sat", "a cat ran"] * 5)),
          "--order", "2", "--out", str(out)])  # fmt: skip
    vocab = Vocabulary()
    # frames spelling "kat" with "c" a close second to "k": the lexicon (from the LM's words)
    # turns it into "cat", a word the LM knows
    frames = []
    for ch in "k", "a", "t":
        p = torch.full((len(vocab),), 1e-3)
        p[vocab.encode(ch)[0]] = 0.6
        if ch == "k":
            p[vocab.encode("c")[0]] = 0.35
        blank = torch.full((len(vocab),), 1e-3)
        blank[vocab.blank_id] = 1.0
        frames += [p, blank]
    x = torch.stack(frames)  # (6, vocab)
    lp = (x / x.sum(-1, keepdim=True)).log()
    assert BeamSearchDecoder(vocab, beam_width=8)(lp)[0].text == "kat"
    dec = BeamSearchDecoder(
        vocab, beam_width=8, lexicon=out / "lexicon.txt", lm=out / "lm.arpa", lm_weight=0.5
    )
    assert dec(lp)[0].text == "cat"


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_lexicon_format(tmp_path):
    lm = build_lm(["don't stop", "stop the cat"], order=2)
    n = write_lexicon(lm, tmp_path / "lexicon.txt")
    lines = (tmp_path / "lexicon.txt").read_text().splitlines()
    assert n == len(lines) == 4
    assert "don't\td o n ' t |" in lines
    assert "cat\tc a t |" in lines
    assert not any(line.split("\t")[0] in (BOS, EOS, UNK) for line in lines)


def test_max_vocab_maps_rare_words_to_unk():
    lm = build_lm(["a a a b b c"], order=2, max_vocab=2)
    assert lm.words() == ["a", "b"]
    assert lm.stats["words_mapped_to_unk"] == 1
    assert lm.prob("c") == lm.prob(UNK) > 0  # an OOV word is scored as <unk>
    assert lm.prob("c", ["b"]) == lm.prob(UNK, ["b"])


def test_read_sentences(tmp_path):
    m = tmp_path / "train.jsonl"
    m.write_text(
        json.dumps({"audio": "a.wav", "duration": 1.0, "text": "hello world", "speaker": "x"})
        + "\n\n"
    )
    t = _write(tmp_path / "extra.txt", ["Dr. Smith paid $5!", "", "  "])
    assert list(read_sentences([m, t])) == ["hello world", "dr smith paid five dollars"]
    with pytest.raises(LMError, match="does not exist"):
        list(read_sentences([tmp_path / "missing.txt"]))
    bad = _write(tmp_path / "bad.jsonl", ['{"audio": "a.wav"}'])
    with pytest.raises(LMError, match="bad.jsonl:1"):
        list(read_sentences([bad]))


def test_bad_options():
    with pytest.raises(LMError, match="no text"):
        build_lm([], order=2)
    with pytest.raises(LMError, match="thresholds"):
        build_lm(["a b"], order=3, prune=[0, 1])
    with pytest.raises(LMError, match="order"):
        build_lm(["a b"], order=0)


def test_cli_writes_arpa_lexicon_and_stats(tmp_path):
    train = _write(tmp_path / "train.txt", random_corpus(300))
    dev = _write(tmp_path / "dev.txt", random_corpus(30, seed=1))
    out = tmp_path / "lm"
    main(["--text", str(train), "--order", "3", "--prune", "1", "--max-vocab", "12",
          "--out", str(out), "--dev", str(dev)])  # fmt: skip
    stats = json.loads((out / "lm.json").read_text())
    assert stats["prune"] == [0, 1, 1]
    assert stats["vocab_size"] == 12 + 3  # words + <s> </s> <unk>
    assert stats["lexicon_words"] == 12
    assert 1 < stats["dev"]["perplexity"] < 16  # better than uniform over the 15 words
    assert (out / "lm.arpa").read_text().startswith("\\data\\\nngram 1=15\n")
    lm = read_arpa(out / "lm.arpa")
    assert lm.perplexity(read_sentences([dev]))["perplexity"] == pytest.approx(
        stats["dev"]["perplexity"], rel=1e-3
    )


def _build_binary_exe():
    import shutil
    from pathlib import Path

    local = Path(__file__).resolve().parents[1] / "tools/kenlm/build/bin/build_binary"
    return shutil.which("build_binary") or (str(local) if local.is_file() else None)


def _sentence_scores(paths, words, sentence):
    """flashlight KenLM's total log10 score of ``sentence`` under each LM file in ``paths``."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    scores = []
    for path in paths:
        lm = KenLM(str(path), Dictionary(words))
        state, total = lm.start(False), 0.0
        for w in sentence.split():
            state, s = lm.score(state, words.index(w))
            total += s
        scores.append(total + lm.finish(state)[1])
    return scores


@pytest.mark.skipif(
    _build_binary_exe() is None, reason="KenLM tools not built (tools/build_kenlm.sh)"
)
def test_binary_lm_scores_like_the_arpa(tmp_path):
    out = tmp_path / "lm"
    train = _write(tmp_path / "train.txt", random_corpus(200))
    main(["--text", str(train), "--order", "3", "--out", str(out), "--binary"])
    assert json.loads((out / "lm.json").read_text())["binary"] == "lm.bin"
    words = read_arpa(out / "lm.arpa").vocab
    scores = _sentence_scores((out / "lm.arpa", out / "lm.bin"), words, "the cat sat on a mat")
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)


def test_quantize_is_a_usage_error_without_binary_or_out_of_range(tmp_path, capsys):
    train = _write(tmp_path / "train.txt", random_corpus(50))
    with pytest.raises(SystemExit):
        main(["--text", str(train), "--out", str(tmp_path / "a"), "--quantize", "8"])
    assert "add --binary" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--text", str(train), "--out", str(tmp_path / "b"), "--binary", "--quantize", "40"])
    assert "2 to 25 bits" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_binary_is_built_with_the_asked_quantisation(tmp_path, monkeypatch):
    """A build_binary on PATH gets -q/-b BITS (none when exact) and the trie layout; lm.json
    records the binary's size and bits."""
    import os

    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "build_binary"
    # records its arguments and writes the last one, as the real tool writes its output
    exe.write_text(
        '#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\nprintf kenlm > "$(eval echo \\${$#})"\n'
    )
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    train = _write(tmp_path / "train.txt", random_corpus(50))
    for bits, out in ((8, tmp_path / "q8"), (None, tmp_path / "exact")):
        main(["--text", str(train), "--out", str(out), "--binary"]
             + (["--quantize", str(bits)] if bits else []))  # fmt: skip
        stats = json.loads((out / "lm.json").read_text())
        assert stats["binary"] == "lm.bin" and stats["binary_quantize"] == bits
        assert stats["binary_bytes"] == (out / "lm.bin").stat().st_size == 5
    calls = (bindir / "calls").read_text().splitlines()
    q8 = tmp_path / "q8"
    exact = tmp_path / "exact"
    assert calls == [
        f"-s -q 8 -b 8 -a 22 trie {q8 / 'lm.arpa'} {q8 / 'lm.bin'}",
        f"-s -a 22 trie {exact / 'lm.arpa'} {exact / 'lm.bin'}",
    ]


@pytest.mark.skipif(
    _build_binary_exe() is None, reason="KenLM tools not built (tools/build_kenlm.sh)"
)
def test_quantised_binary_scores_close_to_the_arpa(tmp_path):
    out = tmp_path / "lm"
    train = _write(tmp_path / "train.txt", random_corpus(300))
    main(["--text", str(train), "--order", "4", "--out", str(out), "--binary", "--quantize", "8"])
    words = read_arpa(out / "lm.arpa").vocab
    sentence = "the dog ran far away and then came back home"
    scores = _sentence_scores((out / "lm.arpa", out / "lm.bin"), words, sentence)
    # 8 bits per probability: close, not equal (an exact trie matches to 1e-5)
    assert scores[0] == pytest.approx(scores[1], abs=0.05 * 11)
    assert scores[0] != scores[1]
