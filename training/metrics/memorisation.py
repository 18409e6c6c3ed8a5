"""Memorisation: how many generated images lie nearer to a training image than real images lie to each other.

Distances are L2 in pixel space ([-1, 1] images, flattened): a copied training image is a copy of its
pixels, while the judge's features are built to ignore detail, so two different shirts can be neighbours
there. The threshold is the 1st percentile of the nearest-neighbour distances from held-apart training
images to the reference training images: a generated image nearer than that is nearer to some training
image than 99% of real training images are to their own nearest neighbour.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MemorisationThreshold:
    """The real side: the same for every generator checked against one reference set."""
    threshold: float  # the percentile of train-to-train nearest-neighbour distances
    percentile: float
    train_nn: torch.Tensor  # [Q] train-to-train nearest-neighbour distances


@dataclass
class MemorisationResult:
    share: float  # share of generated images below the threshold
    generated_nn: torch.Tensor  # [G] distance of each generated image to its nearest reference image
    generated_nn_index: torch.Tensor  # [G] index of that image in the reference set


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query's nearest reference row, by L2 over flattened images."""
    q, r = queries.flatten(1).float(), reference.flatten(1).float()
    distances, indices = [], []
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i:i + chunk], r)
        best = d.min(dim=1)
        distances.append(best.values)
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)


def memorisation_threshold(reference: torch.Tensor, held_apart: torch.Tensor,
                           percentile: float = 1.0) -> MemorisationThreshold:
    """`reference` and `held_apart` are disjoint real training images in [-1, 1]."""
    train_nn, _ = nearest_neighbours(held_apart, reference)
    return MemorisationThreshold(torch.quantile(train_nn.double(), percentile / 100).item(), percentile, train_nn)


def memorisation(generated: torch.Tensor, reference: torch.Tensor,
                 threshold: MemorisationThreshold) -> MemorisationResult:
    """`generated` and `reference` in [-1, 1]; `threshold` made from the same reference images."""
    gen_nn, gen_index = nearest_neighbours(generated, reference)
    share = (gen_nn < threshold.threshold).float().mean().item()
    return MemorisationResult(round(share, 4), gen_nn, gen_index)
