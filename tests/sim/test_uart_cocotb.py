"""The board wrapper's UART protocol at the bit level, in cocotb against its generated Verilog.

The accelerator is a real kernel: a StemUnit taking a whole 8×8 digit as one 64-pixel token
(5-bit unsigned pixels) to 10 signed logits, i.e. a linear classifier over pixels. Its
expected logits come from the integer reference (``StemUnit.model`` → ``intref.fixed_mac``),
the expected class from ``torch.argmax`` (first maximum), and frames are checked by the
host's own decoder, so the RTL, the host code and the reference must all agree.
"""
import json

import pytest
import torch
from sklearn.datasets import load_digits

from binaryvit import host
from binaryvit.hw.boards.board_wrapper import UARTBoardWrapper
from binaryvit.hw.boards.verilog_accelerator import load_generated_accelerator
from binaryvit.hw.kernels.mac import StemUnit
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.uart_bits_test import run_uart_exchange

DIVISOR = 6
PIXELS, CLASSES = 64, 10


def linear_classifier() -> StemUnit:
    g = torch.Generator().manual_seed(11)
    weights = torch.randint(-8, 8, (CLASSES, PIXELS), generator=g)
    bias = torch.randint(-200, 200, (CLASSES,), generator=g)
    return StemUnit(weights=weights, bias=bias, shift=2, out_width=12, pe=2, simd=4)


def wrapper() -> UARTBoardWrapper:
    return UARTBoardWrapper(linear_classifier(), pixels=PIXELS, num_logits=CLASSES,
                            divisor=DIVISOR)


def expected(stem: StemUnit, image: torch.Tensor) -> host.Classification:
    logits = stem.model(image.reshape(1, PIXELS))[0]
    return host.Classification(label=int(torch.argmax(logits)), logits=logits.tolist())


def digits(count: int) -> torch.Tensor:
    return torch.tensor(load_digits().images[:count], dtype=torch.int64).reshape(count, PIXELS)


def test_digits_classified_over_the_uart_pins_match_the_integer_reference():
    dut = wrapper()
    info = dut.info
    images = list(digits(2))
    images.append(torch.zeros(PIXELS, dtype=torch.int64))
    images.append(torch.full((PIXELS,), 31, dtype=torch.int64))     # maximal 5-bit pixels
    requests = [bytes([host.COMMAND_INFO])] + [host.encode_request(im.tolist(), info) for im in images]
    lengths = [host.DesignInfo.INFO_LENGTH] + [info.response_length] * len(images)
    answers = run_uart_exchange(dut, "uart_wrapper_stem", requests, lengths, divisor=DIVISOR,
                                host_skew=0.015, seed=3)
    assert host.DesignInfo.decode(answers[0]) == info
    for image, answer in zip(images, answers[1:]):
        assert host.decode_response(answer, info) == expected(dut.accelerator, image)


def test_tied_logits_give_the_first_class_like_torch_argmax():
    g = torch.Generator().manual_seed(12)
    weights = torch.randint(-8, 8, (CLASSES, PIXELS), generator=g)
    bias = torch.randint(-200, 200, (CLASSES,), generator=g)
    weights[7] = weights[3] = weights[3].abs()      # rows 3 and 7 equal and large: always tied
    bias[7] = bias[3] = 1000
    stem = StemUnit(weights=weights, bias=bias, shift=2, out_width=14, pe=5, simd=8)
    dut = UARTBoardWrapper(stem, pixels=PIXELS, num_logits=CLASSES, divisor=DIVISOR)
    image = digits(1)[0]
    answer = run_uart_exchange(dut, "uart_wrapper_tie", [host.encode_request(image.tolist(), dut.info)],
                               [dut.info.response_length], divisor=DIVISOR, seed=8)[0]
    result = host.decode_response(answer, dut.info)
    assert result.logits[3] == result.logits[7] == max(result.logits)
    assert result == expected(stem, image) and result.label == 3


def test_bad_checksum_and_out_of_range_pixels_are_refused_with_status_bits():
    dut = wrapper()
    info = dut.info
    image = digits(1)[0].tolist()
    good = host.encode_request(image, info)
    bad_checksum = good[:-1] + bytes([(good[-1] + 1) & 0xFF])
    too_bright = bytearray(good)
    too_bright[5] = 32                     # 32 does not fit 5 unsigned bits
    too_bright[-1] = host.checksum(too_bright[1:-1])
    # a stray byte before a command is ignored; the later good request still works
    requests = [bad_checksum, bytes(too_bright), b"\x00" + good]
    answers = run_uart_exchange(dut, "uart_wrapper_stem", requests, [info.response_length] * 3,
                                divisor=DIVISOR, host_skew=-0.015, gap_prob=0.0, seed=4)
    assert answers[0][1] == host.STATUS_CHECKSUM
    assert answers[1][1] == host.STATUS_PIXEL_RANGE
    for answer in answers[:2]:
        assert host.checksum(answer[1:-1]) == answer[-1]
        with pytest.raises(Exception, match="refused"):
            host.decode_response(answer, info)
    assert host.decode_response(answers[2], info) == expected(dut.accelerator, torch.tensor(image))


def test_a_generated_network_behind_its_verilog_instance_answers_over_the_uart(tmp_path):
    """The `binaryvit build` path: OUT/rtl/<top>.v + network.json become a VerilogAccelerator
    (an Instance of the file's module); here the module is the linear classifier's Verilog."""
    stem = linear_classifier()
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "binaryvit_top.v").write_text(to_verilog(stem, "binaryvit_top"))
    (rtl / "network.json").write_text(json.dumps({
        "top": "binaryvit_top", "verilog": "binaryvit_top.v", "pixel_width": 5,
        "input_lanes": 4, "logit_width": 12, "logit_lanes": 2, "classes": CLASSES,
        "pixels": PIXELS}))
    accelerator, description = load_generated_accelerator(tmp_path)
    dut = UARTBoardWrapper(accelerator, pixels=description["pixels"], num_logits=CLASSES,
                           divisor=DIVISOR)
    image = digits(3)[2]
    answers = run_uart_exchange(dut, "uart_wrapper_instance", [host.encode_request(image.tolist(), dut.info)],
                                [dut.info.response_length], divisor=DIVISOR, seed=6,
                                extra_sources={"binaryvit_top.v": (rtl / "binaryvit_top.v").read_text()})
    assert host.decode_response(answers[0], dut.info) == expected(stem, image)
