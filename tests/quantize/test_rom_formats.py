"""ROM file formats: hand-written expected text, round trips, and corrupt files refused."""
import pytest
import torch

from binaryvit.errors import CheckpointError, ConfigError
from binaryvit.quantize.rom_formats import ROM_FORMATS, RomFormatError, read_rom_image, rom_image_text, write_rom_image
from binaryvit.quantize.rom_image import RomImage
from binaryvit.quantize.weight_packing import pack_weight_rom, unpack_weight_rom

W_2x3 = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.bool)


def test_hand_written_texts_for_the_2x3_example(tmp_path):
    image = pack_weight_rom(W_2x3, 2, 1)         # width 2: words 1, 2, 3 (see test_rom_packing)
    assert rom_image_text(image, "hex") == "1\n2\n3\n"
    assert rom_image_text(image, "mem") == "// binaryvit rom width=2 depth=3\n@0\n1\n2\n3\n"
    assert rom_image_text(image, "mif") == (
        "-- binaryvit rom width=2 depth=3\nWIDTH=2;\nDEPTH=3;\n\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\n\n"
        "CONTENT BEGIN\n\t0 : 1;\n\t1 : 2;\n\t2 : 3;\nEND;\n")
    assert rom_image_text(image, "coe") == (
        "; binaryvit rom width=2 depth=3\nmemory_initialization_radix=16;\nmemory_initialization_vector=\n"
        "1,\n2,\n3;\n")
    wide = pack_weight_rom(W_2x3, 2, 3)          # width 6: one word 53 = 0x35
    assert rom_image_text(wide, "hex") == "35\n"
    write_rom_image(RomImage(width=12, depth=2, words=[0xABC, 0x001]), tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == bytes([0xBC, 0x0A, 0x01, 0x00])


@pytest.mark.parametrize("fmt", ROM_FORMATS)
def test_round_trip_every_format_and_folding(tmp_path, fmt):
    gen = torch.Generator().manual_seed(10)
    for n, k, pe, simd in [(6, 10, 1, 1), (6, 10, 6, 10), (6, 10, 3, 2), (5, 70, 1, 70), (5, 70, 5, 14),
                           (4, 9, 1, 9), (3, 7, 3, 7), (2, 17, 2, 17)]:
        w = torch.randint(0, 2, (n, k), generator=gen).bool()
        image = pack_weight_rom(w, pe, simd)
        path = write_rom_image(image, tmp_path / f"rom_{n}_{k}_{pe}_{simd}.{fmt}")
        back = read_rom_image(path, width=image.width, depth=image.depth)
        assert (back.width, back.depth, back.words) == (image.width, image.depth, image.words)
        if fmt in ("mem", "mif", "coe"):
            assert read_rom_image(path).words == image.words   # width and depth come from the file
        refolded = RomImage(back.width, back.depth, back.words, pe=pe, simd=simd, n=n, k=k)
        assert torch.equal(unpack_weight_rom(refolded), w)


def test_all_ones_and_zeros_words_survive(tmp_path):
    for width in (1, 3, 4, 5, 8, 9, 64, 65, 127):
        image = RomImage(width=width, depth=3, words=[0, (1 << width) - 1, 1 << (width - 1)])
        for fmt in ROM_FORMATS:
            path = write_rom_image(image, tmp_path / f"r{width}.{fmt}")
            assert read_rom_image(path, width=width).words == image.words


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pad_bits_and_wide_values_refused(tmp_path):
    with pytest.raises(RomFormatError, match="pad bits"):
        read_rom_image(_write(tmp_path, "p.hex", "35\n40\n"), width=6)
    with pytest.raises(RomFormatError, match="pad bits"):
        read_rom_image(_write(tmp_path, "p.mif", "WIDTH=2;\nDEPTH=1;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\n"
                                                 "CONTENT BEGIN\n0 : 4;\nEND;\n"))
    path = tmp_path / "p.bin"
    path.write_bytes(bytes([0xFF, 0x1F]))
    with pytest.raises(RomFormatError, match="pad bits"):
        read_rom_image(path, width=12)


def test_corrupt_and_truncated_files_refused(tmp_path):
    cases = [
        ("cut.hex", "35\n4\n", dict(width=6), "hex digits"),
        ("short.hex", "35\n", dict(width=6, depth=2), "expected depth=2"),
        ("bad.hex", "3g\n", dict(width=6), "not a hex word"),
        ("nohdr.mem", "@0\n35\n", {}, "header"),
        ("cut.mem", "// binaryvit rom width=6 depth=3\n@0\n35\n01\n", {}, "truncated"),
        ("noaddr.mem", "// binaryvit rom width=6 depth=1\n35\n", {}, "@0"),
        ("cut.mif", "WIDTH=6;\nDEPTH=2;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n0 : 35;\n", {}, "CONTENT"),
        ("hole.mif", "WIDTH=6;\nDEPTH=2;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n0 : 35;\nEND;\n", {},
         "no word"),
        ("twice.mif", "WIDTH=6;\nDEPTH=1;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n0 : 1;\n0 : 2;\nEND;\n",
         {}, "twice"),
        ("dec.mif", "WIDTH=6;\nDEPTH=1;\nADDRESS_RADIX=DEC;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n0 : 1;\nEND;\n", {},
         "ADDRESS_RADIX"),
        ("wrong.mif", "WIDTH=6;\nDEPTH=1;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n0 : 1;\nEND;\n",
         dict(width=8), "width=8"),
        ("cut.coe", "; binaryvit rom width=6 depth=2\nmemory_initialization_radix=16;\nmemory_initialization_vector=\n35,",
         {}, "vector"),
        ("lost.coe", "; binaryvit rom width=6 depth=2\nmemory_initialization_radix=16;\n"
                     "memory_initialization_vector=\n35;\n", {}, "depth=2"),
        ("radix.coe", "memory_initialization_radix=2;\nmemory_initialization_vector=1;\n", dict(width=1), "radix"),
    ]
    for name, text, kwargs, message in cases:
        with pytest.raises(RomFormatError, match=message):
            read_rom_image(_write(tmp_path, name, text), **kwargs)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(bytes(3))
    with pytest.raises(RomFormatError, match="truncated"):
        read_rom_image(odd, width=12)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_rom_image(tmp_path / "missing.hex", width=4)


def test_width_required_where_the_file_lacks_it(tmp_path):
    for name, text in [("a.hex", "3\n"), ("a.coe", "memory_initialization_radix=16;\nmemory_initialization_vector=3;\n")]:
        with pytest.raises(ConfigError, match="width"):
            read_rom_image(_write(tmp_path, name, text))
    assert read_rom_image(tmp_path / "a.coe", width=2).words == [3]
    with pytest.raises(ConfigError, match="fmt"):
        write_rom_image(RomImage(width=2, depth=1, words=[3]), tmp_path / "a.txt")


def test_mif_ranges_from_other_tools(tmp_path):
    text = ("WIDTH=8;\nDEPTH=4;\nADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\nCONTENT BEGIN\n"
            "[0..2] : A5; -- three words\n3 : 7;\nEND;\n")
    assert read_rom_image(_write(tmp_path, "r.mif", text)).words == [0xA5, 0xA5, 0xA5, 0x07]


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "keep.hex"
    target.write_text("old\n")
    with pytest.raises(ConfigError):
        write_rom_image(RomImage(width=2, depth=1, words=[3]), target, fmt="xyz")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.hex"]


def test_write_every_format_at_once_with_numpy_folding(tmp_path):
    import numpy as np

    from binaryvit.quantize.rom_formats import write_rom_images

    w = np.array([[1, 0, 1], [0, 1, 1]], dtype=np.uint8)
    image = pack_weight_rom(w, np.int64(2), np.int64(3))
    assert (image.width, image.pe, type(image.width)) == (6, 2, int)
    paths = write_rom_images(image, tmp_path / "weights", "fc1")
    assert sorted(p.name for p in paths) == ["fc1.bin", "fc1.coe", "fc1.hex", "fc1.mem", "fc1.mif"]
    for path in paths:
        assert read_rom_image(path, width=6).words == [53]
