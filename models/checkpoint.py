"""The checkpoint format (DESIGN.md): one .safetensors file, generator weights plus JSON string metadata.

Loading never unpickles: a checkpoint is tensors and JSON, so it cannot run code.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from models.registry import build, get_family

FORMAT = "condgen/1"
REQUIRED_KEYS = ("format", "family", "arch", "training")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class Checkpoint:
    path: str
    family: str
    arch: dict[str, Any]
    training: dict[str, Any]
    generator: nn.Module
    classes: list[str] | None = None
    attributes: list[str] | None = None
    attribute_groups: list[list[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The served model's name: the file stem."""
        return Path(self.path).stem


def save_checkpoint(
    path: str | os.PathLike,
    generator: nn.Module,
    family: str,
    arch: dict[str, Any],
    training: dict[str, Any],
    classes: list[str] | None = None,
    attributes: list[str] | None = None,
    attribute_groups: list[list[str]] | None = None,
) -> None:
    """Write the generator's weights and metadata; atomic (temp file + rename) so readers never see half a file."""
    metadata = {
        "format": FORMAT,
        "family": family,
        "arch": json.dumps(arch, sort_keys=True),
        "training": json.dumps(training, sort_keys=True),
    }
    if classes is not None:
        metadata["classes"] = json.dumps(list(classes))
    if attributes is not None:
        metadata["attributes"] = json.dumps(list(attributes))
        metadata["attribute_groups"] = json.dumps([list(g) for g in (attribute_groups or [])])
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in generator.state_dict().items()}
    write_safetensors(path, tensors, metadata)


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    # safetensors creates the file owner-only; a checkpoint is meant to be read by a service user too.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The raw string metadata of a safetensors file; CheckpointError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"not a safetensors file ({exc})") from None


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"unreadable tensors ({exc})") from None


def update_training_metadata(path: str | os.PathLike, updates: dict[str, Any]) -> None:
    """Merge `updates` into the checkpoint's `training` JSON (evaluation records its metrics this way)."""
    meta = read_metadata(path)
    training = _json(path, meta, "training", dict)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(training.get(key), dict):
            training[key] = {**training[key], **value}
        else:
            training[key] = value
    meta["training"] = json.dumps(training, sort_keys=True)
    write_safetensors(path, read_tensors(path), meta)


def _json(path: str | os.PathLike, meta: dict[str, str], key: str, kind: type) -> Any:
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(path, f"metadata {key!r} is not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise CheckpointError(path, f"metadata {key!r} must be a JSON {kind.__name__}")
    return value


def _string_list(path: str | os.PathLike, meta: dict[str, str], key: str, expected_len: int | None) -> list[str]:
    if key not in meta:
        raise CheckpointError(path, f"missing metadata key {key!r}")
    value = _json(path, meta, key, list)
    if not all(isinstance(v, str) and v for v in value):
        raise CheckpointError(path, f"metadata {key!r} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise CheckpointError(path, f"metadata {key!r} has duplicate names")
    if expected_len is not None and len(value) != expected_len:
        raise CheckpointError(path, f"metadata {key!r} lists {len(value)} names but arch expects {expected_len}")
    return value


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read, validate and rebuild a checkpoint's generator (in eval mode) on `device`."""
    meta = read_metadata(path)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(path, f"missing metadata key(s) {missing}; is this a condgen checkpoint?")
    if meta["format"] != FORMAT:
        raise CheckpointError(path, f"format {meta['format']!r} is not {FORMAT!r}")
    try:
        family = get_family(meta["family"])
    except ValueError as exc:
        raise CheckpointError(path, str(exc)) from None
    arch = _json(path, meta, "arch", dict)
    training = _json(path, meta, "training", dict)
    try:
        generator = build(family.name, **arch)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path, f"arch cannot be built: {exc}") from None

    classes = attributes = None
    groups: list[list[str]] = []
    if family.conditioning == "classes":
        classes = _string_list(path, meta, "classes", arch.get("num_classes"))
    else:
        attributes = _string_list(path, meta, "attributes", arch.get("num_attributes"))
        groups = _json(path, meta, "attribute_groups", list) if "attribute_groups" in meta else []
        for group in groups:
            if not isinstance(group, list) or not set(group) <= set(attributes):
                raise CheckpointError(path, f"attribute group {group!r} names attributes not in {attributes}")

    state = read_tensors(path)
    expected = generator.state_dict()
    problems = []
    if missing_w := sorted(set(expected) - set(state)):
        problems.append(f"missing weights {missing_w[:5]}")
    if unexpected := sorted(set(state) - set(expected)):
        problems.append(f"unexpected weights {unexpected[:5]}")
    for key in sorted(set(expected) & set(state)):
        if expected[key].shape != state[key].shape:
            problems.append(f"{key} has shape {tuple(state[key].shape)}, arch expects {tuple(expected[key].shape)}")
    if problems:
        raise CheckpointError(path, "weights do not fit arch: " + "; ".join(problems[:5]))
    generator.load_state_dict(state, strict=True)
    generator.to(device).eval().requires_grad_(False)
    return Checkpoint(
        path=str(path), family=family.name, arch=arch, training=training, generator=generator,
        classes=classes, attributes=attributes, attribute_groups=groups,
    )
