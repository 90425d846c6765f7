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

Every row has a ``kind`` ("phrase", "word", "syllable", "letter") so an evaluation can report
them apart: isolated letters and phonics sounds are far harder than words. Audio is converted to
16-kHz mono FLAC under ``OUT/audio``.

CLI: ``python -m train.realspeech --out data/real`` writes ``OUT/real_dev.jsonl``.
"""

from __future__ import annotations

import os
import re
import sys
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


def build(out: str | os.PathLike, verbose: bool = True) -> list[dict]:
    """Convert every available recording to 16-kHz FLAC and write ``OUT/real_dev.jsonl``."""
    import soundfile as sf

    out = Path(out)
    sources = {
        "alsa-utils": alsa_items(),
        "klettres-data": klettres_items(),
        "ktuberling-data": ktuberling_items(),
    }
    rows, seen = [], set()
    for pkg, items in sources.items():
        if not items and verbose:
            print(f"{pkg}: not installed, skipped (apt-get install {pkg})", file=sys.stderr)
        for it in items:
            src = Path(it.pop("src"))
            rel = src.relative_to("/usr/share") if src.is_relative_to("/usr/share") else src.name
            dest = (out / "audio" / rel).with_suffix(".flac")
            if dest in seen:
                continue
            seen.add(dest)
            try:
                audio = load_audio(src)
            except AudioError as e:
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
    if not rows:
        raise AudioError(
            "no real speech found: install alsa-utils, klettres-data or ktuberling-data"
        )
    write_manifest(out / "real_dev.jsonl", rows)
    return rows


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Build a small real-speech dev set from Debian packages' recordings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="data/real", help="folder for real_dev.jsonl and audio/")
    args = p.parse_args(argv)
    rows = build(args.out)
    s = manifest_stats(rows)
    print(
        f"{args.out}/real_dev.jsonl: {s['utterances']} utterances, {s['hours'] * 60:.1f} min, "
        f"{s['speakers']} speakers"
    )
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print("by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))


if __name__ == "__main__":
    main()
