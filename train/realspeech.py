"""A small dev set of REAL human speech, from Debian packages (no downloads).

Sources (each skipped when its package is not installed):

- ``alsa-utils``: ``/usr/share/sounds/alsa/*.wav``, the speaker-test announcements. The file
  name is the text: ``Front_Center.wav`` -> "front center". ``Noise.wav`` is stationary noise,
  not speech, and is left out.
- ``klettres-data``: English (``en``) and British English (``en_GB``) recordings of the
  alphabet and of short phonics syllables/words, listed in each folder's ``sounds.xml``.
  Transcripts follow the usual convention for spelled letters: a spoken letter name is written
  as the letter itself (the recording of "A" is "a", of "W" is "w"), as ``normalize_text``
  would turn a written "W" into it. Syllables are their lower-case spelling ("car", "ch").
- ``ktuberling-data``: ``/usr/share/ktuberling/sounds/en/*.ogg``, single words and short
  compounds named in ``en.soundtheme``. A theme prefix is not spoken (``egypt_camel`` ->
  "camel"); joined words are split and misspelt names fixed (:data:`KTUBERLING_FIXES`).

A second, separate set comes from ``asterisk-core-sounds-en-g722`` (with
``asterisk-core-sounds-en`` for the transcripts): 16-kHz G.722 recordings of the Asterisk PBX
prompts ("Please enter your password followed by the pound key."), all read by one professional
speaker (Allison Smith), with their text in ``core-sounds-en.txt``. These are *sentences* of
real speech, the kind users bring, and they are split in two (``real_asterisk_train.jsonl``,
``real_asterisk_test.jsonl``) so some can be trained on: the test half is unseen *text* from a
*seen* speaker, never a stand-in for the dev set above. Prompts are grouped by the first
:data:`ASTERISK_GROUP_WORDS` words of their text, so the many near-identical menus ("please press
one to ...") land on one side together. Prompts with symbols spoken as words (``*``, ``#``) or
bracketed non-speech (``[beep]``) are left out. ``load_audio`` reads the raw G.722
through its ffmpeg fallback.

Every row has a ``kind`` ("phrase", "word", "syllable", "letter") so an evaluation can report
them apart: isolated letters and phonics sounds are far harder than words. Audio is converted to
16-kHz mono FLAC under ``OUT/audio``.

CLI: ``python -m train.realspeech --out data/real`` writes ``OUT/real_dev.jsonl``.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

from ds2.audio import SAMPLE_RATE, load_audio
from ds2.errors import AudioError
from ds2.text import normalize_text

from .manifest import manifest_stats, write_manifest

ALSA_DIR = "/usr/share/sounds/alsa"
ALSA_NOT_SPEECH = {"Noise"}
KLETTRES_DIR = "/usr/share/klettres"
KLETTRES_LANGS = ("en", "en_GB")
KTUBERLING_DIR = "/usr/share/ktuberling/sounds"
KTUBERLING_THEMES = ("egypt", "moon", "pizzeria", "tv", "christmas", "butterflies", "potato")
# File names that are not the spoken words: joined compounds and misspellings.
KTUBERLING_FIXES = {
    "palmtree": "palm tree",
    "fallingstar": "falling star",
    "broccolli": "broccoli",
    "brocolli": "broccoli",
    "ufo": "u f o",  # spelled out, written as letters like the klettres alphabet
    "sphynx": "sphinx",
}


ASTERISK_DIR = "/usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TEXT = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
ASTERISK_GROUP_WORDS = 3
ASTERISK_TEST_PERCENT = 20
ASTERISK_FIXES = {"umute": "unmute"}  # typos in core-sounds-en.txt; the recordings say the word


def asterisk_transcripts(path: str | os.PathLike = ASTERISK_TEXT) -> dict[str, str]:
    """``{"digits/10": "ten", "agent-pass": "please enter your password ..."}`` from the
    package's ``key: Text.`` list; entries that are not plain speech are left out."""
    import gzip

    path = Path(path)
    if not path.is_file():
        return {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines:
        key, sep, text = line.partition(":")
        key, text = key.strip(), text.strip()
        if not sep or not key or key.startswith(";") or " " in key:
            continue
        if re.search(r"[\[\]*#<>]", text):  # non-speech, or symbols read out as words
            continue
        words = " ".join(ASTERISK_FIXES.get(w, w) for w in normalize_text(text).split())
        if words:
            out[key] = words
    return out


def asterisk_group(text: str) -> str:
    return " ".join(text.split()[:ASTERISK_GROUP_WORDS])


def asterisk_is_test(text: str) -> bool:
    """The deterministic train/test side of a prompt, by a hash of its text's first words."""
    import hashlib

    digest = hashlib.sha1(asterisk_group(text).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < ASTERISK_TEST_PERCENT


def asterisk_items(root: str = ASTERISK_DIR, text_file: str = ASTERISK_TEXT) -> list[dict]:
    texts = asterisk_transcripts(text_file)
    out = []
    for key, words in sorted(texts.items()):
        path = Path(root) / f"{key}.g722"
        if not path.is_file():
            continue
        if key.startswith("letters/") and len(words) == 1:
            kind = "letter"
        else:
            kind = "word" if len(words.split()) == 1 else "phrase"
        out.append(
            {
                "src": str(path),
                "text": words,
                "speaker": "asterisk-allison",
                "kind": kind,
                "source": "asterisk-core-sounds-en-g722",
                "split": "test" if asterisk_is_test(words) else "train",
            }
        )
    return out


def alsa_items(root: str = ALSA_DIR) -> list[dict]:
    out = []
    for path in sorted(Path(root).glob("*.wav")) if os.path.isdir(root) else []:
        if path.stem in ALSA_NOT_SPEECH:
            continue
        out.append(
            {
                "src": str(path),
                "text": normalize_text(path.stem.replace("_", " ")),
                "speaker": "alsa",
                "kind": "phrase",
                "source": "alsa-utils",
            }
        )
    return out


def klettres_items(root: str = KLETTRES_DIR, langs=KLETTRES_LANGS) -> list[dict]:
    out = []
    for lang in langs:
        xml = Path(root) / lang / "sounds.xml"
        if not xml.is_file():
            continue
        text = xml.read_text(encoding="utf-8", errors="replace")
        # Sections <alphabet> and <syllables> hold <sound name=... file=...>.
        for section, kind in (("alphabet", "letter"), ("syllables", "syllable")):
            m = re.search(rf"<{section}>(.*?)</{section}>", text, re.S)
            if not m:
                continue
            for name, file in re.findall(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"', m.group(1)):
                path = Path(root) / file
                words = normalize_text(name)
                if path.is_file() and words:
                    out.append(
                        {
                            "src": str(path),
                            "text": words,
                            "speaker": f"klettres-{lang}",
                            "kind": kind,
                            "source": "klettres-data",
                        }
                    )
    return out


def ktuberling_items(root: str = KTUBERLING_DIR, lang: str = "en") -> list[dict]:
    theme = Path(root) / f"{lang}.soundtheme"
    if not theme.is_file():
        return []
    out = []
    pairs = re.findall(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"', theme.read_text())
    for name, file in pairs:
        path = Path(root) / file
        if not path.is_file():
            continue
        parts = name.split("_")
        if len(parts) > 1 and parts[0] in KTUBERLING_THEMES:
            parts = parts[1:]
        words = " ".join(KTUBERLING_FIXES.get(p, p) for p in parts)
        kind = "word" if len(words.split()) == 1 else "phrase"
        out.append(
            {
                "src": str(path),
                "text": normalize_text(words),
                "speaker": f"ktuberling-{lang}",
                "kind": kind,
                "source": "ktuberling-data",
            }
        )
    return out


def convert(items: list[dict], out: Path, verbose: bool = True) -> list[dict]:
    """16-kHz FLAC copies under ``out/audio`` of ``items`` (``src`` + row fields) -> rows."""
    import soundfile as sf

    rows, seen = [], set()
    for it in items:
        it = dict(it)
        src = Path(it.pop("src"))
        rel = src.relative_to("/usr/share") if src.is_relative_to("/usr/share") else src.name
        dest = (out / "audio" / rel).with_suffix(".flac")
        if dest in seen:
            continue
        seen.add(dest)
        try:
            audio = load_audio(src)
        except AudioError as e:
            if verbose:
                print(f"skipping {src}: {e}", file=sys.stderr)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(dest), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        rows.append(
            {
                "audio": str(dest),
                "duration": round(len(audio) / SAMPLE_RATE, 3),
                "text": it.pop("text"),
                "speaker": it.pop("speaker"),
                **it,
            }
        )
    return rows


def build(out: str | os.PathLike, verbose: bool = True) -> dict[str, list[dict]]:
    """Convert every available recording to 16-kHz FLAC and write ``OUT/real_dev.jsonl``, and,
    when the Asterisk prompts are installed, ``OUT/real_asterisk_{train,test}.jsonl``.
    Returns the rows of each manifest written, by manifest name."""
    out = Path(out)
    sources = {
        "alsa-utils": alsa_items(),
        "klettres-data": klettres_items(),
        "ktuberling-data": ktuberling_items(),
    }
    items = []
    for pkg, found in sources.items():
        if not found and verbose:
            print(f"{pkg}: not installed, skipped (apt-get install {pkg})", file=sys.stderr)
        items += found
    sets = {"real_dev": convert(items, out, verbose)}
    if not sets["real_dev"]:
        raise AudioError(
            "no real speech found: install alsa-utils, klettres-data or ktuberling-data"
        )

    prompts = convert(asterisk_items(), out, verbose)
    if prompts:
        for side in ("train", "test"):
            sets[f"real_asterisk_{side}"] = [r for r in prompts if r["split"] == side]
    elif verbose:
        print(
            "asterisk prompts: not installed, skipped "
            "(apt-get install asterisk-core-sounds-en-g722 asterisk-core-sounds-en)",
            file=sys.stderr,
        )
    for name, rows in sets.items():
        write_manifest(out / f"{name}.jsonl", rows)
    return sets


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Build a small real-speech dev set from Debian packages' recordings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="data/real", help="folder for real_dev.jsonl and audio/")
    args = p.parse_args(argv)
    for name, rows in build(args.out).items():
        s = manifest_stats(rows)
        kinds = Counter(r["kind"] for r in rows)
        print(
            f"{args.out}/{name}.jsonl: {s['utterances']} utterances, {s['hours'] * 60:.1f} min, "
            f"{s['speakers']} speakers; " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        )


if __name__ == "__main__":
    main()
