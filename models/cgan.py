"""CGAN's projection discriminator (Miyato & Koyama 2018): the class enters D as an inner product."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.acgan_arch import ClassConditionalArch
from models.layers import DiscriminatorTrunk


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
