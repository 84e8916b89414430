"""Fault injection in ESSOP training (docs/reliability.md): the golden fault model (essop.golden.faults) in
the PyTorch counting kernel, FP32 gradient words with the same bit-flip rate for comparison, and the two
measurements `essop faults` makes of them.

- `faulty_segment_counts`: the torch backend's counts (training/counts.py: explicit int8 bitstreams of every
  (pair, cycle) row, contracted by an integer GEMM) with the faults of a `FaultPlan` — input patterns flipped
  before the magnitudes, LFSR states jumping along the m-sequence (a flipped state is another state of the
  same sequence, or the zero state), comparator bits flipped, counters flipped and then counting on modulo
  2**count_width. Equal to `essop.golden.faults.run_with_faults` count for count
  (tests/training/test_faults_kernel.py). Shared generators; counter faults in groups of one pair (per_pair
  scaling) — a layer's group otherwise spans a whole minibatch and its counters' partial values would need
  every earlier pair of it.
- `FaultSpec`: rate, sites and seed of the faults a training run suffers; each layer call draws its own plan
  from a generator seeded by (seed, layer, pairs processed so far), so a run is reproducible.
- `flip_fp32_bits`: the same rate of flips in the bits of FP32 gradient words (`attach_fp32_faults` hooks it
  onto every weight gradient of an FP32 run).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from essop.config import EssopConfig
from essop.golden.faults import SITES, FaultPlan, check_source, sample_plan
from essop.golden.lfsr import period_states
from essop.training.counts import Pairs, _gemm
from essop.training.fp16_tensors import magnitudes

__all__ = ["FaultSpec", "faulty_segment_counts", "flip_fp32_bits", "attach_fp32_faults", "layer_plan"]


@dataclass(frozen=True)
class FaultSpec:
    """Faults of a training run: every bit of the named sites flips with probability `rate` per opportunity."""
    rate: float
    sites: tuple[str, ...] = SITES
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be a probability in [0, 1], not {self.rate!r}")
        if isinstance(self.sites, str) or not self.sites or any(s not in SITES for s in self.sites):
            raise ValueError(f"sites must be some of {SITES}, not {self.sites!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, not {self.seed!r}")


def layer_plan(spec: FaultSpec, cfg: EssopConfig, pairs: int, layer_name: str, start_pair: int) -> FaultPlan:
    """The plan of one layer call: its own generator, from (seed, layer, pairs processed before)."""
    rng = np.random.default_rng([spec.seed, zlib.crc32(layer_name.encode()), int(start_pair)])
    return sample_plan(cfg, pairs, spec.rate, spec.sites, rng)


def check_supported(cfg: EssopConfig, plan: FaultPlan) -> None:
    check_source(cfg)
    if cfg.sharing != "shared":
        raise ValueError(f"fault injection in the training kernel needs sharing='shared', not {cfg.sharing!r}")
    if len(plan.counters) and cfg.acc_depth != 1:
        raise ValueError(f"counter faults in the training kernel need groups of one pair (per_pair scaling, "
                         f"acc_depth 1), not acc_depth={cfg.acc_depth!r}")


class _Lfsr:
    """One shared generator's single-shift position at every local cycle u (pair p, cycle c: u = p*BL + c),
    with the plan's flips: each flip moves the state to another point of the m-sequence (or to zero)."""

    def __init__(self, cfg: EssopConfig, side: int, start_pair: int, faults: np.ndarray, device):
        taps = cfg.lfsr_taps_x if side == 0 else cfg.lfsr_taps_d
        seed = cfg.lfsr_seed_x if side == 0 else cfg.lfsr_seed_d
        self.cfg, self.start_pair = cfg, start_pair
        self.period = (1 << cfg.lfsr_width) - 1
        states = period_states(tuple(taps), cfg.lfsr_width, seed)
        self.states = torch.as_tensor(states, device=device)
        where = np.zeros(1 << cfg.lfsr_width, dtype=np.int64)
        where[states] = np.arange(self.period)
        mine = faults[faults[:, 1] == side] if len(faults) else faults
        mine = mine[np.argsort(mine[:, 0], kind="stable")] if len(mine) else mine
        # Piece k: from cycle start[k] on (to the end of its pair with restart) the position is the base
        # position plus delta[k]; zero[k]: the state is zero.
        start, delta, zero = [], [], []
        for u, _side, _g, bit in mine:
            u = int(u)
            k = len(start) - 1
            live = k >= 0 and (not cfg.lfsr_restart or start[k] // cfg.bl == u // cfg.bl)
            if live and zero[k]:
                state = 0
            else:
                state = int(states[(self._base(u) + (delta[k] if live else 0)) % self.period])
            flipped = state ^ (1 << int(bit))
            start.append(u)
            zero.append(flipped == 0)
            delta.append(0 if flipped == 0 else int((where[flipped] - self._base(u)) % self.period))
        self.start = torch.tensor(start, dtype=torch.int64, device=device)
        self.delta = torch.tensor(delta, dtype=torch.int64, device=device)
        self.zero = torch.tensor(zero, dtype=torch.bool, device=device)

    def _base(self, u: int) -> int:
        cfg = self.cfg
        t = u % cfg.bl if cfg.lfsr_restart else (self.start_pair * cfg.bl + u)
        return (t * cfg.steps_per_cycle) % self.period

    def numbers(self, u: torch.Tensor) -> torch.Tensor:
        """q-bit R at local cycles u (any shape, int64)."""
        cfg = self.cfg
        t = u % cfg.bl if cfg.lfsr_restart else self.start_pair * cfg.bl + u
        pos = (t * cfg.steps_per_cycle) % self.period
        state = self.states[pos]
        if self.start.numel():
            k = torch.searchsorted(self.start, u, right=True) - 1
            kc = k.clamp(min=0)
            live = k >= 0
            if cfg.lfsr_restart:
                live &= torch.div(self.start[kc], cfg.bl, rounding_mode="floor") == torch.div(u, cfg.bl,
                                                                                              rounding_mode="floor")
            moved = self.states[(pos + self.delta[kc]) % self.period]
            state = torch.where(live, torch.where(self.zero[kc], torch.zeros_like(state), moved), state)
        return state & ((1 << cfg.q) - 1)


def _wrap(v: torch.Tensor, width: int) -> torch.Tensor:
    half = 1 << (width - 1)
    return torch.remainder(v + half, 1 << width) - half


def faulty_segment_counts(cfg: EssopConfig, x: Pairs, d: Pairs, order: torch.Tensor, seg: torch.Tensor,
                          start_pair: int, plan: FaultPlan, chunk_rows: int = 1 << 18) -> torch.Tensor:
    """int64 [segments, m, n]: counts.segment_counts's counts with the faults of `plan` (whose pair and cycle
    numbers are those of this call: pair p is x's and d's pair p, p = 0..P-1)."""
    check_supported(cfg, plan)
    device = x.map16.device
    BL, q = cfg.bl, cfg.q
    n, m = x.length, d.length
    P = x.base.numel()
    lfsr = [_Lfsr(cfg, side, start_pair, plan.lfsr, device) for side in (0, 1)]
    inputs = torch.as_tensor(plan.inputs, device=device)
    comps = torch.as_tensor(plan.comparators, device=device)
    ctrs = torch.as_tensor(plan.counters, device=device)
    seg_list = seg.tolist()
    out = torch.zeros(len(seg_list) - 1, m, n, dtype=torch.int64, device=device)
    slot = torch.full((P,), -1, dtype=torch.int64, device=device)
    step = max(1, chunk_rows // BL)
    cyc = torch.arange(BL, dtype=torch.int64, device=device)
    for s in range(len(seg_list) - 1):
        pairs_s = order[seg_list[s]:seg_list[s + 1]]
        for c0 in range(0, pairs_s.numel(), step):
            pc = pairs_s[c0:c0 + step]
            K = pc.numel()
            slot[pc] = torch.arange(K, device=device)
            sides = []
            for side, pairs, length in ((0, x, n), (1, d, m)):
                rows = pairs.rows(pc)                                           # [K, len] int32 patterns
                if inputs.numel():
                    f = inputs[(inputs[:, 1] == side) & (slot[inputs[:, 0].clamp(max=P - 1)] >= 0)
                               & (inputs[:, 0] < P)]
                    if f.numel():
                        flips = torch.zeros_like(rows)
                        flips.index_put_((slot[f[:, 0]], f[:, 2]), torch.ones_like(f[:, 0], dtype=torch.int32)
                                         << f[:, 3].to(torch.int32), accumulate=True)
                        rows = rows ^ flips
                a, neg, _, _ = magnitudes(rows, pairs.exp[pc, None], q)
                u = pc[:, None] * BL + cyc                                      # [K, BL] local cycles
                R = lfsr[side].numbers(u)
                bits = (R[:, :, None] < a[:, None, :]).to(torch.int8)           # [K, BL, len]
                if comps.numel():
                    f = comps[comps[:, 1] == side]
                    p_f = torch.div(f[:, 0], BL, rounding_mode="floor")
                    f = f[(p_f < P) & (slot[p_f.clamp(max=P - 1)] >= 0)]
                    if f.numel():
                        p_f = torch.div(f[:, 0], BL, rounding_mode="floor")
                        idx = (slot[p_f], f[:, 0] % BL, f[:, 2])
                        bits.index_put_(idx, 1 - bits[idx])
                sign = 1 - 2 * neg.to(torch.int8)                               # [K, len]
                sides.append(bits * sign[:, None, :])
            X, D = sides
            out[s] += _gemm(D.reshape(-1, m).t(), X.reshape(-1, n))
            if ctrs.numel():
                p_f = torch.div(ctrs[:, 0], BL, rounding_mode="floor")
                f = ctrs[(p_f < P) & (slot[p_f.clamp(max=P - 1)] >= 0)]
                if f.numel():
                    out[s] += _counter_faults(cfg, f, slot, X, D, m, n)
            slot[pc] = -1
    return out


def _counter_faults(cfg, f, slot, X, D, m, n) -> torch.Tensor:
    """What flipping counter bits changes in a chunk's counts: per faulted counter (pair, i, j) of a one-pair
    group, wrap(clean + the flips' net change) - clean, the flips applied in cycle order, each to the value
    the counter holds then (partial count + earlier flips, modulo 2**count_width)."""
    BL, cw = cfg.bl, cfg.count_width
    p = torch.div(f[:, 0], BL, rounding_mode="floor")
    c, i, j, bit = f[:, 0] % BL, f[:, 1], f[:, 2], f[:, 3]
    k = slot[p]
    prod = D[k, :, i].to(torch.int64) * X[k, :, j].to(torch.int64)            # [F, BL] signed products
    cyc = torch.arange(BL, device=f.device)
    partial = (prod * (cyc[None, :] < c[:, None])).sum(1)
    full = prod.sum(1)
    # Group the faults by counter; handle the r-th flip of every counter together, r = 0, 1, ...
    key = (p * cfg.rows + i) * cfg.cols + j
    order = torch.argsort(key * BL + c)
    key, partial, full, bit, i, j = key[order], partial[order], full[order], bit[order], i[order], j[order]
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = key[1:] != key[:-1]
    group = torch.cumsum(first.to(torch.int64), 0) - 1
    starts = torch.nonzero(first).flatten()
    rank = torch.arange(key.numel(), device=f.device) - starts[group]
    net = torch.zeros(int(group.max()) + 1, dtype=torch.int64, device=f.device)
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        g = group[sel]
        before = _wrap(partial[sel] + net[g], cw)
        after = _wrap(before ^ (1 << bit[sel]), cw)
        net[g] += after - before
    lead = starts
    change = _wrap(full[lead] + net, cw) - full[lead]
    out = torch.zeros(m, n, dtype=torch.int64, device=f.device)
    out.index_put_((i[lead], j[lead]), change, accumulate=True)
    return out


def flip_fp32_bits(t: torch.Tensor, rate: float, rng: np.random.Generator) -> torch.Tensor:
    """A copy of the float32 tensor `t` with every bit of every word flipped with probability `rate`."""
    if t.dtype != torch.float32:
        raise TypeError(f"t must be a float32 tensor, not {t.dtype}")
    total = t.numel() * 32
    k = int(rng.binomial(total, rate))
    out = t.detach().clone().contiguous()
    if k == 0:
        return out
    places = np.unique(rng.integers(0, total, size=k, dtype=np.int64))
    words = torch.as_tensor(places // 32, device=t.device)
    masks = torch.as_tensor((np.int64(1) << (places % 32)).astype(np.uint32).view(np.int32), device=t.device)
    flat = out.view(-1).view(torch.int32)
    flips = torch.zeros_like(flat)
    flips.index_put_((words,), masks, accumulate=True)   # distinct bits of a word add up to their OR
    flat ^= flips
    return out


def attach_fp32_faults(model: torch.nn.Module, spec: FaultSpec) -> list:
    """Hook `flip_fp32_bits` onto the weight gradient of every Conv2d and Linear of an FP32 run; returns the
    hook handles. Each layer draws from its own generator (seed, layer), call after call."""
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            rng = np.random.default_rng([spec.seed, zlib.crc32(name.encode())])
            handles.append(mod.weight.register_hook(lambda g, rng=rng: flip_fp32_bits(g, spec.rate, rng)))
    return handles
