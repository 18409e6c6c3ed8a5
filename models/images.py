"""Tensor-side image helpers shared by training (sample grids) and serving (responses): torch only."""
from __future__ import annotations

import math

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float [B, C, H, W] -> uint8 [B, H, W, C] on the CPU (channels last, as image codecs want)."""
    out = images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().contiguous()


def make_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2, pad_value: int = 255) -> torch.Tensor:
    """uint8 [B, H, W, C] -> one uint8 [H', W', C] grid, row-major, `columns` images per row."""
    b, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(b))
    rows = math.ceil(b / columns)
    grid = torch.full(
        (rows * h + (rows + 1) * padding, columns * w + (columns + 1) * padding, c), pad_value, dtype=torch.uint8,
    )
    for i in range(b):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = images[i]
    return grid
