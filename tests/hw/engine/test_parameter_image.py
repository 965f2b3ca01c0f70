import struct

import numpy as np
import pytest

from binaryvit.errors import ParameterImageError
from binaryvit.hw.engine.parameter_image import (
    HEADER_BYTES,
    ParameterImage,
    crc32_mpeg2,
    design_id,
    read_parameter_image,
    write_parameter_image,
)


def bitwise_crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 one bit at a time, as the loader computes it (independent of the table)."""
    crc = 0xFFFF_FFFF
    for byte in data:
        for bit in range(7, -1, -1):
            feedback = (crc >> 31) ^ (byte >> bit & 1)
            crc = (crc << 1) & 0xFFFF_FFFF
            if feedback:
                crc ^= 0x04C11DB7
    return crc


def random_image(seed: int, words: int, image_id: int = 0x1234_5678) -> ParameterImage:
    """Three segments: the top of bank 0, the start of bank 2, and an empty one."""
    rng = np.random.default_rng(seed)
    return ParameterImage(image_id, [(16384 - words // 2, rng.integers(0, 1 << 16, words // 2)),
                                     (32768, rng.integers(0, 1 << 16, words - words // 2)),
                                     (7, [])])


def test_crc_is_crc32_mpeg2():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7      # the catalogue's check value
    data = bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8))
    assert crc32_mpeg2(data) == bitwise_crc32_mpeg2(data)
    assert crc32_mpeg2(data[500:], crc32_mpeg2(data[:500])) == crc32_mpeg2(data)


def test_layout_is_the_documented_one():
    image = ParameterImage(0xA1B2C3D4, [(0x12345, [0x0102, 0xFFFF, 0]), (9, [0xABCD])])
    data = image.to_bytes()
    assert data[:16] == b"BVPI" + bytes([1, 0, 0, 0, 0xD4, 0xC3, 0xB2, 0xA1, 12, 0, 0, 0])
    assert data[20:] == bytes([0x45, 0x23, 0x01, 0x00, 3, 0, 0, 0, 0x02, 0x01, 0xFF, 0xFF, 0, 0,
                               9, 0, 0, 0, 1, 0, 0, 0, 0xCD, 0xAB])
    assert struct.unpack("<I", data[16:20])[0] == bitwise_crc32_mpeg2(data[:16] + data[20:])
    assert len(data) == HEADER_BYTES + 24


def test_memory_is_the_segments_in_place():
    image = ParameterImage(1, [(4, [7, 8]), (0, [1])])
    assert image.memory(8, fill=0xFFFF).tolist() == [1, 0xFFFF, 0xFFFF, 0xFFFF, 7, 8, 0xFFFF, 0xFFFF]
    with pytest.raises(ParameterImageError, match="past the 5-word memory"):
        image.memory(5)


def test_round_trip_through_a_file(tmp_path):
    image = random_image(1, 5000)
    path = write_parameter_image(tmp_path / "params.bin", image)
    back = read_parameter_image(path, expected_design_id=0x1234_5678)
    assert back.design_id == image.design_id
    assert [a for a, _ in back.segments] == [16384 - 2500, 32768, 7]
    for (_, got), (_, want) in zip(back.segments, image.segments):
        np.testing.assert_array_equal(got, want)
    assert [p.name for p in tmp_path.iterdir()] == ["params.bin"]     # no temporary left


def test_design_id_is_the_sha256_prefix():
    # sha256(b"abc") = ba7816bf 8f01cfea ...
    assert design_id(b"abc") == 0xBF1678BA


def corrupt(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1:]


GOOD = random_image(2, 64).to_bytes()


def image_with_payload(words: list[int]) -> bytes:
    """A well-formed header and checksum around any payload words (malformed segments)."""
    payload = struct.pack(f"<{len(words)}H", *words)
    head = b"BVPI" + struct.pack("<HHII", 1, 0, 0x1234_5678, len(words))
    return head + struct.pack("<I", bitwise_crc32_mpeg2(head + payload)) + payload


@pytest.mark.parametrize("data, message", [
    (GOOD[:10], r"truncated: 10 bytes, shorter than the 20-byte header"),
    (b"\xff" * 200, r"not a binaryvit parameter image \(magic b'\\xff\\xff\\xff\\xff'"),
    (corrupt(GOOD, 4, 2), r"format version 2, this binaryvit reads version 1"),
    (corrupt(GOOD, 6, 1), r"reserved header field is 0x0001"),
    (GOOD[:-2], r"truncated: the header announces 76 words \(152 bytes\), the payload has 150 bytes"),
    (GOOD + b"\0\0", r"2 bytes after the 76-word payload"),
    (image_with_payload([0, 0, 5, 0, 1, 2]), r"segment 0 has 5 words, the payload only 2 more"),
    (image_with_payload([0, 0, 1, 0, 1, 0, 0]), r"segment 1's header runs past the end of the payload"),
    (image_with_payload([0, 0, 2, 0, 1, 2, 1, 0, 1, 0, 3]), r"segments 0 and 1 overlap"),
    (corrupt(GOOD, 40, GOOD[40] ^ 0x10), r"checksum 0x[0-9a-f]{8} does not match the header's"),
    (corrupt(GOOD, 9, GOOD[9] ^ 1), r"checksum .* does not match"),    # the design id is covered
])
def test_damaged_images_are_refused_in_one_line(data, message):
    with pytest.raises(ParameterImageError, match=message) as info:
        ParameterImage.from_bytes(data, name="params.bin")
    assert "\n" not in str(info.value) and str(info.value).startswith("params.bin: ")


def test_an_image_for_another_design_is_refused():
    with pytest.raises(ParameterImageError, match="belongs to design 0x12345678, not to this "
                                                  "bitstream's design 0x9abcdef0"):
        ParameterImage.from_bytes(GOOD, expected_design_id=0x9ABCDEF0)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ParameterImageError, match="cannot read parameter image .*missing.bin"):
        read_parameter_image(tmp_path / "missing.bin")


@pytest.mark.parametrize("words", [[-1], [1 << 16], [0.5], [[1, 2]]])
def test_words_must_be_16_bit_patterns(words):
    with pytest.raises(ParameterImageError, match="segment 0 words"):
        ParameterImage(0, [(0, words)])


@pytest.mark.parametrize("segments, message", [
    ([(1 << 32, [1])], "segment 0 address"), ([[0, [1]]], r"expected \(address, words\)"),
    ([(0, [1, 2]), (1, [3])], "segments 0 and 1 overlap"),
])
def test_segments_are_checked(segments, message):
    with pytest.raises(ParameterImageError, match=message):
        ParameterImage(0, segments)


def test_design_id_must_be_32_bit():
    with pytest.raises(ParameterImageError, match="design_id"):
        ParameterImage(1 << 32, [])
