"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020), for small datasets.

Real and generated images go through the same random transforms before D, in D's step and in G's, so D
cannot memorise the few real images and G gets gradients through the transform. Only geometric ones here:
colour is what a StarGAN edit changes, so a colour jitter would blur the very attribute D must read.
- translation: shift by up to 1/8 of the side over a white border (the emoji background);
- cutout: blank a square of half the side at a random place, so D has to read an attribute from
  whatever part of the image is left, and G has to change all of it.
"""
from __future__ import annotations

from typing import Callable

import torch

Rand = Callable[..., torch.Tensor]  # StepContext.rand: uniform [0, 1) of the given shape on the device

POLICIES = ("translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' -> (); an unknown name is a ValueError."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return names


def translate(x: torch.Tensor, rand: Rand, ratio: float = 0.125, fill: float = 1.0) -> torch.Tensor:
    """Each image moved by up to ratio * side in x and y; what comes in is `fill` (1.0: white in [-1, 1])."""
    b, _, h, w = x.shape
    ph, pw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = (rand(b) * (2 * ph + 1)).long().clamp(max=2 * ph)
    dx = (rand(b) * (2 * pw + 1)).long().clamp(max=2 * pw)
    return shifted_crops(x, dy, dx, ph, pw, fill)


def shifted_crops(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad_y: int, pad_x: int,
                  fill: float) -> torch.Tensor:
    """x padded by (pad_y, pad_x) of `fill`, then each image cropped back to its size with its top-left corner
    at (dy[i], dx[i]) in the padded image: dy = pad_y is no vertical shift. One gather, so it is differentiable."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad_x, pad_x, pad_y, pad_y), value=fill)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def cutout(x: torch.Tensor, rand: Rand, ratio: float = 0.5, fill: float = 0.0) -> torch.Tensor:
    """Each image with one square of ratio * side set to `fill` (0.0: mid grey in [-1, 1]), centred anywhere."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy, cx = (rand(b) * h).long(), (rand(b) * w).long()
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    inside_y = (ys >= (cy - sh // 2)[:, None]) & (ys < (cy - sh // 2 + sh)[:, None])  # [B, H]
    inside_x = (xs >= (cx - sw // 2)[:, None]) & (xs < (cx - sw // 2 + sw)[:, None])  # [B, W]
    hole = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]  # [B, 1, H, W]
    return torch.where(hole, torch.full_like(x, fill), x)


def apply_policy(x: torch.Tensor, policy: tuple[str, ...], rand: Rand) -> torch.Tensor:
    """x with each transform of `policy` applied in order, drawn independently per image."""
    for name in policy:
        x = translate(x, rand) if name == "translation" else cutout(x, rand)
    return x
