"""What a family contributes to the shared training loop: its D step, its G step, its sample grid."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class StepContext:
    """Per-step handles the loop passes to a family: the (maybe DDP-wrapped) networks and the noise source."""

    G: nn.Module
    D: nn.Module
    device: torch.device
    noise: torch.Generator  # CPU generator whose state the train state saves, so resume is exact
    step: int

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.noise).to(self.device, non_blocking=True)

    def randint(self, high: int, n: int) -> torch.Tensor:
        return torch.randint(high, (n,), generator=self.noise).to(self.device, non_blocking=True)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.noise).to(self.device, non_blocking=True)


class FamilySteps(ABC):
    """One family's losses. Returned losses are scalars the loop back-propagates; logs are floats."""

    n_critic: int = 1  # D steps per G step

    def __init__(self, arch: Any, loss: str, labels_info: dict[str, Any]):
        self.arch = arch
        self.loss = loss
        self.labels_info = labels_info

    def discriminator_options(self) -> dict[str, Any]:
        """Keyword arguments of the family's discriminator beyond the arch that these steps need."""
        return {}

    @abstractmethod
    def d_step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        ...

    @abstractmethod
    def g_step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        ...

    @abstractmethod
    def fixed_inputs(self, data_images: torch.Tensor, data_labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        """The inputs of the sample grid, fixed for the whole run."""

    @abstractmethod
    def sample_grid(self, G: nn.Module, fixed: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Images in [-1, 1] for the grid and the number of columns."""

    @abstractmethod
    def checkpoint_metadata(self) -> dict[str, Any]:
        """classes, or attributes and attribute_groups: keyword arguments of save_checkpoint."""
