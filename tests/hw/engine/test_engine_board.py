"""The engine board top in Verilator, pins only: the parameter image from a SPI-flash model,
images over the UART pins with random gaps, class and logits back — equal to int_network's;
and an image for another design (or an erased flash) refused with its loader code.

The expected logits come from ``run_int_network`` (never from the engine), the class from
``torch.argmax`` (first maximum), and every frame is decoded by the host's own decoder."""
import pytest
import torch

from binaryvit import host
from binaryvit.errors import DataError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.hw.engine.board.board_top import EngineBoard
from binaryvit.hw.engine.board.design import engine_design, parameter_image_for
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET
from binaryvit.hw.engine.loader_receiver import LoaderError
from binaryvit.hw.engine.parameter_image import ParameterImage
from binaryvit.hw.engine.spram import spram_cell_verilog
from binaryvit.quantize.quantizer import quantize_model
from binaryvit.sim.uart_bits_test import run_uart_exchange
from engine_models import ENGINE_FORMATS, engine_quantized
from network_models import digit_images

DIVISOR = 8
HALF_PERIOD = 1
WAKE = 4


def _design(q):
    program = compile_intmodel(q.intmodel, proof=q.proof)
    c = q.intmodel.config
    return program, engine_design(program, q.intmodel.input_range, (c.in_channels, *c.image_size))


def _board(q):
    program, design = _design(q)
    board = EngineBoard(design, divisor=DIVISOR, half_period=HALF_PERIOD, wake_cycles=WAKE)
    return program, design, board


def _exchange(board, name, requests, lengths, flash_bytes, program, seed):
    load_cycles = 16 * HALF_PERIOD * (len(flash_bytes) + 8) + 1000
    # the sequential core runs about 60x the cycle model (docs/engine-rtl.md); leave room
    compute = load_cycles + 100 * program.total_cycles
    return run_uart_exchange(board, name, requests, lengths, divisor=DIVISOR,
                             simulator="verilator", seed=seed, gap_prob=0.3, host_skew=0.01,
                             compute_cycles=compute,
                             extra_sources={"sb_spram256ka.v": spram_cell_verilog()},
                             flash=(DEFAULT_FLASH_OFFSET, flash_bytes),
                             flash_wake_cycles=WAKE)


def _classify(q, images, seed):
    program, design, board = _board(q)
    image = parameter_image_for(program, design).to_bytes()
    info = board.info
    assert info == host.DesignInfo(pixels=design.pixels, num_logits=design.classes,
                                   logit_bytes=4, pixel_width=5, pixel_signed=False,
                                   logit_signed=True, pixel_order="hwc")
    requests = [bytes([host.COMMAND_INFO])]
    requests += [host.encode_request(im.permute(1, 2, 0).reshape(-1).tolist(), info)
                 for im in images]
    lengths = [host.DesignInfo.INFO_LENGTH] + [info.response_length] * len(images)
    answers = _exchange(board, "engine_board", requests, lengths, image, program, seed)
    assert host.DesignInfo.decode(answers[0]) == info
    want = run_int_network(q.intmodel, images).logits
    for k, answer in enumerate(answers[1:]):
        got = host.decode_response(answer, info)
        assert got.logits == want[k].tolist(), f"image {k}"
        assert got.label == int(torch.argmax(want[k]))


def test_micro_engine_board_loads_from_flash_and_classifies_over_the_uart():
    q = engine_quantized("micro")
    lo, hi = q.intmodel.input_range
    images = torch.cat([digit_images(2), torch.full((1, 1, 8, 8), lo),
                        torch.full((1, 1, 8, 8), hi)])
    _classify(q, images, seed=1)


@pytest.mark.slow
def test_trained_tiny_digits_engine_board_on_test_digits(trained_checkpoint):
    model = load_checkpoint(trained_checkpoint).build_model()
    data = load_digits_dataset()
    q = quantize_model(model, data.train_images[:64], ENGINE_FORMATS)
    _classify(q, torch.as_tensor(data.test_images[:3]).to(torch.int64), seed=2)


