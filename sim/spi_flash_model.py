"""A behavioural W25Q-style SPI NOR flash for Amaranth testbenches.

It answers the two commands the engine's boot loader sends (``hw/engine/flash_reader.py``):
0xAB *release from power-down* and 0x03 READ with a 24-bit address, in SPI mode 0. Like the
real part it starts (optionally) in deep power-down, where it ignores everything but 0xAB,
and it needs ``wake_cycles`` clocks with chip select high after 0xAB before it answers a
read. Reads run on past the end of the written contents into erased flash (0xFF) and wrap
at the end of the array, as the W25Q128's do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SPIFlashModel", "FLASH_BYTES"]

FLASH_BYTES = 16 << 20     # the iCEBreaker's W25Q128JV


@dataclass
class SPIFlashModel:
    """Flash contents plus the protocol state; run :meth:`process` as a testbench.

    Parameters
    ----------
    size : int
        Array size in bytes (addresses wrap modulo it).
    powered_down : bool
        Start in deep power-down (the state the loader must cope with).
    wake_cycles : int
        System clock cycles after 0xAB (chip select high) before the flash answers again.

    Attributes
    ----------
    commands : list[int]
        Every command byte received, in order (a protocol log for tests).
    ignored : list[int]
        Commands that arrived while the flash was powered down or still waking.
    reads : list[tuple[int, int]]
        ``(address, bytes shifted out)`` of each finished READ.
    """

    size: int = FLASH_BYTES
    powered_down: bool = True
    wake_cycles: int = 0
    commands: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self):
        self._data: dict[int, int] = {}

    def program(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``, as ``iceprog -o offset`` would (erased bytes
        elsewhere read 0xFF)."""
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"{len(data)} bytes at {offset:#x} do not fit the {self.size:#x}-byte flash")
        for index, byte in enumerate(data):
            self._data[offset + index] = byte

    def read_byte(self, address: int) -> int:
        return self._data.get(address % self.size, 0xFF)

    async def process(self, ctx, spi) -> None:
        """Testbench coroutine: follow ``spi`` (``sck``, ``cs`` active high, ``copi``,
        ``cipo``) one system clock at a time, for ever (add it as a background testbench).

        The controller's ``sck`` is a register, so each edge of it is seen on the system
        clock tick that makes it; ``cipo`` changes right after a falling edge, as a mode-0
        flash drives it, and holds until the next one. Released, it reads 1 (pull-up).
        """
        ctx.set(spi.cipo, 1)
        selected = False
        previous_sck = 0
        cycle = 0
        awake_at = None if self.powered_down else 0
        rises = command = address = 0
        responsive = False
        while True:
            await ctx.tick()
            cycle += 1
            cs, sck, copi = ctx.get(spi.cs), ctx.get(spi.sck), ctx.get(spi.copi)
            if not cs:
                if selected:
                    if responsive and command == 0x03 and rises >= 32:
                        self.reads.append((address, (rises - 32) // 8))
                    if command == 0xAB and rises >= 8:
                        awake_at = cycle + self.wake_cycles
                    ctx.set(spi.cipo, 1)
                selected = False
                previous_sck = sck
                continue
            if not selected:
                selected = True
                rises = command = address = 0
                responsive = awake_at is not None and cycle >= awake_at
            if sck and not previous_sck:
                if rises < 8:
                    command = (command << 1) | copi
                elif rises < 32:
                    address = (address << 1) | copi
                rises += 1
                if rises == 8:
                    self.commands.append(command)
                    if not responsive and command != 0xAB:
                        self.ignored.append(command)
            elif previous_sck and not sck and responsive and command == 0x03 and rises >= 32:
                bit = rises - 32
                byte = self.read_byte(address + bit // 8)
                ctx.set(spi.cipo, (byte >> (7 - bit % 8)) & 1)
            previous_sck = sck
