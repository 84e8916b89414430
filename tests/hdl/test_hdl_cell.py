# amaranth: UnusedElaboratable=no
"""Comparator is R < a for every q-bit pair; a cell counts AND of its bitstreams up, or down on differing
signs, and shift loads take precedence — equal to a plain Python counter over a random control sequence."""
import numpy as np
import pytest

from essop.hdl.cell import Cell, Comparator, UpCell
from hdl_harness import simulate

SEED = 20261126


@pytest.mark.parametrize("q", [1, 4, 6])
def test_comparator_every_pair(q):
    dut = Comparator(q)
    got = {}

    async def bench(ctx):
        for r in range(1 << q):
            ctx.set(dut.i_rand, r)
            for a in range(1 << q):
                ctx.set(dut.i_mag, a)
                got[r, a] = ctx.get(dut.o_bit)

    simulate(dut, bench, clock=None)
    assert got == {(r, a): int(r < a) for r in range(1 << q) for a in range(1 << q)}


def rtl_counts(dut, ports, steps, row_enable):
    """The cell's count after each step; a step gives a value for each of `ports` (en first, then x, d, ...).
    With ``row_enable`` the cell's en gets the row's enable, shift OR (en AND d), as CellGrid drives it."""
    out = []
    d_at, shift_at = ports.index("d"), ports.index("shift")

    async def bench(ctx):
        for step in steps:
            values = list(step)
            if row_enable:
                values[0] = values[shift_at] | (values[0] & values[d_at])
            for port, v in zip(ports, values):
                ctx.set(getattr(dut, port), v)
            await ctx.tick()
            out.append(ctx.get(dut.count))

    simulate(dut, bench)
    return out


def rtl_cell(cw, steps, row_enable=False):
    """Steps of (en, x, d, sign_x, sign_d, shift, shift_in)."""
    return rtl_counts(Cell(cw, row_enable=row_enable), ("en", "x", "d", "sign_x", "sign_d", "shift", "shift_in"),
                      steps, row_enable)


def ref_cell(steps):
    count, out = 0, []
    for en, x, d, sx, sd, shift, shift_in in steps:
        if shift:
            count = shift_in
        elif en and x and d:
            count += -1 if sx ^ sd else 1
        out.append(count)
    return out


@pytest.mark.parametrize("row_enable", [False, True])
@pytest.mark.parametrize("cw", [2, 6, 36])
def test_cell_random_sequence(cw, row_enable):
    rng = np.random.default_rng(SEED + cw)
    lim = (1 << (cw - 1)) - 1
    steps, count = [], 0
    for _ in range(600):
        en, x, d, sx, sd = (int(v) for v in rng.integers(0, 2, 5))
        shift = int(rng.random() < 0.03)
        shift_in = int(rng.integers(-lim // 2, lim // 2 + 1)) if shift else 0
        # Keep the reference count inside the counter's range, as the array's sizing guarantees.
        nxt = shift_in if shift else count + ((-1 if sx ^ sd else 1) if en and x and d else 0)
        if abs(nxt) > lim:
            en = 0
            nxt = count
        count = nxt
        steps.append((en, x, d, sx, sd, shift, shift_in))
    assert rtl_cell(cw, steps, row_enable) == ref_cell(steps)


def test_cell_reaches_both_limits():
    cw = 4
    lim = (1 << (cw - 1)) - 1
    up = [(1, 1, 1, 0, 0, 0, 0)] * lim
    down = [(1, 1, 1, 1, 0, 0, 0)] * (2 * lim)
    got = rtl_cell(cw, up + down)
    assert got[lim - 1] == lim and got[-1] == -lim and got == ref_cell(up + down)


def rtl_upcell(cw, steps, row_enable=False):
    """Steps of (en, x, d, shift, shift_in)."""
    return rtl_counts(UpCell(cw, row_enable=row_enable), ("en", "x", "d", "shift", "shift_in"), steps, row_enable)


def ref_upcell(steps):
    count, out = 0, []
    for en, x, d, shift, shift_in in steps:
        if shift:
            count = shift_in
        elif en and x and d:
            count += 1
        out.append(count)
    return out


@pytest.mark.parametrize("row_enable", [False, True])
@pytest.mark.parametrize("cw", [1, 5, 11])
def test_upcell_random_sequence(cw, row_enable):
    """The up-counter counts AND products only (no sign input); a shift load wins over en."""
    rng = np.random.default_rng(SEED + 100 + cw)
    lim = (1 << cw) - 1
    steps, count = [], 0
    for _ in range(600):
        en, x, d = (int(v) for v in rng.integers(0, 2, 3))
        shift = int(rng.random() < 0.03)
        shift_in = int(rng.integers(0, lim + 1)) if shift else 0
        if not shift and en and x and d and count == lim:
            en = 0          # the array's sizing (BL products at most) keeps it from wrapping
        count = shift_in if shift else count + (en & x & d)
        steps.append((en, x, d, shift, shift_in))
    assert rtl_upcell(cw, steps, row_enable) == ref_upcell(steps)


def test_upcell_reaches_its_limit():
    cw = 5
    got = rtl_upcell(cw, [(1, 1, 1, 0, 0)] * ((1 << cw) - 1))
    assert got == list(range(1, 1 << cw))


@pytest.mark.parametrize("cls,value,exc,msg", [
    (Comparator, 0, ValueError, "q must be in [1, 16], not 0"),
    (Comparator, "8", TypeError, "q must be an int, not '8'"),
    (Cell, 1, ValueError, "count_width must be in [2, 64], not 1"),
    (Cell, None, TypeError, "count_width must be an int, not None"),
    (UpCell, 0, ValueError, "count_width must be in [1, 64], not 0"),
])
def test_parameter_errors(cls, value, exc, msg):
    with pytest.raises(exc) as info:
        cls(value)
    assert str(info.value) == msg


@pytest.mark.parametrize("cls", [Cell, UpCell])
def test_row_enable_must_be_a_bool(cls):
    with pytest.raises(TypeError) as info:
        cls(4, row_enable=1)
    assert str(info.value) == "row_enable must be a bool, not 1"
