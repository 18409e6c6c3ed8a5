"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) in torch, sized for small images.

The standard form (5 scales, 11x11 Gaussian window, sigma 1.5) needs images of at least 161 px: each
scale halves the image and the window must fit at the coarsest. On 28 px images condgen uses 3 scales
(28, 14, 7) and a 7x7 window (sigma 1.5), which fits the 7 px coarsest scale exactly, with the first three
standard scale weights renormalised to sum to 1. Images are in [-1, 1] and rescaled to [0, 1]
(data range 1, K1 0.01, K2 0.03); negative contrast-structure terms are clipped to 0, as in common
implementations, so the product of powers stays real.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

STANDARD_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def scale_weights(scales: int) -> torch.Tensor:
    if not 1 <= scales <= len(STANDARD_WEIGHTS):
        raise ValueError(f"scales must be 1..{len(STANDARD_WEIGHTS)}, got {scales}")
    w = torch.tensor(STANDARD_WEIGHTS[:scales], dtype=torch.float64)
    return w / w.sum()


def ssim_terms(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image means [B] of the SSIM map (luminance x contrast-structure) and of the contrast-structure map
    alone, for [0, 1] images [B, C, H, W]; valid filtering (no padding)."""
    c = x.shape[1]
    kernel = window.to(x.dtype).expand(c, 1, *window.shape)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x ** 2
    var_y = filt(y * y) - mu_y ** 2
    cov = filt(x * y) - mu_x * mu_y
    c1, c2 = K1 ** 2, K2 ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return (luminance * contrast_structure).flatten(1).mean(1), contrast_structure.flatten(1).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int = 3, window_size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """MS-SSIM [B] of image pairs x[i], y[i] in [-1, 1], shape [B, C, H, W]; 1 for identical images."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must be the same [B, C, H, W] shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    smallest = min(x.shape[-2:]) // 2 ** (scales - 1)
    if smallest < window_size:
        raise ValueError(f"{scales} scales of {tuple(x.shape[-2:])} images leave {smallest} px, "
                         f"less than the {window_size} px window; use fewer scales or a smaller window")
    window = gaussian_window(window_size, sigma)
    weights = scale_weights(scales)
    x = (x.double() + 1) / 2
    y = (y.double() + 1) / 2
    result = torch.ones(x.shape[0], dtype=torch.float64)
    for level in range(scales):
        ssim, cs = ssim_terms(x, y, window)
        term = cs if level < scales - 1 else ssim  # luminance enters at the coarsest scale only
        result = result * term.clamp_min(0.0) ** weights[level]
        if level < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return result


class PairMSSSIM(NamedTuple):
    """MS-SSIM over random pairs of one set: the mean, and its standard error over the pairs (sample standard
    deviation / sqrt(pairs)), which says how far another draw of pairs may move the mean."""
    mean: float
    standard_error: float


def pair_ms_ssim(images: torch.Tensor, pairs: int, generator: torch.Generator, batch_size: int = 500,
                 **kwargs) -> PairMSSSIM:
    """MS-SSIM over `pairs` random pairs of distinct images from one set: low means diverse."""
    n = images.shape[0]
    if n < 2:
        raise ValueError("need at least 2 images to form a pair")
    if pairs < 2:
        raise ValueError("need at least 2 pairs for a standard error")
    first = torch.randint(n, (pairs,), generator=generator)
    second = (first + torch.randint(1, n, (pairs,), generator=generator)) % n  # never the same image
    values = torch.cat([ms_ssim(images[first[i:i + batch_size]], images[second[i:i + batch_size]], **kwargs)
                        for i in range(0, pairs, batch_size)])
    return PairMSSSIM(values.mean().item(), (values.std() / pairs ** 0.5).item())

