"""Sign at read-out for up-counting cells (EssopConfig.cell = 'upcount'; spec section 5).

With one pair per group every product of cell (i, j) has the sign sign_x[j] XOR sign_d[i], so the cells can
count magnitudes and the sign can be applied once, as row i leaves the grid through row 0. The pair's signs
come from the stream buffer only while the pair streams (the next pair may replace them during read-out), so
they are held here: m + n flip-flops beside the grid instead of a sign path in each of its m * n cells.
With a shadow bank (EssopConfig.readout = 'shadow') the signs are held twice: once for the pair counting, and
once, captured with the counts, for the group in the bank, which is read out while the next pair counts.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from essop.config import EssopConfig
from essop.hdl.component import ConfiguredComponent

__all__ = ["SignReadout"]


class SignReadout(ConfiguredComponent):
    """Holds a pair's signs and signs row 0 of an up-counting grid.

    On a clock edge with ``i_shift`` the held delta signs move up one row with the grid's counts (the last
    row takes 0); otherwise, with ``i_en``, both sides load ``i_sign_x``, ``i_sign_d`` (``i_shift`` takes
    precedence, as in the cells). ``o_counts[j]`` = ``i_mags[j]``, negated when held sign_x[j] XOR held
    sign_d[0]: combinational, so the grid's latency is unchanged.

    With ``cfg.readout == 'shadow'``: ``i_en`` loads a second pair of registers, and ``i_capture`` copies them
    into the held signs (with the grid's shadow bank); ``i_shift`` shifts the held delta signs with the bank.
    """

    def __init__(self, cfg, *, src_loc_at=0):
        if isinstance(cfg, EssopConfig) and cfg.cell != "upcount":
            raise ValueError(f"SignReadout is for cell='upcount', not {cfg.cell!r}")
        super().__init__(cfg, src_loc_at=1 + src_loc_at)

    def ports(self, cfg):
        n, m = cfg.cols, cfg.rows
        return {
            "i_en": In(1),
            **({"i_capture": In(1)} if cfg.readout == "shadow" else {}),
            "i_shift": In(1),
            "i_sign_x": In(n),
            "i_sign_d": In(m),
            "i_mags": In(cfg.cell_count_width).array(n),
            "o_counts": Out(signed(cfg.count_width)).array(n),
        }

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        sign_x = Signal(cfg.cols, name="held_sign_x")
        sign_d = Signal(cfg.rows, name="held_sign_d")
        if cfg.readout == "shift":
            with m.If(self.i_shift):
                m.d.sync += sign_d.eq(sign_d >> 1)
            with m.Elif(self.i_en):
                m.d.sync += [sign_x.eq(self.i_sign_x), sign_d.eq(self.i_sign_d)]
        else:
            count_x = Signal(cfg.cols, name="counting_sign_x")
            count_d = Signal(cfg.rows, name="counting_sign_d")
            with m.If(self.i_en):
                m.d.sync += [count_x.eq(self.i_sign_x), count_d.eq(self.i_sign_d)]
            with m.If(self.i_capture):
                m.d.sync += [sign_x.eq(count_x), sign_d.eq(count_d)]
            with m.Elif(self.i_shift):
                m.d.sync += sign_d.eq(sign_d >> 1)
        for j in range(cfg.cols):
            mag = self.i_mags[j]
            m.d.comb += self.o_counts[j].eq(Mux(sign_x[j] ^ sign_d[0], -mag, mag))
        return m
