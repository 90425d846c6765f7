"""Checkpoint averaging: the mean of the weights, a loadable folder, clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import ds2
from ds2.errors import CheckpointError
from tests.utils import make_tiny_checkpoint
from train.average import average_checkpoints, main, newest_checkpoints


def _run(tmp_path, steps=(100, 200, 300)):
    ckpts = tmp_path / "exp" / "checkpoints"
    folders = [
        make_tiny_checkpoint(ckpts / f"step-{s}", seed=i, steps=s) for i, s in enumerate(steps)
    ]
    return folders


def test_average_is_the_mean_and_loads(tmp_path):
    folders = _run(tmp_path)
    out = average_checkpoints(folders[::-1], tmp_path / "avg")  # order given does not matter
    states = [load_file(str(f / "model.safetensors")) for f in folders]
    avg = load_file(str(out / "model.safetensors"))
    assert avg.keys() == states[0].keys()
    for k, v in avg.items():
        if v.is_floating_point():
            want = sum(s[k].double() for s in states) / 3
            torch.testing.assert_close(v.double(), want, rtol=0, atol=1e-6)
            assert not torch.equal(v, states[-1][k]) or torch.equal(states[0][k], states[-1][k])
        else:  # integer buffers come from the newest checkpoint
            assert torch.equal(v, states[-1][k])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["averaged_steps"] == [100, 200, 300]
    assert cfg["training"]["steps"] == 300
    loaded = ds2.load_model(str(out))
    x = torch.randn(1, 201, 50)
    log_probs, lengths = loaded.model(x, torch.tensor([50]))
    assert torch.isfinite(log_probs).all() and lengths.tolist()[0] > 0


def test_newest_checkpoints_picks_distinct_steps(tmp_path):
    folders = _run(tmp_path, steps=(100, 200, 300, 400))
    # `last` at the same step as step-400 counts once; at a newer step it counts as the newest.
    make_tiny_checkpoint(tmp_path / "exp" / "checkpoints" / "last", seed=9, steps=400)
    assert [p.name for p in newest_checkpoints(tmp_path / "exp", 2)] == ["step-300", "step-400"]
    make_tiny_checkpoint(tmp_path / "exp" / "checkpoints" / "last", seed=9, steps=450)
    got = newest_checkpoints(tmp_path / "exp", 3)
    assert [p.name for p in got] == ["step-300", "step-400", "last"]
    with pytest.raises(CheckpointError, match="fewer than --last 9"):
        newest_checkpoints(tmp_path / "exp", 9)
    assert folders  # the step folders exist


def test_mismatched_models_are_refused(tmp_path):
    a = make_tiny_checkpoint(tmp_path / "a", steps=1)
    b = tmp_path / "b"
    from ds2.checkpoint import save_pretrained
    from ds2.features import FeatureConfig
    from ds2.model import DeepSpeech2
    from ds2.vocab import Vocabulary
    from tests.utils import tiny_config

    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, rnn_hidden=16)
    save_pretrained(b, DeepSpeech2(cfg), FeatureConfig(), Vocabulary(), training={"steps": 2})
    with pytest.raises(CheckpointError, match="another model"):
        average_checkpoints([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path, capsys):
    _run(tmp_path)
    main(["--exp", str(tmp_path / "exp"), "--last", "2", "--out", str(tmp_path / "avg")])
    assert "averaged 2 checkpoints (steps 200, 300)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="give checkpoint folders"):
        main(["--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="not a ds2 checkpoint"):
        main([str(tmp_path), "--out", str(tmp_path / "y")])


def _round(folder, step, seed, parent):
    """A checkpoint of a fine-tuning round: its own seed and starting model."""
    return make_tiny_checkpoint(
        folder, seed=step, steps=step, config={"seed": seed}, init_from={"spec": parent}
    )


def _round_after(folder, step, seed, first, first_step, first_parent):
    """A round started from checkpoint ``first`` (itself at ``first_step``, from
    ``first_parent``): it records that round among its earlier stages."""
    return make_tiny_checkpoint(
        folder,
        seed=5,
        steps=step,
        config={"seed": seed},
        init_from={"spec": str(first)},
        earlier_stages=[{"steps": first_step, "init_from": first_parent}],
    )


def test_checkpoints_of_two_runs_need_mixed(tmp_path, capsys):
    """A mix of runs is refused by default (the kept record would describe only the newest);
    with --mixed every source is listed."""
    a = _round(tmp_path / "ft5" / "step-3727", 3727, 1239, "exp/ft4/avg")
    b = _round(tmp_path / "ft6" / "step-3298", 3298, 1240, "exp/ft5/avg")
    with pytest.raises(CheckpointError, match="come from 2 runs.*--mixed"):
        average_checkpoints([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit, match="--mixed"):
        main([str(a), str(b), "--out", str(tmp_path / "out")])
    main([str(a), str(b), "--out", str(tmp_path / "out"), "--mixed"])
    assert "averaged 2 checkpoints (steps 3298, 3727)" in capsys.readouterr().out
    training = json.loads((tmp_path / "out" / "config.json").read_text())["training"]
    assert training["averaged_steps"] == [3298, 3727]
    assert training["averaged_from"] == [
        {"folder": str(b), "step": 3298, "seed": 1240, "init_from": "exp/ft5/avg"},
        {"folder": str(a), "step": 3727, "seed": 1239, "init_from": "exp/ft4/avg"},
    ]
    # one run's checkpoints carry no averaged_from
    c = _round(tmp_path / "ft6" / "step-3000", 3000, 1240, "exp/ft5/avg")
    average_checkpoints([c, b], tmp_path / "one")
    one = json.loads((tmp_path / "one" / "config.json").read_text())["training"]
    assert "averaged_from" not in one and one["averaged_steps"] == [3000, 3298]


def test_mixed_mean_keeps_the_later_runs_record(tmp_path):
    """Across runs the kept record is the later run's, even when it has fewer steps: a round
    started from another's weights has more earlier stages (session 30: the mean of a soup at
    step 448 and the round trained from it, at step 413, kept the soup's record)."""
    first = _round(tmp_path / "deep4" / "avg", 448, 2029, "exp/deep3/avg")
    later = _round_after(tmp_path / "deep5" / "avg", 413, 2030, first, 448, "exp/deep3/avg")
    for order in ([first, later], [later, first]):
        out = average_checkpoints(order, tmp_path / "soup", mixed=True)
        training = json.loads((out / "config.json").read_text())["training"]
        assert training["steps"] == 413 and training["config"]["seed"] == 2030
        assert training["averaged_steps"] == [448, 413]
        assert [s["folder"] for s in training["averaged_from"]] == [str(first), str(later)]


