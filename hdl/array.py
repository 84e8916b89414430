"""The ESSOP array (spec section 9): input stream -> magnitudes -> LFSR bitstreams -> m x n up/down counters
-> one row per beat on the output stream.

Pipeline, with the input double-buffered so the next pair is taken while the current one streams:

    i_x, i_delta --[FP16 input stage, comb]--> load buffer (s1) --> stream buffer (s2) --BL cycles--> counters
                                                                                                        |
    o_data <-- per-column CountToFp16 (fp16 format) or the raw counts <-- row 0 of the counters <-------+

Counters shift up by one row per output beat (row 0 is the one on the output), so after the last row is
taken the whole array holds zeros again, with no separate clear.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.config import EXP_PORT_WIDTH, EssopConfig
from essop.hdl.cell import Cell, Comparator
from essop.hdl.count_to_fp16 import OUT_EXP_WIDTH, CountToFp16
from essop.hdl.fp16_input import Fp16VectorInput
from essop.hdl.lfsr import Lfsr

__all__ = ["EssopArray"]


class _PairBuffer:
    """Registers holding one accepted vector pair in magnitude form."""

    def __init__(self, cfg: EssopConfig, prefix: str):
        n, m, q = cfg.cols, cfg.rows, cfg.q
        self.valid = Signal(name=f"{prefix}_valid")
        self.mag_x = Signal(q * n, name=f"{prefix}_mag_x")
        self.mag_d = Signal(q * m, name=f"{prefix}_mag_d")
        self.sign_x = Signal(n, name=f"{prefix}_sign_x")
        self.sign_d = Signal(m, name=f"{prefix}_sign_d")
        self.nonfinite_x = Signal(n, name=f"{prefix}_nonfinite_x")
        self.nonfinite_d = Signal(m, name=f"{prefix}_nonfinite_d")
        self.saturated = Signal(name=f"{prefix}_saturated")
        self.e_out = Signal(signed(OUT_EXP_WIDTH), name=f"{prefix}_e_out")
        self.end = Signal(name=f"{prefix}_end")     # this pair ends its accumulation group

    def payload(self):
        return [self.mag_x, self.mag_d, self.sign_x, self.sign_d, self.nonfinite_x, self.nonfinite_d,
                self.saturated, self.e_out, self.end]

    def load(self, other):
        return [a.eq(b) for a, b in zip(self.payload(), other.payload())]


class EssopArray(wiring.Component):
    """An ESSOP outer-product array of ``cfg.rows`` x ``cfg.cols`` stochastic up/down counters.

    Ports and their meaning: docs/spec.md section 9. Timing facts are the properties below.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        self._cfg = cfg
        n, m = cfg.cols, cfg.rows
        data_width = (16 if cfg.output_format == "fp16" else cfg.count_width) * n
        super().__init__({
            "i_valid": In(1),
            "i_ready": Out(1),
            "i_x": In(16 * n),
            "i_delta": In(16 * m),
            "i_exp_x": In(signed(EXP_PORT_WIDTH)),
            "i_exp_d": In(signed(EXP_PORT_WIDTH)),
            "i_last": In(1),
            "o_valid": Out(1),
            "o_ready": In(1),
            "o_row": Out(self.row_width),
            "o_data": Out(data_width),
            "o_exp": Out(signed(OUT_EXP_WIDTH)),
            "o_last": Out(1),
            "o_nonfinite": Out(1),
            "o_saturated": Out(1),
        })

    # ---- derived facts -------------------------------------------------------------------------
    @property
    def config(self) -> EssopConfig:
        return self._cfg

    @property
    def row_width(self) -> int:
        """Width of o_row: max(1, bitlen(rows - 1))."""
        return max(1, (self._cfg.rows - 1).bit_length())

    @property
    def data_element_width(self) -> int:
        """Bits per element of o_data: 16 (fp16) or count_width (count)."""
        return 16 if self._cfg.output_format == "fp16" else self._cfg.count_width

    @property
    def cycles_per_pair(self) -> int:
        """Steady-state input interval in cycles: one pair per BL bitstream cycles (inside a group)."""
        return self._cfg.bl

    @property
    def input_to_stream_latency(self) -> int:
        """Cycles from a pair's transfer into an idle array to its first bitstream cycle: one cycle in the
        load buffer, then the stream buffer."""
        return 2

    @property
    def input_to_first_output_latency(self) -> int:
        """Cycles from the transfer of a group's only pair, into an idle array, to the cycle in which its
        row 0 is first offered (o_valid)."""
        return self.input_to_stream_latency + self._cfg.bl - 1 + self.last_pair_to_output_latency

    @property
    def last_pair_to_output_latency(self) -> int:
        """Cycles from a group's last bitstream cycle to the cycle in which row 0 is first offered."""
        return 1

    @property
    def cycles_per_group_output(self) -> int:
        """Output beats per group (one row each) when o_ready stays high; bitstreams pause meanwhile."""
        return self._cfg.rows

    @property
    def output_to_stream_gap(self) -> int:
        """Cycles from the last row's transfer to the next group's first bitstream cycle, if a pair waits
        in the stream buffer."""
        return 1

    @property
    def n_lfsrs(self) -> int:
        return self._cfg.n_generators

    # ---- gateware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        cfg = self._cfg
        n, rows, q, bl = cfg.cols, cfg.rows, cfg.q, cfg.bl
        m = Module()

        # --- input side: decode and shift on the way into the load buffer ---
        m.submodules.in_x = in_x = Fp16VectorInput(n, q, cfg.scaling)
        m.submodules.in_d = in_d = Fp16VectorInput(rows, q, cfg.scaling)
        s1 = _PairBuffer(cfg, "s1")
        s2 = _PairBuffer(cfg, "s2")
        accept = self.i_valid & self.i_ready
        m.d.comb += [
            self.i_ready.eq(~s1.valid),
            in_x.i_bits.eq(self.i_x),
            in_d.i_bits.eq(self.i_delta),
        ]
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
        if cfg.scaling == "block" and cfg.acc_depth == 1:
            m.d.comb += [in_x.i_exp.eq(self.i_exp_x), in_d.i_exp.eq(self.i_exp_d)]
        elif cfg.scaling == "block":
            # A group's exponents are its first pair's, held for the rest of the group.
            held_x = Signal(signed(EXP_PORT_WIDTH), name="held_exp_x")
            held_d = Signal(signed(EXP_PORT_WIDTH), name="held_exp_d")
            with m.If(accept & first):
                m.d.sync += [held_x.eq(self.i_exp_x), held_d.eq(self.i_exp_d)]
            m.d.comb += [
                in_x.i_exp.eq(Mux(first, self.i_exp_x, held_x)),
                in_d.i_exp.eq(Mux(first, self.i_exp_d, held_d)),
            ]
        e_out = in_x.o_exp + in_d.o_exp - (cfg.bl_log2 + cfg.lr_shift)

        # --- stream side ---
        out_active = Signal()
        t = Signal(range(bl), name="cycle")
        streaming = s2.valid & ~out_active
        pair_done = streaming & (t == bl - 1)
        s1_take = s1.valid & (~s2.valid | pair_done)

        with m.If(accept):
            m.d.sync += [
                s1.valid.eq(1),
                s1.mag_x.eq(in_x.o_mag), s1.mag_d.eq(in_d.o_mag),
                s1.sign_x.eq(in_x.o_sign), s1.sign_d.eq(in_d.o_sign),
                s1.nonfinite_x.eq(in_x.o_nonfinite), s1.nonfinite_d.eq(in_d.o_nonfinite),
                s1.saturated.eq(in_x.o_saturated | in_d.o_saturated),
                s1.e_out.eq(e_out),
                s1.end.eq(in_end),
            ]
        with m.Elif(s1_take):
            m.d.sync += s1.valid.eq(0)
        with m.If(s1_take):
            m.d.sync += [s2.valid.eq(1), *s2.load(s1)]
        with m.Elif(pair_done):
            m.d.sync += s2.valid.eq(0)
        with m.If(streaming):
            m.d.sync += t.eq(t + 1)

        # --- random numbers: advance only on bitstream cycles ---
        def lfsrs(side, taps, seeds):
            gens = []
            for k, seed in enumerate(seeds):
                gen = Lfsr(taps, cfg.lfsr_width, seed, steps=cfg.steps_per_cycle, out_width=q)
                m.submodules[f"lfsr_{side}_{k}"] = gen
                m.d.comb += gen.en.eq(streaming)
                if cfg.lfsr_restart:
                    m.d.comb += gen.restart.eq(pair_done)
                gens.append(gen)
            return gens
        gen_x = lfsrs("x", cfg.lfsr_taps_x, cfg.lfsr_seeds_x)
        gen_d = lfsrs("d", cfg.lfsr_taps_d, cfg.lfsr_seeds_d)

        # --- comparators: one per input element ---
        def comparators(side, gens, mags, count):
            bits = []
            for k in range(count):
                cmp = Comparator(q)
                m.submodules[f"cmp_{side}_{k}"] = cmp
                m.d.comb += [
                    cmp.i_rand.eq(gens[k if len(gens) > 1 else 0].o_rand),
                    cmp.i_mag.eq(mags.word_select(k, q)),
                ]
                bits.append(cmp.o_bit)
            return bits
        bit_x = comparators("x", gen_x, s2.mag_x, n)
        bit_d = comparators("d", gen_d, s2.mag_d, rows)

        # --- group state: poison bits, flags, output exponent ---
        poison_row = Signal(rows, name="poison_row")
        poison_col = Signal(n, name="poison_col")
        flag_nonfinite = Signal(name="flag_nonfinite")
        flag_saturated = Signal(name="flag_saturated")
        group_e_out = Signal(signed(OUT_EXP_WIDTH), name="group_e_out")
        out_row = Signal(range(rows), name="out_row")
        out_take = self.o_valid & self.o_ready
        out_last = out_row == rows - 1
        with m.If(streaming & (t == 0)):
            m.d.sync += [
                poison_row.eq(poison_row | s2.nonfinite_d),
                poison_col.eq(poison_col | s2.nonfinite_x),
                flag_nonfinite.eq(flag_nonfinite | s2.nonfinite_d.any() | s2.nonfinite_x.any()),
                flag_saturated.eq(flag_saturated | s2.saturated),
            ]
        with m.If(pair_done & s2.end):
            m.d.sync += [out_active.eq(1), out_row.eq(0), group_e_out.eq(s2.e_out)]
        with m.If(out_take):
            # Row poison bits travel with their counter rows; column bits and flags clear at the end.
            m.d.sync += [poison_row.eq(poison_row >> 1), out_row.eq(out_row + 1)]
            with m.If(out_last):
                m.d.sync += [out_active.eq(0), poison_col.eq(0),
                             flag_nonfinite.eq(0), flag_saturated.eq(0)]

        # --- cells ---
        cells = [[None] * n for _ in range(rows)]
        for i in range(rows):
            for j in range(n):
                cell = Cell(cfg.count_width)
                m.submodules[f"cell_{i}_{j}"] = cell
                m.d.comb += [
                    cell.en.eq(streaming),
                    cell.x.eq(bit_x[j]),
                    cell.d.eq(bit_d[i]),
                    cell.sign_x.eq(s2.sign_x[j]),
                    cell.sign_d.eq(s2.sign_d[i]),
                    cell.shift.eq(out_take),
                ]
                cells[i][j] = cell
        for i in range(rows):
            for j in range(n):
                m.d.comb += cells[i][j].shift_in.eq(cells[i + 1][j].count if i + 1 < rows else 0)

        # --- output ---
        m.d.comb += [
            self.o_valid.eq(out_active),
            self.o_row.eq(out_row),
            self.o_last.eq(out_last),
            self.o_exp.eq(group_e_out),
            self.o_nonfinite.eq(flag_nonfinite),
            self.o_saturated.eq(flag_saturated),
        ]
        if cfg.output_format == "fp16":
            words = []
            for j in range(n):
                conv = CountToFp16(cfg.count_width)
                m.submodules[f"to_fp16_{j}"] = conv
                m.d.comb += [
                    conv.i_count.eq(cells[0][j].count),
                    conv.i_exp.eq(group_e_out),
                    conv.i_poison.eq(poison_row[0] | poison_col[j]),
                ]
                words.append(conv.o_bits)
            m.d.comb += self.o_data.eq(Cat(words))
        else:
            m.d.comb += self.o_data.eq(Cat(cells[0][j].count for j in range(n)))
        return m

