"""The Amaranth-simulator stream harness: conversions, transfers under bubbles and
back-pressure, cycle counts and the deadlock guard, checked on tiny hand-written DUTs."""
import pytest
from amaranth import signed
from stream_duts import WORD, PairSummer, RegisterSlice

from binaryvit.sim.amaranth_streams import (int_to_payload, payload_to_int,
                                            simulate_streams)

def test_payload_round_trip_hand_derived():
    # data[0] = -1 -> 0b1111 at bits 0..3, data[1] = 2 -> 0b0010 at bits 4..7, last at bit 8.
    flat = payload_to_int(WORD, {"data": [-1, 2], "last": 1})
    assert flat == 0b1_0010_1111
    assert int_to_payload(WORD, flat) == {"data": [-1, 2], "last": 1}
    assert payload_to_int(signed(4), -8) == 0b1000
    assert int_to_payload(signed(4), 0b1000) == -8


def test_payload_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        payload_to_int(signed(4), 8)
    with pytest.raises(ValueError, match="lacks field"):
        payload_to_int(WORD, {"data": [0, 0]})
    with pytest.raises(ValueError, match="3 elements"):
        payload_to_int(WORD, {"data": [0, 0, 0], "last": 0})


@pytest.mark.parametrize("bubble_prob,stall_prob,seed", [(0.0, 0.0, 0), (0.5, 0.5, 1), (0.9, 0.1, 2), (0.1, 0.9, 3)])
def test_words_pass_unchanged_under_bubbles_and_backpressure(bubble_prob, stall_prob, seed):
    words = [{"data": [(k % 16) - 8, (3 * k) % 16 - 8], "last": int(k % 7 == 6)} for k in range(60)]
    run = simulate_streams(RegisterSlice(), {"i": words}, {"o": len(words)},
                           bubble_prob=bubble_prob, stall_prob=stall_prob, seed=seed)
    assert [int_to_payload(WORD, w) for w in run.outputs["o"]] == words


def test_cycles_without_bubbles_are_words_plus_latency():
    run = simulate_streams(RegisterSlice(), {"i": list(range(50))}, {"o": 50},
                           bubble_prob=0, stall_prob=0)
    assert run.cycles == 50 + 1


def test_two_inputs_drive_independently():
    a, b = list(range(0, 200, 5)), list(range(255, 55, -5))
    run = simulate_streams(PairSummer(), {"a": a, "b": b}, {"o": len(a)}, seed=7)
    assert run.outputs["o"] == [x + y for x, y in zip(a, b)]


def test_deadlock_names_the_waiting_port():
    with pytest.raises(AssertionError, match=r"still waiting: o \(5/6 words\)"):
        simulate_streams(RegisterSlice(), {"i": list(range(5))}, {"o": 6}, max_cycles=200)


def test_unknown_port_is_named():
    with pytest.raises(ValueError, match="no port 'x'"):
        simulate_streams(RegisterSlice(), {"x": [1]}, {"o": 1})
