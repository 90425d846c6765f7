"""Greedy and beam search decoding, LM rescoring and word timings on constructed posteriors."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

from ds2.decoding import (
    BeamSearchDecoder,
    Hypothesis,
    Word,
    ctc_collapse,
    cuda_beam_search_works,
    decode_batch,
    flashlight_tokens,
    greedy_decode,
    word_timings,
    write_lexicon,
)
from ds2.errors import DecoderError, DS2Error
from ds2.vocab import Vocabulary

VOCAB = Vocabulary()
BLANK = VOCAB.blank_id


def frame_ids(frames: str) -> list[int]:
    """Frame path from a string: "_" is the blank, every other character itself."""
    return [BLANK if c == "_" else VOCAB.encode(c)[0] for c in frames]


def peaked(frames: str, p: float = 0.98) -> torch.Tensor:
    """Log-probs (n_frames, vocab) giving each frame's symbol probability p, the rest spread."""
    ids = frame_ids(frames)
    rest = (1.0 - p) / (len(VOCAB) - 1)
    probs = torch.full((len(ids), len(VOCAB)), rest)
    probs[torch.arange(len(ids)), torch.tensor(ids, dtype=torch.long)] = p
    return probs.log()


def mixed(frames: list[dict[str, float]]) -> torch.Tensor:
    """Log-probs (n_frames, vocab) from per-frame {symbol: probability}; the rest is spread."""
    out = torch.empty(len(frames), len(VOCAB))
    for t, spec in enumerate(frames):
        rest = (1.0 - sum(spec.values())) / (len(VOCAB) - len(spec))
        row = torch.full((len(VOCAB),), rest)
        for c, p in spec.items():
            row[frame_ids(c)[0]] = p
        out[t] = row.log()
    return out


def test_ctc_collapse_merges_repeats_then_drops_blanks():
    a, b = VOCAB.encode("ab")
    assert ctc_collapse([a, a, BLANK, a, b, b]) == [a, a, b]
    assert ctc_collapse([BLANK, a, a, a, BLANK, BLANK]) == [a]
    assert ctc_collapse([BLANK] * 5) == []
    assert ctc_collapse([]) == []
    assert ctc_collapse(torch.tensor([a, BLANK, b])) == [a, b]


def test_greedy_collapses_repeats_and_keeps_letters_split_by_blank():
    lp = peaked("__hh_e_ll_lo__  _wo_rld__")
    hyp = greedy_decode(lp, VOCAB)
    assert hyp.text == "hello world"
    assert VOCAB.decode(hyp.tokens) == hyp.text
    # timestep = first frame of each token's run
    assert hyp.timesteps == [2, 5, 7, 10, 11, 14, 17, 18, 20, 21, 22]
    assert hyp.score == pytest.approx(float(lp.max(-1).values.sum()), abs=1e-4)
    assert [w.word for w in hyp.words] == ["hello", "world"]


def test_greedy_trims_and_merges_spaces():
    hyp = greedy_decode(peaked(" _a_ _ b  "), VOCAB)
    assert hyp.text == "a b"
    assert len(hyp.tokens) == len(hyp.timesteps) == 3


def test_greedy_all_blank_and_empty_input():
    hyp = greedy_decode(peaked("_____"), VOCAB)
    assert (hyp.text, hyp.tokens, hyp.timesteps, hyp.words) == ("", [], [], [])
    assert hyp.score == pytest.approx(5 * math.log(0.98), abs=1e-4)
    empty = greedy_decode(torch.zeros(0, len(VOCAB)), VOCAB)
    assert (empty.text, empty.score, empty.words) == ("", 0.0, [])


def test_greedy_accepts_numpy_and_rejects_wrong_shapes():
    lp = peaked("_c_a_t_")
    assert greedy_decode(lp.numpy(), VOCAB).text == "cat"
    with pytest.raises(DecoderError, match="shape"):
        greedy_decode(torch.zeros(7, 5), VOCAB)
    with pytest.raises(DS2Error):
        greedy_decode(torch.zeros(1, 7, len(VOCAB)), VOCAB)


