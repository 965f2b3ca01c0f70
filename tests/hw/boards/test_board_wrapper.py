"""UARTBoardWrapper's construction checks and its info block (the protocol itself is
tested at the UART bit level in tests/sim/test_uart_cocotb.py)."""
import pytest
import torch
from amaranth.hdl import unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit import host
from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.boards.board_wrapper import UARTBoardWrapper, stream_format
from binaryvit.hw.kernels.mac import StemUnit
from binaryvit.hw.kernels.mvu import XnorPopcountMVU


def stem(pe=2, simd=4, out_width=12):
    return StemUnit(weights=torch.ones(10, 64, dtype=torch.int64), bias=torch.zeros(10, dtype=torch.int64),
                    shift=0, out_width=out_width, pe=pe, simd=simd)


def test_formats_come_from_the_accelerator_ports():
    fmt_in, fmt_out = stream_format(stem(), "i"), stream_format(stem(), "o")
    assert (fmt_in.width, fmt_in.lanes, fmt_in.signed) == (5, 4, False)
    assert (fmt_out.width, fmt_out.lanes, fmt_out.signed) == (12, 2, True)
    mvu = XnorPopcountMVU(16, 4, 2, 8, torch.ones(4, 16, dtype=torch.bool))
    assert stream_format(mvu, "i").width == 8 and stream_format(mvu, "i").lanes == 1


def test_info_block_describes_the_wrapped_design():
    wrapper = UARTBoardWrapper(stem(), pixels=64, num_logits=10, divisor=104)
    assert wrapper.info == host.DesignInfo(pixels=64, num_logits=10, logit_bytes=2,
                                           pixel_width=5, pixel_signed=False, logit_signed=True)
    assert wrapper.info.request_length == 66 and wrapper.info.response_length == 24


@pytest.mark.parametrize("kwargs, message", [
    (dict(pixels=62, num_logits=10), "not a multiple of the accelerator's 4 input lanes"),
    (dict(pixels=64, num_logits=9), "not a multiple of the accelerator's 2 output lanes"),
    (dict(pixels=64, num_logits=256), r"num_logits: expected an integer in \[1, 255\]"),
    (dict(pixels=0, num_logits=10), r"pixels: expected an integer in \[1, 65535\]"),
])
def test_bad_sizes_are_refused_by_name(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        UARTBoardWrapper(stem(), divisor=104, **kwargs)


def test_accelerators_the_protocol_cannot_carry_are_refused():
    wide_input = XnorPopcountMVU(32, 4, 2, 16, torch.ones(4, 32, dtype=torch.bool))
    with pytest.raises(ConfigError, match="input elements are 16 bits"):
        UARTBoardWrapper(wide_input, pixels=2, num_logits=4, divisor=104)

    class NoStreams(wiring.Component):
        a: In(stream.Signature(unsigned(8)))
        b: Out(1)

    with pytest.raises(ConfigError, match="no stream port 'i'"):
        UARTBoardWrapper(NoStreams(), pixels=1, num_logits=1, divisor=104)
    with pytest.raises(ConfigError, match="divisor"):
        UARTBoardWrapper(stem(), pixels=64, num_logits=10, divisor=2)


def test_a_bad_fold_still_fails_in_the_kernel_first():
    with pytest.raises(FoldingError):
        stem(simd=3)
