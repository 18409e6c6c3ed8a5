"""ACGAN (Odena et al. 2017): a discriminator with a source head and a class head (raw logits)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.acgan_arch import ClassConditionalArch
from models.layers import DiscriminatorTrunk


class ACGANDiscriminator(nn.Module):
    """D(x) -> (source logit [B], class logits [B, num_classes]); raw logits, no softmax. With twin_classifier,
    a third output: a second class head's logits [B, num_classes] (TAC-GAN's twin, trained on fakes only)."""

    def __init__(self, arch: ClassConditionalArch, twin_classifier: bool = False):
        super().__init__()
        self.arch = arch
        self.trunk = DiscriminatorTrunk(arch.image_size, arch.channels, arch.d_width)
        self.source = spectral_norm(nn.Linear(self.trunk.out_features, 1))
        # The class heads are not spectrally normalised: they must be free to become confident.
        self.classes = nn.Linear(self.trunk.out_features, arch.num_classes)
        self.twin = nn.Linear(self.trunk.out_features, arch.num_classes) if twin_classifier else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.trunk(x)
        if self.twin is None:
            return self.source(h).squeeze(1), self.classes(h)
        return self.source(h).squeeze(1), self.classes(h), self.twin(h)
