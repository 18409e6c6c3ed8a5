"""A scale to read a Fréchet distance against: the distance of real images degraded on purpose by known amounts.

`fid / fid_floor` alone does not say how far samples are from real ones: the judge's feature space can be
fine-grained enough that invisible changes move it far. So the same real images that give the floor are
degraded by Gaussian pixel noise and by Gaussian blur of a few strengths, and each is measured against the
same test features. A sample set's FID then reads as "about as far as real images blurred by half a pixel".
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from training.metrics.fid import frechet_distance_of_features
from training.metrics.ms_ssim import gaussian_window

# Pixel noise in the [-1, 1] range: 0.01 is about 1.3 grey levels of 255, 0.02 about 2.5, 0.05 about 6, 0.1 about 13.
NOISE_SIGMAS = (0.01, 0.02, 0.05, 0.1)
BLUR_SIGMAS = (0.5, 1.0)  # pixels
TRUNCATE = 4.0  # kernel radius in standard deviations (scipy.ndimage.gaussian_filter's default)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [B, C, H, W] images, edges mirrored (scipy's mode='mirror')."""
    radius, channels = int(TRUNCATE * sigma + 0.5), images.shape[1]
    window = gaussian_window(2 * radius + 1, sigma).to(images.dtype)
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    return F.conv2d(padded, window.expand(channels, 1, *window.shape), groups=channels)


def degradations(images: torch.Tensor, seed: int) -> Iterator[tuple[str, torch.Tensor]]:
    """Each rung of the scale, one at a time (a copy of the images each): `pixel_noise_S` (clamped to
    [-1, 1]), then `blur_Spx`."""
    generator = torch.Generator().manual_seed(seed)
    for s in NOISE_SIGMAS:
        yield f"pixel_noise_{s:g}", (images + s * torch.randn(images.shape, generator=generator)).clamp(-1, 1)
    for s in BLUR_SIGMAS:
        yield f"blur_{s:g}px", gaussian_blur(images, s)


def fid_scale(features: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, test_features: torch.Tensor,
              seed: int) -> dict[str, float]:
    """FID of each degraded copy of `real` (images in [-1, 1]) against `test_features`, by rung name."""
    return {name: round(frechet_distance_of_features(features(degraded), test_features), 4)
            for name, degraded in degradations(real, seed)}


def nearest_rungs(fid: float, scale: dict[str, float]) -> str:
    """Where a distance falls on the scale, in words: the rungs just below and just above it."""
    ordered = sorted(scale.items(), key=lambda item: item[1])
    below = [f"{name} ({value:.2f})" for name, value in ordered if value <= fid]
    above = [f"{name} ({value:.2f})" for name, value in ordered if value > fid]
    if not below:
        return f"below every rung (the nearest: {above[0]})"
    if not above:
        return f"above every rung (the farthest: {below[-1]})"
    return f"between {below[-1]} and {above[0]}"
