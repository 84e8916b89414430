"""The ESSOP array (spec section 9): four stages, one file each, wired together.

    input stream --> InputStage --magnitudes--> BitstreamGenerators --bits--> CellGrid --row 0--> OutputStage
                                                                                              --> output stream

InputStage (input_stage.py) decodes and scales the FP16 input into a double buffer, so that the next pair is
taken while the current one streams; BitstreamGenerators (bitstreams.py) turn its magnitudes into bitstreams;
CellGrid (cell_grid.py) counts their products; OutputStage (output_stage.py) reads the counts out row by row,
converted, and pauses the bitstreams meanwhile, or with EssopConfig.readout = 'shadow' only for the cycle in
which the grid's shadow bank takes them, reading them out of the bank while the next group counts. With up-counting cells (EssopConfig.cell = 'upcount') a
SignReadout (sign_readout.py) between the grid and the output stage holds each pair's signs and applies them
to row 0. docs/rtl.md has the pipeline in detail. Every timing fact of
the array is a sum of its stages' own properties.

A stage port that carries another value than the array's port of the same name would be renamed in simulation
traces, where the synthesis flow reads register values by name; so only the ports that the array passes
through unchanged share the array's names (i_valid, o_data, ...), and the stages' inner ports have their own.
"""

from amaranth.hdl import Module

from essop.checks import check_int
from essop.hdl.bitstreams import BitstreamGenerators
from essop.hdl.cell_grid import CellGrid
from essop.hdl.component import OutputStreamComponent, input_stream_ports, output_stream_ports
from essop.hdl.input_stage import InputStage
from essop.hdl.output_stage import OutputStage
from essop.hdl.sign_readout import SignReadout

__all__ = ["EssopArray"]


