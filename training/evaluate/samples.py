"""Generated samples for evaluation, brought to the judge's geometry."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.checkpoint import Checkpoint
from training.generate import generate


def sample_labels(num_classes: int, per_class: int) -> torch.Tensor:
    """The labels of class_samples' images: per_class of each class, in class order."""
    return torch.arange(num_classes).repeat_interleave(per_class)


@torch.no_grad()
def class_samples(ckpt: Checkpoint, per_class: int, seed: int, batch_size: int = 250,
                  truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class images of every class in [-1, 1] (class k, image i drawn from seed + k * per_class + i), and labels.
    truncation: latents drawn with |z_i| <= psi (as the service's truncation option draws them); None: N(0, 1)."""
    images = []
    for index in range(len(ckpt.classes or [])):
        base = seed + index * per_class  # the seeds `python -m training score` uses
        for start in range(0, per_class, batch_size):
            n = min(batch_size, per_class - start)
            images.append(generate(ckpt, index, n, base + start, truncation).float().cpu())
    return torch.cat(images), sample_labels(len(ckpt.classes or []), per_class)


def fit_to_judge(images: torch.Tensor, padding: int, image_size: int, channels: int) -> torch.Tensor:
    """Crop the padding a checkpoint was trained with (training.input_padding), then resize and convert
    channels if the generator's images still differ from the judge's."""
    if padding:
        images = images[..., padding:-padding, padding:-padding]
    if images.shape[1] != channels:
        if channels == 1 and images.shape[1] == 3:
            images = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        else:
            raise ValueError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")
    if images.shape[-1] != image_size or images.shape[-2] != image_size:
        mode = "area" if image_size < images.shape[-1] else "bilinear"
        images = F.interpolate(images, size=(image_size, image_size), mode=mode).clamp(-1, 1)
    return images.contiguous()
