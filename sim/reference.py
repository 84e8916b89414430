"""The pure reference of the cocotb testbench: what the array's output stream must carry, row by row.

It runs the golden model (essop.golden.array, written independently of the RTL) over the same input stream
and turns each group's result into the output transfers of spec §9: rows 0..m-1, element j in bits
[w*j + w-1 : w*j] of o_data (w = EssopConfig.data_element_width: 16 for fp16, count_width for counts, two's
complement).
"""
from __future__ import annotations

from dataclasses import dataclass

from essop.config import EssopConfig
from essop.golden.array import EssopArrayModel
from essop.golden.faults import FaultPlan, run_with_faults
from essop.sim.stimulus import Stream

__all__ = ["Row", "expected_rows", "describe_mismatch", "pack", "unpack"]


@dataclass(frozen=True)
class Row:
    """One output transfer; `first_pair`..`last_pair` are the stream indices of its group's pairs."""
    group: int
    row: int
    data: int
    exp: int
    last: bool
    nonfinite: bool
    saturated: bool
    first_pair: int = 0
    last_pair: int = 0

    def fields(self) -> dict[str, int]:
        return {"o_row": self.row, "o_data": self.data, "o_exp": self.exp, "o_last": int(self.last),
                "o_nonfinite": int(self.nonfinite), "o_saturated": int(self.saturated)}


def pack(values, width: int) -> int:
    """Elements into one integer, element 0 in the lowest bits, each as `width`-bit two's complement."""
    mask = (1 << width) - 1
    word = 0
    for j, v in enumerate(values):
        word |= (int(v) & mask) << (width * j)
    return word


def unpack(word: int, width: int, count: int, signed: bool) -> list[int]:
    mask = (1 << width) - 1
    out = []
    for j in range(count):
        v = (word >> (width * j)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def expected_rows(cfg: EssopConfig, stream: Stream, plan: FaultPlan | None = None) -> list[Row]:
    """Every output row the array must produce for `stream`, in order, from reset; with `plan`, the rows of
    an array suffering its faults (essop.golden.faults)."""
    block = cfg.scaling == "block"
    exps = dict(exp_x=[int(e) for e in stream.exp_x] if block else None,
                exp_d=[int(e) for e in stream.exp_d] if block else None)
    if plan is None:
        results = EssopArrayModel(cfg).run(stream.xs, stream.ds, stream.last, **exps)
    else:
        results = run_with_faults(cfg, stream.xs, stream.ds, stream.last, plan=plan, **exps)
    width = cfg.data_element_width
    rows = []
    first = 0
    for g, res in enumerate(results):
        values = res.fp16 if cfg.output_format == "fp16" else res.counts
        for i in range(cfg.rows):
            rows.append(Row(group=g, row=i, data=pack(values[i], width), exp=int(res.e_out),
                            last=i == cfg.rows - 1, nonfinite=bool(res.nonfinite),
                            saturated=bool(res.saturated), first_pair=first, last_pair=first + res.pairs - 1))
        first += res.pairs
    return rows


def describe_mismatch(cfg: EssopConfig, want: Row, got: dict[str, int]) -> str:
    """A readable diff of one row: its group and pairs, which fields differ and, for o_data, which elements."""
    parts = []
    for name, value in want.fields().items():
        if got[name] != value:
            if name == "o_data":
                width = cfg.data_element_width
                signed = cfg.output_format == "count"
                w = unpack(value, width, cfg.cols, signed)
                g = unpack(got[name], width, cfg.cols, signed)
                bad = [(j, w[j], g[j]) for j in range(cfg.cols) if w[j] != g[j]]
                fmt = "{:#06x}" if cfg.output_format == "fp16" else "{}"
                parts.append("o_data elements " + ", ".join(
                    f"[{j}] expected {fmt.format(a)} got {fmt.format(b)}" for j, a, b in bad[:8])
                    + (f" (+{len(bad) - 8} more)" if len(bad) > 8 else ""))
            else:
                parts.append(f"{name} expected {value} got {got[name]}")
    pairs = (f"pair {want.first_pair}" if want.first_pair == want.last_pair
             else f"pairs {want.first_pair}..{want.last_pair}")
    return f"group {want.group} ({pairs}) row {want.row}: " + "; ".join(parts)
