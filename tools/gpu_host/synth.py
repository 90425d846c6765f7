"""``python -m train.synth`` with the text corpus read from .gpu_bundle/sentences.json.xz.

A GPU host without the Debian text packages builds the same corpus (same seed, split, voices
and text) as the host that made the bundle:

    tts python3 tools/gpu_host/synth.py --out data/synth --hours 100 --seed 0 --jobs 16
"""

import json
import lzma
import sys

import train.text_corpus as text_corpus

with lzma.open(".gpu_bundle/sentences.json.xz", "rt") as f:
    _SENTENCES = [text_corpus.Sentence(*row) for row in json.load(f)]
text_corpus.load_sentences = lambda *args, **kwargs: list(_SENTENCES)

from train.synth import main  # noqa: E402  (after the patch: synth imports it at call time)

sys.argv[0] = "train.synth"
main()
