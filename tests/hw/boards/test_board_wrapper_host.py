"""`binaryvit run` and binaryvit.host over a real tty: a pseudo-terminal whose other end
plays the board (answering with the protocol bytes of docs/boards.md).

The fake board's logits are a hand-chosen function of the bytes it received, so the test
checks the pixel order on the wire (hand-derived patch order), the framing and the decoding.
"""
import json
import os
import threading

import numpy as np
import pytest

from binaryvit import host
from binaryvit.cli import main
from binaryvit.errors import DataError, ToolError

INFO = host.DesignInfo(pixels=16, num_logits=3, logit_bytes=2, pixel_width=5,
                       pixel_signed=False, logit_signed=True)


def read_exactly(fd, count):
    data = b""
    while len(data) < count:
        data += os.read(fd, count - len(data))
    return data


def fake_board(master, received, corrupt=False, info=INFO, status=0):
    assert read_exactly(master, 1) == bytes([host.COMMAND_INFO])
    os.write(master, info.encode())
    request = read_exactly(master, info.request_length)
    received.append(request)
    pixels = list(request[1:-1])
    # logits: first pixel, minus the second, and -300 (two's complement on the wire)
    logits = [pixels[0], -pixels[1], -300]
    label = 3 if status else max(range(3), key=lambda k: logits[k])   # 3: DESIGN_MISMATCH
    body = bytes([status, label]) + b"".join(
        v.to_bytes(2, "little", signed=True) for v in logits)
    frame = bytes([host.RESPONSE_SYNC]) + body + bytes([host.checksum(body)])
    if corrupt:   # one bit flipped on the line after the board computed its checksum
        frame = frame[:4] + bytes([frame[4] ^ 1]) + frame[5:]
    os.write(master, frame)


@pytest.fixture
def board_out(tmp_path):
    out = tmp_path / "out"
    (out / "rtl").mkdir(parents=True)
    (out / "rtl" / "network.json").write_text(json.dumps({"patch_size": 2}))
    image = tmp_path / "image.npy"
    np.save(image, np.arange(16).reshape(4, 4))
    return out, image


