"""The one configuration object of an ESSOP array.

Every part of the project — the Amaranth RTL, the NumPy golden model, the cocotb testbenches, the PyTorch
training kernel and the synthesis flow — takes an :class:`EssopConfig`. Derived facts (counter width, LFSR
taps, seeds, latencies) are read-only properties, never numbers repeated elsewhere.

The bit-level meaning of every field is in docs/spec.md.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

import math

from essop import fp16_format, lfsr_params, sobol_params
from essop.checks import check_choice as _check_choice, check_int as _check_int

__all__ = [
    "EssopConfig", "SHARING_MODES", "RNG_SOURCES", "rng_label", "SCALING_MODES", "OUTPUT_FORMATS", "EXP_MIN", "EXP_MAX", "EXP_PORT_WIDTH",
    "EXP_PORT_MIN", "EXP_PORT_MAX", "OUT_EXP_WIDTH", "MAX_DIM", "MAX_ACC_DEPTH", "CELL_KINDS", "READOUT_MODES"
]

SHARING_MODES = ("shared", "per_element")
RNG_SOURCES = ("lfsr", "sobol")


def rng_label(rng: str, rng_shift: bool, element_words: bool = False) -> str:
    """A random-number source as tables name it: 'lfsr' or 'sobol', '+words' for LFSR element words,
    '+shift' with the per-pair shift."""
    return rng + ("+words" if element_words else "") + ("+shift" if rng_shift else "")
SCALING_MODES = ("per_pair", "block")
OUTPUT_FORMATS = ("fp16", "count")
CELL_KINDS = ("updown", "upcount")
READOUT_MODES = ("shift", "shadow")

#: Range of the shared exponent E (smallest integer with max|v| < 2**E) over finite FP16 vectors;
#: an all-zero vector gets EXP_MIN. Block exponents supplied from outside may use the wider input range.
EXP_MIN, EXP_MAX = -24, 16
#: Width and range of a block exponent input port (signed).
EXP_PORT_WIDTH = 6
EXP_PORT_MIN, EXP_PORT_MAX = -(1 << (EXP_PORT_WIDTH - 1)), (1 << (EXP_PORT_WIDTH - 1)) - 1
#: Width of the signed output exponent E_out (o_exp, spec section 9).
OUT_EXP_WIDTH = 8

#: Largest rows / cols. Far beyond a chip's array: training models a layer of any realistic width (a 4096-input
#: Linear layer, say) as one virtual array of its own size.
MAX_DIM = 1 << 16
MAX_ACC_DEPTH = 1 << 24


@dataclass(frozen=True)
class EssopConfig:
    """An ESSOP outer-product array: C (rows x cols) accumulates delta (x) x over vector pairs."""

    rows: int = 16
    """m: length of the error vector delta; one counter row per delta_i."""
    cols: int = 16
    """n: length of the activation vector x; one counter column per x_j."""
    bl: int = 16
    """Bitstream length BL = 2**L cycles per vector pair; a power of two in [2, 1024]."""
    q: int = 8
    """Magnitude bits: |x_j| becomes a q-bit integer a_j in [0, 2**q - 1]; random numbers are q bits."""
    sharing: Literal["shared", "per_element"] = "shared"
    """'shared': one LFSR for all x-comparators and one for all delta-comparators (ESSOP).
    'per_element': one LFSR per input element, n + m in all (classic stochastic computing)."""
    rng: Literal["lfsr", "sobol"] = "lfsr"
    """Random-number source. 'lfsr': leap-forward Fibonacci LFSRs (the lfsr_* fields). 'sobol': the 2-D Sobol
    sequence (Joe and Kuo direction numbers; x side dimension 1, delta side dimension 2), q-bit points from a
    Gray-code counter and XORs of direction words; per_element generators are distinct digital shifts of the
    same points. docs/spec.md section 4."""
    element_words: bool = False
    """LFSR per_element only. False: one LFSR per input element, started at evenly spread offsets of the
    m-sequence. True: one LFSR per side, as when shared, and element k's numbers are that LFSR's XOR a constant
    q-bit word, the bit-reversed k (essop.sobol_params.element_word, the digital shift Sobol per_element uses):
    every element its own numbers for inverters instead of n + m - 2 registers."""
    lfsr_width: int = 16
    """Register width w of every LFSR (maximal-length taps from Xilinx XAPP052, period 2**w - 1)."""
    lfsr_steps: int | None = None
    """LFSR shifts per bitstream cycle (a leap-forward LFSR). Must be coprime with the period 2**w - 1 (else the
    stepped generator visits only 1/gcd of its states) and at most lfsr_width (or the default, where that is
    larger). None: the smallest step count >= q coprime with 2**w - 1 (q itself when it is), so each cycle's
    q-bit number is made of fresh bits."""
    lfsr_seed_x: int = 0xACE1
    """Start state of the x-side generator (per_element: of x-generator 0); nonzero, < 2**lfsr_width."""
    lfsr_seed_d: int = 0x1D2B
    """Start state of the delta-side generator (per_element: of delta-generator 0)."""
    lfsr_restart: bool = False
    """False: generators run on across vector pairs (state kept). True: every pair starts the random numbers
    again from the seeds (cycle 0, pair 0; any source, the per-pair shift included)."""
    rng_shift: bool = False
    """Per-pair random digital shift: each pair's x numbers are XORed with one q-bit word and its delta numbers
    with another, both from a small LFSR (width max(2q, 3), seed rng_shift_seed) advanced once per pair, so
    that the count of fixed inputs averages to its exact expectation over pairs (any source)."""
    rng_shift_seed: int = 1
    """Start state of the per-pair shift LFSR (nonzero, < 2**rng_shift_width)."""
    acc_depth: int = 1
    """Most vector pairs one accumulation group may hold; sets the counter width. A group ends at an input
    marked last, or after acc_depth pairs."""
    scaling: Literal["per_pair", "block"] = "per_pair"
    """'per_pair': the array finds E_x, E_d from each pair. 'block': E_x, E_d come in with the first pair of
    each group (one exponent for a whole layer). acc_depth > 1 requires 'block'."""
    lr_shift: int = 0
    """Output scale 2**-lr_shift (a learning-rate shift; negative values scale up)."""
    output_format: Literal["fp16", "count"] = "fp16"
    """'fp16': each result converted to IEEE binary16 (round to nearest even). 'count': the signed counts
    and the group's exponent E_x + E_d - L - lr_shift, for a host that scales them itself."""
    cell: Literal["updown", "upcount"] = "updown"
    """'updown': every cell is a signed up/down counter of count_width bits, counting down when the pair's
    signs differ. 'upcount': an unsigned up-counter of L + 1 bits counts the AND products, and the pair's sign
    (sign x_j XOR sign delta_i, held beside the grid) is applied at read-out: the same counts, a smaller cell.
    Requires acc_depth 1 (one pair, so one sign, per group)."""
    readout: Literal["shift", "shadow"] = "shift"
    """'shift': a group's counts are shifted out of the counters through row 0, and the bitstreams pause until
    the last row is taken (BL * pairs + rows + 1 cycles per group). 'shadow': one shadow register per cell
    takes the counts in the cycle after the group's last bitstream cycle, while the counters clear, and is
    shifted out while the counters count the next group (max(BL * pairs + 1, rows + 1) cycles per group), for
    m * n more flip-flops."""
    clock_gating: bool = False
    """Clock gating in the netlist: all flip-flops of a counter row share one enable, high when the row counts
    (its delta bit is 1: a row whose delta bit is 0 cannot change) or when a read-out shift moves a possibly
    nonzero row into it (essop.hdl.cell_grid); synthesis (Yosys clockgate) turns each set of flip-flops sharing
    an enable (essop.synth.yosys.GATE_MIN_BITS or more) into the library's integrated clock-gating cell driving
    plain flip-flops. The same counts bit for bit; the RTL has no gated clock."""

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, MAX_DIM)
        _check_int("cols", self.cols, 1, MAX_DIM)
        _check_int("bl", self.bl, 2, 1024)
        if self.bl & (self.bl - 1):
            raise ValueError(f"bl must be a power of two, not {self.bl!r}")
        _check_int("q", self.q, 1, 16)
        _check_choice("sharing", self.sharing, SHARING_MODES)
        _check_int("lfsr_width", self.lfsr_width, lfsr_params.MIN_WIDTH, lfsr_params.MAX_WIDTH)
        if self.q > self.lfsr_width:
            raise ValueError(f"q ({self.q!r}) must not exceed lfsr_width ({self.lfsr_width!r})")
        _check_choice("rng", self.rng, RNG_SOURCES)
        if not isinstance(self.element_words, bool):
            raise TypeError(f"element_words must be a bool, not {self.element_words!r}")
        if self.element_words and (self.sharing != "per_element" or self.rng != "lfsr"):
            raise ValueError(
                f"element_words=True is a way to build LFSR per_element generators, not sharing={self.sharing!r} "
                f"with rng={self.rng!r}" + (" (Sobol per_element already is one generator with a word per element)"
                                           if self.rng == "sobol" else ""))
        if self.lfsr_steps is not None:
            default = lfsr_params.default_steps(self.lfsr_width, self.q)
            _check_int("lfsr_steps", self.lfsr_steps, 1, max(self.lfsr_width, default))
            period = lfsr_params.period(self.lfsr_width)
            g = math.gcd(self.lfsr_steps, period)
            if g != 1:
                raise ValueError(
                    f"lfsr_steps ({self.lfsr_steps!r}) shares the factor {g} with the LFSR period 2**{self.lfsr_width}"
                    f" - 1 = {period}: the stepped generator would visit only 1/{g} of its states; use a step "
                    f"count coprime with {period} (left unset, the step rule gives {default})")
        for name in ("lfsr_seed_x", "lfsr_seed_d"):
            _check_int(name, getattr(self, name), 1, (1 << self.lfsr_width) - 1)
        if not isinstance(self.lfsr_restart, bool):
            raise TypeError(f"lfsr_restart must be a bool, not {self.lfsr_restart!r}")
        if not isinstance(self.rng_shift, bool):
            raise TypeError(f"rng_shift must be a bool, not {self.rng_shift!r}")
        _check_int("rng_shift_seed", self.rng_shift_seed, 1, (1 << self.rng_shift_width) - 1)
        _check_int("acc_depth", self.acc_depth, 1, MAX_ACC_DEPTH)
        _check_choice("scaling", self.scaling, SCALING_MODES)
        if self.acc_depth > 1 and self.scaling != "block":
            raise ValueError(
                f"acc_depth > 1 ({self.acc_depth!r}) requires scaling='block': counts of pairs with "
                f"different exponents cannot be summed")
        _check_int("lr_shift", self.lr_shift, -32, 32)
        _check_choice("output_format", self.output_format, OUTPUT_FORMATS)
        _check_choice("cell", self.cell, CELL_KINDS)
        if not isinstance(self.clock_gating, bool):
            raise TypeError(f"clock_gating must be a bool, not {self.clock_gating!r}")
        if self.cell == "upcount" and self.acc_depth != 1:
            raise ValueError(
                f"cell='upcount' requires acc_depth=1, not {self.acc_depth!r}: the pairs of a group can have "
                f"different signs, and an up-counter cannot count down")
        _check_choice("readout", self.readout, READOUT_MODES)

    # ---- derived facts -------------------------------------------------------------------------
    @property
    def bl_log2(self) -> int:
        """L, with BL = 2**L."""
        return self.bl.bit_length() - 1

    @property
    def steps_per_cycle(self) -> int:
        """LFSR shifts per bitstream cycle: lfsr_steps, or when unset the step rule
        (essop.lfsr_params.default_steps: the smallest S >= q coprime with 2**w - 1)."""
        if self.lfsr_steps is not None:
            return self.lfsr_steps
        return lfsr_params.default_steps(self.lfsr_width, self.q)

    @property
    def count_width(self) -> int:
        """Bits of each signed up/down counter: holds +-BL * acc_depth."""
        return (self.bl * self.acc_depth).bit_length() + 1

    @property
    def cell_count_width(self) -> int:
        """Bits of each cell's counter: count_width (signed) for 'updown'; L + 1 (unsigned, holds BL) for
        'upcount'."""
        return self.count_width if self.cell == "updown" else self.bl.bit_length()

    # ---- port widths and ranges (spec section 9; EssopArray, the testbenches and synthesis read these) -----
    @property
    def x_width(self) -> int:
        """Bits of i_x: cols FP16 patterns, x_j in bits [16j + 15 : 16j]."""
        return fp16_format.WIDTH * self.cols

    @property
    def delta_width(self) -> int:
        """Bits of i_delta: rows FP16 patterns."""
        return fp16_format.WIDTH * self.rows

    @property
    def exp_port_width(self) -> int:
        """Bits of each signed block-exponent input, i_exp_x and i_exp_d."""
        return EXP_PORT_WIDTH

    @property
    def exp_port_min(self) -> int:
        """Smallest block exponent the input ports take (two's complement of exp_port_width bits)."""
        return EXP_PORT_MIN

    @property
    def exp_port_max(self) -> int:
        """Largest block exponent the input ports take."""
        return EXP_PORT_MAX

    @property
    def data_element_width(self) -> int:
        """Bits per element of o_data: 16 (output_format 'fp16') or count_width ('count', two's complement)."""
        return fp16_format.WIDTH if self.output_format == "fp16" else self.count_width

    @property
    def data_width(self) -> int:
        """Bits of o_data: one row of cols elements, element j in bits [w*j + w-1 : w*j]."""
        return self.data_element_width * self.cols

    @property
    def row_width(self) -> int:
        """Bits of o_row: max(1, bitlen(rows - 1))."""
        return max(1, (self.rows - 1).bit_length())

    @property
    def out_exp_width(self) -> int:
        """Bits of the signed output exponent o_exp (E_out)."""
        return OUT_EXP_WIDTH

    @property
    def lfsr_taps_x(self) -> tuple[int, ...]:
        """Taps (1-based, XAPP052 numbering) of the x-side LFSRs."""
        return lfsr_params.taps(self.lfsr_width)

    @property
    def lfsr_taps_d(self) -> tuple[int, ...]:
        """Taps of the delta-side LFSRs: the reciprocal polynomial of the x side's, so R_x and R_d are
        different m-sequences rather than shifts of one."""
        return lfsr_params.reciprocal_taps(self.lfsr_width)

    @property
    def one_register_per_side(self) -> bool:
        """One LFSR register feeds each side: shared numbers, or per-element ones made by element_words."""
        return self.sharing == "shared" or self.element_words

    @property
    def n_generators(self) -> int:
        """Random-number generators (LFSR registers) in the array: 2 when shared or with element_words, rows +
        cols per element."""
        return 2 if self.one_register_per_side else self.rows + self.cols

    @property
    def lfsr_seeds_x(self) -> tuple[int, ...]:
        """Start state of each x-side generator (one when shared or with element_words, cols when per_element)."""
        return lfsr_params.seeds(self.lfsr_taps_x, self.lfsr_width, self.lfsr_seed_x,
                                 1 if self.one_register_per_side else self.cols,
                                 self.phase_stride)

    @property
    def lfsr_seeds_d(self) -> tuple[int, ...]:
        """Start state of each delta-side generator (one when shared or with element_words, rows when
        per_element)."""
        return lfsr_params.seeds(self.lfsr_taps_d, self.lfsr_width, self.lfsr_seed_d,
                                 1 if self.one_register_per_side else self.rows,
                                 self.phase_stride)

    @property
    def phase_stride(self) -> int:
        """per_element: generator k starts k * phase_stride single shifts after generator 0, spreading the
        generators evenly around the m-sequence of period 2**w - 1."""
        return ((1 << self.lfsr_width) - 1) // max(self.rows, self.cols)

    # ---- random-number sources (docs/spec.md section 4; essop.golden.random_sources) ------------------
    @property
    def rng_period(self) -> int:
        """Cycles after which every generator's numbers repeat (without the per-pair shift): 2**w - 1 for
        'lfsr', 2**q for 'sobol' (a point depends on the cycle modulo 2**q)."""
        return lfsr_params.period(self.lfsr_width) if self.rng == "lfsr" else 1 << self.q

    @property
    def sobol_directions_x(self) -> tuple[int, ...]:
        """q-bit direction words V_1 .. V_q of the x side's Sobol dimension (1: van der Corput)."""
        return sobol_params.direction_words(sobol_params.SIDE_DIMENSION["x"], self.q)

    @property
    def sobol_directions_d(self) -> tuple[int, ...]:
        """q-bit direction words of the delta side's Sobol dimension (2, Joe and Kuo)."""
        return sobol_params.direction_words(sobol_params.SIDE_DIMENSION["d"], self.q)

    @property
    def rng_words_x(self) -> tuple[int, ...]:
        """Constant q-bit word XORed into each x element's numbers: sobol per_element and LFSR element_words,
        element k's digital shift (essop.sobol_params.element_word); 0 otherwise."""
        return self._words(1 if self.sharing == "shared" else self.cols)

    @property
    def rng_words_d(self) -> tuple[int, ...]:
        """Constant q-bit word of each delta generator (as rng_words_x)."""
        return self._words(1 if self.sharing == "shared" else self.rows)

    def _words(self, count: int) -> tuple[int, ...]:
        if self.rng != "sobol" and not self.element_words:
            return (0,) * count
        return tuple(sobol_params.element_word(k, self.q) for k in range(count))

    @property
    def rng_shift_width(self) -> int:
        """Register width of the per-pair shift LFSR: the smallest width >= max(2q, 3) (one state holds both
        sides' q-bit words) that is coprime with lfsr_width, so that the shift register's period 2**ws - 1 and
        the LFSR source's 2**w - 1 share no factor (gcd(2**a - 1, 2**b - 1) = 2**gcd(a, b) - 1) and every shift
        meets every LFSR position; max(2q, 3) when no tabulated width qualifies (q = 16 with an even w)."""
        low = max(2 * self.q, lfsr_params.MIN_WIDTH)
        return next((ws for ws in range(low, lfsr_params.MAX_WIDTH + 1) if math.gcd(ws, self.lfsr_width) == 1),
                    low)

    @property
    def rng_shift_taps(self) -> tuple[int, ...]:
        """XAPP052 taps of the per-pair shift LFSR."""
        return lfsr_params.taps(self.rng_shift_width)

    @property
    def rng_shift_steps(self) -> int:
        """Shifts of the per-pair shift LFSR per pair: the step rule for 2q fresh bits
        (default_steps(rng_shift_width, 2q))."""
        return lfsr_params.default_steps(self.rng_shift_width, 2 * self.q)

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EssopConfig":
        if not isinstance(data, dict):
            raise TypeError(f"configuration must be a dict, not {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown configuration field(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "EssopConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "EssopConfig":
        """A copy with some fields changed (validated like a new one)."""
        return dataclasses.replace(self, **changes)

    @property
    def rng_label(self) -> str:
        """This configuration's random-number source as tables name it (`rng_label`)."""
        return rng_label(self.rng, self.rng_shift, self.element_words)

    @property
    def name(self) -> str:
        """Short identifier, used for build directories and file names."""
        return (f"essop_{self.rows}x{self.cols}_bl{self.bl}_q{self.q}_{self.sharing}"
                f"_w{self.lfsr_width}_d{self.acc_depth}_{self.scaling}_{self.output_format}"
                + ("_restart" if self.lfsr_restart else "")
                + ("_sobol" if self.rng == "sobol" else "")
                + ("_xw" if self.element_words else "")
                + ("_shift" if self.rng_shift else "")
                + (f"_z{self.rng_shift_seed:x}" if self.rng_shift and self.rng_shift_seed != 1 else "")
                + (f"_s{self.lfsr_steps}" if self.lfsr_steps is not None else "")
                + (f"_k{self.lr_shift}" if self.lr_shift else "")
                + ("_upcount" if self.cell == "upcount" else "")
                + ("_shadow" if self.readout == "shadow" else "")
                + ("_cg" if self.clock_gating else ""))
