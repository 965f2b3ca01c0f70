"""Bad input to `binaryvit train` / `binaryvit eval`: one-line error, exit 2, no files left."""
import numpy as np
import pytest
import torch
from PIL import Image

from binaryvit.cli import main
from binaryvit.errors import DataError
from binaryvit.golden.float_model.checkpoint import save_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.train.data import load_dataset


def run_cli(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, command, *words):
    assert code == 2
    assert "\n" not in err and err.startswith(f"binaryvit {command}: error: ")
    for word in words:
        assert word in err


def write_npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return str(path)


def test_eval_missing_checkpoint(tmp_path, capsys):
    assert_one_line_error(*run_cli(["eval", str(tmp_path / "none.pt")], capsys), "eval",
                          "none.pt", "not found")


def test_eval_corrupt_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint at all")
    assert_one_line_error(*run_cli(["eval", str(path)], capsys), "eval", "corrupt")


def test_eval_images_of_the_wrong_size(tmp_path, capsys):
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, BinaryViT(get_config("tiny-digits")), {})
    data = write_npz(tmp_path / "big.npz", np.zeros((20, 16, 16)), np.arange(20) % 2)
    assert_one_line_error(*run_cli(["eval", str(checkpoint), "--data", data], capsys), "eval",
                          "16x16", "8x8")


@pytest.mark.parametrize("argv_tail, words", [
    (["--config", "nope"], ["unknown config 'nope'", "tiny-digits"]),
    (["--epochs", "0"], ["epochs must be >= 1"]),
    (["--student-lr", "0"], ["student_lr must be > 0"]),
])
def test_train_bad_options(tmp_path, capsys, argv_tail, words):
    out = tmp_path / "out" / "model.pt"
    code, err = run_cli(["train", "-o", str(out)] + argv_tail, capsys)
    assert_one_line_error(code, err, "train", *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("images, labels, words", [
    (np.zeros((20, 5, 5)), np.arange(20) % 2, ["1 channel(s) of 5x5", "8x8"]),
    (np.zeros((20, 3, 8, 8)), np.arange(20) % 2, ["3 channel(s)", "needs 1 channel(s)"]),
    (np.zeros((20, 8, 8)), np.arange(19) % 2, ["labels has 19 entries", "20 images"]),
    (np.zeros((20, 8, 8)), np.full(20, 0.5), ["integer class indices"]),
    (np.zeros((20, 8, 8)), np.arange(20) - 1, ["must be >= 0"]),
])
def test_train_bad_data(tmp_path, capsys, images, labels, words):
    data = write_npz(tmp_path / "data.npz", images, labels)
    out = tmp_path / "out" / "model.pt"
    code, err = run_cli(["train", "--config", "tiny-digits", "--data", data, "-o", str(out)],
                        capsys)
    assert_one_line_error(code, err, "train", *words)
    assert not (tmp_path / "out").exists()


def test_train_npz_without_labels_and_unreadable_npz(tmp_path, capsys):
    path = tmp_path / "data.npz"
    np.savez(path, images=np.zeros((4, 8, 8)))
    assert_one_line_error(*run_cli(["train", "--data", str(path), "-o", str(tmp_path / "m.pt")],
                                   capsys), "train", "lacks the array 'labels'")
    path.write_bytes(b"garbage")
    assert_one_line_error(*run_cli(["train", "--data", str(path), "-o", str(tmp_path / "m.pt")],
                                   capsys), "train", "cannot read")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]


def test_train_unwritable_or_existing_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(*run_cli(["train", "-o", str(blocker / "model.pt")], capsys),
                          "train", "cannot write")
    assert_one_line_error(*run_cli(["train", "-o", str(blocker)], capsys), "train",
                          "exists already", "--force")
    assert_one_line_error(*run_cli(["train", "-o", str(tmp_path)], capsys), "train",
                          "is a folder")
    assert blocker.read_text() == "x"


def test_image_folder_loads_grayscale_classes(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 5, 8, 8), dtype=np.uint8)
    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(pixels[label, i]).save(tmp_path / name / f"{i}.png")
    data = load_dataset(tmp_path)
    assert data.num_classes == 2 and data.image_shape == (1, 8, 8)
    assert len(data.train_labels) == 8 and len(data.test_labels) == 2
    images = torch.cat([data.train_images, data.test_images])
    labels = torch.cat([data.train_labels, data.test_labels])
    for image, label in zip(images, labels):
        assert any(np.array_equal(image[0].numpy(), p) for p in pixels[int(label)])


def test_image_folder_with_mixed_sizes(tmp_path):
    for name, size in (("a", 8), ("b", 9)):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("L", (size, size)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(DataError, match="9x9"):
        load_dataset(tmp_path)
