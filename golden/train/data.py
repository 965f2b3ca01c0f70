"""Image classification data: the embedded digits, a user's ``.npz``, or an image folder.

Every source becomes an :class:`ImageDataset` of **raw pixel values** (float32
``[N, C, H, W]``, no normalisation: the model normalises itself) and int64 labels, split
into train and test sets.

``.npz`` format
    ``images``: numeric array ``[N, H, W]`` (grayscale) or ``[N, C, H, W]``;
    ``labels``: integer array ``[N]`` with values ``0 .. K-1``. Optionally ``test_images``
    and ``test_labels`` of the same form; without them the data is split 80/20, stratified,
    with ``random_state=0``.
Image folder
    One sub-folder per class (classes in sorted name order), each holding image files
    (``.png .jpg .jpeg .bmp .gif .pgm .tif .tiff``) of one common size; read as 8-bit
    grayscale (1 channel) or RGB (3 channels), raw values 0..255, and split 80/20 as above.
    The channel count is the model config's when the caller knows it, else RGB if any image
    has colour (a mode other than grayscale), grayscale otherwise.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from binaryvit.errors import DataError

TEST_FRACTION = 0.2
SPLIT_SEED = 0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".tif", ".tiff"}


@dataclass
class ImageDataset:
    """Train and test images (raw pixels, ``[N, C, H, W]`` float32) with int64 labels."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])