def test_word_timings_from_known_frames():
    #        0123456789012345
    lp = peaked("_hhi___ __yoo___", p=0.9)
    hyp = greedy_decode(lp, VOCAB, frame_seconds=0.02)
    hi, yo = hyp.words
    # "hi": first frame 1, last run of "i" ends at frame 3 -> end = 4 frames
    assert (hi.word, hi.start, hi.end) == ("hi", 0.02, 0.08)
    # "yo": "y" at 10, "o" run 11..12 -> end = 13 frames
    assert (yo.word, yo.start, yo.end) == ("yo", 0.2, 0.26)
    assert hi.confidence == pytest.approx(0.9, abs=1e-5)
    # a different frame rate scales the times
    slow = greedy_decode(lp, VOCAB, frame_seconds=0.04).words[1]
    assert (slow.start, slow.end) == (0.4, 0.52)


def test_word_confidence_is_geometric_mean_of_character_posteriors():
    lp = mixed([{"_": 0.9}, {"o": 0.8}, {"k": 0.5}, {"_": 0.9}])
    (word,) = greedy_decode(lp, VOCAB).words
    assert word.word == "ok"
    assert word.confidence == pytest.approx(math.sqrt(0.8 * 0.5), abs=1e-5)
    # the best frame of a run counts, not its first frame
    lp = mixed([{"o": 0.6}, {"o": 0.95}, {"_": 0.9}])
    assert greedy_decode(lp, VOCAB).words[0].confidence == pytest.approx(0.95, abs=1e-5)


def test_word_timings_direct_call_and_mismatch():
    lp = peaked("a_ b")
    tokens, steps = VOCAB.encode("a b"), [0, 2, 3]
    words = word_timings(tokens, steps, lp, VOCAB, 0.02)
    assert words == [
        Word("a", 0.0, 0.02, pytest.approx(0.98, abs=1e-5)),
        Word("b", 0.06, 0.08, pytest.approx(0.98, abs=1e-5)),
    ]
    with pytest.raises(DecoderError):
        word_timings(tokens, [0, 1], lp, VOCAB)


def test_flashlight_tokens_map_blank_and_space():
    tokens = flashlight_tokens(VOCAB)
    assert tokens[VOCAB.blank_id] == "<blank>"
    assert tokens[VOCAB.space_id] == "|"
    assert tokens[2:] == list(VOCAB.tokens[2:])


@pytest.mark.parametrize("frames", ["__th_e_ _c_aa_t__ _s_a_t_", "_a_", "__ll_l__", "______"])
def test_beam_equals_greedy_on_peaked_posteriors(frames):
    lp = peaked(frames)
    greedy = greedy_decode(lp, VOCAB)
    best = BeamSearchDecoder(VOCAB, beam_width=8, nbest=3)(lp)[0]
    assert best.text == greedy.text
    assert best.tokens == greedy.tokens
    assert best.timesteps == greedy.timesteps
    assert best.words == greedy.words


def test_beam_sums_alignments_where_greedy_takes_the_best_path():
    # Two frames of blank 0.4, a 0.3, b 0.29: the best path is two blanks (0.16, text ""), but
    # "a" has three alignments (a_, _a, aa) worth 0.12 + 0.12 + 0.09 = 0.33.
    lp = mixed([{"_": 0.4, "a": 0.3, "b": 0.29}] * 2)
    assert greedy_decode(lp, VOCAB).text == ""
    summed = BeamSearchDecoder(VOCAB, beam_width=8, nbest=3)(lp)
    assert summed[0].text == "a"
    assert summed[0].score == pytest.approx(math.log(0.33), abs=1e-3)
    viterbi = BeamSearchDecoder(VOCAB, beam_width=8, nbest=3, log_add=False)(lp)
    assert viterbi[0].text == ""  # flashlight's default scores one alignment: the greedy path


