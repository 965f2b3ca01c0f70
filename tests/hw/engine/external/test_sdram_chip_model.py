"""The SDR SDRAM chip model (sim/sdram_model.v) in Verilator and Icarus: legal sequences
pass and return the data written (at the CAS latency, in burst order, with byte masks), and
every rule the chip has is caught, one scenario per rule. Expected edges and words come
from the datasheet's rules written out here, not from the model."""
import pytest

from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7
from binaryvit.sim.sdram import ERROR_CODES, run_chip_scenarios

# 100 MHz rules (CL 2, tRCD 2, tRP 2, tRAS 5, tRRD 2, tWR 2, tRFC 6, tMRD 2), with the long
# waits shortened so a scenario is a few hundred cycles, and tRC above tRAS + tRP so that it
# can be broken on its own.
CYCLES = IS42S16160G_7.cycles(100e6).replace(t_init=20, t_refi=40, t_ras_max=200, t_rc=9)
MODE_BL8_CL2 = 0x23            # burst 8, sequential, CAS latency 2, burst writes


def mode(burst_code: int, cl: int, interleaved: bool = False) -> int:
    return burst_code | (int(interleaved) << 3) | (cl << 4)


def init(mode_value: int = MODE_BL8_CL2) -> list:
    """The power-up sequence: wait, PRECHARGE ALL, two AUTO REFRESH, MODE REGISTER SET."""
    return [["nop", 20], ["pre_all"], ["nop", 1], ["ref"], ["nop", 5], ["ref"], ["nop", 5],
            ["mrs", mode_value], ["nop", 1]]


def edge_of(scenario: list, index: int) -> int:
    """The rising edge at which command ``index`` of ``scenario`` is sampled."""
    edge = 0
    for cmd in scenario[:index]:
        edge += cmd[1] if cmd[0] == "nop" else len(cmd[3]) if cmd[0].startswith("write") else 1
    return edge


WORDS = [0x1111 * (i + 1) ^ 0x0F0F for i in range(8)]

LEGAL = {
    "write_then_read_burst_8": init() + [["act", 1, 100], ["nop", 1], ["write", 1, 8, WORDS],
                                         ["read", 1, 8], ["nop", 10], ["pre", 1]],
    "cl3_interleaved_burst_4_and_byte_masks": init(mode(2, 3, True)) + [
        ["act", 2, 7], ["nop", 1], ["write", 2, 1, [0xAAAA, 0xBBBB, 0xCCCC, 0xDDDD]],
        ["write", 2, 1, [0x1200, 0x3400, 0x5600, 0x7800], 0b01], ["read", 2, 1], ["nop", 8],
        ["pre_all"]],
    "four_banks_interleaved_with_refresh": init() + [
        ["act", 0, 1], ["nop", 1], ["act", 1, 2], ["nop", 1], ["act", 2, 3], ["nop", 1],
        ["act", 3, 4], ["nop", 1], ["write", 0, 0, WORDS], ["write", 3, 504, WORDS[::-1]],
        ["read", 3, 504], ["nop", 7], ["read", 0, 0], ["nop", 9], ["pre_all"], ["nop", 1],
        ["ref"], ["nop", 5], ["act", 0, 1], ["nop", 1], ["read", 0, 4], ["bst"], ["nop", 6],
        ["pre", 0]],
    "refresh_every_interval_for_600_cycles": init() + [["ref"], ["nop", 39]] * 15,
}


@pytest.fixture(scope="module", params=["verilator", "icarus"])
def legal_results(request):
    # Icarus stores the array at 2 row bits (it allocates every word up front)
    results = run_chip_scenarios(CYCLES, list(LEGAL.values()), simulator=request.param,
                                 row_bits=13 if request.param == "verilator" else 2)
    return dict(zip(LEGAL, results))


def test_legal_sequences_raise_no_flag(legal_results):
    for name, result in legal_results.items():
        assert (name, result["error"], result["error_count"]) == (name, 0, 0)


def test_read_returns_the_burst_written_cas_latency_after_the_read(legal_results):
    s = LEGAL["write_then_read_burst_8"]
    read_edge = edge_of(s, s.index(["read", 1, 8]))
    assert legal_results["write_then_read_burst_8"]["reads"] == \
        [[read_edge + 2 + i, w] for i, w in enumerate(WORDS)]


