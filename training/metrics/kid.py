"""Kernel distance between two feature sets (KID, Bińkowski et al. 2018).

The squared maximum mean discrepancy under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated
without bias: the within-set sums leave out each point's kernel with itself. Unlike the Fréchet distance it
assumes no Gaussian and its estimate does not grow as the sample shrinks, so two samples of one distribution
score about 0 whatever their size (slightly below 0 as often as above). As is usual, it is averaged over random
subsets of both sets; the spread over those subsets says how much a figure from that many samples varies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.metrics.fid import feature_matrix


@dataclass(frozen=True)
class KernelDistance:
    mean: float  # mean over subsets of the unbiased squared MMD
    standard_deviation: float  # of the per-subset estimates (0 for a single subset)
    subset_size: int
    subsets: int

    def rounded(self, significant: int = 4) -> dict[str, float | int]:
        """Significant figures, not decimals: the scale of KID depends on the features' (1e-5 to 1 are usual)."""
        return {"mean": float(f"{self.mean:.{significant}g}"),
                "standard_deviation": float(f"{self.standard_deviation:.{significant}g}"),
                "subset_size": self.subset_size, "subsets": self.subsets}


def polynomial_mmd2_unbiased(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased squared MMD between the rows of a [M, D] and b [N, D] under (x.y / D + 1)^3."""
    dim = a.shape[1]
    k_aa = (a @ a.T / dim + 1) ** 3
    k_bb = (b @ b.T / dim + 1) ** 3
    k_ab = (a @ b.T / dim + 1) ** 3
    m, n = len(a), len(b)
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())


def kernel_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, subset_size: int = 1000,
                    subsets: int = 100, seed: int = 0) -> KernelDistance:
    """KID of feature sets a [M, D] and b [N, D]: the estimate on `subsets` random subsets of min(subset_size,
    M, N) rows from each, drawn without replacement within a subset, by a generator seeded with `seed` (a single
    subset where that takes all of both sets)."""
    x, y = torch.from_numpy(feature_matrix(a)), torch.from_numpy(feature_matrix(b))
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature widths differ: {x.shape[1]} and {y.shape[1]}")
    if subset_size < 2 or subsets < 1:
        raise ValueError(f"need subsets of at least 2 rows and at least one subset, got {subset_size} x {subsets}")
    size = min(subset_size, len(x), len(y))
    if size == len(x) == len(y):
        subsets = 1  # each subset would be all of both sets: one estimate, no spread to measure
    generator = torch.Generator().manual_seed(seed)
    estimates = []
    for _ in range(subsets):
        pick_x = torch.randperm(len(x), generator=generator)[:size]
        pick_y = torch.randperm(len(y), generator=generator)[:size]
        estimates.append(polynomial_mmd2_unbiased(x[pick_x], y[pick_y]))
    spread = float(np.std(estimates, ddof=1)) if subsets > 1 else 0.0
    return KernelDistance(float(np.mean(estimates)), spread, size, subsets)
