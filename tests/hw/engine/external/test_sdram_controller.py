# amaranth: UnusedElaboratable=no
"""The SDRAM controller against the chip model in Verilator: sequential and random bursts,
reads right after writes to the same burst, gaps on the write data and back-pressure on the
read data, refreshes under load; every word read equals a Python reference memory and the
model flags no violation. A controller that counts one rule short is caught."""
import random

import pytest

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7, SdramChip
from binaryvit.hw.engine.external.sdram_controller import SdramController
from binaryvit.sim.sdram import ERROR_CODES, run_controller_traffic

# the datasheet's rules at 100 MHz; only the 100 µs power-up wait is shortened
CYCLES = IS42S16160G_7.cycles(100e6).replace(t_init=300)


def _phases(seed: int) -> list[dict]:
    rng = random.Random(seed)
    # a few bursts in random banks and rows: row hits, row misses, bank switches, and reads
    # of bursts just written; plus the last and first burst of the chip
    hot = [rng.randrange(1 << 21) for _ in range(20)] + [0, (1 << 21) - 1]
    mixed = [[rng.choice(hot), int(rng.random() < 0.5)] for _ in range(300)]
    return [
        {"name": "sequential writes", "commands": [[b, 1] for b in range(192)]},
        {"name": "sequential reads", "commands": [[b, 0] for b in range(192)]},
        {"name": "mixed, gaps and back-pressure", "commands": mixed,
         "wdata_gap": 0.4, "rdata_stall": 0.5},
        {"name": "mixed, no gaps", "commands": mixed[::-1]},
    ]


@pytest.fixture(scope="module")
def traffic():
    return run_controller_traffic(IS42S16160G_7, CYCLES, _phases(0), seed=0)


def test_no_timing_or_protocol_violation(traffic):
    assert traffic["initialised"] == 1
    assert (traffic["error"], traffic["error_count"]) == (0, 0)


def test_every_word_read_equals_the_reference_memory(traffic):
    phases = {p["name"]: p for p in traffic["phases"]}
    assert all("timeout" not in p for p in phases.values())
    assert [(n, p["mismatches"], p["examples"]) for n, p in phases.items()] == \
        [(n, 0, []) for n in phases]
    assert phases["sequential reads"]["compared"] == 192 * 8
    # most mixed reads hit bursts written before them (the rest read unwritten words)
    assert phases["mixed, gaps and back-pressure"]["compared"] > 600


def test_refreshes_keep_pace_under_load(traffic):
    cycles = traffic["init_cycles"] + sum(p["cycles"] for p in traffic["phases"])
    owed = (cycles - CYCLES.t_init) // CYCLES.t_refi
    assert owed >= 8                                     # the run spans several intervals
    assert traffic["refreshes"] >= CYCLES.init_refreshes + owed - 1


def test_sequential_bursts_keep_the_bus_busy(traffic):
    """A row stays open across bursts: 192 bursts in fewer than 110 % of 1,536 cycles
    (what is lost: a refresh every 781 cycles, row opens)."""
    for p in traffic["phases"][:2]:
        assert p["cycles"] < 1.10 * p["words"], p


def test_first_read_word_six_cycles_after_the_command(traffic):
    """The documented latency of a row hit at CAS latency 2: the first sequential read
    follows the writes to the same row, which is still open."""
    assert traffic["phases"][1]["first_read_latency"] == 6


def test_a_controller_one_cycle_short_on_trp_is_caught():
    short = CYCLES.replace(t_rp=CYCLES.t_rp - 1)
    phases = [{"name": "row misses", "commands": [[0, 1], [1 << 8, 1], [0, 0]]}]
    result = run_controller_traffic(IS42S16160G_7, CYCLES, phases, controller_cycles=short)
    assert result["error"] == 1 and result["first_error"] == ERROR_CODES["t_rp"]


def test_refuses_a_part_it_cannot_drive():
    wide = SdramChip(**{**IS42S16160G_7.__dict__, "name": "x32", "dq_bits": 32})
    with pytest.raises(ConfigError, match="16-bit parts"):
        SdramController(wide, CYCLES)


def test_controller_verilog_lints_clean():
    from binaryvit.hw.verilog import to_verilog
    from binaryvit.sim.lint import lint_verilog

    text = to_verilog(SdramController(IS42S16160G_7, CYCLES), "sdram_controller")
    assert lint_verilog(text, "sdram_controller") == []


def test_cas_latency_3_with_a_refresh_every_37_cycles():
    """CAS latency 3 (the read pipeline one stage longer; legal at 100 MHz too, where tRC <
    tRAS + tRP), and refreshes 21 times as often
    as the chip needs, so they land right after ACTs, inside bursts and between a row
    miss's PRECHARGE and ACT: a PRECHARGE ALL at the first cycle tRAS allows must still
    leave tRP before the next ACT (a bug the model caught)."""
    cycles = CYCLES.replace(cas_latency=3, t_refi=37)
    rng = random.Random(5)
    streams = []
    for i in range(120):           # engine-like: two read streams and a write stream
        streams += [[i, 0], [(1 << 20) + 64 * i, 0], [(1 << 19) + 3 * i, 1]]
    phases = [{"name": "writes", "commands": [[b, 1] for b in range(48)]},
              {"name": "reads", "commands": [[b, 0] for b in range(48)]},
              {"name": "streams", "commands": streams},
              {"name": "random", "commands": [[rng.randrange(1 << 21), int(rng.random() < 0.5)]
                                              for _ in range(200)], "rdata_stall": 0.2,
               "wdata_gap": 0.2}]
    result = run_controller_traffic(IS42S16160G_7, cycles, phases, seed=5)
    assert (result["error"], result["first_error"]) == (0, 0)
    assert [p["mismatches"] for p in result["phases"]] == [0] * 4
    assert result["phases"][1]["compared"] == 48 * 8
    assert result["phases"][1]["first_read_latency"] == 7
    cycles_run = sum(p["cycles"] for p in result["phases"])
    assert result["refreshes"] >= cycles_run // 37 - 1
