"""The report's groupings: resources by op class, cycles per block, the fit per board."""
import math

from binaryvit.hw.boards.board_build import BuildResult, Usage
from binaryvit.report.board_fit import board_title, fit_panels
from binaryvit.report.breakdown import (FIFOS, OTHER, PLUMBING, block_of, cycles_per_block,
                                        name_in_block, part_class, resources_by_class)
from binaryvit.hw.boards.definitions import BOARDS

STEP_OPS = {"stem.norm": "fixed_mac", "stages.0.blocks.0.mlp.fc1": "xnor_popcount_dot",
            "stages.0.blocks.0.attention.context": "and_popcount_context",
            "stages.0.blocks.0.norm1": "affine", "stages.0.blocks.0.future": "an_op_to_come"}


def res(luts=0, ffs=0, brams=0, dsps=0):
    return {"luts": luts, "ffs": ffs, "brams": brams, "dsps": dsps}


def test_parts_fall_in_their_op_class_or_the_plumbing_the_network_adds():
    assert part_class("stem.norm", STEP_OPS) == "stem and classifier MACs"
    assert part_class("stages.0.blocks.0.mlp.fc1", STEP_OPS) == "binary matmuls (XNOR-popcount)"
    assert part_class("stages.0.blocks.0.attention.context", STEP_OPS) == \
        "attention (scores, mask, context)"
    assert part_class("stages.0.blocks.0.norm1.fifo0", STEP_OPS) == FIFOS
    assert part_class("stages.0.blocks.0.norm1.fifo12in", STEP_OPS) == FIFOS
    assert part_class("stages.0.blocks.0.norm1.width3", STEP_OPS) == PLUMBING
    assert part_class("stages.0.blocks.0.norm1.fork", STEP_OPS) == PLUMBING
    assert part_class("argmax", STEP_OPS) == PLUMBING
    # a step named like plumbing is still its op's; an unknown op or part is "other"
    assert part_class("stages.0.blocks.0.future", STEP_OPS) == OTHER
    assert part_class("stages.0.blocks.0.fifo_controller", STEP_OPS) == OTHER


def test_resources_sum_per_class_per_family_in_class_order():
    estimate = {"layers": [{"name": n, "op": o} for n, o in STEP_OPS.items()],
                "resources": {
                    "ecp5": {"parts": {
                        "stem.norm": res(100, 50, 0, 2),
                        "stages.0.blocks.0.mlp.fc1": res(300, 40, 1),
                        "stages.0.blocks.0.norm1": res(80, 20, 0, 4),
                        "stages.0.blocks.0.norm1.fifo0": res(20, 10, 2),
                        "stem.fifo1in": res(5, 3),
                        "stem.fork": res(2, 1),
                        "argmax": res(7, 9),
                        "stages.0.blocks.0.attention.context": res()}},   # nothing: left out
                    "ice40": {"parts": {"stem.norm": res(900, 50)}}}}
    by_class = resources_by_class(estimate)
    assert list(by_class["ecp5"]) == ["binary matmuls (XNOR-popcount)", "affines (norms)",
                                      "stem and classifier MACs", FIFOS, PLUMBING]
    assert by_class["ecp5"][FIFOS] == res(25, 13, 2, 0)
    assert by_class["ecp5"][PLUMBING] == res(9, 10, 0, 0)
    assert by_class["ecp5"]["affines (norms)"] == res(80, 20, 0, 4)
    assert by_class["ice40"] == {"stem and classifier MACs": res(900, 50)}


def test_steps_group_into_the_blocks_of_the_network():
    assert block_of("stem.patches") == "stem"
    assert block_of("stem") == "stem"
    assert block_of("stages.0.blocks.1.attention.q_proj") == "stage 0 block 1"
    assert block_of("stages.0.blocks.1") == "stage 0 block 1"
    assert block_of("stages.12.blocks.10.mlp.fc2") == "stage 12 block 10"
    assert block_of("stages.1.merge.conv.input_sign") == "stage 1 merge"
    assert block_of("head.token_sum") == "head"
    assert block_of("classifier") == "head"
    assert block_of("stages.0.blocksy") == "stages"
    assert name_in_block("stages.0.blocks.1.attention.q_proj") == "attention.q_proj"
    assert name_in_block("stages.1.merge.conv.input_sign") == "conv.input_sign"
    assert name_in_block("stages.0.blocks.1") == "stages.0.blocks.1"
    assert name_in_block("head.token_sum") == "head.token_sum"


