"""Building blocks shared by the generators and discriminators of every family."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def stage_plan(image_size: int, min_base: int = 4) -> tuple[int, int]:
    """Return (base_size, n_stages): halve the image size while it stays even and >= min_base.

    28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4), 128 -> (4, 5). One rule for every size means the
    network shape is chosen by `arch`, never by separate code per resolution.
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    size, stages = image_size, 0
    while size % 2 == 0 and size // 2 >= min_base:
        size //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image_size {image_size} cannot be halved to a base of >= {min_base} px")
    return size, stages


def stage_widths(width: int, n_stages: int, max_mult: int = 8) -> list[int]:
    """Channel widths from the coarsest stage to the finest: width * 2**k, capped at width * max_mult."""
    return [width * min(2 ** (n_stages - i), max_mult) for i in range(n_stages + 1)]


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are linear in a (continuous) condition vector.

    A blend of two one-hot conditions blends the gains and biases too, which is what makes
    class interpolation a straight path through the generator.
    """

    def __init__(self, num_features: int, cond_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma = 1.0 + self.gain(cond)[:, :, None, None]
        beta = self.bias(cond)[:, :, None, None]
        return self.norm(x) * gamma + beta


def down_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Discriminator stage: one strided 4x4 conv halving the size, spectrally normalised.

    No full-resolution 3x3 convs: D dominates a step's cost, and on a CPU this keeps a 28 px step cheap.
    """
    return nn.Sequential(spectral_norm(nn.Conv2d(in_ch, out_ch, 4, 2, 1)), nn.LeakyReLU(0.2))


class DiscriminatorTrunk(nn.Module):
    """Image -> feature vector: stem conv, one down block per stage, a 3x3 conv at base size, sum pooling."""

    def __init__(self, image_size: int, channels: int, width: int):
        super().__init__()
        _, n_stages = stage_plan(image_size)
        widths = list(reversed(stage_widths(width, n_stages)))  # finest (smallest) first
        self.stem = nn.Sequential(spectral_norm(nn.Conv2d(channels, widths[0], 3, 1, 1)), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[down_block(widths[i], widths[i + 1]) for i in range(n_stages)])
        self.head = nn.Sequential(spectral_norm(nn.Conv2d(widths[-1], widths[-1], 3, 1, 1)), nn.LeakyReLU(0.2))
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.blocks(self.stem(x)))
        return h.sum(dim=(2, 3))
