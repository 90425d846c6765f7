import json

import numpy as np
import pytest
import soundfile as sf

from ds2.audio import SAMPLE_RATE
from tests.utils import have_espeak, tone
from train.librispeech import LibriSpeechError, main, prepare, read_subset
from train.manifest import read_manifest

UTTERANCES = {  # subset -> speaker -> chapter -> [(utt, transcript as LibriSpeech writes it)]
    "train-clean-100": {
        "19": {"198": [("0000", "NORTHANGER ABBEY"), ("0001", "IT WAS 1 O'CLOCK")]},
        "26": {"495": [("0000", "HE RAN FAST")], "496": [("0003", "A DYING FIRE")]},
    },
    "dev-clean": {"84": {"121123": [("0000", "GO DO YOU HEAR")]}},
}


def _make_corpus(root, use_speech):
    for subset, speakers in UTTERANCES.items():
        for spk, chapters in speakers.items():
            for chap, utts in chapters.items():
                folder = root / "LibriSpeech" / subset / spk / chap
                folder.mkdir(parents=True)
                lines = []
                for i, (utt, text) in enumerate(utts):
                    uid = f"{spk}-{chap}-{utt}"
                    lines.append(f"{uid} {text}")
                    if use_speech:
                        from tests.utils import espeak

                        wav = espeak(text.lower(), folder / f"{uid}.wav")
                        audio, sr = sf.read(wav)
                        wav.unlink()
                    else:
                        audio, sr = tone(0.5 + 0.25 * i), SAMPLE_RATE
                    sf.write(folder / f"{uid}.flac", audio, sr, format="FLAC")
                (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("libri")
    _make_corpus(root, use_speech=have_espeak())
    return root


def test_reads_subset_in_librispeech_layout(corpus):
    rows = read_subset(corpus, "train-clean-100", progress=False)
    assert [r["id"] for r in rows] == ["19-198-0000", "19-198-0001", "26-495-0000", "26-496-0003"]
    assert rows[1]["text"] == "it was one o'clock"  # normalised with ds2.text
    assert [r["speaker"] for r in rows] == ["19", "19", "26", "26"]
    for r in rows:
        info = sf.info(r["audio"])
        assert r["duration"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
        assert r["duration"] > 0.3


def test_cli_writes_one_manifest_per_subset(corpus, tmp_path, capsys):
    out = tmp_path / "manifests"
    main(["--root", str(corpus), "--subsets", "train-clean-100", "dev-clean", "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["dev-clean.jsonl", "train-clean-100.jsonl"]
    dev = read_manifest(out / "dev-clean.jsonl")
    assert [r["text"] for r in dev] == ["go do you hear"]
    stored = json.loads((out / "dev-clean.jsonl").read_text().splitlines()[0])
    assert stored["audio"].startswith("/")  # absolute: manifests live apart from the corpus
    assert "train-clean-100.jsonl: 4 utterances" in capsys.readouterr().out


def test_errors_name_the_problem(corpus, tmp_path):
    with pytest.raises(LibriSpeechError, match="subset 'test-other' not found"):
        read_subset(corpus, "test-other")
    bad = tmp_path / "bad" / "dev-clean" / "1" / "2"
    bad.mkdir(parents=True)
    (bad / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(LibriSpeechError, match=r"1-2.trans.txt:1: audio file .* is missing"):
        prepare(tmp_path / "bad", ["dev-clean"], tmp_path / "out", progress=False)
    sf.write(bad / "1-2-0000.flac", np.zeros(1600), SAMPLE_RATE)
    (bad / "1-2.trans.txt").write_text("1-2-0000\n")
    with pytest.raises(LibriSpeechError, match="expected 'ID TEXT'"):
        read_subset(tmp_path / "bad", "dev-clean", progress=False)
    (tmp_path / "flat" / "dev-clean").mkdir(parents=True)
    with pytest.raises(LibriSpeechError, match="not LibriSpeech layout"):
        read_subset(tmp_path / "flat", "dev-clean", progress=False)
