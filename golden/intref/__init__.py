"""The integer reference: the one definition of every operation the hardware performs.

The quantizer produces constants for these functions, every RTL kernel's ``model()`` calls
them, and the RTL is compared to their integers word for word. The contract is written out
in ``docs/integer-semantics.md``. All functions take integer ``torch`` tensors (``int64``
values, ``bool`` bits; numpy arrays are converted), are vectorised over leading batch
dimensions and raise ``ConfigError`` / ``DataError`` naming the argument on bad input.
"""
from binaryvit.golden.intref.attention import and_popcount_context, attention_mask, attention_scores, exp_lut
from binaryvit.golden.intref.bits import pack_bits, pack_bits_to_int, sign_bits, unpack_bits, unpack_int_to_bits
from binaryvit.golden.intref.fixed_point import (
    affine,
    residual_add,
    round_shift,
    rprelu,
    saturate,
    signed_range,
    threshold,
)
from binaryvit.golden.intref.mac import fixed_mac
from binaryvit.golden.intref.pooling import (
    avgpool2d,
    channel_group_avgpool,
    global_avgpool,
    grid_to_tokens,
    nearest_upsample,
    tokens_to_grid,
    window_sum2d,
)
from binaryvit.golden.intref.xnor import xnor_popcount_dot

__all__ = [
    "affine", "and_popcount_context", "attention_mask", "attention_scores", "avgpool2d",
    "channel_group_avgpool", "exp_lut", "fixed_mac", "global_avgpool", "grid_to_tokens",
    "nearest_upsample", "pack_bits", "pack_bits_to_int", "residual_add", "round_shift", "rprelu",
    "saturate", "sign_bits", "signed_range", "threshold", "tokens_to_grid", "unpack_bits",
    "unpack_int_to_bits", "window_sum2d", "xnor_popcount_dot",
]
