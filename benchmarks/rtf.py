"""Real-time factor of ds2 on a 30-s clip: features, network and decoding, per decoder.

    python benchmarks/rtf.py                       # untrained ds2-small, espeak-ng speech
    python benchmarks/rtf.py --model checkpoints/ds2-small --lm exp/lm/lm.arpa \\
        --lexicon exp/lm/lexicon.txt --audio clip.wav

RTF = processing seconds / audio seconds (lower is faster; 0.02 means 50x real time). Each stage
is timed on its own and the median of ``--repeats`` runs is reported after one warm-up run.
Building a decoder (loading an LM) is a one-off cost that ds2 caches, so it is printed apart
and left out of the RTF. Without ``--lm`` a bigram ARPA is written on the fly from the
fortune-mod texts, the benchmark's stand-in for a real LM of similar size.

An untrained model's posteriors are nearly flat, the slowest case for a beam search: a trained
model's peaked posteriors let the beam prune far more.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ds2.audio import SAMPLE_RATE, load_audio  # noqa: E402
from ds2.decoding import (  # noqa: E402
    DEFAULT_BEAM_WIDTH,
    BeamSearchDecoder,
    greedy_decode,
    write_lexicon,
)
from ds2.features import FeatureConfig, compute_features  # noqa: E402
from ds2.model import DeepSpeech2, preset  # noqa: E402
from ds2.text import normalize_text  # noqa: E402
from ds2.vocab import Vocabulary  # noqa: E402

CLIP_SECONDS = 30.0  # audio length the targets are stated for
TARGETS = {"greedy": 0.02, "beam": 0.05}  # RTF targets on 2 CPU cores
FORTUNE_DIR = Path("/usr/share/games/fortunes")
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
DISCOUNT = 0.7  # absolute discount of the toy bigram LM

SPEECH = (
    "the quick brown fox jumps over the lazy dog while the children watch from the window "
    "a speech recognizer turns sound into text one frame at a time and the decoder picks "
    "the most likely words given what the network heard and what a language model expects "
    "good decoding is fast enough that nobody waits for it even on a small computer with two "
    "cores and no graphics card"
)


def make_clip(seconds: float, audio_path: str | None) -> np.ndarray:
    """A clip of exactly ``seconds``: the given file, or espeak-ng speech, looped or cut."""
    if audio_path:
        audio = load_audio(audio_path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            try:
                subprocess.run(
                    ["espeak-ng", "-s", "160", "-w", str(wav), SPEECH],
                    check=True,
                    capture_output=True,
                )
                audio = load_audio(wav)
            except (OSError, subprocess.CalledProcessError):
                print("espeak-ng unavailable: timing on noise", file=sys.stderr)
                rng = np.random.default_rng(0)
                audio = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    n = int(seconds * SAMPLE_RATE)
    reps = math.ceil(n / len(audio))
    return np.tile(audio, reps)[:n]


def fortune_sentences(limit_chars: int) -> list[list[str]]:
    """Normalised word lists from the fortune-mod text files (about ``limit_chars`` of text)."""
    sentences, total = [], 0
    for path in sorted(FORTUNE_DIR.glob("*")):
        if path.suffix or not path.is_file():
            continue
        for chunk in path.read_text(encoding="utf-8", errors="ignore").split("\n%\n"):
            try:
                words = normalize_text(chunk).split()
            except Exception:  # a normaliser may refuse odd text; skip it
                continue
            if words:
                sentences.append(words)
                total += len(chunk)
            if total >= limit_chars:
                return sentences
    return sentences


def write_bigram_arpa(sentences: list[list[str]], path: Path) -> list[str]:
    """Absolute-discount bigram LM backing off to unigrams, as ARPA. Returns its words."""
    uni, bi = Counter(), Counter()
    for words in sentences:
        seq = [BOS, *words, EOS]
        uni.update(seq[1:])
        bi.update(zip(seq[:-1], seq[1:]))
    total = sum(uni.values())
    vocab_words = sorted(uni)
    # unigrams: counts with a little mass for <unk>
    p_uni = {w: c / (total + 1) for w, c in uni.items()}
    p_uni[UNK] = 1 / (total + 1)
    followers: dict[str, list[str]] = {}
    ctx_count = Counter()
    for (h, w), c in bi.items():
        followers.setdefault(h, []).append(w)
        ctx_count[h] += c
    backoff, p_bi = {}, {}
    for h, ws in followers.items():
        c_h = ctx_count[h]
        for w in ws:
            p_bi[h, w] = (bi[h, w] - DISCOUNT) / c_h
        left = DISCOUNT * len(ws) / c_h  # mass freed by discounting
        covered = sum(p_uni.get(w, 0.0) for w in ws)
        backoff[h] = left / max(1.0 - covered, 1e-9)

    def lg(p):
        return math.log10(max(p, 1e-99))

    lines = ["\\data\\", f"ngram 1={len(p_uni) + 1}", f"ngram 2={len(p_bi)}", "", "\\1-grams:"]
    lines.append(f"-99\t{BOS}\t{lg(backoff.get(BOS, 1.0)):.6f}")
    for w in [UNK, *vocab_words]:
        bo = f"\t{lg(backoff[w]):.6f}" if w in backoff else ""
        lines.append(f"{lg(p_uni[w]):.6f}\t{w}{bo}")
    lines += ["", "\\2-grams:"]
    lines += [f"{lg(p):.6f}\t{h} {w}" for (h, w), p in p_bi.items()]
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return [w for w in vocab_words if w not in (EOS,)]


def load(model_spec: str | None):
    """(model, feature config, vocab): a given checkpoint, or an untrained ds2-small."""
    if model_spec:
        import ds2

        m = ds2.load_model(model_spec, device="cpu")
        return m.model.eval(), m.feature_config, m.vocab, m.lm_path, m.lexicon_path
    torch.manual_seed(0)
    return DeepSpeech2(preset("ds2-small")).eval(), FeatureConfig(), Vocabulary(), None, None


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``repeats`` calls after one warm-up, and the last result.

    On a shared machine the wall time includes waiting for the CPU; the process CPU time (all
    threads added up) does not, so it bounds what an idle machine would take.
    """
    result = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", help="checkpoint folder or model spec (default: untrained ds2-small)")
    p.add_argument("--audio", help="audio file to time on (looped or cut to --seconds)")
    p.add_argument("--seconds", type=float, default=CLIP_SECONDS, help="clip length")
    p.add_argument("--lm", help="KenLM ARPA/binary (default: the model's, or a toy bigram LM)")
    p.add_argument("--lexicon", help="lexicon for --lm (default: built from the LM's words)")
    p.add_argument("--lm-chars", type=int, default=1_000_000, help="text for the toy LM")
    p.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH)
    p.add_argument("--lm-weight", type=float, default=0.8)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, feature_cfg, vocab, model_lm, model_lexicon = load(args.model)
    audio = make_clip(args.seconds, args.audio)
    seconds = len(audio) / SAMPLE_RATE

    t_feat, c_feat, feats = timed(lambda: compute_features(audio, feature_cfg), args.repeats)
    lengths = torch.tensor([feats.shape[1]])

    def network():
        with torch.inference_mode():
            return model(feats[None], lengths)  # (1, n_bins, n_frames) -> (1, T', vocab)

    t_net, c_net, (log_probs, out_lengths) = timed(network, args.repeats)
    lp = log_probs[0, : int(out_lengths[0])]  # (T', vocab)

    tmp = tempfile.TemporaryDirectory()
    lm, lexicon = args.lm or model_lm, args.lexicon or (None if args.lm else model_lexicon)
    t0 = time.perf_counter()
    if lm is None:
        sentences = fortune_sentences(args.lm_chars)
        lm = Path(tmp.name) / "lm.arpa"
        words = write_bigram_arpa(sentences, lm)
        lexicon = Path(tmp.name) / "lexicon.txt"
        n_words = write_lexicon(words, lexicon, vocab)
        lm_note = f"toy bigram LM, {n_words} words from {len(sentences)} fortunes"
    else:
        lm_note = f"LM {lm}"
    t_lm_write = time.perf_counter() - t0

    t0 = time.perf_counter()
    beam = BeamSearchDecoder(vocab, beam_width=args.beam_width, nbest=1)
    t_build_beam = time.perf_counter() - t0
    t0 = time.perf_counter()
    beam_lm = BeamSearchDecoder(
        vocab,
        beam_width=args.beam_width,
        nbest=1,
        lexicon=lexicon,
        lm=lm,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
    )
    t_build_lm = time.perf_counter() - t0

    rows = []
    for name, fn, target in [
        ("greedy", lambda: greedy_decode(lp, vocab), TARGETS["greedy"]),
        (f"beam {args.beam_width}", lambda: beam(lp)[0], TARGETS["beam"]),
        (f"beam {args.beam_width} + LM", lambda: beam_lm(lp)[0], None),
    ]:
        t_dec, c_dec, hyp = timed(fn, args.repeats)
        rows.append((name, (t_feat, t_net, t_dec), (c_feat, c_net, c_dec), target, hyp.text))

    print(
        f"\nclip {seconds:.1f} s, {lp.shape[0]} output frames, model "
        f"{args.model or 'untrained ds2-small'}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}"
    )
    print(
        f"one-off: {lm_note} written in {t_lm_write:.2f} s; beam decoder built in "
        f"{t_build_beam:.3f} s, beam + LM decoder in {t_build_lm:.2f} s (cached, not in RTF)\n"
    )
    head = f"{'decoder':<16}{'features':>10}{'network':>10}{'decoding':>10}{'total':>10}"
    for title, k in (("wall-clock RTF", 1), ("CPU-time RTF (all threads added)", 2)):
        print(f"{title}:")
        print(head + f"{'target':>9}{'dec ok':>8}{'total ok':>10}")
        print("-" * (len(head) + 27))
        for row in rows:
            name, target = row[0], row[3]
            parts = [t / seconds for t in row[k]]
            rtf = [*parts, sum(parts)]
            if target is None:
                checks = f"{'-':>9}{'-':>8}{'-':>10}"
            else:
                dec_ok, total_ok = (("yes" if r <= target else "NO") for r in (rtf[2], rtf[3]))
                checks = f"{target:>9.3f}{dec_ok:>8}{total_ok:>10}"
            print(f"{name:<16}" + "".join(f"{r:>10.4f}" for r in rtf) + checks)
        print()
    print("RTF = processing seconds / audio seconds")
    for row in rows:
        print(f"{row[0]:<16} {row[4][:70]!r}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
