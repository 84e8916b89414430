"""Formal harnesses: the design under proof, free inputs, and the properties (Amaranth Assert/Assume/Cover).

A harness is an Elaboratable with no ports. Every input of the design is free in every cycle (AnySeq), the
reset is assumed low, so a bounded proof starts from the registers' reset values and k-induction from any
state; the properties are written from docs/spec.md, never from the RTL's code:

- `ArrayHarness(cfg, groups)`: the whole EssopArray with property groups chosen from `ARRAY_PROPERTIES`
  (a harness proves only the groups it is given, so each can be timed and proven on its own).
- `CountToFp16Harness(count_width)`: the count-to-FP16 converter against a table of NumPy's correctly
  rounded float16 cast (spec section 7), for every count and every output exponent: a combinational
  property, so a proof of depth 1 is exhaustive.

The array harness reaches inside the design (counters, LFSR states, the bitstream generators' pair marks)
by walking the elaborated fragment tree for components of a given class (`components`); it reads those
signals and drives nothing but the array's own inputs.
"""
from __future__ import annotations

from functools import reduce
from operator import or_

import numpy as np
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Fragment, Module, Mux, ResetSignal
from amaranth.hdl import Signal, signed

from essop import fp16_format
from essop.config import EssopConfig
from essop.hdl.array import EssopArray
from essop.hdl.bitstreams import BitstreamGenerators
from essop.hdl.cell import Cell
from essop.hdl.count_to_fp16 import CountToFp16
from essop.hdl.lfsr import Lfsr

__all__ = ["ARRAY_PROPERTIES", "ArrayHarness", "CountToFp16Harness", "components", "fp16_table"]

#: Property groups of the array harness, each one line of docs/reliability.md.
ARRAY_PROPERTIES = {
    "streams": "a pair accepted is streamed exactly once, BL bitstream cycles, in order; rows 0..m-1 in order; "
               "outputs hold while not ready; no output without a preceding group",
    "counters": "every counter stays within +-BL * acc_depth",
    "lfsr": "no LFSR state is ever zero",
    "flags": "nonfinite and saturated flags and the NaN (poison) outputs are those the spec gives for the "
             "group's inputs",
}

#: Bits of the harness's own event counters (pairs, groups): more than any proof's depth needs.
_TALLY_WIDTH = 8


def components(fragment: Fragment, cls) -> list:
    """Every component of class `cls` that was elaborated into `fragment` or its subfragments, in order."""
    found = [origin for origin in (fragment.origins or ()) if isinstance(origin, cls)]
    for sub, _name, _src_loc in fragment.subfragments:
        found += components(sub, cls)
    return found


def _free(shape, name):
    """A signal free in every cycle (the solver picks it), named for counterexample traces."""
    sig = Signal(shape, name=name)
    return sig, sig.eq(AnySeq(shape))


def _elements(word, width, count):
    return [word[k * width:(k + 1) * width] for k in range(count)]


def _fp16_fields(v):
    """(exponent field, fraction field) of a 16-bit pattern, from the format's constants."""
    f = fp16_format
    return v[f.FRAC_WIDTH:f.FRAC_WIDTH + f.EXP_WIDTH], v[:f.FRAC_WIDTH]


def _nonfinite(v):
    e, _ = _fp16_fields(v)
    return e == fp16_format.EXP_FIELD_MAX


def _too_big(v, exp):
    """Spec §3: a finite nonzero element saturates iff |v| >= 2**E, i.e. iff its own exponent E(v) (the
    smallest integer with |v| < 2**E(v)) exceeds the group's E. E(v) = e - 14 for a normal value
    (1024 <= M < 2048), bitlen(f) - 24 for a subnormal one; written out here, not taken from the RTL."""
    e, f = _fp16_fields(v)
    wide = signed(8)
    sub_exp = Const(-24, wide)           # bitlen(f) - 24: a priority chain from the low bit up
    for k in range(fp16_format.FRAC_WIDTH):
        sub_exp = Mux(f[k], Const(k + 1 - 24, wide), sub_exp)
    normal = (e != 0) & ~_nonfinite(v)
    return (normal & (e > exp + 14)) | ((e == 0) & (f != 0) & (sub_exp > exp))


class _Harness(Elaboratable):
    """Keeps each assertion's message by the source line sby reports for it (`messages`)."""

    def _check(self, test, message):
        stmt = Assert(test, message, src_loc_at=1)
        self.messages[stmt.src_loc] = message
        return stmt

    def message_at(self, filename: str, line: int) -> str | None:
        return self.messages.get((filename, line))


