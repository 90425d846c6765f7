"""Sentences to synthesize, from Debian text packages (no downloads).

Sources (each optional; a missing package is reported and skipped):

- ``wordnet``: the quoted example sentences in ``/usr/share/wordnet/data.*`` (``wordnet-base``),
- ``fortunes``: ``/usr/share/games/fortunes/*`` (``fortunes``; ascii-art files skipped),
- ``bible``: the King James Bible through the ``bible`` tool (``bible-kjv``; its text lives in a
  compressed binary ``/usr/lib/bible.data``, so the tool is the reader).

Text is cut into sentences (then clauses) of 3 to 25 words. Every :class:`Sentence` carries the
normalised transcript ``text`` and the ``speak`` string given to a TTS engine: the original
wording with safe punctuation kept for prosody. Sentences a TTS engine would read differently
from their transcript (digits, abbreviations like "Mr.", acronyms, symbols) are dropped, so audio
and label agree. Duplicates are removed by normalised text.

Held-out text is chosen by a hash of the normalised text (:func:`text_split`), so the same
sentence always falls in the same split whatever the source order or seed.

Short utterances (:func:`short_sentences`): the sentences above are 3-25 words long, but people
say single words, short phrases, spelled letters and numbers to a recogniser, and a model trained
on sentences alone hears them badly. ``python -m train.synth --text short`` builds a corpus of
them from the training sentences' words and phrases (:data:`SHORT_KINDS`).

WordNet's definitions (:func:`wordnet_glosses`) are text for the word LM only, never spoken:
``glosses.txt`` beside the splits, with nothing of the held-out sentences in it.

CLI: ``python -m train.text_corpus --out data/text`` writes ``{train,valid,test}.txt`` and
``glosses.txt``.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ds2.text import normalize_text, number_to_words

MIN_WORDS = 3
MAX_WORDS = 25
HELDOUT_PERCENT = 4  # % of sentences kept out of training: half valid, half test

WORDNET_DIR = "/usr/share/wordnet"
FORTUNE_DIR = "/usr/share/games/fortunes"
BIBLE_RANGE = "gen1:1-rev22:21"
SKIP_FORTUNES = {"art", "ascii-art", "perl", "translate-me", "linux", "computers"}
# Read as words by TTS engines, so the transcript would not match the audio.
ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "vs",
    "etc",
    "eg",
    "ie",
    "prof",
    "gen",
    "sgt",
    "capt",
    "col",
    "lt",
    "rev",
    "no",
    "inc",
    "ltd",
    "co",
    "vol",
    "ch",
    "ft",
    "oz",
    "lb",
    "am",
    "pm",
}
_ALLOWED = re.compile(r"^[A-Za-z' ,.;:?!\"()\-]+$")
_SENT_END = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(frozen=True)
class Sentence:
    text: str  # normalised transcript
    speak: str  # what the TTS engine reads
    source: str


def text_split(text: str, heldout_percent: float = HELDOUT_PERCENT) -> str:
    """'train', 'valid' or 'test' for a normalised sentence, from a hash of its text."""
    h = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") % 10000
    if h >= heldout_percent * 100:
        return "train"
    return "valid" if h % 2 == 0 else "test"


def _clauses(chunk: str) -> list[str]:
    """Cut a sentence longer than MAX_WORDS at commas, then into even word runs."""
    if len(chunk.split()) <= MAX_WORDS:
        return [chunk]
    out, cur = [], []
    for part in re.split(r"(?<=,)\s+", chunk):
        words = part.split()
        if cur and len(cur) + len(words) > MAX_WORDS:
            out.append(" ".join(cur))
            cur = []
        cur.extend(words)
    if cur:
        out.append(" ".join(cur))
    final = []
    for c in out:
        words = c.split()
        n_pieces = -(-len(words) // MAX_WORDS)
        size = -(-len(words) // n_pieces)
        final += [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return final


def make_sentences(raw: str, source: str, known_words: set[str] | None = None) -> list[Sentence]:
    """Cut ``raw`` text into speakable sentences of MIN_WORDS..MAX_WORDS words."""
    raw = raw.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    raw = re.sub(r"\s+", " ", raw).strip()
    out = []
    for piece in _SENT_END.split(raw):
        for chunk in _clauses(piece):
            s = _speakable(chunk, known_words)
            if s is None:
                continue
            text = normalize_text(s)
            if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
                out.append(Sentence(text, s, source))
    return out


def _speakable(chunk: str, known_words: set[str] | None) -> str | None:
    chunk = chunk.strip(" -\"'()")
    if not chunk or not _ALLOWED.match(chunk):
        return None  # digits, symbols, markup: a TTS engine may read them unlike the transcript
    words = re.findall(r"[A-Za-z']+", chunk)
    for w in words:
        lw = w.lower().strip("'")
        if lw in ABBREVIATIONS:
            return None
        if len(w) > 1 and w.isupper():
            # All-caps words are acronyms (spelled out) unless they are ordinary words ("LORD").
            if known_words is None or lw not in known_words:
                return None
            chunk = re.sub(rf"\b{w}\b", w.capitalize(), chunk)
    if re.search(r"\b[A-Za-z]\.", chunk):  # initials "J. R." are read as letters
        return None
    chunk = re.sub(r"[\"()]", "", chunk)
    chunk = re.sub(r"\s*-{2,}\s*", ", ", chunk)
    return " ".join(chunk.split())


def _wordnet_glosses(root: str):
    """Each WordNet synset's gloss (its definitions, then its quoted examples), file by file."""
    for path in sorted(glob.glob(os.path.join(root, "data.*"))):
        with open(path, encoding="latin-1") as f:
            for line in f:
                if not line.startswith("  "):  # licence header
                    yield line.partition(" | ")[2]


