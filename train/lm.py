"""Word n-gram language model for the beam search: modified Kneser-Ney, written as ARPA.

    python -m train.lm --text data/train.jsonl extra.txt --order 3 --out exp/lm \\
        --prune 0 1 1 --max-vocab 50000 --dev data/valid.jsonl

writes ``exp/lm/lm.arpa`` (loadable by KenLM, so by flashlight-text and torchaudio's
``ctc_decoder``), ``exp/lm/lexicon.txt`` (``word<TAB>c h a r s |``, one line per LM word) and
``exp/lm/lm.json`` (counts, discounts, size, and the perplexity on ``--dev`` text). With
``--binary`` (and ``--quantize 8``) it also writes ``exp/lm/lm.bin``, a KenLM trie, when
tools/build_kenlm.sh has built KenLM's ``build_binary``.

The estimate follows Chen & Goodman (1998) as KenLM's ``lmplz`` does it:

* **Adjusted counts.** The highest order uses raw counts. A lower-order n-gram uses its
  continuation count, the number of distinct words seen before it, except an n-gram that starts
  with ``<s>`` (nothing can precede it), which keeps its raw count.
* **Discounts** per order from the count-of-counts ``n_k`` of the adjusted counts:
  ``Y = n1 / (n1 + 2 n2)``, ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``, ``D3+ = 3 - 4Y n4/n3``.
* **Interpolation.** ``p(w | h) = (a(h w) - D(a)) / a(h .) + gamma(h) p(w | h')`` where ``h'``
  drops the oldest word and ``gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / a(h .)``; the
  unigrams interpolate with the uniform distribution over the vocabulary (``</s>`` and
  ``<unk>`` included, ``<s>`` excluded: it is never predicted).
* **Pruning** (``--prune``) drops n-grams whose adjusted count is at most a threshold per order,
  but always keeps every prefix and suffix of a kept n-gram, as an ARPA file needs. The listed
  probabilities keep their interpolated values and each context's backoff weight is computed
  so that its distribution sums to one exactly:
  ``bow(h) = (1 - sum_listed p(w | h)) / (1 - sum_listed p(w | h'))``. Unpruned, this equals
  ``gamma(h)``.

Only training text goes in: never build the LM from the text you test on.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ds2.errors import DS2Error
from ds2.text import normalize_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = (BOS, EOS, UNK)
LOG10_ZERO = -99.0  # ARPA's log10 "probability" of <s>, which is never predicted
ARPA_NAME = "lm.arpa"
LEXICON_NAME = "lexicon.txt"
STATS_NAME = "lm.json"
# Discounts when a tiny corpus has no count-of-counts to estimate them from (lmplz would
# refuse to build; a toy LM in a test or a demo is still useful).
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)

NGram = tuple[str, ...]


class LMError(DS2Error, ValueError):
    """The LM cannot be built from the given text or options."""


# ------------------------------------------------------------------------------------------
# Text


def read_sentences(paths: Iterable[str | Path]) -> Iterator[str]:
    """Normalised sentences from manifests (``.jsonl``, their ``"text"``) and text files.

    A text file gives one sentence per non-empty line, normalised with
    :func:`ds2.text.normalize_text`; manifest text is normalised again (a no-op for text that
    already is) so that hand-written manifests are safe too.
    """
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise LMError(f"LM text source '{path}' does not exist")
        manifest = path.suffix in (".jsonl", ".json")
        with path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                if manifest:
                    try:
                        text = json.loads(line)["text"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise LMError(
                            f'{path}:{lineno} is not a manifest row with a "text" field'
                        ) from None
                else:
                    text = line
                text = normalize_text(str(text))
                if text:
                    yield text


# ------------------------------------------------------------------------------------------
# Estimation


@dataclass
class NGramLM:
    """A backoff n-gram model: what an ARPA file holds.

    ``probs[n - 1][ngram]`` and ``backoffs[n - 1][ngram]`` are natural probabilities (not logs)
    of the n-grams of order ``n``; an n-gram absent from ``backoffs`` has backoff weight 1.
    """

    order: int
    probs: list[dict[NGram, float]]
    backoffs: list[dict[NGram, float]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def vocab(self) -> list[str]:
        """Every unigram, specials included, in file order."""
        return [g[0] for g in self.probs[0]]

    def words(self) -> list[str]:
        """The real words (no ``<s>``, ``</s>``, ``<unk>``), sorted: the lexicon's entries."""
        return sorted(w for w in self.vocab if w not in SPECIAL)

    def prob(self, word: str, context: Iterable[str] = ()) -> float:
        """p(word | context) by the ARPA backoff rule; ``context`` is oldest word first.

        A word outside the vocabulary is scored as ``<unk>``.
        """
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        if (word,) not in self.probs[0]:
            word = UNK
        context = tuple(w if (w,) in self.probs[0] else UNK for w in context)
        weight = 1.0
        while True:
            g = (*context, word)
            p = self.probs[len(g) - 1].get(g)
            if p is not None:
                return weight * p
            weight *= self.backoffs[len(context) - 1].get(context, 1.0)
            context = context[1:]

    def sentence_log10(self, sentence: str) -> tuple[float, int, int]:
        """log10 p(sentence </s> | <s>), the number of predicted tokens, and the OOV count."""
        words = sentence.split()
        hist = [BOS]
        total, oov = 0.0, 0
        for w in [*words, EOS]:
            if (w,) not in self.probs[0]:
                oov += 1
            total += math.log10(self.prob(w, hist))
            hist.append(w)
        return total, len(words) + 1, oov

    def perplexity(self, sentences: Iterable[str]) -> dict:
        """Per-token perplexity (``</s>`` counted, OOVs scored as ``<unk>``) and OOV rate."""
        log10, tokens, oov, n_words = 0.0, 0, 0, 0
        for s in sentences:
            lp, n, o = self.sentence_log10(s)
            log10, tokens, oov, n_words = log10 + lp, tokens + n, oov + o, n_words + n - 1
        if tokens == 0:
            raise LMError("no sentences to compute a perplexity on")
        return {
            "perplexity": round(10 ** (-log10 / tokens), 3),
            "oov_rate": round(oov / max(n_words, 1), 5),
            "sentences": tokens - n_words,
            "words": n_words,
        }


