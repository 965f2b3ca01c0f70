"""Classify one image on a programmed board over its UART (protocol in docs/boards.md).

IMAGE is `digits:N` (image N of the embedded digits' test split), a .npy array of raw
integer pixels ([H, W] or [C, H, W]), or a grayscale PNG (0…255 pixels). The board's info
block says in which order it reads the pixels: the layer-sequential engine pixel by pixel in
raster order, each pixel's channels together ([H, W, C]); the generated dataflow network
in its patches' order (patches in raster order, as OUT/rtl/network.json records, so that
needs --out). The board answers with the class and the logits.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from binaryvit.errors import DataError, OutputPathError
from binaryvit.host import DesignInfo, SerialPort, classify, load_parameters, query_info

NAME = "run"
HELP = "send an image to a programmed board over its UART, print class and logits"
ORDER = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="digits:N, a .npy array or a PNG")
    parser.add_argument("--port", required=True, metavar="DEV",
                        help="serial device of the board (e.g. /dev/ttyUSB1)")
    parser.add_argument("--out", default="out", metavar="OUT",
                        help="output folder the bitstream was built from, for the dataflow "
                             "network's patch order (default out/)")
    parser.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    parser.add_argument("--load", default=None, metavar="PARAMS",
                        help="first send this parameter image (engine boards built with "
                             "--uart-load; checked here against nothing, on the board "
                             "against its design id and CRC)")


def load_image(spec: str) -> tuple[np.ndarray, int | None]:
    """``[C, H, W]`` int64 pixels and the label when known."""
    if spec.startswith("digits:"):
        from binaryvit.golden.train.data import load_dataset
        data = load_dataset(None)
        try:
            index = int(spec.split(":", 1)[1])
        except ValueError:
            raise DataError(f"IMAGE {spec!r}: expected digits:N with an integer N") from None
        if not 0 <= index < len(data.test_images):
            raise DataError(f"IMAGE {spec!r}: the digits test split has images 0…"
                            f"{len(data.test_images) - 1}")
        image = np.asarray(data.test_images[index])
        label = int(data.test_labels[index])
    else:
        path = Path(spec)
        if not path.is_file():
            raise DataError(f"IMAGE {spec}: no such file")
        if path.suffix == ".npy":
            image, label = np.load(path, allow_pickle=False), None
        elif path.suffix.lower() == ".png":
            import matplotlib.image
            pixels = matplotlib.image.imread(path)
            gray = pixels[..., :3].mean(axis=-1) if pixels.ndim == 3 else pixels
            image = np.rint(gray * 255 if gray.dtype.kind == "f" else gray)
            label = None
        else:
            raise DataError(f"IMAGE {spec}: expected digits:N, .npy or .png")
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or not np.all(image == np.rint(image)):
        raise DataError(f"IMAGE {spec}: expected integer pixels of shape [H, W] or [C, H, W], "
                        f"got shape {list(image.shape)}")
    return image.astype(np.int64), label


def stream_order(image: np.ndarray, out: Path) -> list[int]:
    """The pixels in the order OUT's network reads them (patches in raster order; inside a
    patch channel, then row, then column)."""
    description_path = out / "rtl" / "network.json"
    if not description_path.is_file():
        raise OutputPathError(f"{description_path} not found: the pixel order comes from the "
                              f"generated network (`binaryvit generate {out}`); pass --out")
    size = int(json.loads(description_path.read_text())["patch_size"])
    c, h, w = image.shape
    if h % size or w % size:
        raise DataError(f"a {h}×{w} image does not split into {size}×{size} patches")
    from binaryvit.golden.intref.int_network import unfold_patches
    return unfold_patches(torch.as_tensor(image)[None], size).reshape(-1).tolist()


def board_order(image: np.ndarray, info: DesignInfo, out: Path) -> list[int]:
    """The pixels in the order the board's info block announces."""
    if info.pixel_order == "hwc":
        return image.transpose(1, 2, 0).reshape(-1).tolist()
    return stream_order(image, out)


def run(args: argparse.Namespace) -> int:
    image, label = load_image(args.image)
    parameters = None
    if args.load is not None:
        try:
            parameters = Path(args.load).read_bytes()
        except OSError as exc:
            raise DataError(f"--load {args.load}: {exc.strerror}") from None
    with SerialPort(args.port, args.baud) as port:
        if parameters is not None:
            load_parameters(port, parameters, timeout=max(args.timeout, 30.0))
            print(f"loaded {args.load} ({len(parameters)} bytes)")
        info = query_info(port, timeout=args.timeout)
        pixels = board_order(image, info, Path(args.out))
        result = classify(port, pixels, info, timeout=args.timeout)
    known = f" (label {label})" if label is not None else ""
    print(f"class {result.label}{known}")
    print("logits " + " ".join(str(v) for v in result.logits))
    return 0
