"""Fault model of the ESSOP array (docs/reliability.md): transient single-bit upsets, and the golden model
of an array that suffers them.

A `FaultPlan` lists explicit faults, each a bit that flips once, at one of four sites:

- inputs (pair p, side, element k, bit b): bit b of the FP16 pattern of x_k (side 0) or delta_k (side 1), in
  the load buffer, after the pair's exponent was taken (per_pair: from the clean patterns) and before the
  magnitudes are shifted: the flipped pattern is decoded (it may saturate, or become Inf/NaN and poison);
- lfsr (cycle t, side, generator g, bit b): bit b of generator g's state at the start of bitstream cycle t,
  before R(t) is read; R(t) and every later state follow from the flipped state (until a restart reloads the
  seed); a flip onto the zero state leaves it stuck at zero;
- comparators (cycle t, side, element k): X_k(t) or D_k(t), in cycle t only;
- counters (cycle t, row i, col j, bit b): bit b of counter C_ij (count_width-bit two's complement) at the
  start of cycle t, before cycle t's product is counted; counting then goes on modulo 2**count_width.

Cycles are bitstream cycles counted from the first pair of the stream the plan is drawn for (pair p has cycles
p * BL .. p * BL + BL - 1). `sample_plan` draws a plan where every bit of every site flips independently with
probability `rate` per opportunity (per pair for the inputs, per bitstream cycle for the others), from a
seeded NumPy generator; `run_with_faults` is the array under a plan, cycle by cycle, written from the spec
like the rest of the golden model. The training kernel (essop.training.faults) and the RTL under cocotb
(essop.sim.tb_faults) take the same plans and must give the same counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from essop import fp16_format
from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import GroupResult, _check_pairs, _group_exponents, group_result
from essop.golden.lfsr import Lfsr

__all__ = ["SITES", "FaultPlan", "check_source", "opportunities", "sample_plan", "run_with_faults"]

SITES = ("inputs", "lfsr", "comparators", "counters")
#: Columns of each site's fault array.
COLUMNS = {
    "inputs": ("pair", "side", "element", "bit"),
    "lfsr": ("cycle", "side", "generator", "bit"),
    "comparators": ("cycle", "side", "element"),
    "counters": ("cycle", "row", "col", "bit"),
}


def _empty(site):
    return np.zeros((0, len(COLUMNS[site])), dtype=np.int64)


@dataclass(frozen=True)
class FaultPlan:
    """Explicit faults, one int64 row each (columns: COLUMNS[site]), in any order (each place at most once)."""
    inputs: np.ndarray = field(default_factory=lambda: _empty("inputs"))
    lfsr: np.ndarray = field(default_factory=lambda: _empty("lfsr"))
    comparators: np.ndarray = field(default_factory=lambda: _empty("comparators"))
    counters: np.ndarray = field(default_factory=lambda: _empty("counters"))

    def __post_init__(self):
        for site in SITES:
            arr = np.asarray(getattr(self, site), dtype=np.int64).reshape(-1, len(COLUMNS[site]))
            object.__setattr__(self, site, arr)

    def __len__(self) -> int:
        return sum(len(getattr(self, s)) for s in SITES)

    def counts(self) -> dict[str, int]:
        return {s: len(getattr(self, s)) for s in SITES}


def _sizes(cfg: EssopConfig, pairs: int) -> dict[str, tuple[int, ...]]:
    """The mixed radix of each site's opportunities (one digit per column of COLUMNS)."""
    cycles = pairs * cfg.bl
    gens = 1 if cfg.sharing == "shared" else max(cfg.rows, cfg.cols)
    width = fp16_format.WIDTH
    return {
        # side 0 (x) has cols elements, side 1 (delta) rows: drawn over max(rows, cols) and filtered
        "inputs": (pairs, 2, max(cfg.rows, cfg.cols), width),
        "lfsr": (cycles, 2, gens, cfg.lfsr_width),
        "comparators": (cycles, 2, max(cfg.rows, cfg.cols)),
        "counters": (cycles, cfg.rows, cfg.cols, cfg.count_width),
    }


