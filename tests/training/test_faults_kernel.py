"""The training kernel under faults gives the golden fault model's counts, count for count (the same plan, the
same counts); FP32 gradient bit flips flip exactly the drawn bits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from essop.config import EssopConfig
from essop.golden import fp16 as golden_fp16
from essop.golden.faults import SITES, FaultPlan, opportunities, run_with_faults, sample_plan
from essop.golden.lfsr import period_states
from essop.training import faults
from essop.training.counts import Pairs
from essop.training.layers import EssopUpdate

SEED = 20260101


def _stream(cfg, P, rng):
    x = (np.maximum(rng.standard_normal((P, cfg.cols)), 0) * 2.0 ** rng.integers(-4, 4, (P, 1)))
    d = rng.standard_normal((P, cfg.rows)) * 2.0 ** rng.integers(-12, -4, (P, 1))
    xs = x.astype(np.float16).view(np.uint16)
    ds = d.astype(np.float16).view(np.uint16)
    xs[0, 0] = 0          # a zero element: only a fault makes it count
    return xs, ds


def _kernel_counts(cfg, xs, ds, plan, start_pair=0, block=None):
    """One segment per pair (per_pair) or one for the whole group (block exponents)."""
    P = xs.shape[0]
    if block is None:
        ex = torch.tensor([golden_fp16.vector_exponent(v) for v in xs], dtype=torch.int32)
        ed = torch.tensor([golden_fp16.vector_exponent(v) for v in ds], dtype=torch.int32)
        seg = torch.arange(P + 1)
    else:
        ex, ed = torch.full((P,), block[0], dtype=torch.int32), torch.full((P,), block[1], dtype=torch.int32)
        seg = torch.tensor([0, P])
    x = Pairs.from_rows(torch.from_numpy(xs.view(np.int16)), ex)
    d = Pairs.from_rows(torch.from_numpy(ds.view(np.int16)), ed)
    return faults.faulty_segment_counts(cfg, x, d, torch.arange(P), seg, start_pair, plan, chunk_rows=64)


CONFIGS = {
    "per_pair": EssopConfig(rows=3, cols=5, bl=8, q=4, lfsr_width=8, lfsr_seed_x=0x5A, lfsr_seed_d=0x3C),
    "restart": EssopConfig(rows=4, cols=3, bl=4, q=3, lfsr_width=6, lfsr_seed_x=9, lfsr_seed_d=33,
                           lfsr_restart=True, lfsr_steps=2),
}


class TestKernelEqualsGoldenFaultModel:
    """The torch kernel with a plan == essop.golden.faults.run_with_faults with that plan, pair by pair."""

    @pytest.mark.parametrize("name", list(CONFIGS))
    @pytest.mark.parametrize("sites", [SITES] + [(s,) for s in SITES])
    def test_per_pair_groups(self, name, sites):
        cfg = CONFIGS[name]
        rng = np.random.default_rng(SEED)
        P = 12
        xs, ds = _stream(cfg, P, rng)
        plan = sample_plan(cfg, P, 0.05, sites, rng)
        assert sum(plan.counts()[s] for s in sites) > 0
        ref = run_with_faults(cfg, xs, ds, np.ones(P, bool), plan=plan)
        got = _kernel_counts(cfg, xs, ds, plan)
        assert torch.equal(got, torch.from_numpy(np.stack([g.counts for g in ref])))
        clean = _kernel_counts(cfg, xs, ds, FaultPlan())
        assert not torch.equal(got, clean), "the faults changed no count: the test would not see them"

    def test_later_pairs_of_a_run(self):
        """start_pair k: the plan's cycles count from the call's first pair, the LFSRs from reset."""
        cfg = CONFIGS["per_pair"]
        rng = np.random.default_rng(SEED + 1)
        k, P = 5, 9
        xs, ds = _stream(cfg, k + P, rng)
        plan = sample_plan(cfg, P, 0.03, SITES, rng)
        shifted = FaultPlan(inputs=plan.inputs + [k, 0, 0, 0], lfsr=plan.lfsr + [k * cfg.bl, 0, 0, 0],
                            comparators=plan.comparators + [k * cfg.bl, 0, 0],
                            counters=plan.counters + [k * cfg.bl, 0, 0, 0])
        ref = run_with_faults(cfg, xs, ds, np.ones(k + P, bool), plan=shifted)[k:]
        got = _kernel_counts(cfg, xs[k:], ds[k:], plan, start_pair=k)
        assert torch.equal(got, torch.from_numpy(np.stack([g.counts for g in ref])))

    def test_block_group(self):
        cfg = CONFIGS["per_pair"].replace(scaling="block", acc_depth=12)
        rng = np.random.default_rng(SEED + 2)
        xs, ds = _stream(cfg, 12, rng)
        plan = sample_plan(cfg, 12, 0.02, ("inputs", "lfsr", "comparators"), rng)
        ex, ed = golden_fp16.vector_exponent(xs.ravel()), golden_fp16.vector_exponent(ds.ravel())
        (ref,) = run_with_faults(cfg, xs, ds, np.ones(12, bool) & (np.arange(12) == 11), [ex] * 12, [ed] * 12,
                                 plan)
        got = _kernel_counts(cfg, xs, ds, plan, block=(ex, ed))
        assert torch.equal(got[0], torch.from_numpy(ref.counts))

    def test_flip_onto_the_zero_state(self):
        """Seed 1 flipped at bit 0 in cycle 0: the x generator is stuck at zero, R = 0, every nonzero
        magnitude's comparator says 1 for the rest of the run."""
        cfg = CONFIGS["per_pair"].replace(lfsr_seed_x=1)
        rng = np.random.default_rng(SEED + 3)
        xs, ds = _stream(cfg, 4, rng)
        plan = FaultPlan(lfsr=[[0, 0, 0, 0]])
        ref = run_with_faults(cfg, xs, ds, np.ones(4, bool), plan=plan)
        got = _kernel_counts(cfg, xs, ds, plan)
        assert torch.equal(got, torch.from_numpy(np.stack([g.counts for g in ref])))
        clean = run_with_faults(cfg, xs, ds, np.ones(4, bool))
        assert any(not np.array_equal(a.counts, b.counts) for a, b in zip(ref, clean))

    def test_counter_flips_twice_in_one_pair(self):
        """Two flips of one counter in one pair: the second acts on the value the first left."""
        cfg = CONFIGS["per_pair"]
        rng = np.random.default_rng(SEED + 4)
        xs, ds = _stream(cfg, 2, rng)
        top = cfg.count_width - 1
        plan = FaultPlan(counters=[[1, 2, 4, top], [5, 2, 4, top], [6, 2, 4, 1], [cfg.bl + 3, 0, 0, 0]])
        ref = run_with_faults(cfg, xs, ds, np.ones(2, bool), plan=plan)
        got = _kernel_counts(cfg, xs, ds, plan)
        assert torch.equal(got, torch.from_numpy(np.stack([g.counts for g in ref])))