def test_nbest_is_sorted_distinct_and_bounded():
    torch.manual_seed(0)
    lp = torch.randn(40, len(VOCAB)).mul(2).log_softmax(-1)
    hyps = BeamSearchDecoder(VOCAB, beam_width=16, nbest=5)(lp)
    assert len(hyps) == 5
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in hyps}) == 5
    assert all(isinstance(h, Hypothesis) and VOCAB.decode(h.tokens) == h.text for h in hyps)
    # beam search never finds a worse best path score than greedy's path
    assert hyps[0].score >= greedy_decode(lp, VOCAB).score - 1e-3


ARPA = """\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-1.5\t<unk>\t0
0\t<s>\t-0.5
-1.0\t</s>\t0
-0.8\tthe\t-0.3
-1.0\tcat\t-0.3
-4.0\tkat\t-0.3

\\2-grams:
-0.1\t<s> the
-0.2\tthe cat
-3.0\tthe kat
-0.1\tcat </s>

\\end\\
"""


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    arpa = folder / "lm.arpa"
    arpa.write_text(ARPA)
    lexicon = folder / "lexicon.txt"
    assert write_lexicon(["the", "cat", "kat"], lexicon, VOCAB) == 3
    return arpa, lexicon


def ambiguous_the_cat() -> torch.Tensor:
    """Posteriors where "k" is slightly more likely than "c": acoustics say "the kat"."""
    frames = [{c: 0.95} for c in "_th_e_ _"] + [{"k": 0.5, "c": 0.45}]
    frames += [{c: 0.95} for c in "_a_t__"]
    return mixed(frames)


def test_lm_pulls_beam_toward_likely_words(lm_files):
    arpa, lexicon = lm_files
    lp = ambiguous_the_cat()
    assert greedy_decode(lp, VOCAB).text == "the kat"
    assert BeamSearchDecoder(VOCAB, beam_width=16)(lp)[0].text == "the kat"
    # the lexicon alone allows both words: acoustics still win
    assert BeamSearchDecoder(VOCAB, beam_width=16, lexicon=lexicon)(lp)[0].text == "the kat"
    with_lm = BeamSearchDecoder(VOCAB, beam_width=16, lexicon=lexicon, lm=arpa, lm_weight=1.0)
    hyps = with_lm(lp)
    assert hyps[0].text == "the cat"
    assert [h.text for h in hyps[:2]] == ["the cat", "the kat"]
    cat = hyps[0].words[1]
    # the LM's "c" keeps its acoustic probability 0.45 in the confidence
    assert cat.word == "cat"
    assert cat.confidence == pytest.approx((0.45 * 0.95 * 0.95) ** (1 / 3), abs=1e-4)
    assert (cat.start, cat.end) == (0.16, 0.26)
    # a zero LM weight gives the acoustics back the last word
    no_weight = BeamSearchDecoder(VOCAB, beam_width=16, lexicon=lexicon, lm=arpa, lm_weight=0.0)
    assert no_weight(lp)[0].text == "the kat"


def test_arpa_without_lexicon_uses_its_unigrams(lm_files):
    arpa, _ = lm_files
    hyps = BeamSearchDecoder(VOCAB, beam_width=16, lm=arpa, lm_weight=1.0)(ambiguous_the_cat())
    assert hyps[0].text == "the cat"


def test_lexicon_restricts_output_to_its_words(lm_files):
    _, lexicon = lm_files
    lp = peaked("_th_e_ _c_o_t_")  # "cot" is not in the lexicon
    best = BeamSearchDecoder(VOCAB, beam_width=16, lexicon=lexicon)(lp)[0]
    assert best.text in ("the cat", "the kat")