def test_weighted_mean_follows_the_folders_given_order(tmp_path, capsys):
    folders = _run(tmp_path, steps=(100, 200))
    states = [load_file(str(f / "model.safetensors")) for f in folders]
    # Given newest first, the weights still go with their folders: 1/4 step-200, 3/4 step-100.
    main([str(folders[1]), str(folders[0]), "--weights", "1", "3", "--out", str(tmp_path / "w")])
    assert "averaged 2 checkpoints" in capsys.readouterr().out
    avg = load_file(str(tmp_path / "w" / "model.safetensors"))
    for k, v in avg.items():
        if v.is_floating_point():
            want = 0.75 * states[0][k].double() + 0.25 * states[1][k].double()
            torch.testing.assert_close(v.double(), want, rtol=0, atol=1e-6)
    training = json.loads((tmp_path / "w" / "config.json").read_text())["training"]
    assert training["averaged_steps"] == [100, 200]
    assert training["averaged_weights"] == [0.75, 0.25]
    # Equal weights are the plain mean and record none.
    main([str(folders[0]), str(folders[1]), "--weights", "2", "2", "--out", str(tmp_path / "e")])
    assert (
        "averaged_weights"
        not in json.loads((tmp_path / "e" / "config.json").read_text())["training"]
    )
    for bad in (["1"], ["1", "0"], ["1", "-2"]):
        with pytest.raises(SystemExit, match="one positive number per checkpoint"):
            main([*map(str, folders), "--weights", *bad, "--out", str(tmp_path / "x")])


def test_an_exported_folder_is_averaged_as_the_float32_weights_it_stands_for(tmp_path):
    from ds2.checkpoint import dequantize_weights
    from train.export import export

    src = make_tiny_checkpoint(tmp_path / "exp" / "checkpoints" / "step-100", seed=3, steps=100)
    shipped = export(src, tmp_path / "shipped", quantize=6, quantize_finer=["head"])
    packed = load_file(str(shipped / "model.safetensors"))
    assert any(not v.is_floating_point() and v.dim() == 1 and k != "num_batches_tracked"
               for k, v in packed.items())  # fmt: skip
    want = dequantize_weights(packed)

    out = average_checkpoints([shipped], tmp_path / "float")
    got = load_file(str(out / "model.safetensors"))
    assert got.keys() == want.keys() == load_file(str(src / "model.safetensors")).keys()
    for k, v in got.items():
        if want[k].is_floating_point():
            assert v.dtype == torch.float32  # fp16 and quantized tensors come back as float32
            torch.testing.assert_close(v, want[k].float(), rtol=0, atol=1e-7)
        else:
            assert torch.equal(v, want[k])
    cfg = json.loads((out / "config.json").read_text())
    # the average names no LM (none is copied) and is no export of any dtype
    assert "decoder" not in cfg and "exported_weights" not in cfg["training"]
    assert ds2.load_model(str(out)).model is not None

    # a shipped folder and a training checkpoint average in float32, as two float runs would
    mixed = average_checkpoints([shipped, src], tmp_path / "mixed", mixed=True)
    plain = load_file(str(src / "model.safetensors"))
    for k, v in load_file(str(mixed / "model.safetensors")).items():
        if v.is_floating_point():
            torch.testing.assert_close(
                v.double(), (want[k].double() + plain[k].double()) / 2, rtol=0, atol=1e-6
            )


def test_the_float_copy_of_a_shipped_soup_keeps_the_soups_record(tmp_path, capsys):
    """A bare host has only the shipped folder, a mean of two runs; its mean of one (the float32
    copy a new round starts from) must keep which steps and runs went in (session 49: the copy
    recorded only the newest step, and the card re-rendered from it lost the other)."""
    from train.export import export

    first = _round(tmp_path / "deep27" / "avg", 339, 2051, "exp/soup23/avg")
    later = _round_after(tmp_path / "deep28" / "avg", 351, 2052, first, 339, "exp/soup23/avg")
    soup = average_checkpoints([first, later], tmp_path / "soup", mixed=True)
    shipped = export(soup, tmp_path / "shipped", quantize=6)
    record = json.loads((soup / "config.json").read_text())["training"]
    main([str(shipped), "--out", str(tmp_path / "float")])
    assert f"{shipped} in float32 (averaged steps 339, 351)" in capsys.readouterr().out
    training = json.loads((tmp_path / "float" / "config.json").read_text())["training"]
    assert training["averaged_steps"] == record["averaged_steps"] == [339, 351]
    assert training["averaged_from"] == record["averaged_from"]
    # one training checkpoint, no average: its mean of one records its own step
    one = average_checkpoints([first], tmp_path / "one")
    assert json.loads((one / "config.json").read_text())["training"]["averaged_steps"] == [339]
