"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a classifier on generated images only,
test it on real test images; beside it the same classifier, same budget, trained on as many real images.

A generator whose samples carry the class features in their real proportions gives a classifier close to
the real-data one; a generator that drops modes or draws wrong classes gives a poor one. The classifier is
the judge's architecture (training/judge.py), trained from scratch here, never the judge itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from training.data import ImageDataset
from training.judge import train_judge


@dataclass
class CASResult:
    cas: float  # real test accuracy of the classifier trained on generated images
    real: float  # real test accuracy of the classifier trained on real training images
    train_images: int
    epochs: int

    @property
    def ratio(self) -> float:
        return self.cas / self.real if self.real > 0 else float("nan")


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 [0, 255], the storage of every ImageDataset."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def classifier_accuracy(train: ImageDataset, real_test: ImageDataset, epochs: int, seed: int = 0,
                        batch_size: int = 128, progress: bool = False) -> float:
    """Real test accuracy of a fresh classifier trained on `train`: generated images for CAS, or real ones
    (a class_matched_subset, as many of each class as the generated set holds) for its reference."""
    classifier = train_judge(train, real_test, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress)
    return round(classifier.test_accuracy, 4)


def classification_accuracy_score(generated: torch.Tensor, generated_labels: torch.Tensor, real_train: ImageDataset,
                                  real_test: ImageDataset, epochs: int, seed: int = 0, batch_size: int = 128,
                                  progress: bool = False, real_accuracy: float | None = None) -> CASResult:
    """`generated` in [-1, 1]. `real_accuracy`: classifier_accuracy of the class-matched real subset for these
    labels and settings, when the caller already has it (the same for every generator; trained here otherwise)."""
    fake = ImageDataset("generated", to_uint8_images(generated), generated_labels.cpu(), list(real_test.classes))
    if real_accuracy is None:
        real_subset = class_matched_subset(real_train, generated_labels, seed)
        real_accuracy = classifier_accuracy(real_subset, real_test, epochs, seed, batch_size, progress)
    cas = classifier_accuracy(fake, real_test, epochs, seed, batch_size, progress)
    return CASResult(cas, real_accuracy, len(fake), epochs)


def class_matched_subset(data: ImageDataset, labels: torch.Tensor, seed: int) -> ImageDataset:
    """As many real images of each class as `labels` holds, drawn without replacement with a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for index in range(len(data.classes)):
        want = int((labels == index).sum())
        pool = torch.nonzero(data.labels == index).flatten()
        if want > len(pool):
            raise ValueError(f"class {data.classes[index]!r} has {len(pool)} real images, {want} asked for")
        picked.append(pool[torch.randperm(len(pool), generator=gen)[:want]])
    idx = torch.cat(picked)
    return ImageDataset(data.name, data.images[idx], data.labels[idx], data.classes)
