"""An engine configuration for the ULX3S-85F with its SDRAM, and its ECP5 budget.

The parameter payload and every tensor live in the 32 MB SDRAM (four banks of 4 Mi words,
the compiler's four quarters); a unit's working tensors (the ``tile`` schedule of
``binaryvit.hw.engine.traffic``) live in on-chip buffers of block RAM whose ports are
``BUFFER_WORDS_PER_CYCLE`` 16-bit words wide, so the array and the vector lanes, not one
word per bank per cycle, bound the compute (``wide_buffer_cycles``).

Budget on the LFE5U-85F (``ecp5_budget``; an estimate from the configuration, not a
synthesis: the engine RTL does not target this configuration yet):

* MULT18X18D (156): ``2`` per lane multiplier: a 16-bit constant times an operand of up to
  34 bits (a 48-bit accumulator's formats) needs two 18 × 18 products;
* DP16KD (208, 16 kbit of data each at ×16/×32): the on-chip buffer (2 KiB per DP16KD; in the
  512 × 36 mode each gives two words per cycle, so a ``w``-word port needs ``w/2`` side by
  side, far fewer than the capacity needs), the array's bit buffer, and ``RESERVED_DP16KD``
  for the epilogue's constant buffers and FIFOs (not sized by a model);
* the XNOR array and popcounts are logic (TRELLIS_COMB), no DSP or block RAM.
"""
from __future__ import annotations

from math import ceil

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.config import EngineConfig, MemoryBank
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7

__all__ = ["ULX3S_SDRAM_ENGINE", "BUFFER_WORDS_PER_CYCLE", "ON_CHIP_BYTES", "RESERVED_DP16KD",
           "ECP5_85F", "ecp5_budget"]

ECP5_85F = {"MULT18X18D": 156, "DP16KD": 208}
DP16KD_DATA_BYTES = 16 * 1024 // 8
MULT18_PER_MULTIPLIER = 2
RESERVED_DP16KD = 12
BUFFER_WORDS_PER_CYCLE = 16
ON_CHIP_BYTES = 192 * DP16KD_DATA_BYTES                      # 384 KiB

ULX3S_SDRAM_ENGINE = EngineConfig(
    name="ulx3s-sdram", pe=32, simd=64, vector_lanes=32, lane_multipliers=2,
    banks=tuple(MemoryBank(f"sdram{i}", IS42S16160G_7.words // 4) for i in range(4)),
    bit_buffer_bits=1 << 16, accumulator_bits=48, wide_words=3, epilogue_constant_bits=None)


def ecp5_budget(config: EngineConfig, on_chip_bytes: int, words_per_cycle: int) \
        -> dict[str, tuple[int, int]]:
    """``{resource: (used, available)}`` on the ECP5-85F (module docstring);
    ConfigError naming the resource when the configuration does not fit."""
    buffers = max(ceil(on_chip_bytes / DP16KD_DATA_BYTES),
                  len(config.banks) * ceil(words_per_cycle / 2))
    used = {"MULT18X18D": config.multipliers * MULT18_PER_MULTIPLIER,
            "DP16KD": buffers + ceil(config.bit_buffer_bits / (8 * DP16KD_DATA_BYTES))
            + RESERVED_DP16KD}
    for name, n in used.items():
        if n > ECP5_85F[name]:
            raise ConfigError(f"engine {config.name!r} on the ECP5-85F: needs {n} {name} but "
                              f"the device has {ECP5_85F[name]}")
    return {name: (n, ECP5_85F[name]) for name, n in used.items()}