def test_cas_latency_3_interleaved_order_and_masked_bytes(legal_results):
    s = LEGAL["cl3_interleaved_burst_4_and_byte_masks"]
    read_edge = edge_of(s, s.index(["read", 2, 1]))
    # interleaved from column 1: 1, 0, 3, 2; the second write masked the low bytes (DQM 01)
    first = {1: 0xAAAA, 0: 0xBBBB, 3: 0xCCCC, 2: 0xDDDD}
    second = {1: 0x1200, 0: 0x3400, 3: 0x5600, 2: 0x7800}
    want = [(second[c] & 0xFF00) | (first[c] & 0x00FF) for c in (1, 0, 3, 2)]
    assert legal_results["cl3_interleaved_burst_4_and_byte_masks"]["reads"] == \
        [[read_edge + 3 + i, w] for i, w in enumerate(want)]


def test_banks_keep_their_rows_and_burst_terminate_cuts_a_read(legal_results):
    s = LEGAL["four_banks_interleaved_with_refresh"]
    reads = legal_results["four_banks_interleaved_with_refresh"]["reads"]
    r3 = edge_of(s, s.index(["read", 3, 504]))
    r0 = edge_of(s, s.index(["read", 0, 0]))
    r4 = edge_of(s, s.index(["read", 0, 4]))
    # column 504 of bank 3 holds the reversed words; the refresh kept bank 0's data; a
    # BURST TERMINATE one cycle after the READ leaves one word (sequential 4, 5, 6, 7, 0, …)
    assert reads == ([[r3 + 2 + i, w] for i, w in enumerate(WORDS[::-1])]
                     + [[r0 + 2 + i, w] for i, w in enumerate(WORDS)]
                     + [[r4 + 2, WORDS[4]]])


def test_refresh_counter_counts_the_commands(legal_results):
    assert legal_results["refresh_every_interval_for_600_cycles"]["refreshes"] == 2 + 15


VIOLATIONS = {
    "power_up_wait": [["nop", 5], ["pre_all"]],
    "not_initialised": [["nop", 20], ["pre_all"], ["nop", 1], ["ref"], ["nop", 5],
                        ["mrs", MODE_BL8_CL2], ["nop", 1], ["act", 0, 1]],
    "mrs_bank_open": init() + [["act", 0, 1], ["nop", 8], ["mrs", MODE_BL8_CL2]],
    "mode_reserved": init(mode(3, 1)),
    "t_mrd": init()[:-1] + [["act", 0, 1]],
    "act_open_bank": init() + [["act", 0, 1], ["nop", 8], ["act", 0, 2]],
    "t_rcd": init() + [["act", 0, 1], ["read", 0, 0]],
    "t_ras": init() + [["act", 0, 1], ["nop", 2], ["pre", 0]],
    "t_ras_max": init() + [["act", 0, 1], ["nop", 210]],
    "t_rc": init() + [["act", 0, 1], ["nop", 4], ["pre", 0], ["nop", 1], ["act", 0, 1]],
    "t_rrd": init() + [["act", 0, 1], ["act", 1, 1]],
    "t_rp": init() + [["act", 0, 1], ["nop", 8], ["pre", 0], ["act", 0, 2]],
    "t_wr": init() + [["act", 0, 1], ["nop", 1], ["write", 0, 0, WORDS], ["pre", 0]],
    "closed_bank": init() + [["read", 2, 0]],
    "refresh_bank_open": init() + [["act", 0, 1], ["nop", 8], ["ref"]],
    "t_rfc": init() + [["ref"], ["act", 0, 1]],
    "refresh_late": init() + [["nop", 520]],
    "bus_contention": init() + [["act", 0, 1], ["nop", 1], ["read", 0, 0], ["nop", 1],
                                ["drive", 0x1234]],
    "not_modelled": init() + [["act", 0, 1], ["nop", 1], ["read_ap", 0, 0]],
}
# CKE low is the other thing the model does not model; it is refused with the same code
EXTRA = {"not_modelled_cke_low": ("not_modelled", init() + [["cke_low"]])}


@pytest.fixture(scope="module")
def violation_results():
    cases = {**{k: (k, v) for k, v in VIOLATIONS.items()}, **EXTRA}
    results = run_chip_scenarios(CYCLES, [s for _, s in cases.values()])
    return {name: (rule, r) for (name, (rule, _)), r in zip(cases.items(), results)}


@pytest.mark.parametrize("name", [*VIOLATIONS, *EXTRA])
def test_each_rule_is_caught(violation_results, name):
    rule, result = violation_results[name]
    assert result["error"] == 1
    assert result["first_error"] == ERROR_CODES[rule]


def test_every_rule_but_unknown_pins_has_a_scenario():
    """Unknown (X/Z) command pins need a four-state simulator; the rest are all above."""
    assert set(ERROR_CODES) - set(VIOLATIONS) == {"pins_unknown"}
