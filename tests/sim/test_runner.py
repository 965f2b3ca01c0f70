# amaranth: UnusedElaboratable=no
"""The cocotb harness (run_stream_vectors) on hand-written DUTs: it passes correct
expectations in both simulators and fails, with a message naming port and word index,
on wrong words, missing words and bad arguments."""
import pytest
from stream_duts import WORD, HeldConstant, PairSummer, RegisterSlice

from binaryvit.errors import ConfigError
from binaryvit.sim.amaranth_streams import payload_to_int
from binaryvit.sim.runner import run_stream_vectors, run_throughput

WORDS = [payload_to_int(WORD, {"data": [(k % 16) - 8, (5 * k) % 16 - 8], "last": int(k % 9 == 8)})
         for k in range(80)]


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_correct_expectation_passes_under_bubbles_and_backpressure(simulator):
    result = run_stream_vectors(RegisterSlice(), "register_slice", {"i": WORDS}, {"o": WORDS},
                                simulator=simulator, bubble_prob=0.4, stall_prob=0.4, seed=3)
    assert result.outputs["o"] == WORDS
    assert result.cycles > len(WORDS)  # bubbles and stalls cost cycles


def test_icarus_evaluates_logic_whose_inputs_never_change():
    # Icarus's default -g2012 runs declaration initialisers before time 0 without an event,
    # so such an `always @*` never runs and the output stays X; the runner builds -g2005.
    result = run_stream_vectors(HeldConstant(), "held_constant", {"i": list(range(10))},
                                {"o": [3] * 10}, simulator="icarus")
    assert result.outputs["o"] == [3] * 10


def test_throughput_run_counts_words_plus_latency():
    result = run_throughput(RegisterSlice(), "register_slice", {"i": WORDS}, {"o": WORDS})
    assert result.cycles == len(WORDS) + 1


def test_wrong_word_is_named_with_index_and_hex_values():
    wrong = list(WORDS)
    wrong[17] ^= 0x10
    with pytest.raises(AssertionError) as info:
        run_stream_vectors(RegisterSlice(), "register_slice", {"i": WORDS}, {"o": wrong})
    message = str(info.value)
    assert f"port 'o': word 17 of {len(WORDS)} differs" in message
    assert f"expected {wrong[17]:#x}, got {WORDS[17]:#x}" in message
    assert f"{16:5d}  {WORDS[16]:#x}  {WORDS[16]:#x}" in message  # a neighbour is shown


def test_missing_word_times_out_naming_the_port():
    with pytest.raises(AssertionError, match=r"timeout .* still waiting: o \(80/81 words\)"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"i": WORDS}, {"o": WORDS + [0]},
                           timeout_cycles=400)


def test_extra_word_from_the_dut_fails():
    with pytest.raises(AssertionError, match="beyond the expected 79 words"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"i": WORDS}, {"o": WORDS[:-1]},
                           simulator="icarus")


def test_two_input_ports_on_icarus_with_waves():
    a, b = list(range(0, 200, 5)), list(range(255, 55, -5))
    result = run_stream_vectors(PairSummer(), "pair_summer", {"a": a, "b": b},
                                {"o": [x + y for x, y in zip(a, b)]}, simulator="icarus",
                                waves=True, seed=5)
    assert result.waves is not None and result.waves.stat().st_size > 0


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="no stream port 'x'"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"x": [1]}, {"o": [1]})
    with pytest.raises(ConfigError, match="is not an input stream"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"o": [1]}, {"o": [1]})
    with pytest.raises(ConfigError, match=r"word 1 = 512 is outside the 9-bit"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"i": [0, 512]}, {"o": [0, 512]})
    with pytest.raises(ConfigError, match="simulator must be one of"):
        run_stream_vectors(RegisterSlice(), "register_slice", {"i": [0]}, {"o": [0]},
                           simulator="xsim")
