"""Deterministic batches: the batch of a step is a pure function of (seed, step, rank), so resume is exact."""
from __future__ import annotations

import torch


class StepBatches:
    """Each epoch is a seeded permutation; rank r of w takes every w-th index of it (DistributedSampler-like)."""

    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if n_items < batch_size * world_size:
            raise ValueError(f"dataset of {n_items} items is smaller than one global batch ({batch_size} x {world_size})")
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = n_items // (batch_size * world_size)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n_items, generator=gen)[self.rank::self.world_size]
            self._epoch = epoch
        return self._perm[offset * self.batch_size:(offset + 1) * self.batch_size]
