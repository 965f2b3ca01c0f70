"""Your own data at any size: image folders in grayscale or RGB, the config chosen by the
data's size, and data that does not fit the config refused in one line."""
import numpy as np
import pytest
from PIL import Image

from binaryvit.commands.train import config_and_data
from binaryvit.errors import DataError
from binaryvit.golden.train.data import load_dataset

RED, GRAY = (255, 0, 0), 90


def image_folder(root, mode, size=(6, 4), per_class=3):
    """Two classes of ``per_class`` images, ``size`` = (width, height): class ``a`` filled
    with RED (RGB) or GRAY (L), class ``b`` black."""
    for name, fill in (("a", RED if mode == "RGB" else GRAY), ("b", 0)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new(mode, size, fill).save(root / name / f"{i}.png")
    return root


def all_images(data):
    return np.concatenate([data.train_images.numpy(), data.test_images.numpy()]), \
        np.concatenate([data.train_labels.numpy(), data.test_labels.numpy()])


def test_an_rgb_folder_reads_as_three_channels(tmp_path):
    data = load_dataset(image_folder(tmp_path / "rgb", "RGB"))
    images, labels = all_images(data)
    assert data.image_shape == (3, 4, 6) and data.num_classes == 2
    red = images[labels == 0]
    assert np.all(red[:, 0] == 255) and np.all(red[:, 1:] == 0)
    assert np.all(images[labels == 1] == 0)


def test_a_grayscale_folder_reads_as_one_channel(tmp_path):
    data = load_dataset(image_folder(tmp_path / "gray", "L"))
    images, labels = all_images(data)
    assert data.image_shape == (1, 4, 6)
    assert np.all(images[labels == 0] == GRAY)


def test_the_configs_channel_count_decides_the_conversion(tmp_path):
    rgb = image_folder(tmp_path / "rgb", "RGB")
    images, labels = all_images(load_dataset(rgb, channels=1))
    # ITU-R 601-2 luma, PIL's L conversion: 299/1000 * 255 = 76.245 -> 76
    assert images.shape[1] == 1 and np.all(images[labels == 0] == 76)
    gray = image_folder(tmp_path / "gray", "L")
    images, labels = all_images(load_dataset(gray, channels=3))
    assert images.shape[1] == 3 and np.all(images[labels == 0] == GRAY)
    with pytest.raises(DataError, match="1 \\(grayscale\\) or 3 \\(RGB\\).*needs 4"):
        load_dataset(gray, channels=4)


def test_one_colour_image_makes_a_folder_rgb(tmp_path):
    root = image_folder(tmp_path / "mixed", "L")
    Image.new("RGB", (6, 4), (0, 200, 0)).save(root / "b" / "colour.png")
    assert load_dataset(root).image_shape == (3, 4, 6)


def test_the_named_config_of_the_datas_size_is_chosen(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, images=np.zeros((20, 28, 28), np.uint8), labels=np.arange(20) % 2)
    config, data = config_and_data(None, str(path))
    assert config.name == "tiny-28x28x1" and data.image_shape == (1, 28, 28)
    config, _ = config_and_data(None, None)
    assert config.name == "tiny-digits"
    odd = tmp_path / "odd.npz"
    np.savez(odd, images=np.zeros((20, 3, 12, 12), np.uint8), labels=np.arange(20) % 2)
    with pytest.raises(DataError, match="3 channel\\(s\\) of 12x12 and no named config.*"
                                        "--config my.json"):
        config_and_data(None, str(odd))
