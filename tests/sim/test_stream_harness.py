# amaranth: UnusedElaboratable=no
"""The simulator-side stream harness (``binaryvit.sim.stream_harness``) on a hand-written
top whose behaviour is obvious (``ImageEcho``: every word echoed one cycle later, an image
count after every 4th word): words, classes, per-image cycles and monitor spans come back
exact; bubbles and back-pressure cost cycles but change no word; a missing word is a stall
and an extra word is caught; images split into runs side by side come back as from one
run, each run from reset with its own seed, whatever the number of jobs. One Verilator
build serves every test."""
import random
from pathlib import Path

import pytest
from stream_duts import ImageEcho

from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.network_fast import SHARD_IMAGES, run_network_fast, shard_count, usable_cpus
from binaryvit.sim.simulator import Design, build
from binaryvit.sim.stream_harness import Monitor, StreamTop, harness_verilog

TOP = StreamTop(name="image_echo", in_width=8, out_width=8, side={"cls": 4},
                monitors=(Monitor("u_slice", 4),))
IMAGES = [[random.Random(k).randrange(256) for _ in range(4)] for k in range(12)]


def echo_design() -> Design:
    return Design(TOP.harness_name, {"image_echo.v": to_verilog(ImageEcho(), "image_echo"),
                                     f"{TOP.harness_name}.v": harness_verilog(TOP)})


@pytest.fixture(scope="module")
def echo_build():
    return build(echo_design(), kind="sim")


def test_words_and_cycles_are_exact_without_bubbles(echo_build):
    run = run_network_fast(echo_build, TOP, IMAGES, 4, monitor_images=3)
    assert run.logits_words == [w for image in IMAGES for w in image]
    assert run.classes == list(range(12))
    # word k enters on cycle f + k and leaves on f + k + 1: an image every 4 cycles
    assert run.image_cycles == [4] * 12
    first = run.monitor_spans[0][0][0]
    assert run.monitor_spans[0] == [(first + 4 * j, first + 4 * j + 3) for j in range(3)]
    assert run.extra_words == 0


def test_bubbles_and_backpressure_cost_cycles_not_words(echo_build):
    run = run_network_fast(echo_build, TOP, IMAGES, 4, bubble_prob=0.4, stall_prob=0.4,
                           seed=7)
    assert run.logits_words == [w for image in IMAGES for w in image]
    assert run.classes == list(range(12))
    assert sum(run.image_cycles) > 4 * 12 + 12   # ~0.4 of the cycles idle on each side
    again = run_network_fast(echo_build, TOP, IMAGES, 4, bubble_prob=0.4, stall_prob=0.4,
                             seed=7)
    assert again.image_cycles == run.image_cycles   # deterministic for a seed
    other = run_network_fast(echo_build, TOP, IMAGES, 4, bubble_prob=0.4, stall_prob=0.4,
                             seed=8)
    assert other.image_cycles != run.image_cycles


def test_paced_images_start_a_period_apart(echo_build):
    run = run_network_fast(echo_build, TOP, IMAGES[:4], 4, image_period=10)
    assert run.image_cycles == [4, 10, 10, 10]


def test_a_missing_word_is_a_stall(echo_build):
    with pytest.raises(AssertionError, match=r"no stream moved for 50 cycles .* 16/20 logits"):
        run_network_fast(echo_build, TOP, IMAGES[:4], 5, idle_limit=50)


def test_an_extra_word_is_caught(echo_build):
    with pytest.raises(AssertionError, match="offered 4 logits words beyond the expected 12"):
        run_network_fast(echo_build, TOP, IMAGES[:4], 3)


def test_runs_side_by_side_are_separate_runs_from_reset(echo_build):
    run = run_network_fast(echo_build, TOP, IMAGES, 4, shards=3, monitor_images=3)
    assert run.logits_words == [w for image in IMAGES for w in image]
    assert run.classes == [0, 1, 2, 3] * 3      # each run counts its images from reset
    assert run.run_images == [4, 4, 4] and run.jobs == min(3, usable_cpus())
    assert run.image_cycles == [4] * 12
    first = run.monitor_spans[0][0][0]          # the first run's images only
    assert run.monitor_spans[0] == [(first + 4 * j, first + 4 * j + 3) for j in range(3)]


def test_runs_side_by_side_are_deterministic_whatever_the_jobs(echo_build):
    noisy = dict(bubble_prob=0.4, stall_prob=0.4, seed=7)
    apart = run_network_fast(echo_build, TOP, IMAGES, 4, shards=3, jobs=3, **noisy)
    in_turn = run_network_fast(echo_build, TOP, IMAGES, 4, shards=3, jobs=1, **noisy)
    assert apart.image_cycles == in_turn.image_cycles and in_turn.jobs == 1
    assert apart.logits_words == in_turn.logits_words == [w for im in IMAGES for w in im]
    # run k is the run of its images alone with seed + k
    alone = run_network_fast(echo_build, TOP, IMAGES[4:8], 4, bubble_prob=0.4,
                             stall_prob=0.4, seed=8)
    assert apart.image_cycles[4:8] == alone.image_cycles
    assert sum(apart.image_cycles) > 4 * 12 + 12


def test_shards_follow_the_image_count_not_the_machine():
    assert [shard_count(n) for n in (1, SHARD_IMAGES, SHARD_IMAGES + 1, 360)] == [1, 1, 2, 2]
    assert shard_count(360, waves=True) == 1


def test_a_stall_names_the_images_of_its_run(echo_build):
    with pytest.raises(AssertionError, match=r"images 0…3: no stream moved for 50 cycles"):
        run_network_fast(echo_build, TOP, IMAGES, 5, shards=3, idle_limit=50)
    with pytest.raises(ValueError, match="shards must be between 1 and the 4 images, not 5"):
        run_network_fast(echo_build, TOP, IMAGES[:4], 4, shards=5)
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        run_network_fast(echo_build, TOP, IMAGES[:4], 4, jobs=0)


def test_a_waves_build_records_a_waveform_of_the_run():
    run = run_network_fast(build(echo_design(), kind="sim", waves=True), TOP, IMAGES[:2], 4)
    assert run.logits_words == IMAGES[0] + IMAGES[1]
    assert len(run.wave_files) == 1 and Path(run.wave_files[0]).stat().st_size > 0
