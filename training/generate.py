"""Images from a checkpoint alone: `python -m training generate CKPT --class sneaker -n 16 --out grid.png`."""
from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from models import load_checkpoint, seeded_latents
from models.checkpoint import Checkpoint
from models.images import make_grid, to_uint8


def resolve_class(ckpt: Checkpoint, value: str) -> int:
    """A class slug or index -> index; ValueError naming the valid slugs otherwise."""
    classes = ckpt.classes or []
    if value in classes:
        return classes.index(value)
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    raise ValueError(f"unknown class {value!r} for {ckpt.name}; valid: {', '.join(classes)} (or 0..{len(classes) - 1})")


@torch.no_grad()
def generate(ckpt: Checkpoint, class_index: int, n: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """n images in [-1, 1] of one class; image i is drawn from seed + i."""
    device = next(ckpt.generator.parameters()).device
    z = seeded_latents(seed, n, ckpt.arch["latent_dim"], truncation).to(device)
    y = F.one_hot(torch.full((n,), class_index), len(ckpt.classes or [])).float().to(device)
    return ckpt.generator(z, y)


def generate_to_file(checkpoint: str, class_value: str | None, n: int, seed: int | None, out: str,
                     truncation: float | None, columns: int | None, device: str = "cpu") -> Path:
    ckpt = load_checkpoint(checkpoint, device)
    if ckpt.classes is None:
        raise ValueError(f"{checkpoint}: family {ckpt.family} is not class-conditional; generate needs acgan or cgan")
    seed = random.randrange(2**63) if seed is None else seed
    if class_value is None:  # one row per class
        images = torch.cat([generate(ckpt, i, n, seed, truncation) for i in range(len(ckpt.classes))])
        columns = n
    else:
        images = generate(ckpt, resolve_class(ckpt, class_value), n, seed, truncation)
    grid = make_grid(to_uint8(images), columns).numpy()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path
