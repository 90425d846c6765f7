"""A bidirectional, multi-layer GRU for training on the CPU, with the weights of an ``nn.GRU``.

PyTorch's CPU GRU records every time step's gates as separate autograd nodes, so its backward
accumulates each weight gradient one step at a time (a small matrix product and a full-size
add per step and layer). Here each layer-direction is one autograd node: the forward keeps the
gates, the backward walks back through time computing only the hidden-state gradient, and the
weight gradients come at the end from one large matrix product over all steps, as cuDNN does.
Same maths as ``nn.GRU`` over a packed batch (the state stops at each sequence's end; the
reverse direction starts at its last valid step; padding reads zeros), same parameters.

Used by :class:`ds2.model.DeepSpeech2` in training on the CPU; inference and CUDA keep
``nn.GRU`` (cuDNN handles packed batches itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _mm_dtype(state_dtype: torch.dtype) -> torch.dtype:
    """The dtype the recurrent products run in: autocast's (bf16) when it is on, else the
    state's."""
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return state_dtype


class _GRURecurrence(torch.autograd.Function):
    """The states h_t = GRU(xp_t, h_{t-1}), h_0 = 0, (T, B, H), of inputs already projected by
    W_ih (xp = x W_ih^T + b_ih, (T, B, 3H)). Only what depends on the previous step runs inside
    the time loops; the rest is done on all steps at once.

    No masking is needed inside: padding comes after every sequence's valid steps (the reverse
    direction reverses each sequence within its length first), so the states past a sequence's
    end never reach its valid outputs, and ``gru_forward`` zeroes their outputs (and with them
    every gradient that would flow back from there)."""

    @staticmethod
    def forward(ctx, xp, w_hh, b_hh, mm_dtype):
        steps, batch, hidden = xp.shape[0], xp.shape[1], xp.shape[-1] // 3
        w = w_hh.t().to(mm_dtype)  # (H, 3H)
        fused = mm_dtype == xp.dtype  # no autocast: W_hh h + b_hh in one product
        # Every step writes into these in place: no per-step tensors to stack at the end.
        h_all = xp.new_empty(steps + 1, batch, hidden)  # h_0, then each step's state
        h_all[0].zero_()
        gates = xp.new_empty(steps, batch, 3 * hidden)  # r, z and W_hn h + b_hn per step
        n_all = xp.new_empty(steps, batch, hidden)
        for t in range(steps):
            x_t, h, g = xp[t], h_all[t], gates[t]
            if fused:
                torch.addmm(b_hh, h, w, out=g)
            else:
                g.copy_(torch.mm(h.to(mm_dtype), w)).add_(b_hh)
            rz, h_n = g[:, : 2 * hidden], g[:, 2 * hidden :]
            rz.add_(x_t[:, : 2 * hidden]).sigmoid_()
            n = torch.addcmul(x_t[:, 2 * hidden :], rz[:, :hidden], h_n, out=n_all[t]).tanh_()
            torch.lerp(n, h, rz[:, hidden:], out=h_all[t + 1])  # (1 - z) n + z h
        ctx.save_for_backward(w_hh, h_all, gates, n_all)
        ctx.mm_dtype, ctx.fused = mm_dtype, fused
        return h_all[1:]

    @staticmethod
    def backward(ctx, grad_out):
        w_hh, h_all, gates, n = ctx.saved_tensors
        hidden = n.shape[-1]
        h_prev = h_all[:-1]
        r, z, hp_n = gates[..., :hidden], gates[..., hidden : 2 * hidden], gates[..., 2 * hidden :]
        w = w_hh.to(ctx.mm_dtype)  # (3H, H)
        go = grad_out.to(h_all.dtype)
        # the step-local derivatives, for all steps at once (a_* are the gates' pre-activations)
        dan_dh = (1 - z) * (1 - n * n)  # n = tanh(a_n), a_n = x_n + r h_n; h = (1 - z) n + z h'
        daz_dh = (h_prev - n) * (z * (1 - z))  # z = sigmoid(a_z)
        dar_dan = hp_n * (r * (1 - r))  # r = sigmoid(a_r)
        # Each step writes its gradients in place: d_hp, the gradient of W_hh h + b_hh, and
        # da_n, of a_n (whose x part differs from the W_hh part by the factor r).
        d_hp = torch.empty_like(gates)  # (T, B, 3H)
        d_an = torch.empty_like(n)  # (T, B, H)
        dh = torch.zeros_like(h_all[0])
        for t in range(go.shape[0] - 1, -1, -1):
            dh = dh + go[t]
            da_n = torch.mul(dh, dan_dh[t], out=d_an[t])
            g = d_hp[t]
            torch.mul(da_n, dar_dan[t], out=g[:, :hidden])
            torch.mul(dh, daz_dh[t], out=g[:, hidden : 2 * hidden])
            torch.mul(da_n, r[t], out=g[:, 2 * hidden :])
            # to h_{t-1}: directly through z, and through W_hh
            if ctx.fused:
                dh = torch.addmm(dh * z[t], g, w)
            else:
                dh = dh * z[t] + torch.mm(g.to(ctx.mm_dtype), w).to(dh.dtype)
        d_xp = torch.cat([d_hp[..., : 2 * hidden], d_an], dim=-1)
        d_w = d_b = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:  # not for a frozen layer
            flat = d_hp.reshape(-1, 3 * hidden)
            d_w = torch.mm(flat.t().to(ctx.mm_dtype), h_prev.reshape(-1, hidden).to(ctx.mm_dtype))
            d_w = d_w.to(w_hh.dtype)  # the sum over all steps, in one product
            d_b = flat.sum(0).to(w_hh.dtype)
        return d_xp, d_w, d_b, None


