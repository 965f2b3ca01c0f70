# amaranth: UnusedElaboratable=no
import random
import subprocess

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.icebreaker import ICEBreakerPlatform
from ice40_synthesis import ice40_cells

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.spram import SinglePortSPRAM, SPRAMBank, spram_cell_verilog, uses_spram_primitive
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.toolchain import require_tool


def random_operations(rng: random.Random, addresses: list[int], count: int):
    """``(enable, write, addr, data, mask)`` per cycle: reads, nibble-masked writes, idles."""
    ops = [(1, 1, a, rng.randrange(1 << 16), 0b1111) for a in addresses]   # define every word
    for _ in range(count):
        kind = rng.random()
        addr = rng.choice(addresses)
        if kind < 0.45:
            ops.append((1, 0, addr, rng.randrange(1 << 16), rng.randrange(16)))   # data ignored
        elif kind < 0.8:
            ops.append((1, 1, addr, rng.randrange(1 << 16), rng.randrange(16)))
        else:   # chip select low: neither reads nor writes, even with write high
            ops.append((0, rng.randrange(2), addr, rng.randrange(1 << 16), rng.randrange(16)))
    return ops


def reference_reads(ops):
    """The expected ``read_data`` after each cycle where it is defined (None elsewhere)."""
    memory: dict[int, int] = {}
    shown = None
    expected = []
    for enable, write, addr, data, mask in ops:
        if enable and write:
            nibbles = sum(0xF << (4 * k) for k in range(4) if mask >> k & 1)
            memory[addr] = (memory.get(addr, 0) & ~nibbles) | (data & nibbles)
            shown = None            # undefined after a write (the primitive drives X)
        elif enable:
            shown = memory[addr]
        expected.append(shown)
    return expected


def simulate(dut, ops):
    seen = []

    async def bench(ctx):
        for enable, write, addr, data, mask in ops:
            ctx.set(dut.enable, enable)
            ctx.set(dut.write, write)
            ctx.set(dut.addr, addr)
            ctx.set(dut.write_data, data)
            ctx.set(dut.write_mask, mask)
            await ctx.tick()
            seen.append(ctx.get(dut.read_data))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def assert_reads_match(seen, expected):
    checked = 0
    for cycle, (got, want) in enumerate(zip(seen, expected)):
        if want is not None:
            assert got == want, f"cycle {cycle}: read_data {got:#06x}, expected {want:#06x}"
            checked += 1
    assert checked > len(seen) // 3


def test_model_reads_one_cycle_later_writes_by_nibble_and_holds_while_deselected():
    rng = random.Random(1)
    ops = random_operations(rng, rng.sample(range(16384), 40), 1500)
    assert_reads_match(simulate(SinglePortSPRAM(implementation="model"), ops), reference_reads(ops))


def test_bank_of_four_decodes_the_top_address_bits():
    rng = random.Random(2)
    # the same low address in every RAM, so a wrong decode reads another RAM's word
    low = rng.sample(range(16384), 10)
    addresses = [bank << 14 | a for bank in range(4) for a in low]
    ops = random_operations(rng, addresses, 2000)
    bank = SPRAMBank(banks=4, implementation="model")
    assert len(bank.addr) == 16 and bank.depth == 65536
    assert_reads_match(simulate(bank, ops), reference_reads(ops))


def test_bank_of_three_has_a_16_bit_address():
    rng = random.Random(3)
    addresses = [bank << 14 | a for bank in range(3) for a in rng.sample(range(16384), 8)]
    ops = random_operations(rng, addresses, 800)
    assert_reads_match(simulate(SPRAMBank(banks=3, implementation="model"), ops),
                       reference_reads(ops))


def test_auto_picks_the_primitive_only_on_an_ice40up():
    assert uses_spram_primitive("auto", ICEBreakerPlatform())
    assert not uses_spram_primitive("auto", None)
    assert uses_spram_primitive("primitive", None)
    assert not uses_spram_primitive("model", ICEBreakerPlatform())


@pytest.mark.parametrize("kwargs, message", [
    (dict(banks=5), "banks"), (dict(banks=0), "banks"), (dict(implementation="bram"), "implementation"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SPRAMBank(**kwargs)


class _Twins(wiring.Component):
    """The primitive and the model side by side on the same inputs."""

    addr: In(14)
    enable: In(1)
    write: In(1)
    write_data: In(16)
    write_mask: In(4)
    primitive_data: Out(16)
    model_data: Out(16)

    def elaborate(self, platform):
        m = Module()
        for name, implementation in (("primitive", "primitive"), ("model", "model")):
            ram = m.submodules[name] = SinglePortSPRAM(implementation=implementation)
            m.d.comb += [ram.addr.eq(self.addr), ram.enable.eq(self.enable), ram.write.eq(self.write),
                         ram.write_data.eq(self.write_data), ram.write_mask.eq(self.write_mask),
                         getattr(self, f"{name}_data").eq(ram.read_data)]
        return m


def test_model_matches_yosys_simulation_model_of_the_primitive_in_icarus(tmp_path):
    """Same stimulus into SB_SPRAM256KA (Yosys' cells_sim.v) and the model, in Icarus: every
    defined read_data equal, cycle by cycle."""
    rng = random.Random(4)
    ops = random_operations(rng, rng.sample(range(16384), 24), 1200)
    expected = reference_reads(ops)
    (tmp_path / "twins.v").write_text(to_verilog(_Twins(), "twins"))
    lines = []
    for cycle, ((enable, write, addr, data, mask), want) in enumerate(zip(ops, expected)):
        lines.append(f"    enable = {enable}; write = {write}; addr = {addr}; write_data = {data}; "
                     f"write_mask = {mask}; @(posedge clk); #1;")
        if want is not None:
            lines.append(f"    if (primitive_data !== {want} || model_data !== {want}) begin "
                         f"$display(\"MISMATCH cycle {cycle}: %h %h\", primitive_data, model_data); "
                         f"errors = errors + 1; end checks = checks + 1;")
    (tmp_path / "tb.v").write_text(f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0, enable = 0, write = 0;
  reg [13:0] addr = 0; reg [15:0] write_data = 0; reg [3:0] write_mask = 0;
  wire [15:0] primitive_data, model_data;
  integer errors = 0, checks = 0;
  twins dut(.clk(clk), .rst(rst), .addr(addr), .enable(enable), .write(write),
            .write_data(write_data), .write_mask(write_mask),
            .primitive_data(primitive_data), .model_data(model_data));
  always #5 clk = ~clk;
  initial begin
{chr(10).join(lines)}
    $display("DONE checks=%0d errors=%0d", checks, errors);
    $finish;
  end
endmodule
""")
    # the primitive's module alone: Icarus 11 rejects other cells' port default values
    (tmp_path / "spram_cell.v").write_text(spram_cell_verilog())
    subprocess.run([require_tool("iverilog"), "-g2012", "-o", "tb.vvp", "tb.v", "twins.v", "spram_cell.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run([require_tool("vvp"), "tb.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    checks = sum(w is not None for w in expected)
    assert f"DONE checks={checks} errors=0" in out, out[-2000:]


def test_bank_synthesises_to_four_spram_primitives_and_no_block_ram(tmp_path):
    cells = ice40_cells(SPRAMBank(banks=4, implementation="primitive"), "spram_bank", tmp_path)
    assert cells.get("SB_SPRAM256KA") == 4
    assert "SB_RAM40_4K" not in cells
    # the read multiplexer and the registered bank select only
    assert cells.get("SB_LUT4", 0) <= 40