def _valid(cfg: EssopConfig, site: str, rows: np.ndarray) -> np.ndarray:
    """Rows that name a real element or generator of their side (the radix above is the larger side's)."""
    if site == "counters" or len(rows) == 0:
        return np.ones(len(rows), dtype=bool)
    side, k = rows[:, 1], rows[:, 2]
    if site == "lfsr":
        if cfg.sharing == "shared":
            return k == 0
        return np.where(side == 0, k < cfg.cols, k < cfg.rows)
    return np.where(side == 0, k < cfg.cols, k < cfg.rows)


def opportunities(cfg: EssopConfig, pairs: int, site: str) -> int:
    """How many bits of `site` could flip over `pairs` pairs: the expected number of faults is rate times it."""
    per = {"inputs": pairs * fp16_format.WIDTH * (cfg.rows + cfg.cols),
           "lfsr": pairs * cfg.bl * cfg.lfsr_width * cfg.n_generators,
           "comparators": pairs * cfg.bl * (cfg.rows + cfg.cols),
           "counters": pairs * cfg.bl * cfg.rows * cfg.cols * cfg.count_width}
    return per[site]


def sample_plan(cfg: EssopConfig, pairs: int, rate: float, sites=SITES, rng: np.random.Generator | None = None,
                ) -> FaultPlan:
    """Every bit of every site in `sites` flips with probability `rate` per opportunity, independently: the
    number of faults is binomial, their places uniform and distinct."""
    if not isinstance(cfg, EssopConfig):
        raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
    if isinstance(pairs, bool) or not isinstance(pairs, (int, np.integer)) or pairs < 1:
        raise ValueError(f"pairs must be a positive int, not {pairs!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"rate must be a probability in [0, 1], not {rate!r}")
    unknown = [s for s in sites if s not in SITES]
    if unknown or isinstance(sites, str):
        raise ValueError(f"sites must be some of {SITES}, not {sites!r}")
    check_source(cfg)
    rng = np.random.default_rng() if rng is None else rng
    plan = {}
    for site, radix in _sizes(cfg, int(pairs)).items():
        if site not in sites or rate == 0:
            continue
        k = int(rng.binomial(opportunities(cfg, int(pairs), site), rate))
        total = int(np.prod(radix, dtype=object))
        chosen = np.zeros(0, dtype=np.int64)
        while len(chosen) < k:   # distinct places of the real sites, drawn over the radix
            idx = rng.integers(0, total, size=k - len(chosen) + k // 1000 + 8, dtype=np.int64)
            idx = idx[_valid(cfg, site, np.stack(np.unravel_index(idx, radix), axis=1))]
            chosen = np.sort(np.concatenate([chosen, idx]))
            chosen = chosen[np.concatenate([[True], chosen[1:] != chosen[:-1]])]
        if len(chosen) > k:
            chosen = np.sort(rng.choice(chosen, size=k, replace=False))
        rows = np.stack(np.unravel_index(chosen, radix), axis=1).astype(np.int64).reshape(-1, len(radix))
        plan[site] = rows
    return FaultPlan(**plan)


def _wrap(v, width: int):
    """v (an int or an integer array) as width-bit two's complement numbers."""
    half = 1 << (width - 1)
    return ((v + half) % (1 << width)) - half


def check_source(cfg: EssopConfig) -> None:
    """The fault model's generator site is an LFSR state register: other random-number sources are refused."""
    if cfg.rng != "lfsr" or cfg.rng_shift or cfg.element_words:
        raise ValueError(f"fault injection models LFSR random numbers without the per-pair shift or element "
                         f"words, not rng={cfg.rng!r} with rng_shift={cfg.rng_shift!r}, "
                         f"element_words={cfg.element_words!r}")


def run_with_faults(cfg: EssopConfig, xs, ds, last, exp_x=None, exp_d=None, plan: FaultPlan | None = None
                    ) -> list[GroupResult]:
    """The stream `EssopArrayModel(cfg).run` takes (from reset), cycle by cycle, with the faults of `plan`."""
    if not isinstance(cfg, EssopConfig):
        raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
    check_source(cfg)
    plan = FaultPlan() if plan is None else plan
    xs, ds = _check_pairs(cfg, xs, ds)
    xs, ds = xs.copy(), ds.copy()
    clean_x, clean_d = xs.copy(), ds.copy()
    for p, side, k, b in plan.inputs:
        target = xs if side == 0 else ds
        if p < len(target) and k < target.shape[1]:
            target[p, k] ^= np.uint16(1 << b)
    last = np.asarray(last, dtype=bool)
    n, m, q, bl, cw = cfg.cols, cfg.rows, cfg.q, cfg.bl, cfg.count_width
    gens = {0: [Lfsr(cfg.lfsr_taps_x, cfg.lfsr_width, s) for s in cfg.lfsr_seeds_x],
            1: [Lfsr(cfg.lfsr_taps_d, cfg.lfsr_width, s) for s in cfg.lfsr_seeds_d]}
    seeds = {0: cfg.lfsr_seeds_x, 1: cfg.lfsr_seeds_d}
    by_cycle = {site: {} for site in ("lfsr", "comparators", "counters")}
    for site in by_cycle:
        for row in getattr(plan, site):
            by_cycle[site].setdefault(int(row[0]), []).append(tuple(int(v) for v in row[1:]))
    results, start = [], 0
    for p_end in range(len(xs)):
        if not (last[p_end] or p_end - start + 1 == cfg.acc_depth or p_end == len(xs) - 1):
            continue
        group = range(start, p_end + 1)
        ex, ed = _group_exponents(cfg, clean_x[start:], clean_d[start:],
                                  None if exp_x is None else exp_x[start], None if exp_d is None else exp_d[start])
        counts = np.zeros((m, n), dtype=np.int64)
        poison_rows, poison_cols, saturated = np.zeros(m, bool), np.zeros(n, bool), False
        for p in group:
            if cfg.scaling == "per_pair":   # each pair its own group: exponents of its clean patterns
                ex, ed = fp16.vector_exponent(clean_x[p]), fp16.vector_exponent(clean_d[p])
            a, sx, nfx, satx = fp16.to_magnitudes(xs[p], ex, q)
            b, sd, nfd, satd = fp16.to_magnitudes(ds[p], ed, q)
            poison_cols |= nfx
            poison_rows |= nfd
            saturated |= bool(satx.any() or satd.any())
            down = (sd[:, None] ^ sx[None, :]) == 1
            for c in range(bl):
                t = p * bl + c
                for side, g, bit in by_cycle["lfsr"].get(t, ()):
                    gens[side][g].state ^= 1 << bit
                rx = np.array([g.state & ((1 << q) - 1) for g in gens[0]], dtype=np.int64)
                rd = np.array([g.state & ((1 << q) - 1) for g in gens[1]], dtype=np.int64)
                X = (rx < a).astype(np.int64)          # one R for all columns when shared (broadcast)
                D = (rd < b).astype(np.int64)
                for side, k in by_cycle["comparators"].get(t, ()):
                    if side == 0:
                        X[k] ^= 1
                    else:
                        D[k] ^= 1
                for i, j, bit in by_cycle["counters"].get(t, ()):
                    counts[i, j] = _wrap(counts[i, j] ^ (1 << bit), cw)
                hit = D[:, None] & X[None, :]
                counts = _wrap(counts + np.where(down, -hit, hit), cw)
                for side in (0, 1):
                    for g, seed in zip(gens[side], seeds[side]):
                        if cfg.lfsr_restart and c == bl - 1:
                            g.state = seed
                        else:
                            g.leap(cfg.steps_per_cycle)
        results.append(group_result(cfg, counts, ex, ed, poison_rows,
                                    poison_cols, saturated, len(group)))
        start = p_end + 1
    return results