def test_missing_or_bad_files_raise_decoder_error(tmp_path, lm_files):
    arpa, lexicon = lm_files
    with pytest.raises(DecoderError, match="lexicon file not found"):
        BeamSearchDecoder(VOCAB, lexicon=tmp_path / "nope.txt")
    with pytest.raises(DecoderError, match="language model file not found"):
        BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=tmp_path / "nope.arpa")
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\x00\x01")
    with pytest.raises(DecoderError, match="needs a lexicon"):
        BeamSearchDecoder(VOCAB, lm=binary)
    bad_lexicon = tmp_path / "bad.txt"
    bad_lexicon.write_text("cafe\tc a f \u00e9 |\n")
    with pytest.raises(DecoderError, match="outside the vocabulary"):
        BeamSearchDecoder(VOCAB, lexicon=bad_lexicon)
    unigram_only = tmp_path / "uni.arpa"
    unigram_only.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\tthe\n\n\\end\\\n")
    with pytest.raises(DecoderError, match="could not build"):
        BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=unigram_only)


def test_kenlm_loading_noise_stays_off_the_terminal(lm_files, tmp_path, capfd):
    """KenLM's progress bar is not shown on success; on failure its words join the error."""
    from ds2 import decoding

    arpa, lexicon = lm_files
    fresh = tmp_path / "fresh.arpa"  # a file not in the LM cache: really loaded here
    fresh.write_text(arpa.read_text())
    BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=fresh, lm_weight=0.7)
    err = capfd.readouterr().err
    assert "Reading" not in err and "****" not in err
    print("stderr still works", file=sys.stderr)
    assert "stderr still works" in capfd.readouterr().err

    def noisy_failure():
        os.write(2, b"Loading went wrong at line 3\n")
        raise RuntimeError("bad ARPA")

    with pytest.raises(RuntimeError) as info, decoding._native_stderr_captured():
        noisy_failure()
    assert "Loading went wrong at line 3" in info.value.__notes__[0]
    assert capfd.readouterr().err == ""


def test_write_lexicon_format_and_skips(tmp_path):
    path = tmp_path / "sub" / "lexicon.txt"
    n = write_lexicon(["don't", "Cat", "naïve", "two words", "", "don't", "a"], path, VOCAB)
    assert n == 2
    assert path.read_text() == "don't\td o n ' t |\na\ta |\n"


def test_decoders_are_cached_and_cpu_is_chosen_without_cuda(lm_files):
    arpa, lexicon = lm_files
    a = BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=arpa)
    b = BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=arpa)
    assert a._entry is b._entry
    other_weight = BeamSearchDecoder(VOCAB, lexicon=lexicon, lm=arpa, lm_weight=0.3)
    assert other_weight._entry is not a._entry
    # a new weight builds a new search, but the loaded LM is shared
    assert other_weight._entry.decoder.lm is a._entry.decoder.lm
    if not torch.cuda.is_available():
        d = BeamSearchDecoder(VOCAB, device="cuda")
        assert (d.backend, d.device.type) == ("flashlight", "cpu")
        assert d(peaked("_h_i_"))[0].text == "hi"


def test_backend_choice_when_cuda_is_available(monkeypatch, lm_files):
    arpa, lexicon = lm_files
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(BeamSearchDecoder, "_build_cuda", lambda self: "cuda-decoder")
    gpu = BeamSearchDecoder(VOCAB, device="cuda")
    assert (gpu.backend, gpu._entry) == ("cuda", "cuda-decoder")
    # cuda_ctc_decoder has no LM or lexicon: those stay on flashlight
    assert BeamSearchDecoder(VOCAB, device="cuda", lexicon=lexicon).backend == "flashlight"
    assert BeamSearchDecoder(VOCAB, device="cuda", lm=arpa, lexicon=lexicon).backend == "flashlight"
    assert BeamSearchDecoder(VOCAB, device="cpu").backend == "flashlight"

    def broken(self):
        raise DecoderError("could not build the CUDA beam search decoder: no cuctc")

    monkeypatch.setattr(BeamSearchDecoder, "_build_cuda", broken)
    with pytest.warns(UserWarning, match="runs on the CPU"):
        fallback = BeamSearchDecoder(VOCAB, device="cuda")
    assert (fallback.backend, fallback.device.type) == ("flashlight", "cpu")


