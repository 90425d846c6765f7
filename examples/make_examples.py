"""Regenerate the example clips of the app: real sentences read by six synthetic voices.

The sentences are Harvard sentences (IEEE 1969), phonetically balanced and long used to test
speech systems. Three speech synthesizers from Debian read them (espeak-ng, flite, festival)
in different voices; every clip is trimmed to 0.25 s of silence at each end and written as
16-kHz mono 16-bit FLAC beside ``examples.json``, which lists ``file``, ``text`` and ``voice``.

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts
    python examples/make_examples.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ds2.audio import SAMPLE_RATE, load_audio  # noqa: E402

MARGIN = 0.25  # seconds of silence kept before the first and after the last sound
FLOOR_DB = -40.0  # a 10-ms frame this far below the loudest one counts as silence

# (file stem, synthesizer, voice, text)
CLIPS = [
    (
        "birch_canoe",
        "espeak-ng",
        "en-us",
        "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    ),
    (
        "depth_of_a_well",
        "espeak-ng",
        "en-gb+f3",
        "It's easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    ),
    (
        "round_bowls",
        "flite",
        "slt",
        "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    ),
    (
        "parked_truck",
        "flite",
        "rms",
        "The box was thrown beside the parked truck. Four hours of steady work faced us.",
    ),
    (
        "stockings",
        "festival",
        "kal_diphone",
        "A large size in stockings is hard to sell. The boy was there when the sun rose.",
    ),
    (
        "salt_breeze",
        "festival",
        "cmu_us_slt_arctic_hts",
        "The salt breeze came across from the sea. The girl at the booth sold fifty bonds.",
    ),
]


def synthesize(tool: str, voice: str, text: str, wav: Path) -> None:
    """Run one synthesizer, writing a wav at its own rate."""
    if tool == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text]
        subprocess.run(cmd, check=True, capture_output=True)
    elif tool == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    elif tool == "festival":
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text)
        cmd = ["text2wave", "-eval", f"(voice_{voice})", f.name, "-o", str(wav)]
        subprocess.run(cmd, check=True, capture_output=True)
        Path(f.name).unlink()
    else:
        raise ValueError(f"unknown synthesizer {tool!r}")


def trim(audio: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``margin`` seconds at each end."""
    hop = SAMPLE_RATE // 100  # 10-ms frames
    n = len(audio) // hop
    energy = (audio[: n * hop].reshape(n, hop) ** 2).mean(axis=1)  # (frames, hop) -> (frames,)
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() + FLOOR_DB)
    keep = int(margin * SAMPLE_RATE)
    start = max(0, loud[0] * hop - keep)
    stop = min(len(audio), (loud[-1] + 1) * hop + keep)
    return audio[start:stop]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    import soundfile as sf

    missing = sorted(
        {t if t != "festival" else "text2wave" for _, t, _, _ in CLIPS}
        - {t for t in ("espeak-ng", "flite", "text2wave") if shutil.which(t)}
    )
    if missing:
        sys.exit(f"missing synthesizers: {', '.join(missing)} (see the apt-get line in --help)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stem, tool, voice, text in CLIPS:
            raw = Path(tmp) / f"{stem}.wav"
            synthesize(tool, voice, text, raw)
            audio = trim(load_audio(raw))
            audio = 0.9 * audio / np.abs(audio).max()  # the same peak level for every voice
            out = args.out_dir / f"{stem}.flac"
            sf.write(str(out), audio, SAMPLE_RATE, subtype="PCM_16")
            rows.append({"file": out.name, "text": text, "voice": f"{tool} {voice}"})
            print(f"{out.name}: {len(audio) / SAMPLE_RATE:.1f} s, {out.stat().st_size // 1024} KB")
    (args.out_dir / "examples.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
