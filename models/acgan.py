"""ACGAN (Odena et al. 2017): a class-conditional generator and a discriminator with a class head."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.layers import DiscriminatorTrunk, stage_plan, stage_widths


@dataclass(frozen=True)
class ClassConditionalArch:
    """Constructor arguments of the class-conditional families: what `arch` in a checkpoint holds."""

    num_classes: int
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 128
    g_width: int = 64
    d_width: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class ACGANGenerator(nn.Module):
    """G(z, y) -> image in [-1, 1]. The condition scales the latent (a linear class embedding)."""

    def __init__(self, arch: ClassConditionalArch):
        super().__init__()
        self.arch = arch
        base, n_stages = stage_plan(arch.image_size)
        widths = stage_widths(arch.g_width, n_stages)
        self.base = base
        # A linear map of a one-hot y is a class embedding; of a blend, the blend of embeddings.
        # N(0, 1) like nn.Embedding: each class starts with a distinct pattern scaling z. (An init
        # near 1 makes every class the same multiplier and G learns to ignore the class for ages.)
        self.embed = nn.Linear(arch.num_classes, arch.latent_dim, bias=False)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)
        self.project = nn.Sequential(
            nn.Linear(arch.latent_dim, widths[0] * base * base),
            nn.Unflatten(1, (widths[0], base, base)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        for i in range(n_stages):
            stages += [
                # A 4x4 stride-2 transposed conv costs under half an upsample + 3x3 conv on a CPU.
                nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(),
            ]
        self.stages = nn.Sequential(*stages)
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], arch.channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(z * self.embed(y))
        return self.to_image(self.stages(h))


class ACGANDiscriminator(nn.Module):
    """D(x) -> (source logit [B], class logits [B, num_classes]); raw logits, no softmax."""

    def __init__(self, arch: ClassConditionalArch):
        super().__init__()
        self.arch = arch
        self.trunk = DiscriminatorTrunk(arch.image_size, arch.channels, arch.d_width)
        self.source = spectral_norm(nn.Linear(self.trunk.out_features, 1))
        # The class head is not spectrally normalised: it must be free to become confident.
        self.classes = nn.Linear(self.trunk.out_features, arch.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.source(h).squeeze(1), self.classes(h)
