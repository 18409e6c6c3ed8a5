"""The constructor arguments of the class-conditional families (acgan, cgan): a checkpoint's `arch`."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ClassConditionalArch:
    num_classes: int
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 128
    g_width: int = 64
    d_width: int = 64

    def to_dict(self) -> dict:
        return asdict(self)
