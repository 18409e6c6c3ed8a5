"""Attribute datasets for StarGAN: `celeba:PATH` and `twemoji-faces[:DIR]`, both in the CelebA layout.

The layout: PATH/list_attr_celeba.txt (a count line, a names line, then `file +-1 ...` rows), images
under PATH/img_align_celeba/, optionally PATH/list_eval_partition.txt (`file 0|1|2`: train, val, test)
and PATH/attribute_groups.json (a JSON list of mutually exclusive groups, condgen's own addition).
condgen also reads 0 as "not labelled" for a binary attribute (StarGAN's partially labelled data, which its
paper mixes across datasets with a mask vector): the row still teaches everything else it labels.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.data import DatasetError, InMemoryImages

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
GROUPS_FILE = "attribute_groups.json"
IMAGE_DIR = "img_align_celeba"
CELEBA_CROP = 178  # the usual StarGAN preprocessing: centre crop 178 x 178, then resize
TWEMOJI_DEFAULT_DIR = "data/twemoji-faces"

ATTRIBUTE_SPEC_HELP = (
    "celeba:PATH (list_attr_celeba.txt + img_align_celeba/; choose attributes with --attrs), "
    f"twemoji-faces[:DIR] (built by `python -m training prepare-twemoji`; default DIR {TWEMOJI_DEFAULT_DIR})"
)


class AttributeFileError(DatasetError):
    """A malformed attribute file: the message names the file and line."""

    def __init__(self, path: Path, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line = path, line


@dataclass
class AttributeDataset(InMemoryImages):
    name: str
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # float32 [N, A] of 0/1; NaN where a binary attribute is not labelled
    attributes: list[str]
    attribute_groups: list[list[str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # image file names, for counterpart look-ups

    @property
    def labels_info(self) -> dict:
        return {"attributes": list(self.attributes), "attribute_groups": [list(g) for g in self.attribute_groups]}

    def labelled(self) -> AttributeDataset:
        """The rows with every attribute labelled, in order: what a classifier that measures edits trains on, so
        a folder with partially labelled rows added measures with the same instrument as one without them."""
        keep = ~self.labels.isnan().any(1)
        if keep.all():
            return self
        return replace(self, images=self.images[keep], labels=self.labels[keep],
                       files=[f for f, k in zip(self.files, keep.tolist()) if k] if self.files else [])


# --- groups and edits ----------------------------------------------------------------------------

def group_indices(attributes: list[str], groups: list[list[str]]) -> list[list[int]]:
    """Groups as lists of vector positions; ValueError if a group names an unknown or repeated attribute."""
    seen: set[str] = set()
    out = []
    for group in groups:
        unknown = [a for a in group if a not in attributes]
        if unknown or len(group) < 2:
            raise ValueError(f"attribute group {group} must name at least two of {attributes}")
        if seen & set(group):
            raise ValueError(f"attribute {sorted(seen & set(group))} is in more than one group")
        seen |= set(group)
        out.append([attributes.index(a) for a in group])
    return out


def binary_indices(num_attributes: int, groups: list[list[int]]) -> list[int]:
    grouped = {i for g in groups for i in g}
    return [i for i in range(num_attributes) if i not in grouped]


def single_attribute_targets(c_src: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """[B, A] source vectors -> [B, A, A]: edit i sets attribute i (inside its group: one-hot on i;
    a binary attribute: flipped). Edit i of a group member already set is the identity."""
    b, a = c_src.shape
    targets = c_src[:, None, :].repeat(1, a, 1)
    group_of = {i: g for g in groups for i in g}
    for i in range(a):
        if i in group_of:
            targets[:, i, group_of[i]] = 0.0
            targets[:, i, i] = 1.0
        else:
            targets[:, i, i] = 1.0 - c_src[:, i]
    return targets


def single_attribute_edits(c_src: torch.Tensor,
                           groups: list[list[int]]) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Each attribute i some source does not already hold as edit i asks: (i, mask of the sources it changes,
    their targets). Edit i of a source that already has it is the identity, no edit, and is left out."""
    targets = single_attribute_targets(c_src, groups)
    for i in range(c_src.shape[1]):
        changed = (targets[:, i] != c_src).any(1)
        if changed.any():
            yield i, changed, targets[changed, i]