@pytest.mark.parametrize("flash, code", [
    ("other design", LoaderError.DESIGN_MISMATCH),
    ("erased", LoaderError.BAD_MAGIC),
])
def test_a_parameter_image_the_bitstream_does_not_accept_is_refused_and_reported(flash, code):
    q = engine_quantized("micro")
    program, design, board = _board(q)
    if flash == "erased":
        data = b""
    else:
        right = parameter_image_for(program, design)
        data = ParameterImage(design.design_id ^ 1, right.segments).to_bytes()
    info = board.info
    request = host.encode_request(digit_images(1)[0].permute(1, 2, 0).reshape(-1).tolist(), info)
    answers = _exchange(board, "engine_board", [request, bytes([host.COMMAND_INFO])],
                        [info.response_length, host.DesignInfo.INFO_LENGTH], data, program, seed=3)
    frame = answers[0]
    assert frame[1] == host.STATUS_PARAMETERS and frame[2] == code
    with pytest.raises(DataError, match=f"refused its parameter image \\({code.name}\\)"):
        host.decode_response(frame, info)
    assert host.DesignInfo.decode(answers[1]) == info     # the board still answers


@pytest.mark.slow
def test_ulx3s_engine_board_starts_with_its_parameters_in_block_ram():
    """The ECP5 variant: no loader, the memories initialised with the parameter image (as
    the bitstream's block RAM would be); the board answers at once."""
    q = engine_quantized("micro")
    program, design = _design(q)
    image = parameter_image_for(program, design)
    board = EngineBoard(design, divisor=DIVISOR, boot="preloaded", memory="model",
                        init=image.memory(design.config.total_words))
    info = board.info
    images = digit_images(2)
    requests = [host.encode_request(im.permute(1, 2, 0).reshape(-1).tolist(), info)
                for im in images]
    answers = run_uart_exchange(board, "engine_board_preloaded", requests,
                                [info.response_length] * len(images), divisor=DIVISOR,
                                simulator="verilator", seed=4,
                                compute_cycles=100 * program.total_cycles)
    want = run_int_network(q.intmodel, images).logits
    assert [host.decode_response(a, info).logits for a in answers] == want.tolist()


@pytest.mark.slow
def test_parameters_loaded_over_the_uart_replace_a_refused_flash_image():
    """The optional UART load path: the flash holds another design's image (refused at
    boot); the right image sent with COMMAND_LOAD is accepted and the board classifies; an
    image for another design, then a truncated one, are refused with their codes, and from
    then on every classify request is answered with the refusal."""
    q = engine_quantized("micro")
    program, design = _design(q)
    board = EngineBoard(design, divisor=DIVISOR, half_period=HALF_PERIOD, wake_cycles=WAKE,
                        uart_load=True)
    right = parameter_image_for(program, design)
    other = ParameterImage(design.design_id ^ 1, right.segments).to_bytes()
    info = board.info
    image = digit_images(1)[0]
    classify = host.encode_request(image.permute(1, 2, 0).reshape(-1).tolist(), info)
    requests = [classify, host.encode_load(right.to_bytes()), classify,
                host.encode_load(other[:40]), classify, host.encode_load(right.to_bytes()[:100])]
    lengths = [info.response_length, host.LOAD_ANSWER_LENGTH, info.response_length,
               host.LOAD_ANSWER_LENGTH, info.response_length, host.LOAD_ANSWER_LENGTH]
    answers = _exchange(board, "engine_board_uart_load", requests, lengths, other, program, seed=5)
    assert answers[0][1:3] == bytes([host.STATUS_PARAMETERS, LoaderError.DESIGN_MISMATCH])
    host.decode_load_answer(answers[1])                                  # accepted
    want = run_int_network(q.intmodel, image[None]).logits[0].tolist()
    assert host.decode_response(answers[2], info).logits == want
    with pytest.raises(DataError, match="DESIGN_MISMATCH"):
        host.decode_load_answer(answers[3])
    assert answers[4][1:3] == bytes([host.STATUS_PARAMETERS, LoaderError.DESIGN_MISMATCH])
    with pytest.raises(DataError, match="BAD_CHECKSUM"):
        host.decode_load_answer(answers[5])