def wordnet_texts(root: str = WORDNET_DIR) -> list[str]:
    """The quoted example sentences of every WordNet synset."""
    return [e for gloss in _wordnet_glosses(root) for e in re.findall(r'"([^"]+)"', gloss)]


def fortune_texts(root: str = FORTUNE_DIR) -> list[str]:
    """Fortune cookies with their '-- Author' attribution lines removed."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        name = os.path.basename(path)
        if "." in name or name in SKIP_FORTUNES or not os.path.isfile(path):
            continue
        with open(path, encoding="latin-1") as f:
            entries = f.read().split("\n%\n")
        for e in entries:
            lines = [ln for ln in e.splitlines() if not re.match(r"^\s*(--|\u2014)", ln)]
            # Indented lines are usually verse, code or dialogue layout: keep the text only.
            out.append(" ".join(ln.strip() for ln in lines))
    return out


def bible_texts(spec: str = BIBLE_RANGE) -> list[str]:
    """KJV verses, one per entry (``bible -f`` turns pretty-printing off: one verse a line)."""
    tool = shutil.which("bible")
    if tool is None:
        return []
    proc = subprocess.run([tool, "-f", spec], capture_output=True, text=True, check=True)
    out = []
    for line in proc.stdout.splitlines():
        ref, _, verse = line.partition(" ")
        if verse:
            out.append(verse)
    return out


SOURCES = {"wordnet": wordnet_texts, "fortunes": fortune_texts, "bible": bible_texts}


def wordnet_glosses(root: str = WORDNET_DIR, heldout_percent: float = HELDOUT_PERCENT) -> list[str]:
    """WordNet's definitions, normalised, for the word LM only (never spoken): 1.2 M words
    that double the LM's text and halve the out-of-lexicon words of the synthetic splits.

    Nothing of the held-out text gets in: a synset whose quoted example yields a held-out
    sentence gives no definition, and a definition that would itself fall in a held-out split
    (by :func:`text_split`) is dropped. Definitions are cut at ``;``, those with digits dropped,
    the rest kept at MIN_WORDS words or more, deduplicated (stable order).
    """
    seen, out = set(), []
    for gloss in _wordnet_glosses(root):
        examples = re.findall(r'"([^"]+)"', gloss)
        if any(
            text_split(s.text, heldout_percent) != "train"
            for e in examples
            for s in make_sentences(e, "wordnet")
        ):
            continue
        for part in re.sub(r'"[^"]*"', " ", gloss).split(";"):
            if re.search(r"\d", part):
                continue
            text = normalize_text(part)
            if len(text.split()) < MIN_WORDS or text in seen:
                continue
            if text_split(text, heldout_percent) == "train":
                seen.add(text)
                out.append(text)
    return out


def load_sentences(sources=tuple(SOURCES), verbose: bool = False) -> list[Sentence]:
    """All speakable sentences from ``sources``, deduplicated by normalised text (stable order)."""
    raws = {name: SOURCES[name]() for name in sources}
    known = set()
    for texts in raws.values():
        for t in texts:
            known.update(w.lower() for w in re.findall(r"\b[a-z][a-z']*\b", t))
    seen, out = set(), []
    for name, texts in raws.items():
        n0 = len(out)
        for t in texts:
            for s in make_sentences(t, name, known):
                if s.text not in seen:
                    seen.add(s.text)
                    out.append(s)
        if verbose:
            state = f"{len(out) - n0} sentences" if texts else "not installed, skipped"
            print(f"{name}: {len(texts)} passages -> {state}")
    return out


SENTENCES_NAME = "sentences.jsonl.gz"  # the whole sentence list, written beside the splits
GLOSSES_NAME = "glosses.txt"  # WordNet's definitions, LM text only (wordnet_glosses)


def write_sentences(sentences: list[Sentence], path: str | os.PathLike) -> None:
    """Save ``sentences`` (gzipped JSON lines: text, speak, source) for a host without the
    Debian text packages: ``train.synth --sentences`` reads them back in the same order."""
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for s in sentences:
            f.write(json.dumps(asdict(s)) + "\n")


def read_sentences(path: str | os.PathLike) -> list[Sentence]:
    """The sentences :func:`write_sentences` saved; ValueError names a file that is not one."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [Sentence(**json.loads(line)) for line in f if line.strip()]
    except (OSError, EOFError, json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path} is not a sentence list from train.text_corpus ({e})") from None