class ArrayHarness(_Harness):
    """EssopArray(cfg) with free inputs and the property `groups` (keys of ARRAY_PROPERTIES).

    `array` builds the design under proof (default EssopArray; a test passes a broken one). `covers` adds
    Cover statements: two whole groups read out (which shows a proof's depth spans two groups), and, with
    "flags", a poisoned and (block scaling) a saturated group read out.
    """

    def __init__(self, cfg: EssopConfig, groups=tuple(ARRAY_PROPERTIES), *, array=EssopArray, covers=True):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        unknown = sorted(set(groups) - set(ARRAY_PROPERTIES))
        if unknown or not groups:
            raise ValueError(f"groups must be some of {sorted(ARRAY_PROPERTIES)}, not {groups!r}")
        self.cfg, self.groups, self.array, self.covers = cfg, tuple(groups), array, covers
        self.messages = {}

    def elaborate(self, platform):
        cfg = self.cfg
        n, rows, bl = cfg.cols, cfg.rows, cfg.bl
        m = Module()
        dut = self.array(cfg)
        frag = Fragment.get(dut, platform)
        m.submodules.dut = frag
        m.d.comb += Assume(~ResetSignal())

        # --- free inputs ---
        drives = {}
        for name in ("i_valid", "i_x", "i_delta", "i_exp_x", "i_exp_d", "i_last", "o_ready"):
            port = getattr(dut, name)
            sig, drive = _free(port.shape(), f"free_{name}")
            m.d.comb += [drive, port.eq(sig)]
            drives[name] = sig
        accept = dut.i_valid & dut.i_ready
        take = dut.o_valid & dut.o_ready
        take_last = take & dut.o_last
        (gen,) = components(frag, BitstreamGenerators)

        # --- the harness's own view of the input: which pair ends its group (spec §6) ---
        if cfg.acc_depth > 1:
            in_pairs = Signal(range(cfg.acc_depth), name="h_in_pairs")
            ends = dut.i_last | (in_pairs == cfg.acc_depth - 1)
            with m.If(accept):
                m.d.sync += in_pairs.eq(Mux(ends, 0, in_pairs + 1))
            first_of_group = in_pairs == 0
        else:
            ends, first_of_group = Const(1), Const(1)

        def tally(name, event):
            sig = Signal(_TALLY_WIDTH, name=name)
            with m.If(event):
                m.d.sync += sig.eq(sig + 1)
            return sig

        n_acc = tally("h_pairs_accepted", accept)
        n_first = tally("h_pairs_started", gen.o_first)
        n_done = tally("h_pairs_done", gen.o_done)
        n_groups_in = tally("h_groups_accepted", accept & ends)
        n_groups_out = tally("h_groups_out", take_last)
        # A group has finished streaming on a pair's last cycle if the harness's count of group ends among
        # the pairs done says so: pairs are streamed in order, so the k-th pair done is the k-th accepted.
        ends_log = Signal(8, name="h_ends_log")   # ends bit of accepted-not-done pairs, oldest at bit 0
        log_len = Signal(range(9), name="h_ends_log_len")
        oldest_ends = ends_log[0]
        n_groups_done = tally("h_groups_done", gen.o_done & oldest_ends)
        kept = Signal(8, name="h_ends_kept")
        slot = Signal(range(9), name="h_ends_slot")
        m.d.comb += [kept.eq(Mux(gen.o_done, ends_log >> 1, ends_log)), slot.eq(log_len - gen.o_done)]
        m.d.sync += ends_log.eq(kept | Mux(accept & ends, Const(1, 8) << slot, 0))
        m.d.sync += log_len.eq(log_len + accept - gen.o_done)

        if self.covers:
            m.d.comb += Cover(n_groups_out == 2)

        if "streams" in self.groups:
            # Exactly once, in order: a pair starts streaming only after it was accepted and the pair before
            # it is done; it is done after exactly BL bitstream cycles; at most two pairs wait (the two
            # buffers), so none is dropped.
            run = Signal(range(bl + 1), name="h_run")
            with m.If(gen.o_en):
                m.d.sync += run.eq(Mux(gen.o_done, 0, run + 1))
            m.d.comb += [
                self._check(n_first - n_done <= 1, "a pair starts only when the one before it is done"),
                self._check(~gen.o_first | (n_first == n_done), "a pair starts only when the one before it is done"),
                self._check(~gen.o_en | (gen.o_first == (run == 0)), "a pair's first bitstream cycle is its first"),
                self._check(~gen.o_done | (run == bl - 1), "a pair is done after exactly BL bitstream cycles"),
                self._check(~gen.o_en | (n_first != n_done) | gen.o_first, "no bitstream cycle outside a pair"),
                self._check(n_acc - n_done <= 2, "at most two accepted pairs wait (none dropped)"),
                self._check(n_first <= n_acc, "no pair streams that was not accepted"),
                self._check(n_done <= n_first, "no pair is done that did not start"),
                self._check(~gen.o_first | (n_first < n_acc), "no pair streams that was not accepted"),
            ]
            # No output without a preceding group; one group read out at a time; rows 0..m-1 in order.
            row = Signal(range(rows), name="h_row")
            with m.If(take):
                m.d.sync += row.eq(Mux(dut.o_last, 0, row + 1))
            m.d.comb += [
                self._check(~dut.o_valid | (n_groups_done != n_groups_out), "no output without a preceding group"),
                self._check(n_groups_out <= n_groups_done, "no output without a preceding group"),
                self._check(n_groups_done - n_groups_out <= 1, "one group read out at a time"),
                self._check(~dut.o_valid | (dut.o_row == row), "rows are offered 0..m-1 in order"),
                self._check(~dut.o_valid | (dut.o_last == (row == rows - 1)), "o_last marks row m-1"),
                self._check(~dut.o_valid | ~gen.o_en, "bitstreams pause while rows are read out"),
            ]
            # Outputs hold while not ready.
            held = Signal(name="h_held")
            m.d.sync += held.eq(dut.o_valid & ~dut.o_ready)
            outs = Cat(dut.o_row, dut.o_data, dut.o_exp, dut.o_last, dut.o_nonfinite, dut.o_saturated)
            prev = Signal(len(outs), name="h_prev_out")
            m.d.sync += prev.eq(outs)
            m.d.comb += [
                self._check(~held | dut.o_valid, "o_valid holds until the row is taken"),
                self._check(~held | (outs == prev), "a row's data, row, exponent and flags hold until it is taken"),
            ]

        if "counters" in self.groups:
            bound = bl * cfg.acc_depth
            for k, cell in enumerate(components(frag, Cell)):
                m.d.comb += self._check((cell.count <= bound) & (cell.count >= -bound), "counter within +-BL*acc_depth")

        if "lfsr" in self.groups:
            for gen_k in components(frag, Lfsr):
                m.d.comb += self._check(gen_k.o_state != 0, "no LFSR state is zero")

        if "flags" in self.groups:
            self._flags(m, cfg, dut, accept, ends, first_of_group, take_last, drives)
        return m

    def _flags(self, m, cfg, dut, accept, ends, first_of_group, take_last, drives):
        """Scoreboard of the groups' flags and poison bits (spec §1, §3, §7, §8), computed from the inputs."""
        n, rows = cfg.cols, cfg.rows
        xs = _elements(dut.i_x, fp16_format.WIDTH, n)
        ds = _elements(dut.i_delta, fp16_format.WIDTH, rows)
        pcol = Cat(_nonfinite(v) for v in xs)
        prow = Cat(_nonfinite(v) for v in ds)
        if cfg.scaling == "block":
            # The group's exponents are its first pair's port values (spec §2).
            if cfg.acc_depth > 1:
                held_x = Signal(signed(cfg.exp_port_width), name="h_exp_x")
                held_d = Signal(signed(cfg.exp_port_width), name="h_exp_d")
                with m.If(accept & first_of_group):
                    m.d.sync += [held_x.eq(dut.i_exp_x), held_d.eq(dut.i_exp_d)]
                ex = Mux(first_of_group, dut.i_exp_x, held_x)
                ed = Mux(first_of_group, dut.i_exp_d, held_d)
            else:
                ex, ed = dut.i_exp_x, dut.i_exp_d
            sat_now = reduce(or_, [_too_big(v, ex) for v in xs] + [_too_big(v, ed) for v in ds])
        else:
            sat_now = Const(0)   # per-pair exponents never saturate (spec §3)
        entry = Cat(prow, pcol, sat_now)
        width = len(entry)
        # The group being gathered on the input side, then a queue of finished groups waiting to be read out
        # (at most three: the one read out, one single-pair group in each buffer).
        cur = Signal(width, name="h_group_flags")
        merged = cur | entry
        depth = 3
        queue = [Signal(width, name=f"h_flags_q{k}") for k in range(depth)]
        count = Signal(range(depth + 1), name="h_flags_q_len")
        push = accept & ends
        pop = take_last
        with m.If(accept):
            m.d.sync += cur.eq(Mux(ends, 0, merged))
        # Shift out at the head on pop; append at the tail on push.
        after_pop = [Mux(pop, queue[k + 1] if k + 1 < depth else 0, queue[k]) for k in range(depth)]
        tail = count - pop
        for k in range(depth):
            m.d.sync += queue[k].eq(Mux(push & (tail == k), merged, after_pop[k]))
        m.d.sync += count.eq(count + push - pop)
        head = queue[0]
        h_prow, h_pcol, h_sat = head[:rows], head[rows:rows + n], head[rows + n]
        m.d.comb += [
            self._check(count <= depth, "at most three groups wait to be read out"),
            self._check(~dut.o_valid | (count != 0), "no output without a preceding group"),
            self._check(~dut.o_valid | (dut.o_nonfinite == (h_prow.any() | h_pcol.any())),
                   "o_nonfinite: some input of the group was Inf or NaN"),
            self._check(~dut.o_valid | (dut.o_saturated == h_sat), "o_saturated: some magnitude of the group clamped"),
        ]
        if cfg.output_format == "fp16":
            poisoned_row = h_prow.bit_select(dut.o_row, 1) if rows > 1 else h_prow[0]
            for j, word in enumerate(_elements(dut.o_data, fp16_format.WIDTH, n)):
                e, f = _fp16_fields(word)
                is_nan = (e == fp16_format.EXP_FIELD_MAX) & (f != 0)
                poisoned = poisoned_row | h_pcol[j]
                m.d.comb += [
                    self._check(~dut.o_valid | ~poisoned | (word == fp16_format.NAN16),
                           "a poisoned row or column outputs the canonical NaN"),
                    self._check(~dut.o_valid | poisoned | ~is_nan, "no NaN outside poisoned rows and columns"),
                ]
        if self.covers:
            m.d.comb += Cover(take_last & dut.o_nonfinite)
            if cfg.scaling == "block":
                m.d.comb += Cover(take_last & dut.o_saturated)


