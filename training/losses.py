"""Adversarial and auxiliary losses. Every loss takes raw logits: no sigmoid or softmax before them."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

ADVERSARIAL_LOSSES = ("nonsaturating", "lsgan", "hinge")


def d_adversarial(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss on real and fake source logits."""
    if kind == "nonsaturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE(real, 1) + BCE(fake, 0)
    if kind == "lsgan":
        return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose from {ADVERSARIAL_LOSSES}")


def g_adversarial(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss on the source logits of its samples."""
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()  # BCE(fake, 1): the non-saturating form
    if kind == "lsgan":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose from {ADVERSARIAL_LOSSES}")


def class_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of raw class logits against integer labels (the softmax lives inside)."""
    return F.cross_entropy(logits, labels)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x critic(x_hat)||_2 - 1)^2] on random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    return gradient_norm_penalty(critic(x_hat), x_hat)


def gradient_norm_penalty(out: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """(||grad_x sum(out)||_2 - 1)^2 per sample, averaged; `out` was computed from `x_hat` (requires grad).
    Apart from gradient_penalty so a family can evaluate x_hat in the same D forward as real and fake."""
    grad, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def attribute_loss(logits: torch.Tensor, targets: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """StarGAN's classification loss on raw logits [B, A] against 0/1 targets [B, A]: BCE for each binary
    attribute and softmax cross-entropy inside each one-hot group, summed over attributes, mean over the batch.
    A binary target that is neither 0 nor 1 (NaN: not labelled, or the stand-in an edit keeps for it) scores
    nothing, as StarGAN's mask vector leaves out the labels a dataset lacks."""
    grouped = {i for g in groups for i in g}
    binary = [i for i in range(logits.shape[1]) if i not in grouped]
    loss = logits.new_zeros(())
    if binary:
        target = targets[:, binary].to(logits.dtype)
        labelled = (target == 0) | (target == 1)
        weight = None if bool(labelled.all()) else labelled.to(logits.dtype)
        loss = loss + F.binary_cross_entropy_with_logits(
            logits[:, binary], target.where(labelled, 0.5), weight=weight, reduction="sum") / logits.shape[0]
    for group in groups:
        loss = loss + F.cross_entropy(logits[:, group], targets[:, group].argmax(1))
    return loss


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between vertical and between horizontal neighbours of [B, C, H, W], summed."""
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
