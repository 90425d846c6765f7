"""Checkpoint folders: exact round trip, no pickles, a clear CheckpointError for each defect."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch

import ds2
from ds2.checkpoint import (
    CONFIG_NAME,
    QUANT_SCALE,
    QUANT_SHAPE,
    WEIGHTS_NAME,
    dequantize_weights,
    fine_tuned_from,
    hardware_label,
    is_number,
    quantize_weights,
    safetensors_bytes,
    save_pretrained,
    stage_summary,
    training_stages,
    training_totals,
)
from ds2.errors import CheckpointError
from ds2.features import FeatureConfig
from ds2.model import DeepSpeech2, preset
from ds2.vocab import Vocabulary
from tests.utils import make_tiny_checkpoint, tiny_config


def outputs(model: DeepSpeech2, seed: int = 0):
    """Log-probs of a fixed two-utterance batch, shape (2, T', V)."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, model.cfg.n_features, 80, generator=gen)
    with torch.no_grad():
        return model.eval()(feats, torch.tensor([80, 57]))


def trained_looking(cfg, seed: int = 0) -> DeepSpeech2:
    """A model with non-default BatchNorm statistics, which the round trip must carry, placed
    for the CPU as loading places one (channels-last conv weights: the same values, summed in
    another order, so the outputs match loaded ones bit for bit)."""
    torch.manual_seed(seed)
    model = DeepSpeech2(cfg).to_device("cpu")
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(123)
    return model.eval()


@pytest.fixture
def ckpt(tmp_path):
    """A fresh tiny checkpoint folder each test may damage."""
    return make_tiny_checkpoint(tmp_path / "tiny")


def edit_config(folder, change):
    cfg = json.loads((folder / CONFIG_NAME).read_text())
    change(cfg)
    (folder / CONFIG_NAME).write_text(json.dumps(cfg))


# --------------------------------------------------------------------------------------------
# Round trip


@pytest.mark.parametrize("cfg", [tiny_config(), preset("ds2-small")], ids=["tiny", "ds2-small"])
def test_round_trip_gives_identical_log_probs(tmp_path, cfg):
    model = trained_looking(cfg)
    training = {"steps": 1200, "data": ["librispeech-clean-100"], "wer": {"dev-clean": 0.31}}
    decoder = {"lm_weight": 0.7, "word_score": 1.5}
    save_pretrained(tmp_path / "m", model, FeatureConfig(), Vocabulary(), training, decoder)

    loaded = ds2.load_folder(tmp_path / "m")
    assert loaded.model.cfg == model.cfg
    assert loaded.feature_config == FeatureConfig()
    assert loaded.vocab == Vocabulary()
    assert loaded.config["training"] == training
    assert loaded.decoder_defaults == {"lm_weight": 0.7, "word_score": 1.5}
    assert loaded.name == "m" and loaded.folder == tmp_path / "m"
    assert not loaded.model.training
    original, restored = model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    weight = loaded.model.convs[-1][0].weight  # (more than one input channel: unambiguous)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    (lp_a, len_a), (lp_b, len_b) = outputs(model), outputs(loaded.model)
    assert torch.equal(lp_a, lp_b) and torch.equal(len_a, len_b)


def test_round_trip_keeps_custom_features_and_vocab(tmp_path):
    feats = FeatureConfig(n_fft=320, win_length=320, hop_length=160, window="hann")
    vocab = Vocabulary(("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz", "-"))
    cfg = preset("ds2-small", n_features=feats.n_bins, vocab_size=len(vocab))
    model = trained_looking(cfg, seed=3)
    save_pretrained(tmp_path / "m", model, feats, vocab)

    loaded = ds2.load_folder(tmp_path / "m")
    assert loaded.feature_config == feats and loaded.vocab == vocab
    assert torch.equal(outputs(model)[0], outputs(loaded.model)[0])


def test_saving_again_overwrites_and_leaves_no_temp_files(tmp_path):
    folder = tmp_path / "m"
    first, second = trained_looking(tiny_config(), 0), trained_looking(tiny_config(), 1)
    save_pretrained(folder, first, FeatureConfig(), Vocabulary())
    save_pretrained(folder, second, FeatureConfig(), Vocabulary())
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert torch.equal(outputs(ds2.load_folder(folder).model)[0], outputs(second)[0])


def test_nothing_is_pickled(tmp_path, ckpt):
    lexicon = ckpt / "lexicon.txt"
    lexicon.write_text("hello\th e l l o |\n")
    edit_config(ckpt, lambda c: c.update(decoder={"lexicon": "lexicon.txt"}))
    assert {p.suffix for p in ckpt.iterdir()} <= {".json", ".safetensors", ".txt"}

    for path in ckpt.iterdir():
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80", f"{path.name} starts like a pickle"
        assert head != b"PK", f"{path.name} is a zip archive (torch.save format)"
    json.loads((ckpt / CONFIG_NAME).read_text())
    # safetensors: 8-byte little-endian header length, then a JSON header naming every tensor.
    raw = (ckpt / WEIGHTS_NAME).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    state = DeepSpeech2(tiny_config()).state_dict()
    assert set(header) - {"__metadata__"} == set(state)
    assert all(header[k]["shape"] == list(v.shape) for k, v in state.items())


# --------------------------------------------------------------------------------------------
# Defects: each one a CheckpointError that names the problem


def test_missing_folder_or_config(tmp_path):
    with pytest.raises(CheckpointError, match="is not a ds2 checkpoint: it has no config.json"):
        ds2.load_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        ds2.load_folder(tmp_path / "empty")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": "ds2", "model": {', "corrupt: not valid JSON"),
        ("", "corrupt: not valid JSON"),
        ("\xff\xfe garbage", "corrupt: not valid JSON"),
        ('{"model_type": "wav2vec2"}', "not a ds2 config"),
        ('["ds2"]', "not a ds2 config"),
        ('{"format": "ds2", "format_version": 99}', "format version 99, newer than this ds2"),
        ('{"format": "ds2", "format_version": "one"}', "format_version 'one' is not an integer"),
    ],
)
def test_corrupt_config_json(ckpt, text, message):
    (ckpt / CONFIG_NAME).write_text(text, encoding="latin-1")
    with pytest.raises(CheckpointError, match=message):
        ds2.load_folder(ckpt)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("model"), "missing key 'model'"),
        (lambda c: c.pop("vocab"), "missing key 'vocab'"),
        (lambda c: c.update(model=[1, 2]), "incomplete or invalid"),
        (lambda c: c["model"].update(rnn_type="transformer"), "rnn_type must be 'lstm' or 'gru'"),
        (lambda c: c["model"].update(rnn_hidden="big"), "cannot be built"),
        (lambda c: c["model"].update(rnn_hidden=0), "cannot be built"),
        (lambda c: c["features"].update(window="kaiser"), "window 'kaiser' is not one of"),
        (lambda c: c["features"].update(hop_length=0), "hop_length must be a positive integer"),
        (lambda c: c["features"].update(normalize="global"), "normalize 'global'"),
        (lambda c: c.update(vocab=c["vocab"][1:] + ["-"]), "first token must be the blank"),
        (lambda c: c.update(vocab=c["vocab"][:-1] + ["a"]), "tokens must be unique"),
        (lambda c: c.update(vocab="abc"), "vocab must be a list of strings"),
        (lambda c: c.update(decoder=["lm.bin"]), "decoder must be an object"),
        (lambda c: c.update(decoder={"lm": 3}), "decoder.lm must be a file name"),
    ],
)
def test_invalid_config_values(ckpt, change, message):
    edit_config(ckpt, change)
    with pytest.raises(CheckpointError, match=message):
        ds2.load_folder(ckpt)