class TestPlans:
    def test_no_faults_is_the_clean_model(self):
        cfg = CONFIGS["per_pair"]
        xs, ds = _stream(cfg, 6, np.random.default_rng(SEED))
        plan = sample_plan(cfg, 6, 0.0, SITES, np.random.default_rng(0))
        assert len(plan) == 0
        from essop.golden.array import EssopArrayModel
        ref = EssopArrayModel(cfg).run(xs, ds, np.ones(6, bool))
        got = run_with_faults(cfg, xs, ds, np.ones(6, bool), plan=plan)
        assert all(np.array_equal(a.counts, b.counts) and np.array_equal(a.fp16, b.fp16) for a, b in zip(ref, got))

    def test_fault_counts_follow_the_rate(self):
        """Binomial counts: within 5 standard deviations of rate * opportunities, places distinct."""
        cfg = EssopConfig(rows=8, cols=16, bl=16)
        rate = 1e-3
        plan = sample_plan(cfg, 200, rate, SITES, np.random.default_rng(SEED))
        for site in SITES:
            n = opportunities(cfg, 200, site)
            got = plan.counts()[site]
            assert abs(got - rate * n) < 5 * np.sqrt(rate * n), (site, got, rate * n)
            rows = getattr(plan, site)
            assert len(np.unique(rows, axis=0)) == len(rows)
        assert (plan.inputs[:, 2] < np.where(plan.inputs[:, 1] == 0, cfg.cols, cfg.rows)).all()

    def test_same_seed_same_plan(self):
        cfg = CONFIGS["per_pair"]
        a = sample_plan(cfg, 10, 0.05, SITES, np.random.default_rng(7))
        b = sample_plan(cfg, 10, 0.05, SITES, np.random.default_rng(7))
        assert all(np.array_equal(getattr(a, s), getattr(b, s)) for s in SITES)

    def test_bad_arguments(self):
        cfg = CONFIGS["per_pair"]
        with pytest.raises(ValueError, match=r"rate must be a probability in \[0, 1\], not 2"):
            sample_plan(cfg, 4, 2, SITES)
        with pytest.raises(ValueError, match=r"sites must be some of .*not \('wires',\)"):
            sample_plan(cfg, 4, 0.1, ("wires",))
        with pytest.raises(ValueError, match="pairs must be a positive int, not 0"):
            sample_plan(cfg, 0, 0.1)