class EssopArray(OutputStreamComponent):
    """An ESSOP outer-product array of ``cfg.rows`` x ``cfg.cols`` stochastic up/down counters.

    Ports and their meaning: docs/spec.md section 9. Timing facts are the properties below.
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        # Built here, not in elaborate(), because the array's timing properties are sums of theirs. src_loc_at=1
        # reports them, if the array is never elaborated, at the line that made the array, as Amaranth reports
        # the array itself, so that line's file can silence both.
        self._input = InputStage(cfg, src_loc_at=1)
        self._bitstreams = BitstreamGenerators(cfg, src_loc_at=1)
        self._grid = CellGrid(cfg, src_loc_at=1)
        self._output = OutputStage(cfg, src_loc_at=1)
        self._signs = SignReadout(cfg, src_loc_at=1) if cfg.cell == "upcount" else None

    def ports(self, cfg):
        return {**input_stream_ports(cfg), **output_stream_ports(cfg)}

    # ---- derived facts -------------------------------------------------------------------------
    @property
    def cycles_per_pair(self) -> int:
        """Steady-state input interval in cycles inside a group: one pair per pair's bitstreams (BL cycles);
        the stream buffer takes the next pair in its last bitstream cycle."""
        return self._bitstreams.cycles_per_pair

    @property
    def input_to_stream_latency(self) -> int:
        """Cycles from a pair's transfer into an idle array to its first bitstream cycle: the input stage's
        latency, then the bitstream generators'."""
        return self._input.latency + self._bitstreams.latency

    @property
    def input_to_first_output_latency(self) -> int:
        """Cycles from the transfer of a group's only pair, into an idle array, to the cycle in which its
        row 0 is first offered (o_valid)."""
        return self.input_to_stream_latency + self.cycles_per_pair - 1 + self.last_pair_to_output_latency

    @property
    def last_pair_to_output_latency(self) -> int:
        """Cycles from a group's last bitstream cycle to the cycle in which row 0 is first offered: the counters
        settle (the cell grid's latency), then row 0 goes into the output register (the output stage's)."""
        return self._grid.latency + self._output.latency

    @property
    def cycles_per_group_output(self) -> int:
        """Output beats per group (one row each) when o_ready stays high; with readout 'shift' the bitstreams
        pause meanwhile."""
        return self._output.beats_per_group

    @property
    def output_to_stream_gap(self) -> int | None:
        """Cycles from the last row's transfer to the next group's first bitstream cycle, if a pair waits
        in the stream buffer: the output stage releases the hold, then the bitstream generators start. None
        with readout 'shadow', where the bitstreams do not wait for the read-out."""
        if self._cfg.readout == "shadow":
            return None
        return self._output.release_latency + self._bitstreams.latency

    def steady_state_cycles_per_group(self, pairs: int) -> int:
        """Cycles between the starts of consecutive groups of `pairs` pairs when a pair is always waiting
        and o_ready stays high. Readout 'shift': the bitstreams, the read-out and the idle cycles around it.
        'shadow': the bitstreams and the capture cycle, or the shadow bank's capture interval where the
        read-out is the longer (rows > pairs * BL). per_pair's extra exponent cycle in the input stage is
        hidden behind the read-out or the capture cycle (InputStage.latency - 1 <= BL), so it never adds."""
        check_int("pairs", pairs, 1, self._cfg.acc_depth)
        if self._cfg.readout == "shadow":
            return max(pairs * self.cycles_per_pair + self._output.capture_hold, self._output.capture_interval)
        return (pairs * self.cycles_per_pair + (self.last_pair_to_output_latency - 1)
                + self.cycles_per_group_output + (self.output_to_stream_gap - 1))

    # ---- gateware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.input = inp = self._input
        m.submodules.bitstreams = gen = self._bitstreams
        # Named cell_grid: the synthesis flow counts the instances named cell_* as the cells' area.
        m.submodules.cell_grid = grid = self._grid
        m.submodules.output = out = self._output

        # The array's input stream is the input stage's.
        m.d.comb += [
            inp.i_valid.eq(self.i_valid),
            inp.i_x.eq(self.i_x),
            inp.i_delta.eq(self.i_delta),
            inp.i_exp_x.eq(self.i_exp_x),
            inp.i_exp_d.eq(self.i_exp_d),
            inp.i_last.eq(self.i_last),
            self.i_ready.eq(inp.i_ready),
        ]
        # The offered pair streams while the output stage is not reading out; its last bitstream cycle frees
        # the stream buffer.
        m.d.comb += [
            gen.i_pair_valid.eq(inp.o_pair_valid),
            gen.i_hold.eq(out.o_busy),
            gen.i_mag_x.eq(inp.o_mag_x),
            gen.i_mag_d.eq(inp.o_mag_d),
            inp.i_pair_done.eq(gen.o_done),
        ]
        m.d.comb += [
            grid.i_en.eq(gen.o_en),
            grid.i_bit_x.eq(gen.o_bit_x),
            grid.i_bit_d.eq(gen.o_bit_d),
            grid.i_shift.eq(out.o_shift),
        ]
        if self._cfg.readout == "shadow":
            m.d.comb += grid.i_capture.eq(out.o_capture)
        if self._signs is None:
            m.d.comb += [grid.i_sign_x.eq(inp.o_sign_x), grid.i_sign_d.eq(inp.o_sign_d)]
            counts = grid.o_counts
        else:
            # Not named cell_*: the held signs are periphery in the synthesis flow's area split.
            m.submodules.sign_readout = signs = self._signs
            m.d.comb += [
                signs.i_en.eq(gen.o_en),
                signs.i_shift.eq(out.o_shift),
                signs.i_sign_x.eq(inp.o_sign_x),
                signs.i_sign_d.eq(inp.o_sign_d),
                [signs.i_mags[j].eq(grid.o_counts[j]) for j in range(self._cfg.cols)],
            ]
            if self._cfg.readout == "shadow":
                m.d.comb += signs.i_capture.eq(out.o_capture)
            counts = signs.o_counts
        m.d.comb += [
            out.i_first.eq(gen.o_first),
            out.i_nonfinite_x.eq(inp.o_nonfinite_x),
            out.i_nonfinite_d.eq(inp.o_nonfinite_d),
            out.i_saturated.eq(inp.o_pair_saturated),
            out.i_done.eq(gen.o_done),
            out.i_end.eq(inp.o_end),
            out.i_group_exp_x.eq(inp.o_exp_x),
            out.i_group_exp_d.eq(inp.o_exp_d),
            [out.i_counts[j].eq(counts[j]) for j in range(self._cfg.cols)],
        ]
        # The array's output stream is the output stage's.
        m.d.comb += [
            self.o_valid.eq(out.o_valid),
            out.o_ready.eq(self.o_ready),
            self.o_row.eq(out.o_row),
            self.o_data.eq(out.o_data),
            self.o_exp.eq(out.o_exp),
            self.o_last.eq(out.o_last),
            self.o_nonfinite.eq(out.o_nonfinite),
            self.o_saturated.eq(out.o_saturated),
        ]
        return m
