"""The ESSOP array (spec section 9): input stream -> magnitudes -> LFSR bitstreams -> m x n up/down counters
-> one row per beat on the output stream.

Pipeline (docs/rtl.md has the details). The periphery is cut into register-to-register halves so that it
is no slower than the cells' own path (LFSR -> comparator -> AND -> counter):

    i_x, i_delta --[decoders + first half of the exponent max tree]--> load buffer s1 (FP16 patterns,
                 partial maxima) --[rest of the tree]--> E_x, E_d (in s1, one cycle later)
                 --[decoders + barrel shifters]--> stream buffer s2 (q-bit magnitudes, signs) --BL cycles-->
                 counters --row 0--> [CountNormalise] --> output register --[NormalisedToFp16]--> o_data

The two buffers let the next pair be taken while the current one streams. Counters shift up by one row per
output beat (row 0 feeds the output register), so after the last row the array holds zeros again, with no
separate clear.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int
from essop.config import EssopConfig
from essop.hdl.cell import Cell, Comparator
from essop.hdl.count_to_fp16 import CountNormalise, NormalisedToFp16, normalised_layout
from essop.hdl.fp16_input import ExponentMax, Fp16PartialExponent, Fp16VectorInput, max_depth
from essop.hdl.lfsr import Lfsr

__all__ = ["EssopArray"]


class _Buffer:
    """A named group of registers holding one vector pair at one pipeline stage, plus its valid bit."""

    def __init__(self, prefix: str, **shapes):
        self.valid = Signal(name=f"{prefix}_valid")
        for name, shape in shapes.items():
            setattr(self, name, Signal(shape, name=f"{prefix}_{name}"))


class EssopArray(wiring.Component):
    """An ESSOP outer-product array of ``cfg.rows`` x ``cfg.cols`` stochastic up/down counters.

    Ports and their meaning: docs/spec.md section 9. Timing facts are the properties below.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "i_valid": In(1),
            "i_ready": Out(1),
            "i_x": In(cfg.x_width),
            "i_delta": In(cfg.delta_width),
            "i_exp_x": In(signed(cfg.exp_port_width)),
            "i_exp_d": In(signed(cfg.exp_port_width)),
            "i_last": In(1),
            "o_valid": Out(1),
            "o_ready": In(1),
            "o_row": Out(cfg.row_width),
            "o_data": Out(cfg.data_width),
            "o_exp": Out(signed(cfg.out_exp_width)),
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
        """Width of o_row (EssopConfig.row_width)."""
        return self._cfg.row_width

    @property
    def data_element_width(self) -> int:
        """Bits per element of o_data (EssopConfig.data_element_width)."""
        return self._cfg.data_element_width

    @property
    def cycles_per_pair(self) -> int:
        """Steady-state input interval in cycles: one pair per BL bitstream cycles (inside a group)."""
        return self._cfg.bl

    @property
    def exponent_split_levels(self) -> int:
        """per_pair: comparator levels of each exponent max tree between the input ports and the load buffer's
        partial maxima; the other levels run from those registers one cycle later. Half the tree, rounded
        down, because the decoders share the first cycle."""
        return max(max_depth(self._cfg.cols), max_depth(self._cfg.rows)) // 2

    @property
    def input_to_stream_latency(self) -> int:
        """Cycles from a pair's transfer into an idle array to its first bitstream cycle: one cycle in the
        load buffer (per_pair: a second one while the rest of the exponent max trees is registered), one
        shifting into the stream buffer."""
        return 3 if self._cfg.scaling == "per_pair" else 2

    @property
    def input_to_first_output_latency(self) -> int:
        """Cycles from the transfer of a group's only pair, into an idle array, to the cycle in which its
        row 0 is first offered (o_valid)."""
        return self.input_to_stream_latency + self._cfg.bl - 1 + self.last_pair_to_output_latency

    @property
    def last_pair_to_output_latency(self) -> int:
        """Cycles from a group's last bitstream cycle to the cycle in which row 0 is first offered: the
        counters settle, then row 0 is normalised into the output register."""
        return 2

    @property
    def cycles_per_group_output(self) -> int:
        """Output beats per group (one row each) when o_ready stays high; bitstreams pause meanwhile."""
        return self._cfg.rows

    @property
    def output_to_stream_gap(self) -> int:
        """Cycles from the last row's transfer to the next group's first bitstream cycle, if a pair waits
        in the stream buffer."""
        return 1

    def steady_state_cycles_per_group(self, pairs: int) -> int:
        """Cycles between the starts of consecutive groups of `pairs` pairs when a pair is always waiting
        and o_ready stays high: the bitstreams, the read-out and the idle cycles around it."""
        check_int("pairs", pairs, 1, self._cfg.acc_depth)
        return (pairs * self._cfg.bl + (self.last_pair_to_output_latency - 1) + self.cycles_per_group_output
                + (self.output_to_stream_gap - 1))

    @property
    def n_lfsrs(self) -> int:
        return self._cfg.n_generators

    # ---- gateware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        cfg = self._cfg
        n, rows, q, bl = cfg.cols, cfg.rows, cfg.q, cfg.bl
        m = Module()

        # --- input side: exponents on the way into the load buffer s1 ---
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
        m.submodules.in_x = in_x = Fp16VectorInput(n, q, "block")
        m.submodules.in_d = in_d = Fp16VectorInput(rows, q, "block")
        m.d.comb += [
            in_x.i_bits.eq(s1.bits_x), in_x.i_exp.eq(s1.exp_x),
            in_d.i_bits.eq(s1.bits_d), in_d.i_exp.eq(s1.exp_d),
        ]
        s2 = _Buffer("s2", mag_x=q * n, mag_d=q * rows, sign_x=n, sign_d=rows, nonfinite_x=n,
                     nonfinite_d=rows, saturated=1, exp_x=signed(cfg.exp_port_width),
                     exp_d=signed(cfg.exp_port_width), end=1)

        # --- stream side ---
        out_load = Signal(name="out_load")      # the cycle after a group's last bitstream cycle
        out_active = Signal(name="out_active")  # rows are being offered
        t = Signal(range(bl), name="cycle")
        streaming = s2.valid & ~out_load & ~out_active
        pair_done = streaming & (t == bl - 1)
        s1_ready = s1.valid & s1_exp_ok if cfg.scaling == "per_pair" else s1.valid
        s1_take = s1_ready & (~s2.valid | pair_done)
        # A register, not a function of i_valid. per_pair groups are single pairs (acc_depth 1), so the
        # exponent cycle s1 adds is hidden behind each group's read-out: the group period is unchanged.
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
        group_e_out = Signal(signed(cfg.out_exp_width), name="group_e_out")
        out_row = Signal(range(rows), name="out_row")
        out_take = self.o_valid & self.o_ready
        out_last = out_row == rows - 1
        # Row 0 moves into the output register, and the counters shift up, when the read-out starts and on
        # every taken row; the last take shifts zeros into zeros.
        out_shift = out_load | out_take
        with m.If(streaming & (t == 0)):
            m.d.sync += [
                poison_row.eq(poison_row | s2.nonfinite_d),
                poison_col.eq(poison_col | s2.nonfinite_x),
                flag_nonfinite.eq(flag_nonfinite | s2.nonfinite_d.any() | s2.nonfinite_x.any()),
                flag_saturated.eq(flag_saturated | s2.saturated),
            ]
        m.d.sync += out_load.eq(pair_done & s2.end)
        with m.If(pair_done & s2.end):
            m.d.sync += group_e_out.eq(s2.exp_x + s2.exp_d - (cfg.bl_log2 + cfg.lr_shift))
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
                    cell.shift.eq(out_shift),
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
                norm = CountNormalise(cfg.count_width)
                held = Signal(normalised_layout(cfg.count_width), name=f"out_norm_{j}")
                rnd = NormalisedToFp16(cfg.count_width)
                m.submodules[f"normalise_{j}"] = norm
                m.submodules[f"round_{j}"] = rnd
                m.d.comb += [
                    norm.i_count.eq(cells[0][j].count),
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
                m.d.sync += held.eq(Cat(cells[0][j].count for j in range(n)))
            m.d.comb += self.o_data.eq(held)
        return m

