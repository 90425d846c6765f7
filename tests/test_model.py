"""DeepSpeech2 presets layer by layer, exact output lengths, and padding invariance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ds2.model import PRESETS, ConvSpec, DeepSpeech2, ModelConfig, preset
from tests.utils import tiny_config


def shapes_through(model: DeepSpeech2, n_frames: int, batch: int = 2) -> dict[str, tuple]:
    """Output shape of every conv block part, the RNN and the head for one forward pass."""
    seen, hooks = {}, []
    for name, module in model.named_modules():
        if name and not isinstance(module, (nn.ModuleList, nn.Sequential, DeepSpeech2)):

            def hook(mod, args, out, name=name):
                out = out[0] if isinstance(out, tuple) else out
                if isinstance(out, nn.utils.rnn.PackedSequence):
                    seen[name + ".input_size"] = args[0].data.shape[-1]
                    out = out.data  # (sum of lengths, 2 * hidden)
                seen[name] = tuple(out.shape)
                if isinstance(mod, nn.Hardtanh):
                    seen[name + ".range"] = (float(out.min()), float(out.max()))

            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        feats = 3 * torch.randn(batch, model.cfg.n_features, n_frames)
        model.eval()(feats, torch.full((batch,), n_frames))
    for h in hooks:
        h.remove()
    return seen


def expected_parameters(cfg: ModelConfig) -> int:
    """Parameter count from the layer formulas, independent of the module code."""
    total, in_ch = 0, 1
    for c in cfg.convs:
        total += in_ch * c.channels * c.kernel[0] * c.kernel[1] + 2 * c.channels  # no conv bias
        in_ch = c.channels
    gates = 4 if cfg.rnn_type == "lstm" else 3
    n_dir = 2 if cfg.bidirectional else 1
    in_size = cfg.rnn_input_size
    for _ in range(cfg.rnn_layers):
        total += n_dir * gates * cfg.rnn_hidden * (in_size + cfg.rnn_hidden + 2)
        in_size = n_dir * cfg.rnn_hidden
    return total + in_size * cfg.vocab_size + cfg.vocab_size


def test_ds2_small_layer_by_layer():
    cfg = PRESETS["ds2-small"]
    model = DeepSpeech2(cfg)
    conv1, bn1, act1 = model.convs[0]
    conv2, bn2, act2 = model.convs[1]
    assert (conv1.in_channels, conv1.out_channels) == (1, 16)
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((11, 21), (2, 2), (5, 10))
    assert (conv2.in_channels, conv2.out_channels) == (16, 32)
    assert (conv2.kernel_size, conv2.stride, conv2.padding) == ((11, 11), (1, 1), (5, 5))
    for bn, ch, act in ((bn1, 16, act1), (bn2, 32, act2)):
        assert isinstance(bn, nn.BatchNorm2d) and bn.num_features == ch
        assert isinstance(act, nn.Hardtanh) and (act.min_val, act.max_val) == (0, 20)
    assert conv1.bias is None and conv2.bias is None  # BatchNorm follows: a bias is redundant
    assert isinstance(model.rnn, nn.LSTM)
    assert (model.rnn.input_size, model.rnn.hidden_size, model.rnn.num_layers) == (3232, 128, 2)
    assert model.rnn.bidirectional and model.rnn.batch_first
    assert (model.head.in_features, model.head.out_features) == (256, 29)
    assert cfg.conv_out_features == 101 and cfg.rnn_input_size == 32 * 101 and cfg.time_stride == 2

    s = shapes_through(model, n_frames=100)
    assert s["convs.0.0"] == s["convs.0.1"] == s["convs.0.2"] == (2, 16, 101, 50)
    assert s["convs.1.0"] == s["convs.1.1"] == s["convs.1.2"] == (2, 32, 101, 50)
    assert s["rnn.input_size"] == 3232 and s["rnn"] == (2 * 50, 256)
    assert s["head"] == (2, 50, 29)
    for act in ("convs.0.2", "convs.1.2"):
        low, high = s[act + ".range"]
        assert 0 <= low and high <= 20 and high > 0

    assert model.num_parameters() == expected_parameters(cfg)
    assert round(model.num_parameters() / 1e6, 1) == 3.9


def test_ds2_large_layer_by_layer():
    cfg = PRESETS["ds2-large"]
    model = DeepSpeech2(cfg)
    conv1, bn1, act1 = model.convs[0]
    conv2, bn2, act2 = model.convs[1]
    assert (conv1.in_channels, conv1.out_channels) == (1, 32)
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((41, 11), (2, 2), (20, 5))
    assert (conv2.in_channels, conv2.out_channels) == (32, 32)
    assert (conv2.kernel_size, conv2.stride, conv2.padding) == ((21, 11), (2, 1), (10, 5))
    for act in (act1, act2):
        assert (act.min_val, act.max_val) == (0, 20)
    assert isinstance(model.rnn, nn.GRU)
    assert (model.rnn.input_size, model.rnn.hidden_size, model.rnn.num_layers) == (1632, 512, 5)
    assert model.rnn.bidirectional
    assert (model.head.in_features, model.head.out_features) == (1024, 29)
    assert cfg.conv_out_features == 51 and cfg.time_stride == 2

    s = shapes_through(model, n_frames=40, batch=1)
    assert s["convs.0.0"] == (1, 32, 101, 20)
    assert s["convs.1.0"] == (1, 32, 51, 20)
    assert s["rnn.input_size"] == 1632 and s["rnn"] == (20, 1024)
    assert s["head"] == (1, 20, 29)

    assert model.num_parameters() == expected_parameters(cfg)
    assert round(model.num_parameters() / 1e6, 1) == 25.8


@pytest.mark.parametrize("name", ["tiny", "ds2-small", "ds2-large"])
def test_output_lengths_follow_the_conv_formula(name):
    cfg = tiny_config() if name == "tiny" else PRESETS[name]
    torch.manual_seed(0)
    model = DeepSpeech2(cfg).eval()
    lengths = list(range(1, 24)) + [50, 99, 100, 101, 257]
    if name != "tiny":  # the big presets are slow on CPU: fewer, still both parities
        lengths = [1, 2, 3, 4, 5, 10, 11, 31, 64]
    for n in lengths:
        with torch.no_grad():
            log_probs, out_len = model(torch.randn(1, cfg.n_features, n), torch.tensor([n]))
        assert log_probs.shape[1] == int(out_len[0]) == cfg.output_lengths(n), n
        assert log_probs.shape[1] == -(-n // 2)  # both presets: ceil(n / 2), 20 ms per frame
    as_tensor = cfg.output_lengths(torch.tensor(lengths))
    assert as_tensor.tolist() == [cfg.output_lengths(n) for n in lengths]


def test_output_lengths_for_a_stride_3_config():
    cfg = ModelConfig(
        name="odd",
        convs=(ConvSpec(2, (5, 7), (2, 3), (2, 1)), ConvSpec(2, (3, 4), (1, 1), (1, 2))),
        rnn_layers=1,
        rnn_hidden=8,
    )
    model = DeepSpeech2(cfg).eval()
    assert cfg.time_stride == 3
    for n in range(5, 30):
        with torch.no_grad():
            log_probs, out_len = model(torch.randn(1, 201, n), torch.tensor([n]))
        assert log_probs.shape[1] == int(out_len[0]) == cfg.output_lengths(n), n


@pytest.mark.parametrize("name", ["tiny", "ds2-small"])
def test_padding_never_changes_an_utterance(name):
    cfg = tiny_config() if name == "tiny" else PRESETS[name]
    torch.manual_seed(1)
    model = DeepSpeech2(cfg).eval()
    # Non-default BatchNorm statistics: BN(0) != 0, so unmasked padding would leak.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    lengths = [37, 120, 1, 64, 119]
    utterances = [torch.randn(cfg.n_features, n) for n in lengths]
    t_max = max(lengths)
    # Pad with loud noise rather than zeros: whatever is in the padding must not matter.
    batch = 5 * torch.randn(len(lengths), cfg.n_features, t_max)
    for i, u in enumerate(utterances):
        batch[i, :, : u.shape[1]] = u
    with torch.no_grad():
        out, out_lengths = model(batch, torch.tensor(lengths))
        assert out.shape[1] == cfg.output_lengths(t_max)
        for i, u in enumerate(utterances):
            alone, alone_len = model(u[None], torch.tensor([u.shape[1]]))
            n = int(alone_len[0])
            assert int(out_lengths[i]) == n == alone.shape[1]
            torch.testing.assert_close(out[i, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_log_probs_normalise_in_eval_and_train_mode():
    torch.manual_seed(2)
    model = DeepSpeech2(tiny_config())
    feats, lengths = torch.randn(3, 201, 50), torch.tensor([50, 33, 8])
    for train in (False, True):
        model.train(train)
        log_probs, out_lengths = model(feats, lengths)
        assert log_probs.dtype == torch.float32 and log_probs.shape == (3, 25, 29)
        assert out_lengths.tolist() == [25, 17, 4]
        assert (log_probs <= 0).all()
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 25))


def test_eval_mode_is_deterministic_despite_dropout():
    model = DeepSpeech2(preset("ds2-small", dropout=0.5)).eval()
    feats, lengths = torch.randn(2, 201, 30), torch.tensor([30, 21])
    with torch.no_grad():
        assert torch.equal(model(feats, lengths)[0], model(feats, lengths)[0])


def test_ctc_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = DeepSpeech2(tiny_config()).train()
    feats, lengths = torch.randn(2, 201, 60), torch.tensor([60, 44])
    log_probs, out_lengths = model(feats, lengths)
    targets = torch.randint(1, 29, (2, 8))
    loss = nn.functional.ctc_loss(
        log_probs.transpose(0, 1),  # (B, T, V) -> (T, B, V)
        targets,
        out_lengths,
        torch.tensor([8, 6]),
        zero_infinity=True,
    )
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_config_round_trip_and_presets():
    for name, cfg in PRESETS.items():
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.name == name
    big_vocab = preset("ds2-small", vocab_size=40)
    assert DeepSpeech2(big_vocab).head.out_features == 40
    assert PRESETS["ds2-small"].vocab_size == 29  # presets are not mutated by overrides
    with pytest.raises(ValueError, match="unknown preset"):
        preset("ds2-huge")
    with pytest.raises(ValueError, match="rnn_type"):
        preset("ds2-small", rnn_type="transformer")


def _gru_config(**overrides) -> ModelConfig:
    cfg = tiny_config()
    return ModelConfig.from_dict(
        {**cfg.to_dict(), "rnn_type": "gru", "rnn_layers": 3, "rnn_hidden": 16, **overrides}
    )


def _outputs_and_grads(model, feats, lengths, weights):
    model.zero_grad()
    x = feats.clone().requires_grad_(True)
    log_probs, _ = model(x, lengths)
    (log_probs * weights).sum().backward()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    return log_probs.detach(), x.grad, grads


def test_the_cpu_gru_training_path_is_nn_grus_maths():
    """Training a GRU on the CPU goes through ds2.gru (its own backward); the outputs, the input's
    gradient and every parameter's gradient are nn.GRU's on a packed batch (float64: exactly, up
    to rounding), whatever the padding."""
    torch.manual_seed(4)
    model = DeepSpeech2(_gru_config()).double().eval()  # eval: no dropout; grads still flow
    lengths = torch.tensor([60, 23, 1, 47])
    feats = 5 * torch.randn(4, 201, 60, dtype=torch.float64)  # loud padding: must not matter
    weights = torch.randn(4, 30, 29, dtype=torch.float64)
    assert model._fast_cpu_gru(feats) and torch.is_grad_enabled()
    fast = _outputs_and_grads(model, feats, lengths, weights)
    model.fast_cpu_gru = False
    ref = _outputs_and_grads(model, feats, lengths, weights)
    for got, want in zip(fast[:2], ref[:2]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert fast[2].keys() == ref[2].keys()
    for name in ref[2]:
        assert ref[2][name].abs().sum() > 0, name
        torch.testing.assert_close(fast[2][name], ref[2][name], rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # inference keeps nn.GRU, and reads the same
        model.fast_cpu_gru = True
        assert not model._fast_cpu_gru(feats)
        torch.testing.assert_close(model(feats, lengths)[0], ref[0], rtol=1e-10, atol=1e-12)


def test_the_cpu_gru_path_with_frozen_layers_and_in_bf16():
    torch.manual_seed(5)
    model = DeepSpeech2(_gru_config(rnn_layers=2)).eval()
    lengths = torch.tensor([40, 17])
    feats, weights = torch.randn(2, 201, 40), torch.randn(2, 20, 29)
    # a frozen first layer (train.py's --freeze-rnn-layers): no gradient for it, the rest as before
    for name, p in model.rnn.named_parameters():
        p.requires_grad_("_l0" not in name)
    fast = _outputs_and_grads(model, feats, lengths, weights)
    model.fast_cpu_gru = False
    ref = _outputs_and_grads(model, feats, lengths, weights)
    for name in ref[2]:
        if "rnn" in name and "_l0" in name:
            assert fast[2][name] is None and ref[2][name] is None, name
        else:
            torch.testing.assert_close(fast[2][name], ref[2][name], rtol=1e-4, atol=1e-6)
    # bf16 autocast (the CPU trainer's precision where the CPU has it): nn.GRU's figures within
    # bf16's rounding
    outs = []
    for flag in (True, False):
        model.fast_cpu_gru = flag
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outs.append(_outputs_and_grads(model, feats, lengths, weights))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=0.05)
    for name, want in outs[1][2].items():
        if want is not None:
            got = outs[0][2][name]
            assert torch.linalg.norm(got - want) <= 0.05 * torch.linalg.norm(want) + 1e-6, name


def test_to_device_puts_cpu_conv_weights_channels_last_with_the_same_maths():
    """DeepSpeech2.to_device("cpu") (loading and the trainer) stores the conv weights
    channels-last, where oneDNN runs them faster: the same parameters, the same outputs and
    gradients up to summation order, and a state dict that saves and loads as before."""
    torch.manual_seed(6)
    cfg = _gru_config(rnn_layers=1)
    placed, plain = DeepSpeech2(cfg), DeepSpeech2(cfg)
    plain.load_state_dict(placed.state_dict())
    assert placed.to_device("cpu") is placed
    for model, channels_last in ((placed, True), (plain, False)):
        w = model.convs[-1][0].weight  # more than one input channel: the layouts differ
        assert w.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert w.is_contiguous() != channels_last
    lengths = torch.tensor([50, 31])
    feats, weights = torch.randn(2, 201, 50), torch.randn(2, 25, 29)
    got = _outputs_and_grads(placed.eval(), feats, lengths, weights)
    want = _outputs_and_grads(plain.eval(), feats, lengths, weights)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-6)
    for name, g in want[2].items():
        torch.testing.assert_close(got[2][name], g, rtol=1e-4, atol=1e-6, msg=name)
    state = placed.state_dict()
    assert all(torch.equal(state[k], v) for k, v in plain.state_dict().items())
    # another device keeps PyTorch's default layout ("meta" stands in for CUDA here)
    placed.to_device("meta")
    assert placed.convs[-1][0].weight.is_contiguous()
    assert placed.convs[-1][0].weight.device.type == "meta"