def test_run_sends_pixels_in_patch_order_and_prints_class_and_logits(board_out, capsys):
    out, image = board_out
    master, slave = os.openpty()
    received = []
    board = threading.Thread(target=fake_board, args=(master, received))
    board.start()
    try:
        code = main(["run", str(image), "--port", os.ttyname(slave), "--out", str(out),
                     "--timeout", "5"])
    finally:
        board.join(10)
        os.close(master)
        os.close(slave)
    assert code == 0
    # 4×4 image 0..15 in 2×2 patches, raster order: rows (0,1) cols (0,1), then cols (2,3)…
    patch_order = [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    assert received[0] == bytes([host.COMMAND_CLASSIFY]
                                + patch_order + [sum(patch_order) & 0xFF])
    assert capsys.readouterr().out == "class 0\nlogits 0 -1 -300\n"


def test_a_corrupted_answer_is_reported_not_decoded(board_out, capsys):
    out, image = board_out
    master, slave = os.openpty()
    board = threading.Thread(target=fake_board, args=(master, [], True))
    board.start()
    try:
        code = main(["run", str(image), "--port", os.ttyname(slave), "--out", str(out)])
    finally:
        board.join(10)
        os.close(master)
        os.close(slave)
    assert code == 2
    assert "checksum" in capsys.readouterr().err


def test_a_silent_port_times_out_with_a_hint(board_out):
    master, slave = os.openpty()
    try:
        with host.SerialPort(os.ttyname(slave)) as port:
            with pytest.raises(ToolError, match="timed out .* got 0.*programmed"):
                host.query_info(port, timeout=0.2)
    finally:
        os.close(master)
        os.close(slave)


def test_pixels_outside_the_input_element_are_refused_before_sending():
    with pytest.raises(DataError, match="pixel 3 = 32 is outside the input range"):
        host.encode_request([0, 1, 2, 32] + [0] * 12, INFO)
    with pytest.raises(DataError, match="15 pixels, the design expects 16"):
        host.encode_request([0] * 15, INFO)


def test_a_non_tty_and_a_missing_port_are_clear_errors(tmp_path):
    plain = tmp_path / "file"
    plain.write_text("")
    with pytest.raises(ToolError, match="not a serial port"):
        host.SerialPort(plain)
    with pytest.raises(ToolError, match="cannot open serial port"):
        host.SerialPort(tmp_path / "ttyNONE")


def test_info_block_round_trips_and_rejects_damage():
    block = INFO.encode()
    assert host.DesignInfo.decode(block) == INFO
    with pytest.raises(DataError, match="checksum"):
        host.DesignInfo.decode(block[:-1] + bytes([block[-1] ^ 0x40]))


ENGINE_INFO = host.DesignInfo(pixels=16, num_logits=3, logit_bytes=2, pixel_width=5,
                              pixel_signed=False, logit_signed=True, pixel_order="hwc")


def _run_against(board_args, argv):
    master, slave = os.openpty()
    board = threading.Thread(target=fake_board, args=(master, *board_args))
    board.start()
    try:
        return main(argv + ["--port", os.ttyname(slave), "--timeout", "5"])
    finally:
        board.join(10)
        os.close(master)
        os.close(slave)


def test_run_sends_hwc_order_to_an_engine_board_without_any_out_folder(tmp_path, capsys):
    image = tmp_path / "image.npy"
    # [C=2, H=2, W=4]: channel 0 holds 0..7, channel 1 holds 10..17
    np.save(image, np.stack([np.arange(8).reshape(2, 4), 10 + np.arange(8).reshape(2, 4)]))
    received = []
    code = _run_against((received, False, ENGINE_INFO),
                        ["run", str(image), "--out", str(tmp_path / "none")])
    assert code == 0
    hwc = [0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15, 6, 16, 7, 17]
    assert received[0] == bytes([host.COMMAND_CLASSIFY] + hwc + [sum(hwc) & 0xFF])
    assert capsys.readouterr().out == "class 0\nlogits 0 -10 -300\n"


def test_a_board_that_refused_its_parameter_image_is_reported_by_name(tmp_path, capsys):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((4, 4), dtype=np.int64))
    code = _run_against(([], False, ENGINE_INFO, host.STATUS_PARAMETERS), ["run", str(image)])
    assert code == 2
    err = capsys.readouterr().err
    assert "refused its parameter image (DESIGN_MISMATCH)" in err
    assert len(err.strip().splitlines()) == 1


def test_the_pixel_order_flag_round_trips():
    assert host.DesignInfo.decode(ENGINE_INFO.encode()) == ENGINE_INFO
    assert ENGINE_INFO.encode()[8] == 0b110 and INFO.encode()[8] == 0b010


def test_run_load_sends_the_parameter_image_first_and_reports_a_refusal(tmp_path, capsys):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((4, 4), dtype=np.int64))
    params = tmp_path / "params.bin"
    params.write_bytes(bytes(range(7)))
    master, slave = os.openpty()

    def board():
        request = read_exactly(master, 1 + 4 + 7)
        assert request == bytes([host.COMMAND_LOAD, 7, 0, 0, 0]) + bytes(range(7))
        os.write(master, bytes([host.RESPONSE_SYNC, host.STATUS_PARAMETERS, 3, 11]))

    thread = threading.Thread(target=board)
    thread.start()
    try:
        code = main(["run", str(image), "--port", os.ttyname(slave), "--load", str(params)])
    finally:
        thread.join(10)
        os.close(master)
        os.close(slave)
    assert code == 2
    err = capsys.readouterr().err
    assert "refused its parameter image (DESIGN_MISMATCH)" in err and len(err.strip().splitlines()) == 1
