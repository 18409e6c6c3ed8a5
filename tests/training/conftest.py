import gzip
import struct

import numpy as np
import pytest


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def tiny_fashion(tmp_path):
    """A Fashion-MNIST-layout folder of 96 train and 20 test images whose class is visible (a bright band)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "fmnist"
    root.mkdir()
    for prefix, n in (("train", 96), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label:2 * label + 3, :] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def train_config_of(monkeypatch):
    """Runs a training command's CLI with the run itself stubbed out and returns the TrainConfig it built:
    checks that an option reaches the loop without training anything."""
    import training.cli

    def run(argv: list[str]):
        seen = []
        monkeypatch.setattr(training.cli, "train_and_report", lambda cfg, train_data: seen.append(cfg))
        assert training.cli.main(argv) == 0
        assert len(seen) == 1
        return seen[0]

    return run