def test_cuda_beam_search_stays_off_hopper_and_newer_gpus(monkeypatch):
    # torchaudio's cuda_ctc_decoder faults with cudaErrorIllegalAddress on an H100 (sm_90) and
    # takes the CUDA context down with it: there the search runs on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(BeamSearchDecoder, "_build_cuda", lambda self: "cuda-decoder")
    asked = []

    def capability(device=None):
        asked.append(torch.device(device))
        return cc

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    for cc, backend in [((9, 0), "flashlight"), ((10, 0), "flashlight"), ((8, 6), "cuda")]:
        d = BeamSearchDecoder(VOCAB, device="cuda:0")
        assert d.backend == backend, cc
        assert d.device.type == ("cuda" if backend == "cuda" else "cpu")
        assert cuda_beam_search_works("cuda:0") is (backend == "cuda")
    assert asked[0] == torch.device("cuda:0")
    cc = (9, 0)
    assert BeamSearchDecoder(VOCAB, device="cuda")(peaked("_h_i_"))[0].text == "hi"


def test_decode_batch_matches_single_utterances():
    texts = ["__h_e_y__", "_y_o_", "_____"]
    lps = [peaked(t) for t in texts]
    batch = torch.nn.utils.rnn.pad_sequence(lps, batch_first=True)  # (3, 9, vocab)
    lengths = torch.tensor([lp.shape[0] for lp in lps])
    greedy = decode_batch(batch, lengths, VOCAB)
    assert [h.text for h in greedy] == ["hey", "yo", ""]
    # Viterbi scoring: with log_add the summed scores of these tied posteriors vary by ~1e-3
    # from call to call (which tied alternatives survive the beam is not fixed)
    beam = BeamSearchDecoder(VOCAB, beam_width=8, nbest=2, log_add=False)
    nbests = beam.decode_batch(batch, lengths)
    for lp, nbest, g in zip(lps, nbests, greedy):
        assert nbest[0].text == g.text
        # runners-up tie on these posteriors, so compare scores rather than texts
        assert [h.score for h in beam(lp)] == pytest.approx([h.score for h in nbest], abs=1e-4)
    assert beam.decode_batch(batch[:1, :0], torch.tensor([0]))[0][0].text == ""
    with pytest.raises(DecoderError, match="lengths"):
        beam.decode_batch(batch, torch.tensor([1, 2]))
    with pytest.raises(DecoderError):
        beam(np.zeros((4, 3), dtype=np.float32))


def test_beam_on_a_real_model_output(tiny_checkpoint):
    from ds2.checkpoint import load_folder
    from ds2.features import compute_features
    from tests.utils import tone

    m = load_folder(tiny_checkpoint)
    feats = compute_features(tone(1.0), m.feature_config)  # (n_bins, n_frames)
    with torch.no_grad():
        lp, n = m.model(feats[None], torch.tensor([feats.shape[1]]))  # (1, T', vocab)
    hyps = BeamSearchDecoder(m.vocab, beam_width=4, nbest=2).decode_batch(lp, n)[0]
    assert 1 <= len(hyps) <= 2
    for h in hyps:
        assert all(0.0 <= w.confidence <= 1.0 and w.start < w.end for w in h.words)
        assert all(0 <= t < int(n[0]) for t in h.timesteps)


