"""The figures of a StarGAN checkpoint: training/stargan_eval.py's, plus the reconstruction L1.

stargan_eval gives, on held-out images: per attribute the share of single-attribute edits the attribute
classifier reads as the target, the identity L1 (target = source attributes), and on twemoji-faces the L1
of tone edits to the true tone variants beside the input's L1 to them. Added here: the cycle
reconstruction L1, |G(G(x, c_trg), c_src) - x|, over every single-attribute edit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models import load_checkpoint
from training.attributes import group_indices, load_attribute_dataset, single_attribute_edits
from training.data import to_unit_range
from training.stargan_eval import edit, evaluate, l1


def reconstruction_l1(G: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, groups: list[list[int]]) -> float:
    """Mean L1 ([0, 1] scale) of x against G(G(x, t), c) over every single-attribute target t that changes c."""
    total, count = 0.0, 0
    for _, changed, t in single_attribute_edits(c, groups):
        back = edit(G, edit(G, x[changed], t), c[changed])
        total += l1(back, x[changed]) * len(t)
        count += len(t)
    return round(total / count, 4) if count else float("nan")


def evaluate_stargan(checkpoint: str, data_spec: str, out_dir: Path, name: str, judge_epochs: int,
                     seed: int) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = out_dir / f"{name}_edits.png"
    result = evaluate(checkpoint, data_spec, judge_epochs, seed, grid)
    ckpt = load_checkpoint(checkpoint)
    attributes = list(ckpt.attributes or [])
    test = load_attribute_dataset(data_spec, "test", int(ckpt.arch["image_size"]), attributes).labelled()
    groups = group_indices(attributes, ckpt.attribute_groups)
    result["reconstruction_l1"] = reconstruction_l1(ckpt.generator, to_unit_range(test.images), test.labels, groups)
    result.pop("grid", None)
    result["figures"] = {"edits": str(grid)}
    return result