def _as_images(array: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise DataError(f"{what} must have shape [N, H, W] or [N, C, H, W], "
                        f"got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise DataError(f"{what} contains NaN or infinite values")
    return array.astype(np.float32)


def _as_labels(array: np.ndarray, count: int, what: str, images_what: str) -> np.ndarray:
    if array.ndim != 1:
        raise DataError(f"{what} must be one-dimensional [N], got shape {list(array.shape)}")
    if len(array) != count:
        raise DataError(f"{what} has {len(array)} entries but {images_what} has {count} images")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)):
            raise DataError(f"{what} must be integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if count and array.min() < 0:
        raise DataError(f"{what} must be >= 0, got {array.min()}")
    return array


def stratified_split(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """The fixed 80/20 stratified split (``random_state=0``): train_x, train_y, test_x, test_y."""
    from sklearn.model_selection import train_test_split
    counts = np.bincount(labels)
    if np.any(counts[counts > 0] < 2):
        rare = int(np.flatnonzero((counts > 0) & (counts < 2))[0])
        raise DataError(f"class {rare} has a single image: a stratified 80/20 split needs "
                        f"at least 2 per class")
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    return train_x, train_y, test_x, test_y


def _make_dataset(train_x, train_y, test_x, test_y, source: str) -> ImageDataset:
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"train images {list(train_x.shape[1:])} and test images "
                        f"{list(test_x.shape[1:])} differ in shape")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    if num_classes < 2:
        raise DataError(f"{source}: needs at least 2 classes, found {num_classes}")
    return ImageDataset(torch.from_numpy(np.ascontiguousarray(train_x)), torch.from_numpy(train_y),
                        torch.from_numpy(np.ascontiguousarray(test_x)), torch.from_numpy(test_y),
                        num_classes, source)


def load_digits_dataset() -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (pixels 0..16): 1437 train / 360 test images."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)
    return _make_dataset(*stratified_split(images, labels), source="digits")


def validation_dataset(data: ImageDataset) -> ImageDataset:
    """``data``'s training split divided again by :func:`stratified_split` (80/20, the same
    fixed seed): its larger part to train on, its smaller part in the test slot as the
    validation set. The test split is not used, so recipes chosen on it stay honest.
    Digits: 1149 train / 288 validation."""
    train_x, train_y, val_x, val_y = stratified_split(data.train_images.numpy(),
                                                      data.train_labels.numpy())
    return _make_dataset(train_x, train_y, val_x, val_y, source=f"{data.source} (validation)")


def load_npz_dataset(path: Path) -> ImageDataset:
    """A ``.npz`` holding ``images`` and ``labels`` (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read {path} as an .npz archive: {exc}") from None
    for key in ("images", "labels"):
        if key not in arrays:
            raise DataError(f"{path} lacks the array {key!r} (has: "
                            f"{', '.join(sorted(arrays)) or 'nothing'})")
    images = _as_images(arrays["images"], f"{path.name}: images")
    labels = _as_labels(arrays["labels"], len(images), f"{path.name}: labels", "images")
    if ("test_images" in arrays) != ("test_labels" in arrays):
        raise DataError(f"{path} must hold both test_images and test_labels, or neither")
    if "test_images" in arrays:
        test_x = _as_images(arrays["test_images"], f"{path.name}: test_images")
        test_y = _as_labels(arrays["test_labels"], len(test_x), f"{path.name}: test_labels",
                            "test_images")
        return _make_dataset(images, labels, test_x, test_y, source=str(path))
    return _make_dataset(*stratified_split(images, labels), source=str(path))


GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _read_image(file: Path, channels: int) -> np.ndarray:
    """``[C, H, W]`` float32 pixels 0..255, ``channels`` 1 (grayscale) or 3 (RGB)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"),
                                dtype=np.float32)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {file}: {exc}") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def load_image_folder_dataset(path: Path, channels: int | None = None) -> ImageDataset:
    """Grayscale or RGB images in one sub-folder per class (see the module docstring)."""
    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path}: an image folder needs one sub-folder per class, "
                        f"at least 2; found {len(classes)}")
    files, labels = [], []
    for index, folder in enumerate(classes):
        found = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"class folder {folder} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        labels += [index] * len(found)
    if channels is None:
        from PIL import Image
        colour = False
        for file in files:
            try:
                with Image.open(file) as image:
                    colour = image.mode not in GRAYSCALE_MODES
            except OSError:
                break   # _read_image names the unreadable file below
            if colour:
                break
        channels = 3 if colour else 1
    if channels not in (1, 3):
        raise DataError(f"{path}: an image folder gives 1 (grayscale) or 3 (RGB) channels; "
                        f"the config needs {channels}")
    images = []
    for file in files:
        pixels = _read_image(file, channels)
        if images and pixels.shape != images[0].shape:
            raise DataError(f"image {file} is {pixels.shape[2]}x{pixels.shape[1]}, the "
                            f"others are {images[0].shape[2]}x{images[0].shape[1]}")
        images.append(pixels)
    return _make_dataset(*stratified_split(np.stack(images), np.array(labels, dtype=np.int64)),
                         source=str(path))


def load_dataset(path: str | Path | None, channels: int | None = None) -> ImageDataset:
    """``None``: the embedded digits; a ``.npz`` file; or an image folder, read with
    ``channels`` (1 or 3; None: detected) when the model's channel count is known."""
    if path is None:
        return load_digits_dataset()
    path = Path(path)
    if not path.exists():
        raise DataError(f"data set {path} not found")
    if path.is_dir():
        return load_image_folder_dataset(path, channels)
    if path.suffix.lower() == ".npz":
        return load_npz_dataset(path)
    raise DataError(f"data set {path} is neither a .npz file nor a folder of class folders")


def check_dataset_fits(dataset: ImageDataset, image_shape: tuple[int, int, int],
                       config_name: str) -> None:
    """Raise DataError unless the images are ``[C, H, W] == image_shape``."""
    if dataset.image_shape != tuple(image_shape):
        c, h, w = image_shape
        got_c, got_h, got_w = dataset.image_shape
        raise DataError(f"{dataset.source}: images are {got_c} channel(s) of {got_h}x{got_w}, "
                        f"config {config_name!r} needs {c} channel(s) of {h}x{w} (a config "
                        f"of your own: binaryvit config NAME > my.json, edit, --config my.json)")
