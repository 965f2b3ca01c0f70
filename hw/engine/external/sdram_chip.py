"""The ULX3S's SDR SDRAM chip: geometry and datasheet timing, in nanoseconds and in cycles.

One definition for the chip model (``binaryvit.sim.sdram``: its Verilog parameters) and
the controller (``binaryvit.hw.engine.external.sdram_controller``: its wait counters), so
the two can only disagree where a test makes them.

``IS42S16160G_7`` is the ULX3S-85F's 32 MB part (ISSI IS42S16160G-7, 16 M × 16 bits:
4 banks × 8,192 rows × 512 columns; the same geometry as Micron's MT48LC16M16A2 that some
boards carry). Timings are the -7 speed grade's minimums (maximum for ``t_ras_max_ns``),
rounded up to whole cycles at the clock; at 100 MHz the part runs at CAS latency 2 (3 above
100 MHz, up to 143 MHz). The values are the datasheet's as known here, not re-read from its
PDF (``docs/engine-external-memory.md``); check them before a board build.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from binaryvit.errors import ConfigError

__all__ = ["SdramChip", "SdramCycles", "IS42S16160G_7"]


@dataclass(frozen=True)
class SdramCycles:
    """The chip's rules in whole cycles of one clock (what the Verilog model and the
    controller count). ``t_init`` is the power-up wait before the first command but NOP,
    ``t_refi`` the average refresh interval, ``max_postpone`` the refreshes that may be
    owed at any time (JEDEC: 8), ``init_refreshes`` the auto refreshes the initialisation
    needs before the mode register is set."""

    cas_latency: int
    min_cas_latency: int
    t_init: int
    t_rcd: int
    t_rp: int
    t_ras: int
    t_ras_max: int
    t_rc: int
    t_rrd: int
    t_wr: int
    t_rfc: int
    t_mrd: int
    t_refi: int
    max_postpone: int
    init_refreshes: int

    def verilog_parameters(self) -> dict[str, int]:
        """The chip model's parameters (``sim/sdram_model.v``)."""
        return {"MIN_CL": self.min_cas_latency, "T_INIT": self.t_init, "T_RCD": self.t_rcd,
                "T_RP": self.t_rp, "T_RAS": self.t_ras, "T_RAS_MAX": self.t_ras_max,
                "T_RC": self.t_rc, "T_RRD": self.t_rrd, "T_WR": self.t_wr,
                "T_RFC": self.t_rfc, "T_MRD": self.t_mrd, "T_REFI": self.t_refi,
                "MAX_POSTPONE": self.max_postpone, "INIT_REFRESHES": self.init_refreshes}

    def replace(self, **changes) -> "SdramCycles":
        from dataclasses import replace
        return replace(self, **changes)


@dataclass(frozen=True)
class SdramChip:
    """An SDR SDRAM part: geometry (``banks`` × ``rows`` × ``cols`` words of ``dq_bits``)
    and datasheet timing in ns (``t_mrd`` in cycles, as datasheets give it)."""

    name: str
    banks: int
    rows: int
    cols: int
    dq_bits: int
    t_cl2_min_ns: float     # shortest clock period at CAS latency 2
    t_cl3_min_ns: float     # shortest clock period at CAS latency 3
    t_init_ns: float
    t_rcd_ns: float
    t_rp_ns: float
    t_ras_ns: float
    t_ras_max_ns: float
    t_rc_ns: float
    t_rrd_ns: float
    t_wr_ns: float
    t_rfc_ns: float
    t_mrd: int
    refresh_ms: float
    refresh_rows: int
    init_refreshes: int

    @property
    def words(self) -> int:
        return self.banks * self.rows * self.cols

    @property
    def bytes(self) -> int:
        return self.words * self.dq_bits // 8

    def peak_bytes_per_s(self, clock_hz: float) -> float:
        """One ``dq_bits`` word per cycle."""
        return clock_hz * self.dq_bits / 8

    def cycles(self, clock_hz: float) -> SdramCycles:
        """The rules in cycles at ``clock_hz``, at the lowest CAS latency the clock allows;
        ConfigError when the part cannot run that fast."""
        period = 1e9 / clock_hz
        if period >= self.t_cl2_min_ns:
            cl = 2
        elif period >= self.t_cl3_min_ns:
            cl = 3
        else:
            raise ConfigError(f"SDRAM {self.name} runs at most {1e3 / self.t_cl3_min_ns:.0f} "
                              f"MHz, not {clock_hz / 1e6:.0f} MHz")

        def c(ns: float) -> int:
            return max(1, ceil(ns / period - 1e-9))

        return SdramCycles(
            cas_latency=cl, min_cas_latency=cl, t_init=c(self.t_init_ns), t_rcd=c(self.t_rcd_ns),
            t_rp=c(self.t_rp_ns), t_ras=c(self.t_ras_ns),
            t_ras_max=int(self.t_ras_max_ns / period), t_rc=c(self.t_rc_ns),
            t_rrd=c(self.t_rrd_ns), t_wr=c(self.t_wr_ns), t_rfc=c(self.t_rfc_ns),
            t_mrd=self.t_mrd, t_refi=int(self.refresh_ms * 1e6 / self.refresh_rows / period),
            max_postpone=8, init_refreshes=self.init_refreshes)


IS42S16160G_7 = SdramChip(
    name="IS42S16160G-7", banks=4, rows=8192, cols=512, dq_bits=16,
    t_cl2_min_ns=10.0, t_cl3_min_ns=7.0, t_init_ns=100_000.0, t_rcd_ns=15.0, t_rp_ns=15.0,
    t_ras_ns=42.0, t_ras_max_ns=100_000.0, t_rc_ns=60.0, t_rrd_ns=14.0, t_wr_ns=14.0,
    t_rfc_ns=60.0, t_mrd=2, refresh_ms=64.0, refresh_rows=8192, init_refreshes=2)