def test_wrong_vocab_size(ckpt):
    # The vocabulary grows but the model config still says 29 outputs.
    edit_config(ckpt, lambda c: c.update(vocab=c["vocab"] + ["-"]))
    with pytest.raises(CheckpointError, match="29 outputs but the vocabulary has 30 symbols"):
        ds2.load_folder(ckpt)
    # Config made consistent (30 and 30), but the weights were trained with 29 outputs.
    edit_config(ckpt, lambda c: c["model"].update(vocab_size=30))
    with pytest.raises(
        CheckpointError, match=r"head.weight has shape \(29, 64\), expected \(30, 64"
    ):
        ds2.load_folder(ckpt)


def test_features_that_do_not_fit_the_model(ckpt):
    edit_config(ckpt, lambda c: c["features"].update(n_fft=512, win_length=512))
    with pytest.raises(CheckpointError, match="expects 201 frequency bins but the feature"):
        ds2.load_folder(ckpt)


def test_mismatched_shapes(ckpt):
    edit_config(ckpt, lambda c: c["model"].update(rnn_hidden=48))
    with pytest.raises(CheckpointError, match="does not match its config.json: .* has shape"):
        ds2.load_folder(ckpt)


def test_missing_and_unexpected_weights(ckpt):
    edit_config(ckpt, lambda c: c["model"].update(rnn_layers=2))
    with pytest.raises(CheckpointError, match=r"missing \['rnn.bias_hh_l1'"):
        ds2.load_folder(ckpt)
    edit_config(ckpt, lambda c: c["model"].update(rnn_layers=1, bidirectional=False))
    with pytest.raises(CheckpointError, match="unexpected"):
        ds2.load_folder(ckpt)


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_quantized_weights_round_trip_within_half_a_step(bits):
    torch.manual_seed(0)
    state = {
        "w": torch.randn(6, 4, 3) * torch.arange(1, 7).view(6, 1, 1),  # rows of different scale
        "zero": torch.zeros(2, 5),  # an all-zero row must not divide by zero
        "bias": torch.randn(6),
        "count": torch.tensor(7),
    }
    q = quantize_weights(state, bits)
    assert q["w"].dtype == torch.uint8 and q["w"].numel() == -(-72 * bits // 8)  # packed bits
    assert q["w" + QUANT_SCALE].shape == (6,)
    assert q["w" + QUANT_SHAPE].tolist() == [bits, 6, 4, 3]
    assert q["bias"].dtype == torch.float16 and q["count"].dtype == torch.int64
    d = dequantize_weights(q)
    assert set(d) == set(state) and d["w"].dtype == torch.float32
    assert d["bias"].dtype == torch.float32  # the float16 vectors come back as float32 too
    assert d["w"].shape == (6, 4, 3)
    step = state["w"].abs().amax(dim=(1, 2)) / (2 ** (bits - 1) - 1)  # one code step per row
    assert ((d["w"] - state["w"]).abs().amax(dim=(1, 2)) <= step / 2 + 1e-6).all()
    assert torch.equal(d["zero"], state["zero"]) and torch.equal(d["count"], state["count"])
    assert dequantize_weights({"bias": state["bias"]}) == {"bias": state["bias"]}  # nothing to undo
    with pytest.raises(ValueError, match="bits must be 2-8"):
        quantize_weights(state, 9)


def test_finer_weights_take_one_bit_more():
    torch.manual_seed(0)
    state = {"rnn.weight_hh_l0": torch.randn(8, 16), "rnn.weight_ih_l0": torch.randn(8, 16)}
    q = quantize_weights(state, 6, finer=("rnn.weight_hh",))
    assert (
        q["rnn.weight_hh_l0" + QUANT_SHAPE][0] == 7 and q["rnn.weight_ih_l0" + QUANT_SHAPE][0] == 6
    )
    assert q["rnn.weight_hh_l0"].numel() == 8 * 16 * 7 // 8
    d = dequantize_weights(q)
    for name, bits in (("rnn.weight_hh_l0", 7), ("rnn.weight_ih_l0", 6)):
        step = state[name].abs().amax(dim=1) / (2 ** (bits - 1) - 1)
        assert ((d[name] - state[name]).abs().amax(dim=1) <= step / 2 + 1e-6).all()
    # one bit more halves the finer weight's error against plain 6 bits
    plain = dequantize_weights(quantize_weights(state, 6))
    err = {
        k: (v - state["rnn.weight_hh_l0"]).norm()
        for k, v in (("6", plain["rnn.weight_hh_l0"]), ("7", d["rnn.weight_hh_l0"]))
    }
    assert err["7"] < 0.7 * err["6"]
    assert quantize_weights(state, 8, finer=("rnn",))["rnn.weight_ih_l0" + QUANT_SHAPE][0] == 8
    with pytest.raises(ValueError, match="no weight is named like conv"):
        quantize_weights(state, 6, finer=("conv",))
    # a prefix that names only a bias (stored as fp16, never quantized) names no weight either
    with pytest.raises(ValueError, match="no weight is named like rnn.bias"):
        quantize_weights({**state, "rnn.bias_hh_l0": torch.randn(8)}, 6, finer=("rnn.bias",))


def test_quantized_checkpoint_loads_and_broken_scales_are_refused(ckpt):
    from safetensors.torch import load_file, save_file

    float_out = outputs(ds2.load_folder(ckpt).model)
    q = quantize_weights(load_file(str(ckpt / WEIGHTS_NAME)), 6)
    save_file(q, str(ckpt / WEIGHTS_NAME))
    torch.testing.assert_close(outputs(ds2.load_folder(ckpt).model), float_out, atol=0.2, rtol=0)
    scale = next(k for k in q if k.endswith(QUANT_SCALE))
    name = scale[: -len(QUANT_SCALE)]
    for broken, message in [
        ({k: v for k, v in q.items() if k != scale}, "lacks its packed bits, scales or shape"),
        ({k: v for k, v in q.items() if k != name}, "lacks its packed bits, scales or shape"),
        ({**q, scale: q[scale][:-1].clone()}, "does not fit its scales and shape"),
        ({**q, name: q[name][:-1].clone()}, "does not fit its scales and shape"),
        ({**q, "nothing" + QUANT_SCALE: q[scale].clone()}, "lacks its packed bits"),
    ]:
        save_file(broken, str(ckpt / WEIGHTS_NAME))
        with pytest.raises(CheckpointError, match=message):
            ds2.load_folder(ckpt)


@pytest.mark.parametrize("keep", [0, 4, 100, 0.5, -1], ids=["empty", "4B", "100B", "half", "-1B"])
def test_truncated_weights(ckpt, keep):
    raw = (ckpt / WEIGHTS_NAME).read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (keep % len(raw) if keep else 0)
    (ckpt / WEIGHTS_NAME).write_bytes(raw[:n])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt or truncated"):
        ds2.load_folder(ckpt)


def test_weights_that_are_not_safetensors(ckpt, tmp_path):
    # A torch.save file in place of the weights must be refused, never unpickled.
    torch.save(DeepSpeech2(tiny_config()).state_dict(), tmp_path / "state.pt")
    shutil.copy(tmp_path / "state.pt", ckpt / WEIGHTS_NAME)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ds2.load_folder(ckpt)


def test_missing_weights_file(ckpt):
    (ckpt / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        ds2.load_folder(ckpt)


def test_decoder_files(ckpt):
    decoder = {"lexicon": "lexicon.txt", "lm": "lm.bin", "lm_weight": 0.8, "word_score": -0.5}
    edit_config(ckpt, lambda c: c.update(decoder=decoder))
    with pytest.raises(CheckpointError, match="names lexicon file 'lexicon.txt', not found"):
        ds2.load_folder(ckpt)
    # the weights alone (an --init-from start) need neither file
    bare = ds2.load_folder(ckpt, decoder_files=False)
    assert bare.lexicon_path is None and bare.lm_path is None
    (ckpt / "lexicon.txt").write_text("hello\th e l l o |\n")
    with pytest.raises(CheckpointError, match="names lm file 'lm.bin', not found"):
        ds2.load_folder(ckpt)
    (ckpt / "lm.bin").write_bytes(b"binary lm")

    loaded = ds2.load_folder(ckpt)
    assert loaded.lexicon_path == ckpt / "lexicon.txt"
    assert loaded.lm_path == ckpt / "lm.bin"
    assert loaded.decoder_defaults == {"lm_weight": 0.8, "word_score": -0.5}


def test_no_decoder_section(ckpt):
    edit_config(ckpt, lambda c: c.update(decoder=None))
    loaded = ds2.load_folder(ckpt)
    assert loaded.lm_path is None and loaded.lexicon_path is None
    assert loaded.decoder_defaults == {}


def test_saved_checkpoint_files_are_readable_by_all(tmp_path):
    """Files go through a private temporary file but are published 0644, not mkstemp's 0600:
    an averaged or exported model must be readable by the app's user and by git."""
    folder = make_tiny_checkpoint(tmp_path / "m")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        assert (folder / name).stat().st_mode & 0o777 == 0o644, name
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_fine_tuned_from_reads_the_trainers_init_record():
    assert fine_tuned_from({"init_from": {"spec": "exp/base/avg", "name": "avg"}}) == "exp/base/avg"
    assert fine_tuned_from({"init_from": "org/model"}) == "org/model"  # a bare spec
    assert fine_tuned_from({"init_from": None, "steps": 5}) is None  # trained from scratch
    assert fine_tuned_from({}) is None
    assert fine_tuned_from({"init_from": {"name": "avg"}}) is None  # no spec: nothing to name


def test_training_stages_and_totals_add_up_a_fine_tunes_history():
    base = {"steps": 9000, "elapsed_hours": 10.5, "audio_hours_seen": 210.0, "train_hours": 100.0,
            "precision": "fp32", "config": {"lr": 5e-4}, "init_from": None,
            "hardware": {"cpu_count": 2, "platform": "Linux", "torch": "2.11"}}  # fmt: skip
    assert stage_summary(base) == {
        "steps": 9000, "elapsed_hours": 10.5, "audio_hours_seen": 210.0, "train_hours": 100.0,
        "precision": "fp32", "init_from": None, "lr": 5e-4, "hardware": {"cpu_count": 2},
    }  # fmt: skip
    assert training_stages(base) == [stage_summary(base)]
    # a run restarted at a lower --lr keeps the peak it reached before
    assert stage_summary({**base, "peak_lr": 1e-3})["lr"] == 1e-3
    assert training_totals(base) == {"stages": 1, "complete": True, "steps": 9000,
                                     "elapsed_hours": 10.5, "audio_hours_seen": 210.0}  # fmt: skip

    tune = {"steps": 1400, "elapsed_hours": 1.5, "audio_hours_seen": 30.0, "config": {"lr": 3e-4},
            "init_from": {"spec": "exp/base/avg", "name": "avg"},
            "earlier_stages": [stage_summary(base)]}  # fmt: skip
    stages = training_stages(tune)
    assert [s["steps"] for s in stages] == [9000, 1400]
    assert stages[1]["init_from"] == "exp/base/avg" and stages[1]["lr"] == 3e-4
    totals = training_totals(tune)
    assert totals["stages"] == 2 and totals["complete"] and totals["steps"] == 10400
    assert totals["elapsed_hours"] == pytest.approx(12.0)
    assert totals["audio_hours_seen"] == pytest.approx(240.0)

    # a stage without a figure leaves that sum out rather than under-count it
    unknown = {**tune, "earlier_stages": [{"steps": 10, "init_from": None}]}
    assert "elapsed_hours" not in training_totals(unknown)
    assert training_totals(unknown)["steps"] == 1410
    # a fine-tune of a model whose history is not recorded is incomplete
    orphan = {"steps": 5, "init_from": "org/foreign"}
    assert training_totals(orphan) == {"stages": 1, "complete": False, "steps": 5}
    # junk in the list is skipped, not fatal
    assert len(training_stages({**tune, "earlier_stages": ["x", None, stage_summary(base)]})) == 2
    assert len(training_stages({**tune, "earlier_stages": "x"})) == 1


def test_hardware_label_names_the_gpu_or_the_cores():
    h100 = {"gpu": "NVIDIA H100", "cpu_count": 16, "platform": "Linux", "torch": "2.11.0"}
    assert hardware_label(h100) == "NVIDIA H100"
    assert hardware_label({"cpu_count": 2}) == "2 CPU cores"
    assert hardware_label(h100, full=True) == "NVIDIA H100, 16 CPU cores, Linux, torch 2.11.0"
    # nothing recorded: empty for a line that leaves it out, "unknown" for a card's table
    for missing in (None, {}, "", {"platform": None}):
        assert hardware_label(missing) == ""
    assert hardware_label(None, full=True) == hardware_label({}, full=True) == "unknown"
    assert hardware_label("a laptop", full=True) == "a laptop"


def test_is_number_takes_ints_and_floats_but_not_bools():
    assert is_number(3) and is_number(0.5) and is_number(0)
    assert not any(is_number(x) for x in (True, False, None, "3", [1]))


def test_safetensors_bytes_are_the_same_for_the_same_weights():
    """safetensors orders the metadata keys differently from call to call; the bytes written
    must not change, or re-running an export would change a shipped file."""
    from safetensors.torch import load

    state = {"w": torch.randn(3, 4), "steps": torch.tensor(7)}
    meta = {"format": "pt", "dtype": "int6", "source": "r\u00e9sum\u00e9", "step": "12"}
    outs = {safetensors_bytes(state, dict(reversed(meta.items())) if i % 2 else meta)
            for i in range(16)}  # fmt: skip
    assert len(outs) == 1
    data = outs.pop()
    back = load(data)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    n = int.from_bytes(data[:8], "little")
    assert json.loads(data[8 : 8 + n])["__metadata__"] == meta and (8 + n) % 8 == 0
