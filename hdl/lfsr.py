"""Leap-forward Fibonacci LFSR (spec section 4).

One clock edge with `en` advances the state by `steps` single shifts at once. The S shifts are unrolled at
elaboration time: each bit of the next state is a GF(2) combination of current state bits, so the hardware is
one XOR of a fixed set of state bits per output bit — no chain of S dependent shifts.
"""

from functools import reduce
from operator import xor

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int

__all__ = ["Lfsr", "leap_masks"]


def leap_masks(taps: tuple[int, ...], width: int, steps: int) -> list[int]:
    """Bit masks m_k such that bit k of shift^steps(s) = parity(s & m_k)."""
    masks = [1 << k for k in range(width)]
    for _ in range(steps):
        feedback = reduce(xor, (masks[t - 1] for t in taps))
        masks = [feedback] + masks[:-1]
    return masks


class Lfsr(wiring.Component):
    """A `width`-bit Fibonacci XOR LFSR, leaping `steps` shifts per enabled cycle.

    feedback = XOR of state bit (t - 1) for each tap t; shift(s) = ((s << 1) | feedback) mod 2**width.
    ``o_rand`` is the low ``out_width`` bits of the current state (R(t) = state_t mod 2**q).
    ``restart`` reloads the seed and takes precedence over ``en``. The register's reset value is the seed.
    """

    def __init__(self, taps, width, seed, *, steps=1, out_width=None):
        check_int("width", width, 2, 64)
        if not isinstance(taps, tuple):
            raise TypeError(f"taps must be a tuple of ints, not {taps!r}")
        for t in taps:
            check_int("tap", t, 1, width)
        if width not in taps:
            raise ValueError(f"taps must include the width {width!r}, not {taps!r}")
        if len(set(taps)) != len(taps):
            raise ValueError(f"taps must be distinct, not {taps!r}")
        check_int("seed", seed, 1, (1 << width) - 1)
        check_int("steps", steps, 1, 1 << 16)
        if out_width is None:
            out_width = width
        check_int("out_width", out_width, 1, width)
        self._taps, self._width, self._seed = taps, width, seed
        self._steps, self._out_width = steps, out_width
        super().__init__({
            "en": In(1),
            "restart": In(1),
            "o_state": Out(width),
            "o_rand": Out(out_width),
        })

    @property
    def taps(self) -> tuple[int, ...]:
        return self._taps

    @property
    def width(self) -> int:
        return self._width

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def steps(self) -> int:
        """Single shifts per enabled cycle."""
        return self._steps

    @property
    def out_width(self) -> int:
        return self._out_width

    @property
    def period(self) -> int:
        """Single-shift period of a maximal-length register (the taps decide whether it is reached)."""
        return (1 << self._width) - 1

    def elaborate(self, platform):
        m = Module()
        state = Signal(self._width, init=self._seed)
        leaped = [reduce(xor, (state[k] for k in range(self._width) if mask >> k & 1))
                  for mask in leap_masks(self._taps, self._width, self._steps)]
        with m.If(self.restart):
            m.d.sync += state.eq(self._seed)
        with m.Elif(self.en):
            for k, bit in enumerate(leaped):
                m.d.sync += state[k].eq(bit)
        m.d.comb += [
            self.o_state.eq(state),
            self.o_rand.eq(state[:self._out_width]),
        ]
        return m
