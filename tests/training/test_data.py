import gzip

import numpy as np
import pytest
from PIL import Image

from training.data import FASHION_MNIST_CLASSES, DatasetError, load_dataset, read_idx
from tests.training.conftest import write_idx


def test_idx_round_trip_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    write_idx(tmp_path / "a.gz", array, gz=True)
    write_idx(tmp_path / "b", array, gz=False)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(read_idx(tmp_path / "b"), array)


def test_idx_with_bad_magic_or_wrong_length_is_refused(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(DatasetError, match="declares"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_loader_on_tiny_files(tiny_fashion):
    train = load_dataset(f"fashion-mnist:{tiny_fashion}")
    test = load_dataset(f"fashion-mnist:{tiny_fashion}", split="test")
    assert train.images.shape == (96, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    assert train.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert train.classes == FASHION_MNIST_CLASSES and train.classes[7] == "sneaker"
    assert train.images[3, 0, 6:9].min() == 255  # the band of class 3 survived loading
    resized = load_dataset(f"fashion-mnist:{tiny_fashion}", image_size=32, channels=3)
    assert resized.images.shape == (96, 3, 32, 32)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset(f"fashion-mnist:{tmp_path}")


def test_unknown_spec_lists_the_known_ones():
    with pytest.raises(DatasetError, match="fashion-mnist.*mnist5k.*folder"):
        load_dataset("imagenet")


def test_mnist5k_csv(tmp_path):
    rows = np.zeros((10, 785), dtype=np.int64)
    rows[:, -1] = np.arange(10)
    rows[:, 0] = 200
    path = tmp_path / "mnist.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    train = load_dataset(f"mnist5k:{path}")
    test = load_dataset(f"mnist5k:{path}", split="test")
    assert len(train) == 8 and len(test) == 2
    assert train.labels.tolist() == list(range(8)) and test.labels.tolist() == [8, 9]
    assert train.images[0, 0, 0, 0] == 200 and train.classes[3] == "digit_3"


def test_folder_loader_resizes_any_image_and_slugs_class_names(tmp_path):
    for name, colour in (("Red Things", (255, 0, 0)), ("blue-things", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.new("RGB", (40 + i, 30), colour).save(tmp_path / name / f"{i}.png")
    rgba = Image.new("RGBA", (20, 20), (0, 0, 255, 0))
    rgba.save(tmp_path / "blue-things" / "z_transparent.png")
    train = load_dataset(f"folder:{tmp_path}", image_size=16)
    test = load_dataset(f"folder:{tmp_path}", split="test", image_size=16)
    assert train.classes == ["red_things", "blue_things"]
    assert train.images.shape[1:] == (3, 16, 16)
    assert len(train) + len(test) == 21 and len(test) == 2
    red = train.images[train.labels == 0]
    assert (red[:, 0] > 250).all() and (red[:, 2] < 5).all()
    # Transparent pixels are flattened onto white, not black.
    assert (train.images[train.labels == 1][-1] == 255).all()


def test_folder_with_one_class_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DatasetError, match="one subfolder per class"):
        load_dataset(f"folder:{tmp_path}")
