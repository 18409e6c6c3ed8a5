"""Latent helpers: per-row seeded z (so results never depend on batching), truncation, slerp and lerp."""
from __future__ import annotations

import math

import torch


def truncated_normal(shape: tuple[int, ...], psi: float, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) conditioned on |z| <= psi: the law of 'resample every |z| > psi until none is left'.

    Drawn by inverse CDF in one pass, so tiny psi costs the same as large psi and the result is a
    pure function of the generator state.
    """
    if not 0.0 < psi:
        raise ValueError(f"truncation psi must be > 0, got {psi}")
    lo = 0.5 * (1.0 + math.erf(-psi / math.sqrt(2.0)))
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    z = torch.special.ndtri(lo + u * (1.0 - 2.0 * lo))
    return z.clamp_(-psi, psi).to(torch.float32)


def seeded_latents(seed: int, n: int, latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    """[n, latent_dim] on the CPU where row i is drawn from its own generator seeded with seed + i."""
    rows = []
    for i in range(n):
        gen = torch.Generator(device="cpu").manual_seed(seed + i)
        if truncation is None or truncation >= 10.0:
            rows.append(torch.randn(latent_dim, generator=gen))
        else:
            rows.append(truncated_normal((latent_dim,), truncation, gen))
    return torch.stack(rows) if rows else torch.empty(0, latent_dim)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rows a + t (b - a) for each t in a 1-D tensor of fractions: [len(t), *a.shape]."""
    t = t.reshape(-1, *([1] * a.dim())).to(a.dtype)
    return a.unsqueeze(0) + t * (b - a).unsqueeze(0)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of 1-D vectors a and b (norms interpolated linearly); lerp when parallel."""
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(), b64.norm()
    ua, ub = a64 / na.clamp_min(eps), b64 / nb.clamp_min(eps)
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < 1e-6:
        return lerp(a, b, t)
    t64 = t.double().reshape(-1, 1)
    direction = (torch.sin((1.0 - t64) * omega) * ua + torch.sin(t64 * omega) * ub) / so
    norm = (1.0 - t64) * na + t64 * nb
    return (direction * norm).to(a.dtype)