def fp16_table(count_width: int, out_exp_width: int) -> dict[tuple[int, int], int]:
    """Spec §7's reference: for every signed count and every output exponent of the port, the bit pattern of
    NumPy's correctly rounded float16(count * 2**E) (exact in float64): ties to even, Inf past 65504, a
    zero keeping the count's sign, +0 for a zero count."""
    counts = np.arange(-(1 << (count_width - 1)), 1 << (count_width - 1), dtype=np.int64)
    table = {}
    with np.errstate(over="ignore"):
        for e in range(-(1 << (out_exp_width - 1)), 1 << (out_exp_width - 1)):
            vals = (counts.astype(np.float64) * np.float64(2.0) ** e).astype(np.float16).view(np.uint16)
            for c, v in zip(counts, vals):
                table[int(c), e] = int(v)
    return table


class CountToFp16Harness(_Harness):
    """CountToFp16(count_width) against `fp16_table` for every (count, exponent) pair, and the canonical NaN
    when poisoned: exhaustive, since the block is combinational and its inputs are free."""

    def __init__(self, count_width: int, *, converter=CountToFp16):
        self.count_width, self.converter = count_width, converter
        self.messages = {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.converter(self.count_width)
        out_exp_width = len(dut.i_exp)
        count, d1 = _free(signed(self.count_width), "free_count")
        exp, d2 = _free(signed(out_exp_width), "free_exp")
        poison, d3 = _free(1, "free_poison")
        m.d.comb += [d1, d2, d3, dut.i_count.eq(count), dut.i_exp.eq(exp), dut.i_poison.eq(poison)]
        ref = Signal(fp16_format.WIDTH, name="ref_bits")
        key = Cat(count, exp)
        with m.Switch(key):
            for (c, e), bits in fp16_table(self.count_width, out_exp_width).items():
                with m.Case((c & ((1 << self.count_width) - 1))
                            | ((e & ((1 << out_exp_width) - 1)) << self.count_width)):
                    m.d.comb += ref.eq(bits)
        m.d.comb += [
            self._check(poison | (dut.o_bits == ref), "count-to-FP16 equals NumPy's float16 of count * 2**E"),
            self._check(~poison | (dut.o_bits == fp16_format.NAN16), "poisoned: the canonical NaN"),
        ]
        return m
