# amaranth: UnusedElaboratable=no
"""The formal proofs: which property, on which configuration, by which method, to which depth.

Small configurations keep the solver's work small while exercising every mode: both sharing modes, both
scalings, acc_depth 1 to 3, fp16 and count output, restarted LFSRs and an lr_shift. A bounded proof's depth
spans two whole groups of acc_depth pairs back to back from reset (`two_group_depth`); each configuration also
has a cover run showing two groups really are read out within that depth (and, with the flags, a poisoned
and a saturated group), so the bounded proofs are not vacuous.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from essop.config import EssopConfig
from essop.hdl.array import EssopArray
from essop.formal.harness import ARRAY_PROPERTIES, ArrayHarness, CountToFp16Harness

__all__ = ["CONFIGS", "Proof", "PROOFS", "two_group_depth"]

#: name -> configuration. Seeds are the project's defaults reduced to the 4-bit LFSRs' range.
CONFIGS: dict[str, EssopConfig] = {
    "A": EssopConfig(rows=2, cols=2, bl=2, q=2, lfsr_width=4, lfsr_seed_x=5, lfsr_seed_d=11),
    "B": EssopConfig(rows=2, cols=2, bl=2, q=2, lfsr_width=4, lfsr_seed_x=5, lfsr_seed_d=11,
                     sharing="per_element", scaling="block", acc_depth=2),
    "C": EssopConfig(rows=2, cols=1, bl=2, q=3, lfsr_width=4, lfsr_seed_x=5, lfsr_seed_d=11,
                     scaling="block", acc_depth=3, output_format="count", lfsr_restart=True, lr_shift=1),
    "D": EssopConfig(rows=1, cols=3, bl=2, q=2, lfsr_width=5, lfsr_seed_x=5, lfsr_seed_d=11,
                     sharing="per_element", lfsr_steps=1),
}


def two_group_depth(cfg: EssopConfig) -> int:
    """Steps from reset that hold two groups of acc_depth pairs streamed and read out back to back: the first
    pair's way to its bitstreams, two group periods, and one step each for the reset state and the last take."""
    array = EssopArray(cfg)
    return array.input_to_stream_latency + 2 * array.steady_state_cycles_per_group(cfg.acc_depth) + 2


@dataclass(frozen=True)
class Proof:
    name: str           # unique, used for work folders and test ids
    prop: str           # the property group (ARRAY_PROPERTIES key, or "count_to_fp16")
    config: str         # CONFIGS key
    mode: str           # "bmc", "prove" (k-induction) or "cover"
    depth: int          # bmc: steps; prove: k; cover: steps
    harness: Callable   # () -> a harness

    @property
    def description(self) -> str:
        if self.prop == "count_to_fp16":
            return "count-to-FP16 == NumPy float16(count * 2**E) for every count and exponent; NaN when poisoned"
        if self.prop == "cover":
            return "reachable: two groups read out (and a poisoned, a saturated group)"
        return ARRAY_PROPERTIES[self.prop]


def _proofs() -> list[Proof]:
    proofs = []
    for key, cfg in CONFIGS.items():
        depth = two_group_depth(cfg)
        for prop in ("streams", "counters", "flags"):
            proofs.append(Proof(f"{prop}-{key}", prop, key, "bmc", depth,
                                lambda cfg=cfg, prop=prop: ArrayHarness(cfg, (prop,), covers=False)))
        # Every LFSR state is nonzero is inductive: each leap is an invertible linear map and a restart loads
        # a nonzero seed, so k = 1 closes it, from any state.
        proofs.append(Proof(f"lfsr-{key}", "lfsr", key, "prove", 1,
                            lambda cfg=cfg: ArrayHarness(cfg, ("lfsr",), covers=False)))
        proofs.append(Proof(f"cover-{key}", "cover", key, "cover", depth,
                            lambda cfg=cfg: ArrayHarness(cfg, ("streams", "flags"))))
    # The converter is combinational: one step with free inputs covers every (count, exponent) pair. Widths of
    # the configurations above, and of the default array (BL 16, acc_depth 1).
    for width in sorted({cfg.count_width for cfg in CONFIGS.values()} | {EssopConfig().count_width}):
        proofs.append(Proof(f"count_to_fp16-w{width}", "count_to_fp16", f"count_width {width}", "bmc", 1,
                            lambda width=width: CountToFp16Harness(width)))
    return proofs


PROOFS: list[Proof] = _proofs()
