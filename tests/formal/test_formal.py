# amaranth: UnusedElaboratable=no
"""Formal proofs of the RTL (essop.formal, docs/reliability.md): every proof passes, and broken variants of the
RTL — each a plausible bug — fail the property that should catch them, so the proofs are not vacuous."""
from __future__ import annotations

from contextlib import nullcontext
from unittest import mock

import numpy as np
import pytest
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring

from essop import fp16_format
from essop.config import OUT_EXP_WIDTH
from essop.formal.harness import ArrayHarness, CountToFp16Harness, fp16_table
from essop.formal.proofs import CONFIGS, PROOFS, two_group_depth
from essop.formal.sby import run_sby
from essop.golden import fp16 as golden_fp16
from essop.hdl import bitstreams, cell_grid, count_to_fp16
from essop.hdl.array import EssopArray
from essop.hdl.cell import Cell
from essop.hdl.lfsr import Lfsr

pytestmark = pytest.mark.formal


@pytest.mark.parametrize("proof", PROOFS, ids=[p.name for p in PROOFS])
def test_proof(proof, tmp_path):
    """Each property holds (BMC to two groups, k-induction, or cover reached)."""
    result = run_sby(proof.harness(), tmp_path / proof.name, mode=proof.mode, depth=proof.depth)
    assert result.status == "PASS", f"{proof.name}: {result.status} {result.failed}\n{result.log[-4000:]}"


# ---- the references the proofs use ------------------------------------------------------------------------
def test_fp16_table_is_the_golden_models_conversion():
    """The converter's reference (NumPy's float16 cast) and the golden model's count_to_fp16 agree on every
    count of 5 bits at every exponent of the port."""
    table = fp16_table(5, OUT_EXP_WIDTH)
    counts = np.arange(-16, 16)
    for e in range(-(1 << (OUT_EXP_WIDTH - 1)), 1 << (OUT_EXP_WIDTH - 1)):
        assert np.array_equal(golden_fp16.count_to_fp16(counts, e), [table[int(c), e] for c in counts]), e


def test_harness_checks_its_groups():
    with pytest.raises(ValueError, match=r"groups must be some of \['counters', 'flags', 'lfsr', 'streams'\], "
                                         r"not \('fifo',\)"):
        ArrayHarness(CONFIGS["A"], ("fifo",))
    with pytest.raises(TypeError, match="cfg must be an EssopConfig, not 3"):
        ArrayHarness(3)


# ---- broken variants ---------------------------------------------------------------------------------------
class NeverClearedCell(Cell):
    """Bug: the counter ignores the read-out shift, so it is never cleared between groups."""

    def elaborate(self, platform):
        m = Module()
        count = Signal(self.count.shape())
        hit = self.x & self.d
        with m.If(self.en & hit):
            m.d.sync += count.eq(count + 1 - 2 * (self.sign_x ^ self.sign_d))
        m.d.comb += self.count.eq(count)
        return m


class NoFeedbackLfsr(Lfsr):
    """Bug: the feedback is lost, the register only shifts: ones leave it and zeros come in."""

    def elaborate(self, platform):
        m = Module()
        state = Signal(self.width, init=self.seed)
        with m.If(self.restart):
            m.d.sync += state.eq(self.seed)
        with m.Elif(self.en):
            m.d.sync += state.eq(state << self.steps)
        m.d.comb += [self.o_state.eq(state), self.o_rand.eq(state[:self.out_width])]
        return m


class IgnoresReady(wiring.Component):
    """Bug: the output stage sees o_ready always high, so rows move on whether or not they were taken."""

    def __init__(self, cfg):
        self.inner = EssopArray(cfg)
        super().__init__(dict(self.inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for name, member in self.inner.signature.members.items():
            if name == "o_ready":
                m.d.comb += inner.o_ready.eq(1)
            elif member.flow == wiring.In:
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(inner, name))
        return m


class StickyDropped(count_to_fp16.NormalisedToFp16):
    """Bug: rounding ignores the sticky bits (a tie is assumed whenever the guard bit is set), so values just
    above a tie round to even instead of up."""

    def elaborate(self, platform):
        m = Module()
        i = self.i_norm
        guard_bits = self.count_width + 1
        aligned = Signal(self.count_width + fp16_format.FRAC_WIDTH + guard_bits)
        m.d.comb += aligned.eq(Cat(Const(0, fp16_format.FRAC_WIDTH + guard_bits), i.mag) >> i.amount)
        kept = aligned[guard_bits:]
        round_up = aligned[guard_bits - 1] & kept[0]
        sig = Signal(fp16_format.FRAC_WIDTH + 2)
        m.d.comb += sig.eq(kept + round_up)
        packed = Signal(fp16_format.WIDTH)
        m.d.comb += packed.eq(Cat(Const(0, fp16_format.FRAC_WIDTH), i.e_field - 1) + sig)
        with m.If(i.poison):
            m.d.comb += self.o_bits.eq(fp16_format.NAN16)
        with m.Elif(i.zero):
            m.d.comb += self.o_bits.eq(0)
        with m.Elif(i.overflow | (packed >= fp16_format.INF16)):
            m.d.comb += self.o_bits.eq(Cat(Const(fp16_format.INF16, fp16_format.SIGN_SHIFT), i.neg))
        with m.Else():
            m.d.comb += self.o_bits.eq(Cat(packed[:fp16_format.SIGN_SHIFT], i.neg))
        return m


#: Four groups of configuration A: a never-cleared counter needs more products than two groups' bits give.
_FOUR_GROUPS = 2 * two_group_depth(CONFIGS["A"])
BROKEN = {
    # name: (what to patch, harness, BMC depth, the property that must catch it)
    "counter-never-cleared": (
        (cell_grid, "Cell", NeverClearedCell),
        lambda: ArrayHarness(CONFIGS["A"], ("counters",), covers=False), _FOUR_GROUPS,
        "counter within +-BL*acc_depth"),
    "lfsr-without-feedback": (
        (bitstreams, "Lfsr", NoFeedbackLfsr),
        lambda: ArrayHarness(CONFIGS["A"], ("lfsr",), covers=False), _FOUR_GROUPS,
        "no LFSR state is zero"),
    "output-ignores-ready": (
        None,
        lambda: ArrayHarness(CONFIGS["A"], ("streams",), array=IgnoresReady, covers=False), _FOUR_GROUPS,
        "hold until it is taken"),
    "rounding-without-sticky": (
        (count_to_fp16, "NormalisedToFp16", StickyDropped),
        lambda: CountToFp16Harness(5), 1,
        "count-to-FP16 equals NumPy's float16 of count * 2**E"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_variant_fails(name, tmp_path):
    """A broken RTL variant fails its property with a counterexample (the proofs can fail)."""
    patch, harness, depth, expected = BROKEN[name]
    with mock.patch.object(*patch) if patch else nullcontext():
        result = run_sby(harness(), tmp_path / name, mode="bmc", depth=depth)
    assert result.status == "FAIL", f"{name}: {result.status}\n{result.log[-3000:]}"
    assert any(expected in message for message in result.failed), result.failed
    assert (tmp_path / name / "proof" / "engine_0" / "trace.vcd").exists()
