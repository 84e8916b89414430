"""Cell grid of the ESSOP array (spec section 5): rows x cols cells, each an AND gate and an up/down counter.

Cell (i, j) counts X_j AND D_i, down when the signs differ. The grid is read out through row 0: each shift
moves every counter row up by one and zeros into the last row, so after `rows` shifts the grid is cleared,
with no separate clear path and one converter per column in the output stage.

With EssopConfig.cell = 'upcount' the cells are unsigned up-counters (UpCell) and the grid has no sign inputs:
its o_counts are magnitudes, signed by essop.hdl.sign_readout outside the grid (the signs are O(m + n)
periphery, not part of any cell).

With EssopConfig.readout = 'shadow' the grid is read out through a shadow bank instead: one register per cell
that takes the cell's count on ``i_capture`` (the cell clears in the same cycle, through its shift load with a
zero shift-in) and shifts up through row 0 on ``i_shift`` while the cells count the next group. The shadow
registers are inside the grid, so the synthesis flow's area split counts them as cells: there are m * n of them,
and they grow with the array as the cells do.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In, Out

from essop.config import EssopConfig
from essop.hdl.cell import Cell, UpCell
from essop.hdl.component import ConfiguredComponent

__all__ = ["CellGrid"]


class CellGrid(ConfiguredComponent):
    """``cfg.rows`` x ``cfg.cols`` cells of ``cfg.count_width``-bit signed counters.

    On a clock edge with ``i_en`` every cell (i, j) counts ``i_bit_x[j] & i_bit_d[i]``, negated when
    ``i_sign_x[j] ^ i_sign_d[i]``. With ``i_shift`` every row instead loads the row below it (the last row
    loads zeros); ``i_shift`` takes precedence. ``o_counts`` is row 0. With ``cfg.cell == 'upcount'``: no
    ``i_sign_*`` ports, cells of ``cfg.cell_count_width`` unsigned bits that count up only, ``o_counts``
    unsigned.

    With ``cfg.readout == 'shadow'``: ``i_capture`` copies every count into its shadow register and clears the
    cells (``i_capture`` takes precedence over ``i_en``); ``i_shift`` moves the shadow rows up one instead of the
    counter rows; ``o_counts`` is shadow row 0.

    With ``cfg.clock_gating`` each row's cells share one enable (the cells' ``row_enable``), which Yosys'
    clockgate turns into one clock-gating cell per row: ``i_en & i_bit_d[i]`` (a row whose delta bit is 0
    cannot count), or ``i_shift`` while row i or the row below may hold a nonzero count. A one-bit flag per row,
    ``row_live``, tracks that: set when the row counts, moved up with the rows on a shift, clear at reset. A
    read-out thus clocks row i only for the shifts that bring a live row into it, about half of them, and not
    at all a row that never counted. With a shadow bank the cells' load is the capture's clear instead, and
    it clocks only the live rows (a row cleared by a capture is not live); the bank's rows are gated the same way
    (``bank_live``: a bank row is clocked only while it, its counter row on a capture, or the row below on a
    shift may be nonzero).
    """

    def ports(self, cfg):
        n, m = cfg.cols, cfg.rows
        updown = cfg.cell == "updown"
        members = {"i_en": In(1), "i_bit_x": In(n), "i_bit_d": In(m)}
        if updown:
            members |= {"i_sign_x": In(n), "i_sign_d": In(m)}
        if cfg.readout == "shadow":
            members |= {"i_capture": In(1)}
        members |= {"i_shift": In(1),
                  "o_counts": Out((signed if updown else unsigned)(cfg.cell_count_width)).array(n)}
        return members

    @property
    def latency(self) -> int:
        """Cycles from a bitstream cycle to the cycle in which its products are in the counters (and the row
        0 count on ``o_counts``): 1, the counter register."""
        return 1

    def elaborate(self, platform):
        cfg = self._cfg
        n, rows = cfg.cols, cfg.rows
        m = Module()
        cells = [[None] * n for _ in range(rows)]
        updown = cfg.cell == "updown"
        gated = cfg.clock_gating
        shadow_bank = cfg.readout == "shadow"
        # The cells' load: the read-out shift, or with a shadow bank the capture's clear (shift_in left 0: no
        # second clear path in any cell).
        load = self.i_capture if shadow_bank else self.i_shift
        row_live = Signal(rows + 1, name="row_live")     # bit rows: the zeros shifted into the last row
        if gated:
            for i in range(rows):
                with m.If(load):
                    m.d.sync += row_live[i].eq(0 if shadow_bank else row_live[i + 1])
                with m.Elif(self.i_en & self.i_bit_d[i]):
                    m.d.sync += row_live[i].eq(1)
        for i in range(rows):
            # A load changes a row only if the row or what comes into it may be nonzero; the capture's clear
            # brings in zeros.
            load_changes = row_live[i] if shadow_bank else row_live[i] | row_live[i + 1]
            row_en = (load & load_changes) | (self.i_en & self.i_bit_d[i]) if gated else self.i_en
            for j in range(n):
                kind = Cell if updown else UpCell
                cell = kind(cfg.cell_count_width, row_enable=gated)
                m.submodules[f"cell_{i}_{j}"] = cell
                m.d.comb += [
                    cell.en.eq(row_en),
                    cell.x.eq(self.i_bit_x[j]),
                    cell.d.eq(self.i_bit_d[i]),
                    cell.shift.eq(load),
                ]
                if updown:
                    m.d.comb += [cell.sign_x.eq(self.i_sign_x[j]), cell.sign_d.eq(self.i_sign_d[i])]
                cells[i][j] = cell
        if cfg.readout == "shift":
            for i in range(rows):
                for j in range(n):
                    m.d.comb += cells[i][j].shift_in.eq(cells[i + 1][j].count if i + 1 < rows else 0)
            m.d.comb += [self.o_counts[j].eq(cells[0][j].count) for j in range(n)]
            return m
        shadow = [[Signal.like(cells[i][j].count, name=f"shadow_{i}_{j}") for j in range(n)] for i in range(rows)]
        if not gated:
            for i in range(rows):
                for j in range(n):
                    with m.If(self.i_capture):
                        m.d.sync += shadow[i][j].eq(cells[i][j].count)
                    with m.Elif(self.i_shift):
                        m.d.sync += shadow[i][j].eq(shadow[i + 1][j] if i + 1 < rows else 0)
        else:
            # Gated, the bank is clocked by rows as the counters are: a bank row changes on a capture only if it
            # or its counter row may be nonzero, and on a shift only if it or the row below may be; bank_live
            # tracks that (a row shifted out holds zeros), so a read-out clocks row i for about rows - i shifts.
            bank_live = Signal(rows + 1, name="bank_live")   # bit rows: the zeros shifted into the last row
            for i in range(rows):
                with m.If(self.i_capture):
                    m.d.sync += bank_live[i].eq(row_live[i])
                with m.Elif(self.i_shift):
                    m.d.sync += bank_live[i].eq(bank_live[i + 1])
            for i in range(rows):
                bank_row_en = ((self.i_capture & (row_live[i] | bank_live[i]))
                               | (self.i_shift & (bank_live[i] | bank_live[i + 1])))
                for j in range(n):
                    with m.If(bank_row_en):
                        m.d.sync += shadow[i][j].eq(Mux(self.i_capture, cells[i][j].count,
                                                        shadow[i + 1][j] if i + 1 < rows else 0))
        m.d.comb += [self.o_counts[j].eq(shadow[0][j]) for j in range(n)]
        return m