class TestRefusals:
    def test_native_kernel_refuses_faults(self):
        with pytest.raises(ValueError, match="the native kernel does not inject faults: use backend 'torch' or "
                                             "'auto', not 'native'"):
            EssopUpdate("essop", EssopConfig(), backend="native", faults=faults.FaultSpec(1e-6))

    def test_per_element_refused(self):
        cfg = CONFIGS["per_pair"].replace(sharing="per_element")
        with pytest.raises(ValueError, match="fault injection in the training kernel needs sharing='shared'"):
            faults.check_supported(cfg, FaultPlan())

    @pytest.mark.parametrize("change", [{"rng": "sobol"}, {"rng_shift": True},
                                        {"sharing": "per_element", "element_words": True}])
    def test_other_random_sources_refused(self, change):
        # The generator site is an LFSR state register; a Sobol counter or a shifted pair would be modelled wrong.
        cfg = CONFIGS["per_pair"].replace(**change)
        xs = np.zeros((1, cfg.cols), np.uint16)
        ds = np.zeros((1, cfg.rows), np.uint16)
        for call in (lambda: faults.check_supported(cfg, FaultPlan()),
                     lambda: sample_plan(cfg, 1, 0.0),
                     lambda: run_with_faults(cfg, xs, ds, [True])):
            with pytest.raises(ValueError, match="fault injection models LFSR random numbers without the per-pair "
                                                 "shift or element words, not rng="):
                call()

    def test_counter_faults_need_one_pair_groups(self):
        cfg = CONFIGS["per_pair"].replace(scaling="block", acc_depth=4)
        with pytest.raises(ValueError, match="counter faults in the training kernel need groups of one pair"):
            faults.check_supported(cfg, FaultPlan(counters=[[0, 0, 0, 0]]))

    def test_spec_checks(self):
        with pytest.raises(ValueError, match=r"rate must be a probability in \[0, 1\], not -1"):
            faults.FaultSpec(-1)
        with pytest.raises(ValueError, match="sites must be some of"):
            faults.FaultSpec(0.1, sites="lfsr")


class TestFp32Flips:
    def test_flips_exactly_the_drawn_bits(self):
        t = torch.randn(64, 33)
        out = faults.flip_fp32_bits(t, 1e-2, np.random.default_rng(SEED))
        diff = (t.view(torch.int32) ^ out.view(torch.int32)).numpy().view(np.uint32)
        flipped = int(sum(bin(int(v)).count("1") for v in diff.ravel()))
        # the same draw again: its number of distinct places is the number of flipped bits
        rng = np.random.default_rng(SEED)
        k = int(rng.binomial(t.numel() * 32, 1e-2))
        assert flipped == len(np.unique(rng.integers(0, t.numel() * 32, size=k, dtype=np.int64)))
        assert flipped > 0

    def test_rate_zero_is_identity(self):
        t = torch.randn(10)
        assert torch.equal(faults.flip_fp32_bits(t, 0.0, np.random.default_rng(0)), t)


def test_period_states_start_at_the_seed():
    """The kernel's positions index period_states from the configured seed (a fact _Lfsr relies on)."""
    cfg = CONFIGS["per_pair"]
    assert period_states(cfg.lfsr_taps_x, cfg.lfsr_width, cfg.lfsr_seed_x)[0] == cfg.lfsr_seed_x
