"""DeepSpeech2 acoustic models: conv front end, bidirectional RNN stack, linear CTC head.

The model maps features to per-frame character log-probabilities and nothing else: features,
decoding and plotting live outside it. ``forward`` behaves the same in train and eval mode
(apart from BatchNorm statistics and dropout), and padding in a batch never changes an
utterance's output: every conv output is masked beyond the utterance's length and the RNN runs
on packed sequences (training a GRU on the CPU: :func:`ds2.gru.gru_forward`, the same maths
with a faster backward).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ds2.gru import gru_forward


@dataclass(frozen=True)
class ConvSpec:
    """One 2-D conv over (frequency, time); each tuple is (frequency, time)."""

    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored as ``config.json["model"]``."""

    name: str = "ds2-small"
    n_features: int = 201  # frequency bins of the input spectrogram
    convs: tuple[ConvSpec, ...] = field(default_factory=tuple)
    rnn_type: str = "lstm"  # "lstm" or "gru"
    rnn_layers: int = 2
    rnn_hidden: int = 128  # per direction
    bidirectional: bool = True
    dropout: float = 0.0  # between RNN layers, training only
    vocab_size: int = 29

    def __post_init__(self):
        convs = tuple(c if isinstance(c, ConvSpec) else ConvSpec(**c) for c in self.convs)
        convs = tuple(
            ConvSpec(c.channels, tuple(c.kernel), tuple(c.stride), tuple(c.padding)) for c in convs
        )
        object.__setattr__(self, "convs", convs)
        if self.rnn_type not in ("lstm", "gru"):
            raise ValueError(f"rnn_type must be 'lstm' or 'gru', got {self.rnn_type!r}")

    @property
    def conv_out_features(self) -> int:
        """Frequency bins left after the convs (101 for ds2-small)."""
        f = self.n_features
        for c in self.convs:
            f = (f + 2 * c.padding[0] - c.kernel[0]) // c.stride[0] + 1
        return f

    @property
    def rnn_input_size(self) -> int:
        channels = self.convs[-1].channels if self.convs else 1  # no convs: raw bins go in
        return channels * self.conv_out_features

    @property
    def time_stride(self) -> int:
        """Input feature frames per output frame (2 for both presets)."""
        s = 1
        for c in self.convs:
            s *= c.stride[1]
        return s

    def output_lengths(self, lengths):
        """Exact output frames for ``lengths`` input frames (int or LongTensor): conv formula."""
        for c in self.convs:
            lengths = (lengths + 2 * c.padding[1] - c.kernel[1]) // c.stride[1] + 1
        return lengths

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["convs"] = tuple(ConvSpec(**c) for c in known.get("convs", ()))
        return cls(**known)


PRESETS: dict[str, ModelConfig] = {
    # The lightweight design from the movie-subtitling write-up, with DS2's BatchNorm + Hardtanh.
    "ds2-small": ModelConfig(
        name="ds2-small",
        convs=(
            ConvSpec(16, kernel=(11, 21), stride=(2, 2), padding=(5, 10)),
            ConvSpec(32, kernel=(11, 11), stride=(1, 1), padding=(5, 5)),
        ),
        rnn_type="lstm",
        rnn_layers=2,
        rnn_hidden=128,
    ),
    # DeepSpeech2 paper style: two convs, 5 x 512 bidirectional GRUs.
    "ds2-large": ModelConfig(
        name="ds2-large",
        convs=(
            ConvSpec(32, kernel=(41, 11), stride=(2, 2), padding=(20, 5)),
            ConvSpec(32, kernel=(21, 11), stride=(2, 1), padding=(10, 5)),
        ),
        rnn_type="gru",
        rnn_layers=5,
        rnn_hidden=512,
        dropout=0.1,
    ),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A preset config, optionally with fields replaced: ``preset("ds2-small", vocab_size=40)``."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    return ModelConfig.from_dict({**cfg.to_dict(), **overrides})


def _time_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero every time step beyond each utterance's length. x: (B, C, F, T)."""
    t = torch.arange(x.shape[-1], device=x.device)
    keep = t[None, :] < lengths[:, None].to(x.device)  # (B, T)
    return x * keep[:, None, None, :].to(x.dtype)


class DeepSpeech2(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        convs, in_ch = [], 1
        for c in cfg.convs:
            convs.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, c.channels, c.kernel, c.stride, c.padding, bias=False),
                    nn.BatchNorm2d(c.channels),
                    nn.Hardtanh(0, 20, inplace=True),
                )
            )
            in_ch = c.channels
        self.convs = nn.ModuleList(convs)
        rnn_cls = nn.LSTM if cfg.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            input_size=cfg.rnn_input_size,
            hidden_size=cfg.rnn_hidden,
            num_layers=cfg.rnn_layers,
            bidirectional=cfg.bidirectional,
            batch_first=True,
            dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0,
        )
        n_dir = 2 if cfg.bidirectional else 1
        self.head = nn.Linear(cfg.rnn_hidden * n_dir, cfg.vocab_size)
        self.fast_cpu_gru = True  # False: nn.GRU's own CPU training path (the benchmark's baseline)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        """
        features : torch.Tensor, shape = (batch, n_features, n_frames), zero-padded
        lengths : torch.Tensor, shape = (batch,), valid frames of each utterance

        Returns
        -------
        log_probs : torch.Tensor, shape = (batch, n_out_frames, vocab_size), float32
        out_lengths : torch.Tensor, shape = (batch,), exact valid output frames
        """
        lengths = lengths.to(torch.long).cpu()
        x = features.unsqueeze(1)  # (B, F, T) -> (B, 1, F, T)
        for conv, spec in zip(self.convs, self.cfg.convs):
            x = conv(_time_mask(x, lengths))
            lengths = (lengths + 2 * spec.padding[1] - spec.kernel[1]) // spec.stride[1] + 1
        x = _time_mask(x, lengths)
        b, c, f, t = x.shape
        x = x.permute(0, 3, 1, 2).reshape(b, t, c * f)  # (B, C, F, T) -> (B, T, C*F)
        if self._fast_cpu_gru(x):
            out = gru_forward(self.rnn, x, lengths)  # the same maths, a faster backward
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
            )
            out, _ = self.rnn(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        logits = self.head(out)  # (B, T, 2H) -> (B, T, V)
        return logits.float().log_softmax(dim=-1), lengths

    def to_device(self, device) -> DeepSpeech2:
        """``self.to(device)``, with the conv weights in the layout that device's convolutions run
        fastest in: channels-last on the CPU, where oneDNN then runs the conv stack about 3x as
        fast in inference and a quarter to two fifths faster in training
        (``benchmarks/conv_layout.py``; a whole training step gains a few per cent). CUDA
        keeps PyTorch's default layout. Same parameters, same maths: only the strides change,
        and checkpoints are written contiguous. Call it before an optimizer or DDP takes the
        parameters (it swaps their storage)."""
        device = torch.device(device)
        self.to(device)
        layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        self.convs.to(memory_format=layout)
        return self

    def _fast_cpu_gru(self, x: torch.Tensor) -> bool:
        """Whether the GRU trains on the CPU here: nn.GRU's CPU backward accumulates each weight
        gradient one time step at a time, about half of a CPU training step."""
        return (
            self.fast_cpu_gru
            and isinstance(self.rnn, nn.GRU)
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
            and any(p.requires_grad for p in self.rnn.parameters())
        )

    @property
    def time_stride(self) -> int:
        return self.cfg.time_stride

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
