"""Run engine instructions in the Amaranth simulator from the ISS's memory state, and compare
the RTL's memory afterwards with the ISS's word for word (engine RTL tests)."""
from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from binaryvit.hw.engine.encoding import decode_instructions
from binaryvit.hw.engine.isa import TensorRef
from binaryvit.hw.engine.iss import EngineSimulator
from binaryvit.hw.engine.program import Program
from binaryvit.hw.engine.rtl.engine import Engine
from binaryvit.hw.engine.tensor_words import read_tensor


def program_region(program: Program):
    return next(r for r in program.regions if r.name == "program")


def iss_states(program: Program, image) -> tuple[EngineSimulator, np.ndarray, list]:
    """The ISS, its memory image for one picture ``[1, C, H, W]`` and ``(word, instruction)``
    of every instruction."""
    sim = EngineSimulator(program)
    memory = sim.load(image)
    return sim, memory, list(decode_instructions(sim.fetch(memory), sim.wide))


def run_rtl(program: Program, memory: np.ndarray, pc: int, max_cycles: int):
    """Run the engine RTL on ``memory`` (``uint16 [words]``) from halfword ``pc`` until
    ``done`` or ``error``: ``(memory after, cycles, error, instructions)``."""
    engine = Engine(program.config, init=memory)
    result = {}

    async def bench(ctx):
        ctx.set(engine.pc_start, pc)
        ctx.set(engine.start, 1)
        await ctx.tick()
        ctx.set(engine.start, 0)
        cycles = 1
        while not (ctx.get(engine.done) or ctx.get(engine.error)) and cycles < max_cycles:
            await ctx.tick()
            cycles += 1
        result["cycles"] = cycles
        result["error"] = bool(ctx.get(engine.error))
        result["instructions"] = ctx.get(engine.instructions)
        result["memory"] = np.array([ctx.get(engine.memory.word(i))
                                     for i in range(program.config.total_words)], dtype=np.uint16)

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result["memory"], result["cycles"], result["error"], result["instructions"]


def written_tensors(instruction) -> list[TensorRef]:
    """The tensors an instruction writes (its stages' and a MASK's ``out``)."""
    outs = [s.out for s in instruction.stages if hasattr(s, "out")]
    return outs + ([instruction.out] if hasattr(instruction, "out") else [])


def run_one_instruction(program: Program, image, index: int, max_cycles: int = 200_000,
                        seed: int = 0):
    """Instruction ``index`` of ``program`` in RTL and in the ISS, from the ISS's memory after
    the instructions before it, with a HALT word patched in after it and the tensors it writes
    filled with random words first (in both, so a word the RTL forgets to write shows):
    ``(rtl memory, iss memory, memory before, cycles, error)``."""
    sim, memory, decoded = iss_states(program, image)
    region = program_region(program)
    for _, ins in decoded[:index]:
        sim.execute(memory, ins)
    if index + 1 < len(decoded):
        after = region.address + 2 * decoded[index + 1][0]
        memory[:, after:after + 2] = 0
    rng = np.random.default_rng(seed)
    for ref in written_tensors(decoded[index][1]):
        words = ref.words(program.config.wide_words)
        memory[:, ref.address:ref.address + words] = rng.integers(0, 1 << 16, words)
    start = memory[0].copy()
    sim.execute(memory, decoded[index][1])
    got, cycles, error, _ = run_rtl(program, start, region.address + 2 * decoded[index][0],
                                    max_cycles)
    return got, memory[0], start, cycles, error


def run_program_rtl(program: Program, image, max_cycles: int = 2_000_000):
    """The whole program on one picture ``[1, C, H, W]`` in RTL, from the ISS's loaded memory
    (payload and pixels): ``(logits int64 [classes], memory after, cycles, error)``."""
    sim, memory, _ = iss_states(program, image)
    got, cycles, error, count = run_rtl(program, memory[0], program_region(program).address,
                                        max_cycles)
    logits = read_tensor(got[None], program.output, program.config.wide_words).reshape(-1)
    return logits, got, cycles, error, count
