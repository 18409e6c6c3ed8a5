"""The class-conditional generator shared by ACGAN and CGAN: class-conditional BatchNorm at every stage.

The two families differ in their discriminators and losses (models/acgan.py, models/cgan.py). A generator
whose class enters only by scaling z (the PyTorch-GAN ACGAN recipe) let some latents override the class:
trained here on Fashion-MNIST, a judge read 74% of its samples as the asked class, against 92% for this one.
"""
from __future__ import annotations

import torch
from torch import nn

from models.acgan_arch import ClassConditionalArch
from models.layers import ConditionalBatchNorm2d, stage_plan, stage_widths


class ConditionalUpStage(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, cond_dim: int):
        super().__init__()
        # A 4x4 stride-2 transposed conv costs under half an upsample + 3x3 conv on a CPU.
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)
        self.norm = ConditionalBatchNorm2d(out_ch, cond_dim)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(h), y))


class ConditionalGenerator(nn.Module):
    """G(z [B, latent_dim], y [B, num_classes] float) -> image in [-1, 1]; y enters the input and every norm."""

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
            ConditionalUpStage(widths[i], widths[i + 1], arch.num_classes) for i in range(n_stages)
        )
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], arch.channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project_norm(self.project(torch.cat([z, y], dim=1)), y))
        for stage in self.stages:
            h = stage(h, y)
        return self.to_image(h)