def layer(name, cycles, ideal):
    return {"name": name, "op": "affine", "cycles_per_image": cycles,
            "ideal_cycles_per_image": ideal}


def test_a_block_takes_its_slowest_steps_cycles_estimated_and_measured():
    estimate = {"layers": [layer("stem.patches", 64, 64), layer("stem.norm", 2048, 2000),
                           layer("stages.0.blocks.0.norm1", 1024, 1000),
                           layer("stages.0.blocks.0.mlp.fc1", 1536, 1536),
                           layer("stages.0.blocks.0.mlp.fc2", 1536, 1400),
                           layer("classifier", 10, 10)]}
    measured = {"stem.norm": 2050.5, "stages.0.blocks.0.norm1": 1700,
                "stages.0.blocks.0.mlp.fc1": 1540, "stages.0.blocks.0.mlp.fc2": "n/a"}
    stem, block, head = cycles_per_block(estimate, measured)
    assert (stem.block, stem.estimated, stem.ideal, stem.slowest, stem.ties) == \
        ("stem", 2048, 2000, "stem.norm", 0)
    assert (stem.measured, stem.measured_slowest) == (2050.5, "stem.norm")
    # fc1 and fc2 tie at 1536; measured, norm1 turned out the slowest
    assert (block.block, block.estimated, block.ideal, block.slowest, block.ties) == \
        ("stage 0 block 0", 1536, 1536, "stages.0.blocks.0.mlp.fc1", 1)
    assert (block.measured, block.measured_slowest) == (1700, "stages.0.blocks.0.norm1")
    assert (head.block, head.estimated, head.measured) == ("head", 10, None)
    assert [b.measured for b in cycles_per_block(estimate)] == [None, None, None]


def test_fit_panels_hold_the_estimate_the_limit_and_the_build():
    estimate = {"resources": {
        "ice40": {"total": {"luts": 6000, "ffs": 7000, "brams": 12, "dsps": 0}},
        "ecp5": {"total": {"luts": 80000, "ffs": 40000, "brams": 100, "dsps": 50}}}}
    built = BuildResult(board="ulx3s", utilisation={"TRELLIS_COMB": Usage(75089, 83640),
                                                    "DP16KD": Usage(100, 208)})
    arty = BuildResult(board="arty", utilisation={"LUT": Usage(15000, 20800),
                                                  "BUFG": Usage(1, 32)})
    panels = {p["board"]: p for p in fit_panels(estimate, {"ulx3s": built, "arty": arty})}
    assert list(panels) == ["icebreaker", "ulx3s", "arty"]
    ice = panels["icebreaker"]["rows"]
    # the iCE40's logic cells hold its flip-flops: one row, the larger of the two
    assert ice[0] == {"resource": "ICESTORM_LC", "kind": "logic", "needed": 7000,
                      "available": 5280, "limit": math.floor(5280 * 0.95), "built": None}
    assert ice[1]["resource"] == "ICESTORM_RAM" and ice[1]["limit"] == 30
    assert panels["icebreaker"]["title"] == \
        "1BitSquared iCEBreaker: does not fit\nLattice iCE40UP5K-SG48"
    ecp = {r["resource"]: r for r in panels["ulx3s"]["rows"]}
    assert ecp["TRELLIS_COMB"] == {"resource": "TRELLIS_COMB", "kind": "logic",
                                   "needed": 80000, "available": 83640, "limit": 79458,
                                   "built": 75089}
    assert ecp["MULT18X18D"]["limit"] == 156 and ecp["MULT18X18D"]["built"] is None
    assert panels["ulx3s"]["title"].startswith("Radiona ULX3S: does not fit")  # 80000 > 79458
    # no resource model for the Arty: its build alone, the device's own resources only
    assert panels["arty"]["rows"] == [{"resource": "LUT", "kind": "built", "needed": None,
                                       "available": 20800, "limit": 20800, "built": 15000}]
    assert board_title(BOARDS["arty"], None) == "Digilent Arty A7-35T\nXilinx XC7A35T-1LCSG324"
    assert fit_panels(None, {}) == []
