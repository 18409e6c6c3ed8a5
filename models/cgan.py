"""CGAN: a generator with class-conditional BatchNorm and a projection discriminator (Miyato & Koyama 2018)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.acgan import ClassConditionalArch
from models.layers import ConditionalBatchNorm2d, DiscriminatorTrunk, stage_plan, stage_widths


class CGANUpStage(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, cond_dim: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)
        self.norm = ConditionalBatchNorm2d(out_ch, cond_dim)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(h), y))


class CGANGenerator(nn.Module):
    """G(z, y) -> image in [-1, 1]; y enters the input and every normalisation layer."""

    def __init__(self, arch: ClassConditionalArch):
        super().__init__()
        self.arch = arch
        base, n_stages = stage_plan(arch.image_size)
        widths = stage_widths(arch.g_width, n_stages)
        self.project = nn.Sequential(
            nn.Linear(arch.latent_dim + arch.num_classes, widths[0] * base * base),
            nn.Unflatten(1, (widths[0], base, base)),
        )
        self.project_norm = ConditionalBatchNorm2d(widths[0], arch.num_classes)
        self.stages = nn.ModuleList(
            CGANUpStage(widths[i], widths[i + 1], arch.num_classes) for i in range(n_stages)
        )
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], arch.channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project_norm(self.project(torch.cat([z, y], dim=1)), y))
        for stage in self.stages:
            h = stage(h, y)
        return self.to_image(h)


class ProjectionDiscriminator(nn.Module):
    """D(x, y) -> one logit [B]: psi(phi(x)) + <embed(y), phi(x)>."""

    def __init__(self, arch: ClassConditionalArch):
        super().__init__()
        self.arch = arch
        self.trunk = DiscriminatorTrunk(arch.image_size, arch.channels, arch.d_width)
        self.linear = spectral_norm(nn.Linear(self.trunk.out_features, 1))
        self.embed = spectral_norm(nn.Linear(arch.num_classes, self.trunk.out_features, bias=False))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)