def test_lexicon_output_never_ends_in_a_partial_word(tmp_path):
    # "hello world" cut after "wor": with a narrow beam no hypothesis reaches a word boundary by
    # the last frame, and flashlight then returns paths that end inside "world"
    lexicon = tmp_path / "lexicon.txt"
    words = {"hello", "world", "he", "hell"}
    write_lexicon(sorted(words), lexicon, VOCAB)
    lp = peaked("_h_e_l_l_o_ _w_o_r_")
    # log_add=False: a path's score is then exactly its own, which the last assertions check
    hyps = BeamSearchDecoder(VOCAB, beam_width=4, nbest=5, lexicon=lexicon, log_add=False)(lp)
    # Other complete-word readings ("hell") may follow in the n-best, in an order flashlight does
    # not fix; none may end in a partial word.
    assert hyps[0].text == "hello"
    assert all(w in words for h in hyps for w in h.text.split())
    best = hyps[0]
    assert VOCAB.decode(best.tokens) == best.text
    assert best.timesteps == [1, 3, 5, 7, 9]
    assert [w.word for w in best.words] == ["hello"]
    assert (best.words[0].start, best.words[0].end) == (0.02, 0.2)
    # the score is that of the path returned, "wor" read as blanks; the frame the decoder
    # appends for the last word boundary costs nothing
    ids = torch.tensor(frame_ids("_h_e_l_l_o_ _______"))
    assert best.score == pytest.approx(float(lp[torch.arange(len(ids)), ids].sum()), abs=1e-3)
    # a complete last word is kept
    lp = peaked("_h_e_l_l_o_ _w_o_r_l_d_")
    done = BeamSearchDecoder(VOCAB, beam_width=4, lexicon=lexicon)(lp)
    assert done[0].text == "hello world"


def test_partial_word_dropped_with_lm_scores_like_the_path_returned(lm_files):
    arpa, lexicon = lm_files
    # "the ca...": cut inside "cat". No frame follows the "a", so no path can finish "cat"
    # (a trailing blank frame could emit a low-probability "t" that the LM then rewards).
    lp = peaked("_t_h_e_ _c_a")
    # Viterbi scores (log_add=False): with summed alignments a wide beam's "the" also sums
    # alignments that a narrow beam pruned, so the two scores would differ by design
    settings = dict(
        lexicon=lexicon, lm=arpa, lm_weight=1.0, word_score=0.5, nbest=10, log_add=False
    )
    narrow = BeamSearchDecoder(VOCAB, beam_width=2, **settings)(lp)
    assert [h.text for h in narrow] == ["the"]
    # a wide beam keeps "the" followed by blanks as a hypothesis that ends on a word boundary:
    # dropping the partial word must give it the same score (no LM look-ahead for "ca" left)
    wide = {h.text: h.score for h in BeamSearchDecoder(VOCAB, beam_width=64, **settings)(lp)}
    assert narrow[0].score == pytest.approx(wide["the"], abs=1e-3)


def test_lexicon_words_only_on_untrained_model_output(tiny_checkpoint, speech_wav, tmp_path):
    """An untrained model's noise, decoded with a lexicon, still reads as lexicon words."""
    from ds2.audio import load_audio
    from ds2.checkpoint import load_folder
    from ds2.features import compute_features

    words = {"hello", "world", "this", "is", "a", "test"}
    lexicon = tmp_path / "lexicon.txt"
    write_lexicon(sorted(words), lexicon, VOCAB)
    m = load_folder(tiny_checkpoint)
    feats = compute_features(load_audio(speech_wav), m.feature_config)  # (n_bins, n_frames)
    with torch.no_grad():
        lp, n = m.model(feats[None], torch.tensor([feats.shape[1]]))  # (1, T', vocab)
    lp = lp[0, : int(n[0])]  # (T', vocab)
    for beam_width in (1, 2, 4, 8):
        hyps = BeamSearchDecoder(m.vocab, beam_width=beam_width, lexicon=lexicon)(lp)
        for h in hyps:
            assert set(h.text.split()) <= words, (beam_width, h.text)
            assert [w.word for w in h.words] == h.text.split()
            assert m.vocab.decode(h.tokens) == h.text
            assert h.score > -5000  # no charge for the appended word-boundary frame