def count_ngrams(
    sentences: Iterable[str], order: int, max_vocab: int | None = None
) -> tuple[list[Counter], dict]:
    """Raw counts of all n-grams (orders 1..``order``) of ``<s> words </s>`` sentences.

    With ``max_vocab`` only the most frequent words (ties broken alphabetically) stay; the rest
    become ``<unk>``. Returns ``(counts, info)``, ``counts[n - 1]`` a Counter of n-gram tuples.
    """
    sentences = [s.split() for s in sentences]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise LMError("no text to build the LM from (all sources were empty)")
    word_freq = Counter(w for s in sentences for w in s)
    dropped = 0
    if max_vocab is not None and len(word_freq) > max_vocab:
        keep = sorted(word_freq.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
        keep = {w for w, _ in keep}
        dropped = sum(c for w, c in word_freq.items() if w not in keep)
        sentences = [[w if w in keep else UNK for w in s] for s in sentences]
    counts = [Counter() for _ in range(order)]
    for s in tqdm(sentences, desc="counting n-grams", unit="sent", mininterval=1.0, leave=False):
        toks = [BOS, *s, EOS]
        for n in range(1, order + 1):
            c = counts[n - 1]
            for i in range(len(toks) - n + 1):
                c[tuple(toks[i : i + n])] += 1
    info = {
        "sentences": len(sentences),
        "words": sum(word_freq.values()),
        "word_types": len(word_freq),
        "words_mapped_to_unk": dropped,
    }
    return counts, info


def adjusted_counts(counts: list[Counter]) -> list[dict[NGram, int]]:
    """Kneser-Ney adjusted counts: raw at the top order and for ``<s>``-initial n-grams,
    otherwise the number of distinct words seen before the n-gram."""
    order = len(counts)
    adjusted: list[dict[NGram, int]] = [dict() for _ in range(order)]
    adjusted[-1] = dict(counts[-1])
    for n in range(order - 1, 0, -1):
        cont: Counter = Counter()
        for g in counts[n]:  # n-grams of order n + 1
            cont[g[1:]] += 1
        adj = adjusted[n - 1]
        for g, c in counts[n - 1].items():
            adj[g] = c if g[0] == BOS else cont[g]
    return adjusted


def estimate_discounts(adjusted: dict[NGram, int]) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the count-of-counts of one order's adjusted counts."""
    coc = Counter(c for g, c in adjusted.items() if c <= 4 and g != (BOS,))
    n1, n2, n3, n4 = (coc[k] for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    # Each discount must leave a positive mass to the n-grams it applies to.
    if not all(0 < dk < k for k, dk in zip((1, 2, 3), d)):
        return FALLBACK_DISCOUNTS
    return d


def _kept_ngrams(adjusted: list[dict[NGram, int]], prune: list[int]) -> list[set[NGram]]:
    """N-grams that survive pruning, closed under taking prefixes and suffixes."""
    order = len(adjusted)
    kept: list[set[NGram]] = [set() for _ in range(order)]
    for n in range(order, 0, -1):
        t = prune[n - 1] if n > 1 else 0  # unigrams define the vocabulary: never pruned
        k = {g for g, a in adjusted[n - 1].items() if a > t}
        if n < order:
            for g in kept[n]:
                k.add(g[:-1])
                k.add(g[1:])
        kept[n - 1] = k
    return kept


def build_lm(
    sentences: Iterable[str],
    order: int = 3,
    prune: Iterable[int] | None = None,
    max_vocab: int | None = None,
) -> NGramLM:
    """Estimate an interpolated modified Kneser-Ney LM (see the module docstring).

    prune : thresholds per order (``len == order``; the unigram entry is ignored): n-grams of
        order n with adjusted count <= prune[n - 1] are dropped. ``None`` keeps everything.
    """
    if not 1 <= order <= 6:
        raise LMError(f"--order must be between 1 and 6, got {order}")
    prune = list(prune) if prune is not None else [0] * order
    if len(prune) == 1 and order > 1:
        prune = [0] + prune * (order - 1)
    if len(prune) != order or any(t < 0 for t in prune):
        raise LMError(f"--prune needs {order} non-negative thresholds (one per order), got {prune}")
    if max_vocab is not None and max_vocab < 1:
        raise LMError(f"--max-vocab must be positive, got {max_vocab}")

    counts, info = count_ngrams(sentences, order, max_vocab)
    adjusted = adjusted_counts(counts)
    discounts = [estimate_discounts(a) for a in adjusted]

    # Per order: the discounted mass u of each n-gram and the leftover gamma of each context.
    u: list[dict[NGram, float]] = []
    gamma: list[dict[NGram, float]] = []
    for n in range(1, order + 1):
        d1, d2, d3 = discounts[n - 1]
        total: dict[NGram, float] = defaultdict(float)
        left: dict[NGram, float] = defaultdict(float)
        un: dict[NGram, float] = {}
        for g, a in adjusted[n - 1].items():
            if g == (BOS,):
                continue
            d = d1 if a == 1 else d2 if a == 2 else d3
            total[g[:-1]] += a
            left[g[:-1]] += d
            un[g] = a - d
        u.append({g: v / total[g[:-1]] for g, v in un.items()})
        gamma.append({h: left[h] / total[h] for h in total})

    kept = _kept_ngrams(adjusted, prune)
    kept[0] |= {(EOS,), (UNK,), (BOS,)}

    # Unigrams: interpolate with the uniform distribution over everything predictable.
    probs: list[dict[NGram, float]] = [dict() for _ in range(order)]
    predictable = sorted(g for g in kept[0] if g != (BOS,))
    uniform = gamma[0][()] / len(predictable)
    probs[0][(BOS,)] = 0.0
    for g in predictable:
        probs[0][g] = u[0].get(g, 0.0) + uniform

    for n in range(2, order + 1):
        lower = probs[n - 2]
        gam = gamma[n - 1]
        un = u[n - 1]
        pn = probs[n - 1]
        # Sorted so that the ARPA file (and its md5) is the same on every run.
        for g in sorted(kept[n - 1]):
            pn[g] = un[g] + gam[g[:-1]] * lower[g[1:]]

    # Backoff weights that renormalise each context over its listed and backed-off words.
    backoffs: list[dict[NGram, float]] = [dict() for _ in range(order)]
    for n in range(2, order + 1):
        listed: dict[NGram, float] = defaultdict(float)
        listed_lower: dict[NGram, float] = defaultdict(float)
        lower = probs[n - 2]
        for g, p in probs[n - 1].items():
            listed[g[:-1]] += p
            listed_lower[g[:-1]] += lower[g[1:]]
        for h in listed:
            num = max(1.0 - listed[h], 0.0)
            den = max(1.0 - listed_lower[h], 1e-12)
            backoffs[n - 2][h] = num / den if num > 0 else 1e-12

    info.update(
        {
            "order": order,
            "prune": prune,
            "max_vocab": max_vocab,
            "vocab_size": len(probs[0]),
            "ngrams_before_pruning": [len(a) for a in adjusted],
            "ngrams": [len(p) for p in probs],
            "discounts": [[round(d, 4) for d in ds] for ds in discounts],
        }
    )
    return NGramLM(order, probs, backoffs, discounts, info)


# ------------------------------------------------------------------------------------------
# Files


def _log10(p: float) -> float:
    return math.log10(p) if p > 0 else LOG10_ZERO


def write_arpa(lm: NGramLM, path: str | Path) -> Path:
    """Write ``lm`` in ARPA format (log10 probabilities and backoff weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n, p in enumerate(lm.probs, 1):
            f.write(f"ngram {n}={len(p)}\n")
        for n, p in enumerate(lm.probs, 1):
            f.write(f"\n\\{n}-grams:\n")
            bows = lm.backoffs[n - 1] if n < lm.order else {}
            for g, prob in p.items():
                line = f"{_log10(prob):.6f}\t{' '.join(g)}"
                if n < lm.order and g[-1] != EOS:
                    line += f"\t{_log10(bows.get(g, 1.0)):.6f}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    tmp.replace(path)
    return path


def read_arpa(path: str | Path) -> NGramLM:
    """Read an ARPA file back into an :class:`NGramLM` (for checks and perplexity)."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"ARPA file '{path}' does not exist")
    probs: list[dict[NGram, float]] = []
    backoffs: list[dict[NGram, float]] = []
    n = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:].split("-")[0])
                probs.append({})
                backoffs.append({})
                continue
            if n == 0:
                continue
            parts = line.split()
            g = tuple(parts[1 : 1 + n])
            if len(g) != n:
                raise LMError(f"{path}: malformed {n}-gram line {line!r}")
            lp = float(parts[0])
            probs[n - 1][g] = 0.0 if lp <= LOG10_ZERO else 10**lp
            if len(parts) > n + 1:
                backoffs[n - 1][g] = 10 ** float(parts[n + 1])
    if not probs:
        raise LMError(f"{path} is not an ARPA file (no n-gram sections)")
    return NGramLM(len(probs), probs, backoffs)


