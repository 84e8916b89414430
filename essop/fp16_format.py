"""IEEE 754 binary16: the one home of the format's widths, masks and special bit patterns.

Bit layout (spec §1): sign [15], biased exponent field e [14:10], fraction f [9:0]. A finite value is
``(-1)**sign * M * 2**(e_eff - EXP_OFFSET)`` with ``M = f | HIDDEN_BIT`` for normals (e > 0) and ``M = f`` for
subnormals and zeros, ``e_eff = max(e, 1)``; e = EXP_FIELD_MAX is Inf (f = 0) or NaN (f != 0).

The golden model, the gateware, the testbenches and the synthesis vectors all read these names; no file
spells one of these numbers itself.
"""
from __future__ import annotations

#: Bits of a binary16 value and of its three fields.
WIDTH = 16
SIGN_WIDTH = 1
EXP_WIDTH = 5
FRAC_WIDTH = 10
#: Significand bits of a normal value, hidden bit included (M of a normal value is in [2**10, 2**11)).
SIG_WIDTH = FRAC_WIDTH + 1

#: Bit position of the sign and of the exponent field's least significant bit.
SIGN_SHIFT = EXP_WIDTH + FRAC_WIDTH
EXP_SHIFT = FRAC_WIDTH

#: Masks of the fields in a bit pattern, and of a field's value once shifted down.
SIGN_MASK = 1 << SIGN_SHIFT                             # 0x8000
EXP_MASK = ((1 << EXP_WIDTH) - 1) << EXP_SHIFT          # 0x7C00
FRAC_MASK = (1 << FRAC_WIDTH) - 1                       # 0x03FF
MAGNITUDE_MASK = EXP_MASK | FRAC_MASK                   # 0x7FFF
EXP_FIELD_MAX = (1 << EXP_WIDTH) - 1                    # 31: Inf and NaN
HIDDEN_BIT = 1 << FRAC_WIDTH                            # 0x0400, the implicit leading one of a normal M

#: Exponent bias, and the offset of the significand form: |v| = M * 2**(e_eff - EXP_OFFSET).
BIAS = (1 << (EXP_WIDTH - 1)) - 1                       # 15
EXP_OFFSET = BIAS + FRAC_WIDTH                          # 25
#: Unbiased exponent of the smallest normal binade (2**-14) and of the subnormal quantum (2**-24).
MIN_NORMAL_EXP = 1 - BIAS                               # -14
SUBNORMAL_EXP = MIN_NORMAL_EXP - FRAC_WIDTH             # -24

#: Special bit patterns.
POS_ZERO16 = 0x0000
NEG_ZERO16 = SIGN_MASK                                  # 0x8000
INF16 = EXP_MASK                                        # 0x7C00, +Inf
NEG_INF16 = SIGN_MASK | EXP_MASK                        # 0xFC00
NAN16 = EXP_MASK | (1 << (FRAC_WIDTH - 1))              # 0x7E00, the canonical quiet NaN the RTL returns
MAX_FINITE16 = INF16 - 1                                # 0x7BFF, 65504
MIN_NORMAL16 = HIDDEN_BIT                               # 0x0400, 2**-14
MIN_SUBNORMAL16 = 0x0001                                # 2**-24
