"""Which ROMs `binaryvit update-weights` swaps, what it refuses, and its command errors.

The in-bitstream swap itself is tested on real builds in test_bram_update.py.
"""
import json

import numpy as np
import pytest

from binaryvit.cli import main
from binaryvit.errors import DataError
from binaryvit.golden.intref.intmodel import Step
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult
from binaryvit.hw.boards.bram_update import weight_swaps
from binaryvit.quantize.weight_packing import pack_weight_rom, split_per_pe

N, K, PE, SIMD = 8, 16, 2, 8


def program(seed=0):
    rng = np.random.default_rng(seed)
    return [Step("stem", "fixed_mac", ("input",), {"shift": 3},
                 {"weight": rng.integers(-8, 8, (8, 4)), "bias": rng.integers(-9, 9, 8)}),
            Step("b0.qkv", "xnor_popcount_dot", ("stem",), {},
                 {"weight_bits": rng.integers(0, 2, (N, K)).astype(bool)}),
            Step("b0.sign", "threshold", ("b0.qkv",), {},
                 {"thresholds": rng.integers(-5, 5, N), "flip": np.zeros(N, dtype=bool)})]


FOLDS = {"b0.qkv": {"pe": PE, "simd": SIMD}}


def test_only_the_roms_of_changed_output_rows_are_swapped():
    old, new = program(), program()
    new[1].arrays["weight_bits"] = old[1].arrays["weight_bits"].copy()
    new[1].arrays["weight_bits"][3, 5] ^= True      # row 3 lives on PE 3 % 2 = 1
    new[1].arrays["weight_bits"][5, 0] ^= True      # row 5 too
    swaps = weight_swaps(old, new, FOLDS)
    assert [s.name for s in swaps] == ["b0.qkv.pe1"]
    old_roms = split_per_pe(pack_weight_rom(old[1].arrays["weight_bits"], PE, SIMD))
    new_roms = split_per_pe(pack_weight_rom(new[1].arrays["weight_bits"], PE, SIMD))
    assert swaps[0].old == old_roms[1] and swaps[0].new == new_roms[1]
    # row 3 is neuron fold 1, bit 5 is synapse fold 0: address 1·(K/SIMD) + 0 = 2, bit 5
    changed = [a for a in range(old_roms[1].depth) if old_roms[1].words[a] != new_roms[1].words[a]]
    assert changed == [2, 4]     # row 5: neuron fold 2, synapse fold 0 -> address 4
    assert old_roms[1].words[2] ^ new_roms[1].words[2] == 1 << 5


def test_identical_weights_give_no_swaps():
    assert weight_swaps(program(), program(), FOLDS) == []


def test_a_changed_threshold_is_refused_by_name():
    old, new = program(), program()
    new[2].arrays["thresholds"] = old[2].arrays["thresholds"] + 1
    new[0].params = {"shift": 4}
    with pytest.raises(DataError, match=r"stem params, b0.sign.thresholds\).*binaryvit build"):
        weight_swaps(old, new, FOLDS)


def test_a_different_network_is_refused():
    with pytest.raises(DataError, match="different structure"):
        weight_swaps(program(), program()[:2], FOLDS)


def test_command_needs_a_build_of_a_board_with_an_open_bitstream_flow(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "build").mkdir(parents=True)
    new = tmp_path / "new.npz"
    new.write_bytes(b"")
    assert main(["update-weights", str(out), str(new)]) == 2
    assert "binaryvit build" in capsys.readouterr().err
    (out / "build" / "arty").mkdir()
    (out / "build" / "arty" / BUILD_JSON).write_text(json.dumps(BuildResult("arty", ok=True).to_json()))
    assert main(["update-weights", str(out), str(new)]) == 2
    assert "no iCE40 or ECP5 build" in capsys.readouterr().err
    assert main(["update-weights", str(out), str(new), "--board", "arty"]) == 2
    assert "no open bitstream flow" in capsys.readouterr().err