# --- the CelebA attribute file ---------------------------------------------------------------------

LABEL_VALUES = {"1": 1.0, "+1": 1.0, "-1": 0.0, "0": float("nan")}  # 0: the row does not label the attribute


@dataclass
class AttributeTable:
    names: list[str]
    files: list[str]
    values: np.ndarray  # float32 [N, A] of 0/1, NaN for 0 (not labelled)
    lines: list[int]  # the line each row came from, for error messages


def read_attribute_file(path: str | Path) -> AttributeTable:
    """Parse list_attr_celeba.txt; AttributeFileError naming the line on anything malformed."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read attribute file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text file ({exc})") from None
    if not lines:
        raise AttributeFileError(path, 1, "empty file; expected the image count")
    try:
        count = int(lines[0].strip())
        if count < 0:
            raise ValueError
    except ValueError:
        raise AttributeFileError(path, 1, f"expected the image count, got {lines[0].strip()!r}") from None
    if len(lines) < 2 or not lines[1].split():
        raise AttributeFileError(path, 2, "expected the attribute names")
    names = lines[1].split()
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise AttributeFileError(path, 2, f"attribute names repeat: {dup}")
    files, rows, row_lines = [], [], []
    first_line: dict[str, int] = {}
    for number, text in enumerate(lines[2:], start=3):
        parts = text.split()
        if not parts:
            continue  # a trailing blank line is harmless
        if len(parts) != len(names) + 1:
            raise AttributeFileError(path, number, f"expected a file name and {len(names)} values (1, -1 or 0), "
                                                   f"found {len(parts) - 1} values")
        if parts[0] in first_line:
            raise AttributeFileError(path, number, f"file {parts[0]} is listed twice (first on line {first_line[parts[0]]})")
        first_line[parts[0]] = number
        row = []
        for name, value in zip(names, parts[1:]):
            if value not in LABEL_VALUES:
                raise AttributeFileError(path, number, f"value {value!r} of {name} for {parts[0]} is not 1, -1 "
                                                       f"or 0 (not labelled)")
            row.append(LABEL_VALUES[value])
        files.append(parts[0])
        rows.append(row)
        row_lines.append(number)
    if count != len(rows):
        raise AttributeFileError(path, 1, f"declares {count} images but {len(rows)} rows follow")
    values = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(names))
    return AttributeTable(names, files, values, row_lines)


def read_partition(path: Path) -> dict[str, int]:
    """list_eval_partition.txt: `file 0|1|2` (train, validation, test)."""
    out = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = text.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise AttributeFileError(path, number, f"expected `file 0|1|2`, got {text.strip()!r}")
        out[parts[0]] = int(parts[1])
    return out


def select_attributes(table: AttributeTable, attrs: list[str] | None) -> tuple[list[str], np.ndarray]:
    if not attrs:
        return list(table.names), table.values
    unknown = [a for a in attrs if a not in table.names]
    if unknown:
        raise DatasetError(f"unknown attribute(s) {unknown}; the file has: {', '.join(table.names)}")
    if len(set(attrs)) != len(attrs):
        raise DatasetError(f"--attrs names an attribute twice: {attrs}")
    return list(attrs), table.values[:, [table.names.index(a) for a in attrs]]


def load_crop_resize(path: Path, image_size: int, crop: int | None) -> np.ndarray:
    """RGB uint8 [3, H, W]: alpha flattened onto white, centre crop (crop, or the largest square), resize."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
        img = img.convert("RGB")
        side = min(img.size) if crop is None else min(crop, *img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != image_size:
            img = img.resize((image_size, image_size), Image.LANCZOS)
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def load_celeba(root: str | Path, split: str = "train", image_size: int = 128, attrs: list[str] | None = None,
                crop: int | None = CELEBA_CROP, name: str | None = None) -> AttributeDataset:
    """The CelebA layout at root. Splits: list_eval_partition.txt when present (train = 0 and 1, test = 2),
    otherwise every 10th row is test."""
    root = Path(root)
    attr_path = root / ATTR_FILE
    if not attr_path.is_file():
        raise DatasetError(f"{root}: no {ATTR_FILE} (the CelebA layout: {ATTR_FILE} and {IMAGE_DIR}/)")
    table = read_attribute_file(attr_path)
    names, values = select_attributes(table, attrs)
    groups = _read_groups(root / GROUPS_FILE, names)
    for group, index in zip(groups, group_indices(names, groups)):
        bad = np.nonzero(values[:, index].sum(1) != 1)[0]  # a NaN (not labelled) sum is never 1 either
        if len(bad):
            i = int(bad[0])
            unlabelled = bool(np.isnan(values[i, index]).any())
            raise AttributeFileError(attr_path, table.lines[i], f"{table.files[i]} is not exactly one of group {group}"
                                     + (" (a group must be labelled: 0 is for binary attributes)" if unlabelled else ""))
    if (root / PARTITION_FILE).is_file():
        partition = read_partition(root / PARTITION_FILE)
        keep = [i for i, f in enumerate(table.files) if (partition.get(f, 0) == 2) == (split == "test")]
    else:
        keep = [i for i in range(len(table.files)) if (i % 10 == 9) == (split == "test")]
    if not keep:
        raise DatasetError(f"{root}: the {split} split is empty")
    images = []
    for i in keep:
        path = root / IMAGE_DIR / table.files[i]
        try:
            images.append(load_crop_resize(path, image_size, crop))
        except FileNotFoundError:
            raise AttributeFileError(attr_path, table.lines[i], f"image {path} not found") from None
        except OSError as exc:
            raise AttributeFileError(attr_path, table.lines[i], f"cannot read image {path} ({exc})") from None
    return AttributeDataset(
        name=name or f"celeba:{root}", images=torch.from_numpy(np.stack(images)),
        labels=torch.from_numpy(values[keep].copy()), attributes=names, attribute_groups=groups,
        files=[table.files[i] for i in keep],
    )


def _read_groups(path: Path, names: list[str]) -> list[list[str]]:
    """Groups from attribute_groups.json, restricted to the selected attributes (in vector order);
    a group only partly selected becomes plain binary attributes."""
    if not path.is_file():
        return []
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise DatasetError(f"{path}: expected a JSON list of lists of attribute names")
    return [sorted(g, key=names.index) for g in groups if g and all(a in names for a in g)]


def load_attribute_dataset(spec: str, split: str = "train", image_size: int | None = None,
                           attrs: list[str] | None = None) -> AttributeDataset:
    """Load an attribute dataset from its spec (see ATTRIBUTE_SPEC_HELP)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    kind, _, arg = spec.partition(":")
    if kind == "celeba":
        if not arg:
            raise DatasetError("celeba needs a path: --data celeba:PATH")
        return load_celeba(arg, split, image_size or 128, attrs)
    if kind == "twemoji-faces":
        root = Path(arg or TWEMOJI_DEFAULT_DIR)
        if not (root / ATTR_FILE).is_file():
            raise DatasetError(f"twemoji-faces: no prepared folder at {root}; build it with "
                               f"`python -m training prepare-twemoji --out {root}`")
        # Emoji are square already: no crop, only the resize.
        return load_celeba(root, split, image_size or 64, attrs, crop=None, name=spec)
    raise DatasetError(f"unknown attribute data spec {spec!r}; use one of: {ATTRIBUTE_SPEC_HELP}")