def _reversal(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """The (T, B) time index that reverses each sequence's first ``lengths[b]`` steps and leaves
    its padding in place: an involution, so it also undoes itself."""
    t = torch.arange(steps)[:, None]
    return torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _reorder(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (T, B, F) reordered in time by ``index`` (T, B)."""
    return x.gather(0, index[..., None].expand_as(x))


def gru_forward(rnn: torch.nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``rnn`` (an ``nn.GRU``, batch_first) over x (B, T, I) with valid ``lengths`` (B,): the
    outputs (B, T, H * directions), zero past each length, as ``nn.GRU`` on a packed batch and
    ``pad_packed_sequence`` give them."""
    steps = x.shape[1]
    lengths = lengths.to(torch.long).clamp(min=1)
    state_dtype = torch.promote_types(x.dtype, torch.float32)  # fp32 under autocast, or fp64
    mm_dtype = _mm_dtype(state_dtype)
    mask = (torch.arange(steps)[:, None] < lengths[None, :]).to(state_dtype).unsqueeze(-1)
    reverse = _reversal(lengths, steps) if rnn.bidirectional else None  # one for every layer
    layer_in = x.transpose(0, 1)  # (T, B, I)
    directions = ["", "_reverse"] if rnn.bidirectional else [""]
    for layer in range(rnn.num_layers):
        outs = []
        for suffix in directions:
            w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
            b_ih = getattr(rnn, f"bias_ih_l{layer}{suffix}")
            w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}")
            b_hh = getattr(rnn, f"bias_hh_l{layer}{suffix}")
            xin = _reorder(layer_in, reverse) if suffix else layer_in
            xp = F.linear(xin, w_ih, b_ih).to(state_dtype)  # all steps at once (autocast applies)
            out = _GRURecurrence.apply(xp, w_hh, b_hh.to(state_dtype), mm_dtype) * mask
            outs.append(_reorder(out, reverse) if suffix else out)
        layer_in = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        if layer < rnn.num_layers - 1 and rnn.dropout > 0:
            layer_in = F.dropout(layer_in, rnn.dropout, rnn.training)
    return layer_in.transpose(0, 1)
