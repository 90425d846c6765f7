"""LibriSpeech (or any corpus in its layout) -> ds2 manifests.

The layout, for any subset (train-clean-100, dev-clean, test-other, ...)::

    ROOT/SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac
    ROOT/SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt   # "SPEAKER-CHAPTER-UTT TEXT" lines

``ROOT`` may also be the ``LibriSpeech`` folder's parent. Durations come from the FLAC headers
(``soundfile.info``, no decoding); text is normalised with :func:`ds2.text.normalize_text`.

CLI::

    python -m train.librispeech --root DIR --subsets train-clean-100 dev-clean --out data/manifests

writes ``data/manifests/{train-clean-100,dev-clean}.jsonl`` with absolute audio paths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ds2.errors import DS2Error
from ds2.text import normalize_text

from .manifest import manifest_stats, write_manifest


class LibriSpeechError(DS2Error, ValueError):
    """The folder is not in LibriSpeech layout, or a transcript line is malformed."""


def find_subset(root: str | os.PathLike, subset: str) -> Path:
    """The folder of ``subset`` under ``root`` (or under ``root/LibriSpeech``)."""
    root = Path(root)
    for cand in (root / subset, root / "LibriSpeech" / subset):
        if cand.is_dir():
            return cand
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise LibriSpeechError(
        f"subset '{subset}' not found under '{root}'" + (f" (it holds: {found})" if found else "")
    )


def read_subset(root: str | os.PathLike, subset: str, progress: bool = True) -> list[dict]:
    """Manifest rows for one subset, sorted by utterance id.

    Raises
    ------
    LibriSpeechError
        No transcripts found, a malformed transcript line, or a transcript line whose audio is
        missing (the message names the file and line).
    """
    import soundfile as sf
    from tqdm import tqdm

    folder = find_subset(root, subset)
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise LibriSpeechError(
            f"no SPEAKER/CHAPTER/*.trans.txt files under '{folder}': not LibriSpeech layout"
        )
    rows = []
    for trans in tqdm(transcripts, desc=subset, unit="chapter", disable=not progress):
        speaker = trans.parent.parent.name
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                utt, _, text = line.strip().partition(" ")
                if not text:
                    raise LibriSpeechError(f"{trans}:{lineno}: expected 'ID TEXT', got {line!r}")
                audio = trans.parent / f"{utt}.flac"
                if not audio.is_file():
                    raise LibriSpeechError(f"{trans}:{lineno}: audio file '{audio}' is missing")
                try:
                    info = sf.info(str(audio))
                except Exception as e:
                    raise LibriSpeechError(f"cannot read '{audio}': {e}") from None
                rows.append(
                    {
                        "audio": str(audio.resolve()),
                        "duration": round(info.frames / info.samplerate, 3),
                        "text": normalize_text(text),
                        "speaker": speaker,
                        "id": utt,
                    }
                )
    rows.sort(key=lambda r: r["id"])
    return rows


def prepare(root, subsets, out, progress: bool = True) -> dict[str, Path]:
    """Write ``OUT/SUBSET.jsonl`` for each subset; returns {subset: manifest path}."""
    written = {}
    for subset in subsets:
        rows = read_subset(root, subset, progress=progress)
        # Absolute paths: the corpus rarely lives next to the manifests.
        written[subset] = write_manifest(Path(out) / f"{subset}.jsonl", rows, relative=False)
    return written


def main(argv=None) -> None:
    import argparse

    from .manifest import read_manifest

    p = argparse.ArgumentParser(
        description="Write ds2 manifests for LibriSpeech subsets.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="folder holding the subsets (or LibriSpeech/)")
    p.add_argument("--subsets", nargs="+", default=["train-clean-100", "dev-clean"])
    p.add_argument("--out", default="data/manifests", help="folder for SUBSET.jsonl")
    args = p.parse_args(argv)
    try:
        written = prepare(args.root, args.subsets, args.out)
    except DS2Error as e:
        sys.exit(f"error: {e}")
    for path in written.values():
        s = manifest_stats(read_manifest(path))
        print(f"{path}: {s['utterances']} utterances, {s['hours']:.2f} h, {s['speakers']} speakers")


if __name__ == "__main__":
    main()
