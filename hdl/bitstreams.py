"""Bitstream generators of the ESSOP array (spec sections 4, 5): random numbers through comparators.

Each x and delta element has a comparator, bit = R < a. The random numbers come from the configured source
(essop.golden.random_sources is their definition): LFSRs shared by a side (two for the whole array), one per
element, or one per side with a constant XOR word per element (element_words); or one Sobol Gray-code counter
whose two dimensions feed the x and delta sides, per_element as constant digital shifts (XOR of a per-element
word). With rng_shift every number of a pair is also XORed with
that pair's word from a shift LFSR advanced once per pair. A pair's bitstreams last BL cycles, counted here.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from essop.hdl.cell import Comparator
from essop.hdl.component import ConfiguredComponent
from essop.hdl.lfsr import Lfsr
from essop.hdl.random_sources import SobolGenerator

__all__ = ["BitstreamGenerators"]


class BitstreamGenerators(ConfiguredComponent):
    """The bitstreams X_j (``o_bit_x``, cols bits) and D_i (``o_bit_d``, rows bits) of the pair whose q-bit
    magnitudes are on ``i_mag_x``, ``i_mag_d``.

    A bitstream cycle (``o_en``) is a cycle with a pair offered (``i_pair_valid``) and no ``i_hold`` (the counters
    are being read out): the generators advance only then. ``o_first`` and ``o_done`` mark a pair's first and last
    (the BL-th) bitstream cycle; on the last one the per-pair shift register advances, and with
    ``lfsr_restart`` every generator returns to its start (seeds, count 0, the shift register's seed).
    """

    def ports(self, cfg):
        n, m, q = cfg.cols, cfg.rows, cfg.q
        return {
            "i_pair_valid": In(1),
            "i_hold": In(1),
            "i_mag_x": In(q * n),
            "i_mag_d": In(q * m),
            "o_en": Out(1),
            "o_first": Out(1),
            "o_done": Out(1),
            "o_bit_x": Out(n),
            "o_bit_d": Out(m),
        }

    @property
    def cycles_per_pair(self) -> int:
        """Bitstream cycles of one pair: BL."""
        return self._cfg.bl

    @property
    def n_generators(self) -> int:
        """Random-number registers: LFSRs (2 shared or with element_words, rows + cols per element) or one Sobol
        counter, plus the per-pair shift register with rng_shift."""
        cfg = self._cfg
        return (cfg.n_generators if cfg.rng == "lfsr" else 1) + int(cfg.rng_shift)

    @property
    def latency(self) -> int:
        """Cycles from a pair offered with no hold to its first bitstream cycle: 0, the comparators read the
        generators' registers and the offered magnitudes directly."""
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

        def lfsrs(side, taps, seeds):
            rands = []
            for k, seed in enumerate(seeds):
                gen = Lfsr(taps, cfg.lfsr_width, seed, steps=cfg.steps_per_cycle, out_width=q)
                m.submodules[f"lfsr_{side}_{k}"] = gen
                m.d.comb += gen.en.eq(en)
                if cfg.lfsr_restart:
                    m.d.comb += gen.restart.eq(done)
                rands.append(gen.o_rand)
            return rands

        if cfg.rng == "lfsr":
            rand_x = lfsrs("x", cfg.lfsr_taps_x, cfg.lfsr_seeds_x)
            rand_d = lfsrs("d", cfg.lfsr_taps_d, cfg.lfsr_seeds_d)
            if cfg.element_words:
                # One LFSR per side; each element's digital shift: XOR with a constant word (inverters).
                rand_x = [rand_x[0] ^ word for word in cfg.rng_words_x]
                rand_d = [rand_d[0] ^ word for word in cfg.rng_words_d]
        else:
            m.submodules.sobol = sobol = SobolGenerator(q, (cfg.sobol_directions_x, cfg.sobol_directions_d))
            m.d.comb += sobol.en.eq(en)
            if cfg.lfsr_restart:
                m.d.comb += sobol.restart.eq(done)
            # Per-element digital shifts: XOR with a constant word (inverters on some bits).
            rand_x = [sobol.o_point[0] ^ word for word in cfg.rng_words_x]
            rand_d = [sobol.o_point[1] ^ word for word in cfg.rng_words_d]

        if cfg.rng_shift:
            # One register holds both sides' words of the current pair: x bits [0, q), delta bits [q, 2q).
            shift = Lfsr(cfg.rng_shift_taps, cfg.rng_shift_width, cfg.rng_shift_seed, steps=cfg.rng_shift_steps)
            m.submodules.pair_shift = shift
            m.d.comb += shift.en.eq(done)
            if cfg.lfsr_restart:
                m.d.comb += shift.restart.eq(done)
            word_x, word_d = shift.o_state[:q], shift.o_state[q:2 * q]
            rand_x = [r ^ word_x for r in rand_x]
            rand_d = [r ^ word_d for r in rand_d]

        def comparators(side, rands, mags, bits):
            for k in range(len(bits)):
                cmp = Comparator(q)
                m.submodules[f"cmp_{side}_{k}"] = cmp
                m.d.comb += [
                    cmp.i_rand.eq(rands[k if len(rands) > 1 else 0]),
                    cmp.i_mag.eq(mags.word_select(k, q)),
                    bits[k].eq(cmp.o_bit),
                ]

        comparators("x", rand_x, self.i_mag_x, self.o_bit_x)
        comparators("d", rand_d, self.i_mag_d, self.o_bit_d)
        return m
