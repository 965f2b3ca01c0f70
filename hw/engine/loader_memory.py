"""The SPRAM bank with its boot loader in front: what the engine sees as parameter memory."""
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.engine.flash_reader import SPI_FLASH_SIGNATURE
from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET, ParameterLoader
from binaryvit.hw.engine.loader_receiver import forward_status, loader_status
from binaryvit.hw.engine.spram import SPRAM_DEPTH, SPRAMBank

__all__ = ["BootLoadedSPRAM"]


class BootLoadedSPRAM(wiring.Component):
    """A :class:`~binaryvit.hw.engine.spram.SPRAMBank` that a
    :class:`~binaryvit.hw.engine.loader.ParameterLoader` fills from flash at boot.

    Until ``done`` the loader owns the bank's port and the user port is ignored; from
    ``done`` on, the user port drives the bank directly (same signals, same latency 1 as
    :class:`SPRAMBank`). After ``error`` the user port stays disconnected (reads return
    whatever the bank last read), so nothing can run on a refused image.

    Parameters
    ----------
    design_id : int
        The id the image must carry.
    banks : int
        SPRAMs in the bank (1 to 4); the loader's capacity is ``banks × 16,384`` words.
    implementation : str
        ``"auto"``, ``"primitive"`` or ``"model"`` (see :class:`SinglePortSPRAM`).
    flash_offset, half_period, wake_cycles :
        As for :class:`ParameterLoader`.

    Members
    -------
    start, busy, done, error, error_code, words_written, spi :
        The loader's.
    addr, enable, write, write_data, write_mask, read_data :
        The bank's port, for the engine (``addr`` is ``14 + ceil(log2(banks))`` bits).
    """

    def __init__(self, *, design_id: int, banks: int = 4, implementation: str = "auto",
                 flash_offset: int = DEFAULT_FLASH_OFFSET, half_period: int = 2,
                 wake_cycles: int = 120):
        self.bank = SPRAMBank(banks=banks, implementation=implementation)
        self.loader = ParameterLoader(design_id=design_id, capacity_words=banks * SPRAM_DEPTH,
                                      flash_offset=flash_offset, half_period=half_period,
                                      wake_cycles=wake_cycles)
        super().__init__({
            **loader_status(),
            "spi": Out(SPI_FLASH_SIGNATURE),
            "addr": In(len(self.bank.addr)),
            "enable": In(1),
            "write": In(1),
            "write_data": In(16),
            "write_mask": In(4),
            "read_data": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.loader = loader = self.loader
        m.submodules.bank = bank = self.bank
        wiring.connect(m, wiring.flipped(self.spi), loader.spi)
        user = loader.done
        forward_status(m, self, loader)
        m.d.comb += [
            bank.addr.eq(Mux(user, self.addr, loader.write_addr)),
            bank.enable.eq(Mux(user, self.enable, loader.write_enable)),
            bank.write.eq(Mux(user, self.write, 1)),
            bank.write_data.eq(Mux(user, self.write_data, loader.write_data)),
            bank.write_mask.eq(Mux(user, self.write_mask, 0b1111)),
            self.read_data.eq(bank.read_data),
        ]
        return m
