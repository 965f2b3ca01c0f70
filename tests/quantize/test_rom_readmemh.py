"""Icarus Verilog's $readmemh reads our .hex and .mem files into exactly the packed words."""
import subprocess

import pytest
import torch

from binaryvit.quantize.rom_formats import write_rom_image
from binaryvit.quantize.weight_packing import pack_weight_rom

TESTBENCH = """
module readmem_tb;
  reg [{width}-1:0] rom [0:{depth}-1];
  integer i;
  initial begin
    $readmemh("{path}", rom);
    for (i = 0; i < {depth}; i = i + 1) $display("word %h", rom[i]);
    $finish;
  end
endmodule
"""


def readmemh_words(tmp_path, rom_path, width, depth):
    tb = tmp_path / f"{rom_path.stem}_tb.v"
    tb.write_text(TESTBENCH.format(width=width, depth=depth, path=rom_path.as_posix()))
    sim = tmp_path / f"{rom_path.stem}.vvp"
    subprocess.run(["iverilog", "-g2012", "-o", str(sim), str(tb)], check=True, capture_output=True, text=True)
    run = subprocess.run(["vvp", "-n", str(sim)], check=True, capture_output=True, text=True)
    lines = [ln.split()[1] for ln in run.stdout.splitlines() if ln.startswith("word ")]
    assert len(lines) == depth, run.stdout + run.stderr
    assert all("x" not in ln.lower() for ln in lines), "some words were not loaded"
    return [int(ln, 16) for ln in lines]


@pytest.mark.parametrize("fmt", ["hex", "mem"])
def test_readmemh_loads_the_packed_words(tmp_path, fmt):
    gen = torch.Generator().manual_seed(11)
    for n, k, pe, simd in [(2, 3, 2, 1), (6, 10, 3, 2), (5, 70, 5, 14), (4, 9, 1, 9)]:
        w = torch.randint(0, 2, (n, k), generator=gen).bool()
        image = pack_weight_rom(w, pe, simd)
        path = write_rom_image(image, tmp_path / f"w_{n}_{k}_{pe}_{simd}.{fmt}")
        assert readmemh_words(tmp_path, path, image.width, image.depth) == image.words