def write_lexicon(lm: NGramLM, path: str | Path, vocab=None) -> int:
    """Write the lexicon of ``lm``'s words (``word<TAB>c h a r s |``); returns the word count.

    Uses :func:`ds2.decoding.write_lexicon`, the format the beam search reads; words with a
    character the acoustic model cannot emit are left out.
    """
    from ds2.decoding import write_lexicon as _write

    n = _write(lm.words(), path, vocab)
    if n == 0:
        raise LMError("no word of the LM can be spelled with the model's vocabulary")
    return n


def build_binary(arpa: Path, out: Path, quantize: int | None = None) -> Path | None:
    """KenLM trie binary of ``arpa`` with ``build_binary`` if it is on PATH or in tools/kenlm
    (built by tools/build_kenlm.sh).

    ``quantize``: store probabilities and backoffs in that many bits (KenLM's ``-q``/``-b``,
    2 to 25) instead of exactly. 8 bits makes a trie about a third of the exact one's size; on
    the shipped model's validation set it decodes with the same WER as the ARPA file.

    Returns None when KenLM's tools are not built (the ARPA file works everywhere).
    """
    import shutil
    import subprocess

    exe = shutil.which("build_binary")
    local = Path(__file__).resolve().parents[1] / "tools/kenlm/build/bin/build_binary"
    if exe is None and local.is_file():
        exe = str(local)
    if exe is None:
        return None
    # exact, the trie is about a third of the ARPA's size; 8-bit quantised, about a sixth.
    # -a 22: lossless pointer compression, a fifth off the quantised trie.
    bits = ["-q", str(quantize), "-b", str(quantize)] if quantize else []
    cmd = [exe, "-s", *bits, "-a", "22", "trie", str(arpa), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise LMError(f"build_binary failed on {arpa}: {r.stderr.strip()[-500:]}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--text", nargs="+", required=True, help="training manifests (.jsonl) or .txt")
    ap.add_argument("--order", type=int, default=3, help="n-gram order")
    ap.add_argument("--out", required=True, help="folder for lm.arpa, lexicon.txt, lm.json")
    ap.add_argument(
        "--prune",
        type=int,
        nargs="+",
        default=None,
        help="adjusted-count threshold per order (e.g. 0 1 1 drops bigram and trigram "
        "singletons); one number applies to every order above 1",
    )
    ap.add_argument("--max-vocab", type=int, default=None, help="keep the N most frequent words")
    ap.add_argument("--dev", nargs="*", default=[], help="held-out text to report perplexity on")
    ap.add_argument(
        "--binary", action="store_true", help="also write lm.bin if KenLM's build_binary is built"
    )
    ap.add_argument(
        "--quantize",
        type=int,
        default=None,
        metavar="BITS",
        help="with --binary: store the binary's probabilities and backoffs in BITS bits (2-25; "
        "8 is a sixth of the ARPA's size) instead of exactly",
    )
    args = ap.parse_args(argv)
    if args.quantize is not None and not args.binary:
        ap.error("--quantize applies to the binary LM: add --binary")
    if args.quantize is not None and not 2 <= args.quantize <= 25:
        ap.error(f"--quantize must be 2 to 25 bits, not {args.quantize}")

    t0 = time.time()
    out = Path(args.out)
    lm = build_lm(read_sentences(args.text), args.order, args.prune, args.max_vocab)
    arpa = write_arpa(lm, out / ARPA_NAME)
    n_lexicon = write_lexicon(lm, out / LEXICON_NAME)
    stats = {
        **lm.stats,
        "sources": [str(p) for p in args.text],
        "arpa_bytes": arpa.stat().st_size,
        "lexicon_words": n_lexicon,
        "seconds": round(time.time() - t0, 1),
    }
    if args.dev:
        stats["dev"] = lm.perplexity(read_sentences(args.dev))
        stats["dev_sources"] = [str(p) for p in args.dev]
    if args.binary:
        binary = build_binary(arpa, out / "lm.bin", args.quantize)
        stats["binary"] = binary.name if binary else None
        if binary:
            stats["binary_bytes"] = binary.stat().st_size
            stats["binary_quantize"] = args.quantize
        if binary is None:
            print("build_binary not found (see tools/build_kenlm.sh); kept the ARPA file only")
    (out / STATS_NAME).write_text(json.dumps(stats, indent=2) + "\n")
    print(
        f"{arpa}: order {lm.order}, {stats['vocab_size']} words, n-grams {stats['ngrams']}, "
        f"{stats['arpa_bytes'] / 1e6:.2f} MB in {stats['seconds']} s"
    )
    if "dev" in stats:
        d = stats["dev"]
        print(f"dev perplexity {d['perplexity']}, OOV rate {d['oov_rate']:.2%}")


if __name__ == "__main__":
    main()
