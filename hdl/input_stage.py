"""Input stage of the ESSOP array (spec sections 1-3, 6, 9): the input stream into a double buffer of
vector pairs, FP16 patterns on the way in and q-bit magnitudes on the way out.

    i_x, i_delta --[decoders + first half of the exponent max tree]--> load buffer s1 (FP16 patterns,
                 partial maxima) --[rest of the tree]--> E_x, E_d (in s1, one cycle later)
                 --[decoders + barrel shifters]--> stream buffer s2 (q-bit magnitudes, signs) --> o_*

The exponent max and the shift are in different register stages, and neither half of the max tree is a
path from the input ports through the whole tree, so the stage is no slower than the cells' own path. The two
buffers let the next pair be taken while the current one streams.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from essop.hdl.component import ConfiguredComponent, input_stream_ports
from essop.hdl.fp16_input import ExponentMax, Fp16PartialExponent, Fp16VectorInput, max_depth

__all__ = ["InputStage"]


class _Buffer:
    """A named group of registers holding one vector pair at one pipeline stage, plus its valid bit."""

    def __init__(self, prefix: str, **shapes):
        self.valid = Signal(name=f"{prefix}_valid")
        for name, shape in shapes.items():
            setattr(self, name, Signal(shape, name=f"{prefix}_{name}"))


class InputStage(ConfiguredComponent):
    """Takes vector pairs from the array's input stream (``i_*``, spec section 9) and offers one at a time
    (``o_pair_valid``) as q-bit magnitudes, signs, non-finite bits, the pair's saturated flag, the group's
    exponents E_x, E_d and whether it ends its accumulation group (``o_end``).

    ``i_pair_done`` is the offered pair's last bitstream cycle: the pair is taken, and a pair waiting in the
    load buffer is offered from the next cycle on, with no gap. ``i_ready = ~s1_valid``, a register, not a
    function of ``i_valid``.
    """

    def ports(self, cfg):
        n, m, q = cfg.cols, cfg.rows, cfg.q
        return {
            **input_stream_ports(cfg),
            "o_pair_valid": Out(1),
            "o_mag_x": Out(q * n),
            "o_mag_d": Out(q * m),
            "o_sign_x": Out(n),
            "o_sign_d": Out(m),
            "o_nonfinite_x": Out(n),
            "o_nonfinite_d": Out(m),
            "o_pair_saturated": Out(1),
            "o_exp_x": Out(signed(cfg.exp_port_width)),
            "o_exp_d": Out(signed(cfg.exp_port_width)),
            "o_end": Out(1),
            "i_pair_done": In(1),
        }

    @property
    def exponent_split_levels(self) -> int:
        """per_pair: comparator levels of each exponent max tree between the input ports and the load buffer's
        partial maxima; the other levels run from those registers one cycle later. Half the tree, rounded
        down, because the decoders share the first cycle."""
        return max(max_depth(self._cfg.cols), max_depth(self._cfg.rows)) // 2

    @property
    def latency(self) -> int:
        """Cycles from a pair's transfer into an idle stage to the first cycle it is offered
        (``o_pair_valid``): one cycle in the load buffer (per_pair: a second one while the rest of the exponent
        max trees is registered), one shifting into the stream buffer."""
        return 3 if self._cfg.scaling == "per_pair" else 2

    def elaborate(self, platform):
        cfg = self._cfg
        n, rows, q = cfg.cols, cfg.rows, cfg.q
        m = Module()

        # --- exponents on the way into the load buffer s1 ---
        s1 = _Buffer("s1", bits_x=cfg.x_width, bits_d=cfg.delta_width, exp_x=signed(cfg.exp_port_width),
                     exp_d=signed(cfg.exp_port_width), end=1)
        accept = self.i_valid & self.i_ready
        if cfg.acc_depth > 1:
            in_count = Signal(range(cfg.acc_depth), name="in_count")   # pairs already taken in this group
            first = in_count == 0
            in_end = self.i_last | (in_count == cfg.acc_depth - 1)
            with m.If(accept):
                m.d.sync += in_count.eq(0)
                with m.If(~in_end):
                    m.d.sync += in_count.eq(in_count + 1)
        else:
            in_end = Const(1)
        if cfg.scaling == "per_pair":
            # Decoders and half of each max tree before s1; the rest from s1's partial maxima into s1's
            # E_x, E_d one cycle later (s1_exp_ok), so neither half is a path from the ports through the
            # whole tree.
            levels = self.exponent_split_levels
            m.submodules.part_x = part_x = Fp16PartialExponent(n, levels)
            m.submodules.part_d = part_d = Fp16PartialExponent(rows, levels)
            m.d.comb += [part_x.i_bits.eq(self.i_x), part_d.i_bits.eq(self.i_delta)]
            s1_part_x = Signal(len(part_x.o_partial), name="s1_part_x")
            s1_part_d = Signal(len(part_d.o_partial), name="s1_part_d")
            with m.If(accept):
                m.d.sync += [s1_part_x.eq(part_x.o_partial), s1_part_d.eq(part_d.o_partial)]
            m.submodules.max_x = max_x = ExponentMax(part_x.partial_count)
            m.submodules.max_d = max_d = ExponentMax(part_d.partial_count)
            m.d.comb += [max_x.i_exps.eq(s1_part_x), max_d.i_exps.eq(s1_part_d)]
            # No enable: E follows the partial maxima one cycle behind, and is stale only in the cycle
            # after a transfer.
            s1_exp_ok = Signal(name="s1_exp_ok")
            m.d.sync += [s1.exp_x.eq(max_x.o_max), s1.exp_d.eq(max_d.o_max), s1_exp_ok.eq(~accept)]
        elif cfg.acc_depth == 1:
            exp_x, exp_d = self.i_exp_x, self.i_exp_d
        else:
            # A group's exponents are its first pair's, held for the rest of the group.
            held_x = Signal(signed(cfg.exp_port_width), name="held_exp_x")
            held_d = Signal(signed(cfg.exp_port_width), name="held_exp_d")
            with m.If(accept & first):
                m.d.sync += [held_x.eq(self.i_exp_x), held_d.eq(self.i_exp_d)]
            exp_x = Mux(first, self.i_exp_x, held_x)
            exp_d = Mux(first, self.i_exp_d, held_d)

        # --- magnitudes on the way from s1 into the stream buffer s2 ---
        m.submodules.in_x = in_x = Fp16VectorInput(n, q)
        m.submodules.in_d = in_d = Fp16VectorInput(rows, q)
        m.d.comb += [
            in_x.i_bits.eq(s1.bits_x), in_x.i_exp.eq(s1.exp_x),
            in_d.i_bits.eq(s1.bits_d), in_d.i_exp.eq(s1.exp_d),
        ]
        s2 = _Buffer("s2", mag_x=q * n, mag_d=q * rows, sign_x=n, sign_d=rows, nonfinite_x=n,
                     nonfinite_d=rows, saturated=1, exp_x=signed(cfg.exp_port_width),
                     exp_d=signed(cfg.exp_port_width), end=1)

        # --- the double buffer ---
        s1_ready = s1.valid & s1_exp_ok if cfg.scaling == "per_pair" else s1.valid
        s1_take = s1_ready & (~s2.valid | self.i_pair_done)
        # per_pair groups are single pairs (acc_depth 1), so the exponent cycle s1 adds is hidden behind each
        # group's read-out: the group period is unchanged.
        m.d.comb += self.i_ready.eq(~s1.valid)
        with m.If(accept):
            m.d.sync += [
                s1.valid.eq(1),
                s1.bits_x.eq(self.i_x), s1.bits_d.eq(self.i_delta),
                s1.end.eq(in_end),
            ]
            if cfg.scaling != "per_pair":
                m.d.sync += [s1.exp_x.eq(exp_x), s1.exp_d.eq(exp_d)]
        with m.Elif(s1_take):
            m.d.sync += s1.valid.eq(0)
        with m.If(s1_take):
            m.d.sync += [
                s2.valid.eq(1),
                s2.mag_x.eq(in_x.o_mag), s2.mag_d.eq(in_d.o_mag),
                s2.sign_x.eq(in_x.o_sign), s2.sign_d.eq(in_d.o_sign),
                s2.nonfinite_x.eq(in_x.o_nonfinite), s2.nonfinite_d.eq(in_d.o_nonfinite),
                s2.saturated.eq(in_x.o_saturated | in_d.o_saturated),
                s2.exp_x.eq(s1.exp_x), s2.exp_d.eq(s1.exp_d),
                s2.end.eq(s1.end),
            ]
        with m.Elif(self.i_pair_done):
            m.d.sync += s2.valid.eq(0)

        m.d.comb += [
            self.o_pair_valid.eq(s2.valid),
            self.o_mag_x.eq(s2.mag_x), self.o_mag_d.eq(s2.mag_d),
            self.o_sign_x.eq(s2.sign_x), self.o_sign_d.eq(s2.sign_d),
            self.o_nonfinite_x.eq(s2.nonfinite_x), self.o_nonfinite_d.eq(s2.nonfinite_d),
            self.o_pair_saturated.eq(s2.saturated),
            self.o_exp_x.eq(s2.exp_x), self.o_exp_d.eq(s2.exp_d),
            self.o_end.eq(s2.end),
        ]
        return m
