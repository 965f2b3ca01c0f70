"""Resource estimate of the engine's board top: core, memories, boot loader, UART front end.

Unlike the dataflow network (one kernel per step, modelled from each kernel's parameters),
the engine's logic does not depend on the program: the same core runs every program of its
:class:`~binaryvit.hw.engine.config.EngineConfig`. So its parts are measured figures of the
blocks (Yosys ``synth_ice40 -dsp`` cell counts, their source named beside each), plus the
memories through the resource model:

- **memories**: on the UP5K the four banks are ``SB_SPRAM256KA`` (``sprams``, 4 of 4); on
  the ECP5 they are block RAM initialised by the bitstream (``map_memory``: 16 ``DP16KD``
  a 16 Ki-word bank);
- **core**: ``CORE_COSTS[config.name][family]`` (logic, flip-flops, block RAM of its
  stage records, stage state and saturation table, DSPs), measured in the board top's build;
- **boot loader** (flash boot only) and the **UART front end** (``EngineUARTFrontEnd``: no
  buffers of its own, pixels and logits go through the engine's memory).

Logic cells: ``Family.cells`` (LUTs plus the flip-flops that do not share a cell with one).
``tests/hw/engine/test_engine_board_build.py`` (slow) checks the estimate against nextpnr's
count for the built board top; ``docs/boards.md`` has the figures.
"""
from __future__ import annotations

from dataclasses import dataclass

from binaryvit.hw.estimate.device_fit import check_fit
from binaryvit.hw.estimate.resource_model import FAMILIES, MemoryShape, Resources, map_memory

__all__ = ["BlockCost", "CORE_COSTS", "LOADER_COST", "FRONT_END_COST", "engine_resources",
           "engine_resource_report"]


@dataclass(frozen=True)
class BlockCost:
    """A block's measured Yosys cell counts: ``luts`` (``SB_LUT4``), ``ffs``, ``brams``
    (``SB_RAM40_4K``), ``dsps`` (``SB_MAC16``) and where they were measured."""

    luts: int
    ffs: int
    brams: int = 0
    dsps: int = 0
    source: str = ""

    def resources(self, family) -> Resources:
        return family.cells(self.luts, self.ffs) + Resources(brams=self.brams, dsps=self.dsps)


CORE_COSTS: dict[str, dict[str, BlockCost]] = {
    "up5k": {
        # engine-rtl 3650fd2 (derived fields in the instructions, stage records in a block RAM
        # row per stage) in micro's iCEBreaker board top with EngineUARTFrontEnd (integration
        # a2d6bb5), synth_ice40 -dsp, flattened: 5,249 SB_LUT4, 1,946 FF, 17 EBR, 5 SB_MAC16,
        # 4 SPRAM (nextpnr 6,264 LCs), less the loader and the front end (LOADER_COST,
        # FRONT_END_COST); tests/hw/engine/fixtures/engine_board_builds.json records it.
        "ice40": BlockCost(luts=4380, ffs=1495, brams=17, dsps=5,
                           source="engine-rtl 3650fd2 in the iCEBreaker board top, "
                                  "synth_ice40 -dsp, less loader and front end"),
        # the same core in micro's ULX3S board top (banks in block RAM, preloaded), synth_ecp5:
        # 5,414 TRELLIS_COMB, 1,752 TRELLIS_FF, 66 DP16KD, 2 MULT18X18D (placed and routed:
        # 42.8 MHz; the stage records and state in LUT RAM), less the front end (392 LUT4,
        # 209 FF) and the 64 DP16KD of the banks.
        "ecp5": BlockCost(luts=5022, ffs=1543, brams=2, dsps=2,
                          source="engine-rtl 3650fd2 in the ULX3S board top, synth_ecp5, "
                                 "less front end and banks"),
    },
}
# in the same iCEBreaker build (synth_ice40 -noflatten): the flash reader and the receiver
LOADER_COST = BlockCost(luts=477, ffs=242,
                        source="integration a2d6bb5 board top: ParameterLoader, synth_ice40 -dsp")
# EngineUARTFrontEnd (protocol FSM, argmax, UART receiver and transmitter), clock and reset
# glue, the I/O, in the same build (-noflatten): front end 276 + UART 65 + clock 13 + board
# glue and I/O 38 SB_LUT4; 147 + 53 + 9 FF
FRONT_END_COST = BlockCost(luts=392, ffs=209,
                           source="integration a2d6bb5 board top: EngineUARTFrontEnd, UART, "
                                  "clock and reset, synth_ice40 -dsp")


def engine_resources(target):
    """``(family name, {part: Resources})`` of the board top of ``target``
    (:class:`~binaryvit.hw.engine.board.generate.EngineTarget`)."""
    family_name = "ice40" if target.memory == "spram" else "ecp5"
    family = FAMILIES[family_name]
    config = target.config
    core = CORE_COSTS.get(config.name, CORE_COSTS["up5k"])[family_name]
    parts = {"engine core": core.resources(family)}
    if target.memory == "spram":
        parts["memories (SPRAM)"] = Resources(sprams=len(config.banks))
    else:
        memory = Resources()
        for i, bank in enumerate(config.banks):
            mapping = map_memory(MemoryShape(f"bank{i}", 16, bank.words, writable=True,
                                             collision_free=True), family)
            memory = memory + mapping.resources
        parts["memories (block RAM)"] = memory
    if target.boot == "flash":
        parts["boot loader"] = LOADER_COST.resources(family)
    parts["UART front end"] = FRONT_END_COST.resources(family)
    return family_name, parts


def engine_resource_report(target, board) -> dict:
    """What ``estimate.json`` records for an engine: ``resources`` (the target's family:
    total and parts, as the dataflow's report) and ``device`` (the fit on ``board``)."""
    family_name, parts = engine_resources(target)
    total = Resources()
    for part in parts.values():
        total = total + part
    fit = check_fit(total, board, 1.0)
    return {"resources": {family_name: {"total": total.rounded(), "lut_ram_limits": None,
                                        "parts": {k: v.rounded() for k, v in parts.items()},
                                        "memories": []}},
            "device": fit.to_json()}
