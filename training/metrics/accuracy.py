"""Judge accuracy: the share of images a classifier assigns to their label, overall and per class."""
from __future__ import annotations

import torch


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Accuracy of each class among the images labelled with it (classes with no image are left out)."""
    out = {}
    for index, name in enumerate(classes):
        mask = labels == index
        if mask.any():
            out[name] = round((predicted[mask] == index).float().mean().item(), 4)
    return out


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        raise ValueError("no images to score")
    return round((predicted == labels).float().mean().item(), 4)
