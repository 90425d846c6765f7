"""The warp probe: shifting clips, the confidence score, and a run on a tiny model."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.utils import make_tiny_checkpoint, tone
from train.evaluate import evaluate
from train.warp_probe import confidence, main, markdown, probe, warp


def test_warp_moves_tempo_and_pitch_together():
    sr = 16000
    a = tone(1.0, 440.0)
    assert np.array_equal(warp(a, 0), a)
    up = warp(a, 1200)  # an octave up: twice as fast
    assert abs(len(up) - sr // 2) <= 2
    peak = np.argmax(np.abs(np.fft.rfft(up))) * sr / len(up)
    assert abs(peak - 880) < 5
    down = warp(a, -1200)
    assert abs(len(down) - 2 * sr) <= 2


def test_confidence_ignores_blank_frames():
    lp = torch.log(
        torch.tensor(
            [
                [0.98, 0.01, 0.01],  # blank: left out
                [0.2, 0.5, 0.3],  # top symbol 1 at 0.5
                [0.1, 0.1, 0.8],  # top symbol 2 at 0.8
            ]
        )
    )
    assert confidence(lp) == pytest.approx((math.log(0.5) + math.log(0.8)) / 2)
    assert confidence(torch.log(torch.tensor([[0.9, 0.1]]))) == float("-inf")


@pytest.fixture
def clips(tmp_path):
    rows = []
    for i, (speaker, freq) in enumerate([("a", 300), ("a", 500), ("b", 700), ("b", 900)]):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, tone(1.2 + 0.2 * i, freq), 16000)
        rows.append(
            {"audio": str(path), "duration": 1.2 + 0.2 * i, "text": "a cab", "speaker": speaker}
        )
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return make_tiny_checkpoint(tmp_path / "model"), manifest, rows


def test_probe_on_a_tiny_model(clips, tmp_path):
    model, manifest, rows = clips
    r = probe(str(model), rows, cents=[-150, 0, 0, 300])
    assert r["cents"] == ["-150", "0", "+300"] and r["group_by"] == "speaker"
    assert set(r["groups"]) == {"all", "a", "b"}
    assert [r["groups"][g]["utterances"] for g in ("all", "a", "b")] == [4, 2, 2]
    for g in r["groups"].values():
        assert sum(g["picked_shifts"].values()) == g["utterances"]
        assert 0 <= g["picked"] and all(0 <= c for c in g["cer"].values())
    # unshifted, the probe reads as the evaluation does
    ev = evaluate(str(model), {"test": rows}, modes=["greedy"], out=None)
    assert r["groups"]["all"]["cer"]["0"] == pytest.approx(
        ev["sets"]["test"]["modes"]["greedy"]["cer"]
    )
    # with one shift the pick has nothing to choose from
    one = probe(str(model), rows, cents=[150])
    assert one["groups"]["all"]["picked"] == one["groups"]["all"]["cer"]["+150"]
    table = markdown(r)
    assert table.splitlines()[0].startswith("| voice | clips | -150 cents | 0 cents | +300 cents |")
    assert table.splitlines()[2].startswith("| all | 4 | ")


def test_cli_writes_table_json_and_plot(clips, tmp_path, capsys):
    model, manifest, _ = clips
    out = tmp_path / "probe"
    main(["--model", str(model), "--manifest", str(manifest), "--cents=0,150", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| voice | clips | 0 cents | +150 cents | most confident |" in printed
    saved = json.loads((out / "probe.json").read_text())
    assert saved["utterances"] == 4
    assert (out / "probe.md").read_text() in printed
    assert (out / "probe.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        main(["--model", str(model), "--manifest", str(manifest), "--cents=up"])
    assert "--cents must be numbers separated by commas, not 'up'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="error: .*not found"):
        main(["--model", str(model), "--manifest", str(tmp_path / "nope.jsonl")])
    with pytest.raises(SystemExit, match="no utterances"):
        main(["--model", str(model), "--manifest", str(manifest), "--engines", "flite"])