def split_sentences(sentences, heldout_percent: float = HELDOUT_PERCENT) -> dict[str, list]:
    """``{"train": [...], "valid": [...], "test": [...]}`` by :func:`text_split`."""
    out = {"train": [], "valid": [], "test": []}
    for s in sentences:
        out[text_split(s.text, heldout_percent)].append(s)
    return out


# Kinds of short utterance and their shares of short_sentences()'s output.
SHORT_KINDS = {"word": 0.4, "phrase": 0.25, "letters": 0.2, "number": 0.15}
SHORT_MIN_COUNT = 3  # a single word must occur this often in the sentences (no typos, rare names)


def _short_number(rng: np.random.Generator) -> str:
    if rng.random() < 0.25:  # digit by digit, as in phone numbers and codes
        return " ".join(number_to_words(int(d)) for d in rng.integers(0, 10, rng.integers(2, 6)))
    return number_to_words(int(rng.integers(0, rng.choice([21, 100, 1000, 100_000]))))


def short_sentences(
    sentences: list[Sentence], n: int, seed: int = 0, exclude=frozenset()
) -> list[Sentence]:
    """``n`` distinct short utterances (1-5 words, numbers up to 7) from ``sentences``.

    Kinds (:data:`SHORT_KINDS`): a single word (from words seen at least 3 times, weighted by the
    square root of their count, so common words lead without drowning the rest), a run of 2-4
    consecutive words of a sentence, 1-5 spelled letters ("k d p", read "K, D, P." or "K D P"),
    and a number in words (digit strings too). Texts in ``exclude`` (normalised) are never
    returned: pass an evaluation set's transcripts to keep them out of training. The result is
    deterministic given ``seed``; split it with :func:`split_sentences` like any other text.
    """
    rng = np.random.default_rng([seed, 7])
    counts = Counter(w for s in sentences for w in s.text.split())
    vocab = sorted(w for w, c in counts.items() if c >= SHORT_MIN_COUNT)
    if not vocab:
        raise ValueError(
            f"no word occurs {SHORT_MIN_COUNT} times in the sentences: too little text"
        )
    # Cumulative weights, built once: rng.choice(p=...) would rebuild them for every draw.
    # searchsorted(rng.random()) on them is exactly the draw rng.choice makes.
    word_cdf = np.sqrt([counts[w] for w in vocab]).cumsum()
    word_cdf /= word_cdf[-1]
    kinds = list(SHORT_KINDS)
    kind_cdf = np.cumsum([SHORT_KINDS[k] for k in kinds])
    kind_cdf /= kind_cdf[-1]
    seen = set(exclude)  # excluded texts count as taken
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"only {len(out)} distinct short utterances found, {n} asked")
        kind = kinds[kind_cdf.searchsorted(rng.random(), side="right")]
        if kind == "word":
            text = speak = vocab[word_cdf.searchsorted(rng.random(), side="right")]
        elif kind == "phrase":
            words = sentences[rng.integers(len(sentences))].text.split()
            size = min(int(rng.integers(2, 5)), len(words))
            start = int(rng.integers(0, len(words) - size + 1))
            text = speak = " ".join(words[start : start + size])
        elif kind == "letters":
            letters = rng.choice(list(string.ascii_uppercase), int(rng.integers(1, 6)))
            text = " ".join(letters).lower()
            speak = ", ".join(letters) + "." if rng.random() < 0.5 else " ".join(letters)
        else:
            text = speak = _short_number(rng)
        if text in seen:
            continue
        seen.add(text)
        out.append(Sentence(text, speak, f"short-{kind}"))
    return out


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Extract sentences from Debian text packages and split them by text hash.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--out",
        default="data/text",
        help=f"folder for {{train,valid,test}}.txt and {SENTENCES_NAME} (train.synth --sentences)",
    )
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    p.add_argument("--heldout-percent", type=float, default=HELDOUT_PERCENT)
    args = p.parse_args(argv)
    sentences = load_sentences(args.sources, verbose=True)
    splits = split_sentences(sentences, args.heldout_percent)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_sentences(sentences, out / SENTENCES_NAME)
    for name, items in splits.items():
        (out / f"{name}.txt").write_text("".join(s.text + "\n" for s in items))
        words = sum(len(s.text.split()) for s in items)
        print(f"{name}: {len(items)} sentences, {words} words -> {out / name}.txt")
    if "wordnet" in args.sources:
        glosses = wordnet_glosses(heldout_percent=args.heldout_percent)
        (out / GLOSSES_NAME).write_text("".join(g + "\n" for g in glosses))
        words = sum(len(g.split()) for g in glosses)
        print(f"LM-only WordNet definitions: {len(glosses)}, {words} words -> {out / GLOSSES_NAME}")


if __name__ == "__main__":
    main()
