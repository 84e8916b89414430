"""Output stage of the ESSOP array (spec sections 7-9): a group's flags and exponent, and its rows on the
output stream, one per transfer, with back-pressure.

    counters --row 0--> [CountNormalise] --> output register --[NormalisedToFp16]--> o_data   (fp16)
    counters --row 0--> output register --> o_data                                            (count)

The converter is cut in two by the output register so that its path is no longer than the cells' own. Row
poison bits shift with their counter rows, so one converter per column serves every row.

With EssopConfig.readout = 'shadow' the rows come from the cell grid's shadow bank, not from the counters: the
stage captures a group into the bank (``o_capture``) in the cycle after its last bitstream cycle, or as soon as
the bank is free, and holds the bitstreams only until then. The group's flags, exponent and poison bits are
captured with it, and copied again when its row 0 enters the output register, because the next group's
accumulate meanwhile and the group before may still be offering its last row.
"""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib.wiring import In, Out

from essop.config import EssopConfig
from essop.hdl.component import OutputStreamComponent, output_stream_ports
from essop.hdl.count_to_fp16 import CountNormalise, NormalisedToFp16, normalised_layout

__all__ = ["OutputStage"]


class OutputStage(OutputStreamComponent):
    """Gathers a group's poison bits and flags, and reads its counts out row by row onto the array's output
    stream (``o_valid``, ``o_ready``, ``o_row``, ``o_data``, ``o_exp``, ``o_last``, ``o_nonfinite``,
    ``o_saturated``; spec section 9).

    On a pair's first bitstream cycle (``i_first``) its non-finite bits and saturated flag are ORed into the
    group's. On a pair's last bitstream cycle (``i_done``) that ends its group (``i_end``),
    E_out = E_x + E_d - L - lr_shift is registered from ``i_group_exp_x``, ``i_group_exp_d``; from the next
    cycle on ``i_counts`` must be row 0 of the group's counts (the cell grid's latency is one cycle): the
    stage loads it and shifts the rows through it with ``o_shift``. ``o_busy`` is high from then until the last
    row is taken: the bitstreams pause, because the counters are being read out.

    With ``cfg.readout == 'shadow'``: ``o_busy`` is high from the cycle after a group's last bitstream cycle
    until ``o_capture``, the cycle in which the shadow bank takes the counts and the counters clear; it comes
    once the bank's previous group has all gone to the output register. From the next cycle on ``i_counts``
    must be the bank's row 0; ``o_shift`` shifts the bank, not the counters.
    """

    def ports(self, cfg):
        n, m = cfg.cols, cfg.rows
        return {
            "i_first": In(1),
            "i_nonfinite_x": In(n),
            "i_nonfinite_d": In(m),
            "i_saturated": In(1),
            "i_done": In(1),
            "i_end": In(1),
            "i_group_exp_x": In(signed(cfg.exp_port_width)),
            "i_group_exp_d": In(signed(cfg.exp_port_width)),
            "i_counts": In(signed(cfg.count_width)).array(n),
            **({"o_capture": Out(1)} if cfg.readout == "shadow" else {}),
            "o_shift": Out(1),
            "o_busy": Out(1),
            **output_stream_ports(cfg),
        }

    @property
    def latency(self) -> int:
        """Cycles from the cycle after a group's last bitstream cycle (its counts in the counters) to row 0
        offered (``o_valid``), the stage idle: 1, row 0 goes into the output register (fp16: through
        CountNormalise); with the shadow bank 2, the counts go into the bank first."""
        return 1 if self._cfg.readout == "shift" else 2

    @property
    def capture_hold(self) -> int | None:
        """Shadow bank: cycles the bitstreams are held per group when the bank is free: 1, the capture cycle,
        in which the counters clear. None with readout 'shift' (the bitstreams wait for the whole read-out)."""
        return 1 if self._cfg.readout == "shadow" else None

    @property
    def capture_interval(self) -> int | None:
        """Shadow bank: least cycles between two groups' captures with ``o_ready`` high: rows + 1, the bank is
        free once its last row is in the output register, one cycle (the capture) plus one row per cycle after
        the previous capture. None with readout 'shift'."""
        return self._cfg.rows + 1 if self._cfg.readout == "shadow" else None

    @property
    def beats_per_group(self) -> int:
        """Output transfers per group, one row each: rows."""
        return self._cfg.rows

    @property
    def release_latency(self) -> int:
        """Cycles from the last row's transfer to the first cycle with ``o_busy`` low: 1."""
        return 1

    def elaborate(self, platform):
        cfg = self._cfg
        n, rows = cfg.cols, cfg.rows
        m = Module()

        if cfg.readout == "shift":
            out_shift, poison_row, poison_col, group_e_out = self._shift_readout(m)
        else:
            out_shift, poison_row, poison_col, group_e_out = self._shadow_readout(m)
        if cfg.output_format == "fp16":
            words = []
            for j in range(n):
                norm = CountNormalise(cfg.count_width)
                held = Signal(normalised_layout(cfg.count_width), name=f"out_norm_{j}")
                rnd = NormalisedToFp16(cfg.count_width)
                m.submodules[f"normalise_{j}"] = norm
                m.submodules[f"round_{j}"] = rnd
                m.d.comb += [
                    norm.i_count.eq(self.i_counts[j]),
                    norm.i_exp.eq(group_e_out),
                    norm.i_poison.eq(poison_row[0] | poison_col[j]),
                    rnd.i_norm.eq(held),
                ]
                with m.If(out_shift):
                    m.d.sync += held.eq(norm.o_norm)
                words.append(rnd.o_bits)
            m.d.comb += self.o_data.eq(Cat(words))
        else:
            held = Signal(len(self.o_data), name="out_counts")
            with m.If(out_shift):
                m.d.sync += held.eq(Cat(self.i_counts[j] for j in range(n)))
            m.d.comb += self.o_data.eq(held)
        return m

    def _shift_readout(self, m):
        """The read-out from the counters themselves (readout 'shift'): flags, E_out, the output handshake."""
        cfg = self._cfg
        n, rows = cfg.cols, cfg.rows
        poison_row = Signal(rows, name="poison_row")
        poison_col = Signal(n, name="poison_col")
        flag_nonfinite = Signal(name="flag_nonfinite")
        flag_saturated = Signal(name="flag_saturated")
        group_e_out = Signal(signed(cfg.out_exp_width), name="group_e_out")
        out_load = Signal(name="out_load")      # the cycle after a group's last bitstream cycle
        out_active = Signal(name="out_active")  # rows are being offered
        out_row = Signal(range(rows), name="out_row")
        out_take = self.o_valid & self.o_ready
        out_last = out_row == rows - 1
        # Row 0 moves into the output register, and the counters shift up, when the read-out starts and on
        # every taken row; the last take shifts zeros into zeros.
        out_shift = out_load | out_take
        with m.If(self.i_first):
            m.d.sync += [
                poison_row.eq(poison_row | self.i_nonfinite_d),
                poison_col.eq(poison_col | self.i_nonfinite_x),
                flag_nonfinite.eq(flag_nonfinite | self.i_nonfinite_d.any() | self.i_nonfinite_x.any()),
                flag_saturated.eq(flag_saturated | self.i_saturated),
            ]
        group_done = self.i_done & self.i_end
        m.d.sync += out_load.eq(group_done)
        with m.If(group_done):
            m.d.sync += group_e_out.eq(self.i_group_exp_x + self.i_group_exp_d - (cfg.bl_log2 + cfg.lr_shift))
        with m.If(out_load):
            m.d.sync += [out_active.eq(1), out_row.eq(0)]
        with m.If(out_shift):
            # Row poison bits travel with their counter rows.
            m.d.sync += poison_row.eq(poison_row >> 1)
        with m.If(out_take):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_last):
                m.d.sync += [out_active.eq(0), poison_col.eq(0),
                             flag_nonfinite.eq(0), flag_saturated.eq(0)]

        m.d.comb += [
            self.o_shift.eq(out_shift),
            self.o_busy.eq(out_load | out_active),
            self.o_valid.eq(out_active),
            self.o_row.eq(out_row),
            self.o_last.eq(out_last),
            self.o_exp.eq(group_e_out),
            self.o_nonfinite.eq(flag_nonfinite),
            self.o_saturated.eq(flag_saturated),
        ]
        return out_shift, poison_row, poison_col, group_e_out

    def _shadow_readout(self, m):
        """The read-out from the shadow bank (readout 'shadow'): three copies of a group's flags and E_out —
        accumulating, captured with the bank, offered with the rows — and the capture and output handshakes."""
        cfg = self._cfg
        n, rows = cfg.cols, cfg.rows

        def group_info(prefix):
            return dict(poison_row=Signal(rows, name=f"{prefix}_poison_row"),
                        poison_col=Signal(n, name=f"{prefix}_poison_col"),
                        nonfinite=Signal(name=f"{prefix}_nonfinite"), saturated=Signal(name=f"{prefix}_saturated"),
                        e_out=Signal(signed(cfg.out_exp_width), name=f"{prefix}_e_out"))

        live, banked = group_info("live"), group_info("bank")
        # Poison is applied as a row enters the output register, so the offered copy needs no poison bits.
        out_e_out = Signal(signed(cfg.out_exp_width), name="out_e_out")
        out_nonfinite = Signal(name="out_nonfinite")
        out_saturated = Signal(name="out_saturated")
        capture_pending = Signal(name="capture_pending")  # a finished group's counts wait in the counters
        bank_full = Signal(name="bank_full")              # a captured group waits for the output register
        out_active = Signal(name="out_active")            # rows are being offered
        out_row = Signal(range(rows), name="out_row")
        out_take = self.o_valid & self.o_ready
        out_last = out_row == rows - 1
        # From registers only, so that o_ready reaches no cell's enable: the bank is free once its last row is
        # in the output register (the last take then must not shift the bank, which may hold the next group).
        capture = capture_pending & ~bank_full & (~out_active | out_last)
        start = bank_full & (~out_active | (out_take & out_last))
        out_shift = start | (out_take & ~out_last)

        # No bitstream cycle (so no i_first, no group end) while a capture is pending.
        with m.If(self.i_first):
            m.d.sync += [
                live["poison_row"].eq(live["poison_row"] | self.i_nonfinite_d),
                live["poison_col"].eq(live["poison_col"] | self.i_nonfinite_x),
                live["nonfinite"].eq(live["nonfinite"] | self.i_nonfinite_d.any() | self.i_nonfinite_x.any()),
                live["saturated"].eq(live["saturated"] | self.i_saturated),
            ]
        with m.If(self.i_done & self.i_end):
            m.d.sync += [
                capture_pending.eq(1),
                live["e_out"].eq(self.i_group_exp_x + self.i_group_exp_d - (cfg.bl_log2 + cfg.lr_shift)),
            ]
        with m.If(capture):
            m.d.sync += [capture_pending.eq(0), bank_full.eq(1)]
            m.d.sync += [banked[k].eq(live[k]) for k in live]
            m.d.sync += [live[k].eq(0) for k in ("poison_row", "poison_col", "nonfinite", "saturated")]
        with m.If(out_shift):
            # Row poison bits travel with their bank rows.
            m.d.sync += banked["poison_row"].eq(banked["poison_row"] >> 1)
        with m.If(out_take):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_last):
                m.d.sync += out_active.eq(0)
        with m.If(start):
            m.d.sync += [bank_full.eq(0), out_active.eq(1), out_row.eq(0), out_e_out.eq(banked["e_out"]),
                         out_nonfinite.eq(banked["nonfinite"]), out_saturated.eq(banked["saturated"])]

        m.d.comb += [
            self.o_capture.eq(capture),
            self.o_shift.eq(out_shift),
            self.o_busy.eq(capture_pending),
            self.o_valid.eq(out_active),
            self.o_row.eq(out_row),
            self.o_last.eq(out_last),
            self.o_exp.eq(out_e_out),
            self.o_nonfinite.eq(out_nonfinite),
            self.o_saturated.eq(out_saturated),
        ]
        return out_shift, banked["poison_row"], banked["poison_col"], banked["e_out"]
