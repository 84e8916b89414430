"""Bitstream generators of the ESSOP array (spec sections 4, 5): LFSR random numbers through comparators.

Each x and delta element has a comparator, bit = R < a. The comparators share the LFSRs (two for the whole
array, one per side) or, per_element, each has its own. A pair's bitstreams last BL cycles, counted here.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.config import EssopConfig
from essop.hdl.cell import Comparator
from essop.hdl.lfsr import Lfsr

__all__ = ["BitstreamGenerators"]


class BitstreamGenerators(wiring.Component):
    """The bitstreams X_j (``o_bit_x``, cols bits) and D_i (``o_bit_d``, rows bits) of the pair whose q-bit
    magnitudes are on ``i_mag_x``, ``i_mag_d``.

    A bitstream cycle (``o_en``) is a cycle with a pair offered (``i_pair_valid``) and no ``i_hold`` (the counters
    are being read out): the LFSRs advance only then. ``o_first`` and ``o_done`` mark a pair's first and last
    (the BL-th) bitstream cycle; on the last one, with ``lfsr_restart``, the LFSRs reload their seeds.

    ``src_loc_at``: as for Amaranth's own constructors (see InputStage).
    """

    def __init__(self, cfg, *, src_loc_at=0):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        self._cfg = cfg
        n, m, q = cfg.cols, cfg.rows, cfg.q
        super().__init__({
            "i_pair_valid": In(1),
            "i_hold": In(1),
            "i_mag_x": In(q * n),
            "i_mag_d": In(q * m),
            "o_en": Out(1),
            "o_first": Out(1),
            "o_done": Out(1),
            "o_bit_x": Out(n),
            "o_bit_d": Out(m),
        }, src_loc_at=1 + src_loc_at)

    @property
    def config(self) -> EssopConfig:
        return self._cfg

    @property
    def cycles_per_pair(self) -> int:
        """Bitstream cycles of one pair: BL."""
        return self._cfg.bl

    @property
    def latency(self) -> int:
        """Cycles from a pair offered with no hold to its first bitstream cycle: 0, the comparators read the
        LFSRs' registers and the offered magnitudes directly."""
        return 0

    def elaborate(self, platform):
        cfg = self._cfg
        q, bl = cfg.q, cfg.bl
        m = Module()

        t = Signal(range(bl), name="cycle")
        en = self.i_pair_valid & ~self.i_hold
        done = en & (t == bl - 1)
        with m.If(en):
            m.d.sync += t.eq(t + 1)
        m.d.comb += [self.o_en.eq(en), self.o_first.eq(en & (t == 0)), self.o_done.eq(done)]

        def generators(side, taps, seeds):
            gens = []
            for k, seed in enumerate(seeds):
                gen = Lfsr(taps, cfg.lfsr_width, seed, steps=cfg.steps_per_cycle, out_width=q)
                m.submodules[f"lfsr_{side}_{k}"] = gen
                m.d.comb += gen.en.eq(en)
                if cfg.lfsr_restart:
                    m.d.comb += gen.restart.eq(done)
                gens.append(gen)
            return gens

        def comparators(side, gens, mags, bits):
            for k in range(len(bits)):
                cmp = Comparator(q)
                m.submodules[f"cmp_{side}_{k}"] = cmp
                m.d.comb += [
                    cmp.i_rand.eq(gens[k if len(gens) > 1 else 0].o_rand),
                    cmp.i_mag.eq(mags.word_select(k, q)),
                    bits[k].eq(cmp.o_bit),
                ]

        comparators("x", generators("x", cfg.lfsr_taps_x, cfg.lfsr_seeds_x), self.i_mag_x, self.o_bit_x)
        comparators("d", generators("d", cfg.lfsr_taps_d, cfg.lfsr_seeds_d), self.i_mag_d, self.o_bit_d)
        return m
