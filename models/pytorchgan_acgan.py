"""The PyTorch-GAN ACGAN recipe (eriklindernoren/PyTorch-GAN, implementations/acgan/acgan.py) as a baseline.

Its architecture is reproduced as published, mistakes included, because it IS the baseline condgen's own
ACGAN is measured against: the class enters G only by scaling z with a label embedding; BatchNorm eps is
0.8 (BatchNorm2d's second positional argument is eps; 0.8 was likely meant as momentum); D ends in a sigmoid and a
softmax, and its training applies CrossEntropyLoss to the softmax output (training/families/pytorchgan.py).
Never served: the service has no serving code for this family (app/registry.py) and its checkpoint lives
in checkpoints/baselines/.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

PUBLISHED_BN_EPS = 0.8  # as published: a mistake (normalises by sqrt(var + 0.8)), kept


@dataclass(frozen=True)
class PyTorchGANArch:
    num_classes: int
    image_size: int = 32  # the published img_size; D halves it four times, G doubles image_size // 4 twice
    channels: int = 1
    latent_dim: int = 100

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"the PyTorch-GAN ACGAN needs an image size that is a multiple of 16, got {self.image_size}")

    def to_dict(self) -> dict:
        return asdict(self)


def published_init(module: nn.Module) -> None:
    """weights_init_normal of the recipe: conv weights N(0, 0.02), BatchNorm gains N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class PyTorchGANGenerator(nn.Module):
    """G(z [B, latent_dim], y [B, num_classes] float) -> [B, C, S, S] in [-1, 1].

    The recipe's nn.Embedding(label) is y @ W for a one-hot y; a linear map without bias keeps the
    continuous-condition interface (DESIGN.md) and gives the same numbers on one-hot rows.
    """

    def __init__(self, arch: PyTorchGANArch):
        super().__init__()
        self.arch = arch
        self.init_size = arch.image_size // 4
        self.label_emb = nn.Linear(arch.num_classes, arch.latent_dim, bias=False)
        nn.init.normal_(self.label_emb.weight)  # nn.Embedding's N(0, 1) initialisation
        self.l1 = nn.Linear(arch.latent_dim, 128 * self.init_size ** 2)
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, 1, 1),
            nn.BatchNorm2d(128, PUBLISHED_BN_EPS),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, 1, 1),
            nn.BatchNorm2d(64, PUBLISHED_BN_EPS),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, arch.channels, 3, 1, 1),
            nn.Tanh(),
        )
        self.apply(published_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.l1(self.label_emb(y) * z)
        return self.conv_blocks(h.view(h.shape[0], 128, self.init_size, self.init_size))


class PyTorchGANDiscriminator(nn.Module):
    """D(x) -> (validity in (0, 1) [B], class probabilities [B, num_classes]): a sigmoid and a softmax, as published."""

    def __init__(self, arch: PyTorchGANArch):
        super().__init__()
        self.arch = arch

        def block(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2), nn.Dropout2d(0.25)]
            if bn:
                layers.append(nn.BatchNorm2d(cout, PUBLISHED_BN_EPS))
            return layers

        self.conv_blocks = nn.Sequential(
            *block(arch.channels, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128),
        )
        features = 128 * (arch.image_size // 16) ** 2
        self.adv_layer = nn.Sequential(nn.Linear(features, 1), nn.Sigmoid())
        self.aux_layer = nn.Sequential(nn.Linear(features, arch.num_classes), nn.Softmax(dim=1))
        self.apply(published_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv_blocks(x).flatten(1)
        return self.adv_layer(h).squeeze(1), self.aux_layer(h)
