"""The parameters of one engine: XNOR array, vector unit, memory banks, datapath widths.

The compiler plans a program for one :class:`EngineConfig`; the cycle model and the memory
plan read it, and the RTL will be generated from it. ``UP5K`` is the iCEBreaker's
iCE40UP5K: four ``SB_SPRAM256KA`` (16,384 × 16 bits each, 128 KiB in all) hold the
parameter payload and every activation; the array's buffers live in block RAM.
"""
from __future__ import annotations

from dataclasses import dataclass

from binaryvit.errors import ConfigError

WORD_BITS = 16  # every memory word: SPRAM is 16 bits wide
WORD_BYTES = WORD_BITS // 8


@dataclass(frozen=True)
class MemoryBank:
    """One single-ported memory of ``words`` 16-bit words: one read or one write per cycle."""

    name: str
    words: int


@dataclass(frozen=True)
class EngineConfig:
    """An engine's size and widths.

    Parameters
    ----------
    name : for reports.
    pe, simd : the XNOR-popcount array: ``pe`` outputs in parallel, each over ``simd``
        input bits per cycle.
    vector_lanes : channel values the vector unit (the fused epilogue) takes per cycle.
    lane_multipliers : DSP multipliers per lane; an epilogue with ``m`` multiplying stages
        takes ``ceil(m / lane_multipliers)`` cycles per value.
    banks : the activation and parameter memories, one shared word-address space in this
        order (bank ``i`` starts at the sum of the earlier banks' words).
    bit_buffer_bits : capacity of the array's input-bit buffer (block RAM: 8 kbit is two
        EBR side by side, 32 bits wide); a MATMUL's input tensor is processed in token
        chunks that fit it.
    stream_bits : widest real-valued activation (the stream format) the datapath carries.
    const_bits : widest multiplier constant (``SB_MAC16`` multiplies 16 × 16).
    accumulator_bits : widest intermediate (products, sums, the attention compare): the
        overflow proof must hold at this width (quantize with ``--acc-width``). 36 on the
        UP5K: a 16-bit constant times an 18-bit window sum (the pool branches) is 34 bits,
        and ``SB_MAC16``'s 32-bit accumulator is extended by a few logic cells.
    wide_words : memory words of one wide value (biases, thresholds, exp-table entries,
        token sums, logits), least significant first; every such value must fit
        ``16·wide_words`` signed bits (checked per constant at compile time).
    epilogue_constant_bits : per-channel constant bits one epilogue may read per value (its
        stages read their channel's constants in the same cycle, from block RAMs side by
        side: 16 bits each); longer chains are split. None: no limit. 192 on the UP5K
        (12 EBR): tiny-digits' longest chain needs 291 bits (19 EBR); at 192 it costs 65
        instead of 57 instructions and 120.0 k instead of 111.6 k cycles; at 160 fc1's
        128-channel activation would have to be stored and no bank holds it.
    instruction_overhead : cycles every instruction adds to its busiest unit: fetch, decode,
        pipeline fill and drain.
    """

    name: str = "up5k"
    pe: int = 4
    simd: int = 32
    vector_lanes: int = 2
    lane_multipliers: int = 2
    banks: tuple[MemoryBank, ...] = tuple(MemoryBank(f"spram{i}", 16384) for i in range(4))
    bit_buffer_bits: int = 8192
    stream_bits: int = 16
    const_bits: int = 16
    accumulator_bits: int = 36
    wide_words: int = 2
    epilogue_constant_bits: int | None = 192
    instruction_overhead: int = 24

    def __post_init__(self) -> None:
        for field in ("pe", "simd", "vector_lanes", "lane_multipliers",
                      "bit_buffer_bits", "stream_bits", "const_bits", "accumulator_bits",
                      "wide_words"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"engine config {self.name!r}: {field} must be a positive "
                                  f"integer, got {value!r}")
        if not self.banks:
            raise ConfigError(f"engine config {self.name!r}: needs at least one memory bank")
        if self.stream_bits > WORD_BITS or self.const_bits > WORD_BITS:
            raise ConfigError(f"engine config {self.name!r}: stream_bits and const_bits must "
                              f"fit the {WORD_BITS}-bit memory word")
        if self.accumulator_bits > 62 or not 2 <= self.wide_words <= 3:
            raise ConfigError(f"engine config {self.name!r}: accumulator_bits must be at most 62 "
                              f"and wide_words 2 or 3, got {self.accumulator_bits} and "
                              f"{self.wide_words}")

    @property
    def total_words(self) -> int:
        return sum(b.words for b in self.banks)

    def bank_start(self, index: int) -> int:
        return sum(b.words for b in self.banks[:index])

    def bank_of(self, address: int) -> int:
        """Index of the bank holding word ``address``."""
        start = 0
        for i, bank in enumerate(self.banks):
            if address < start + bank.words:
                return i
            start += bank.words
        raise ConfigError(f"address {address} lies beyond the engine's {start} words")

    @property
    def wide_bits(self) -> int:
        return 16 * self.wide_words

    @property
    def multipliers(self) -> int:
        return self.vector_lanes * self.lane_multipliers


UP5K = EngineConfig()

__all__ = ["EngineConfig", "MemoryBank", "UP5K", "WORD_BITS", "WORD_BYTES"]
