"""The PyTorch-GAN ACGAN recipe's losses (implementations/acgan/acgan.py), as published: the baseline.

D outputs probabilities (a sigmoid and a softmax, models/pytorchgan_acgan.py). The adversarial loss is
BCE on the sigmoid output; the auxiliary loss is CrossEntropyLoss on the SOFTMAX output, so the class
probabilities go through a second softmax: a known mistake that flattens the class gradient, kept
because the baseline is the recipe as people run it. The losses are the recipe's:
  D: ((BCE(real, 1) + CE(real)) / 2 + (BCE(fake, 0) + CE(fake)) / 2) / 2, G: (BCE(fake, 1) + CE(fake)) / 2.
Real and fake go through D in separate forwards, as published (BatchNorm sees one kind per batch), and
one batch of fakes serves both steps, as published (G runs forward once a step). One difference of order:
condgen's loop runs the D step before the G step; the recipe updates G first.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from training.families.class_conditional import ClassConditionalSteps

LOSS_NAME = "pytorchgan-bce-on-probabilities"


def _full_precision(device: torch.device):
    # F.binary_cross_entropy refuses to run under CUDA autocast; the recipe ran in float32 anyway.
    return torch.autocast(device.type, enabled=False) if device.type == "cuda" else nullcontext()


def bce(probability: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy(probability.float(), torch.full_like(probability.float(), target))


def ce_on_probabilities(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CrossEntropyLoss applied to softmax output, as the recipe does (softmax twice): kept on purpose."""
    return F.cross_entropy(probabilities.float(), labels)


class PyTorchGANACGANSteps(ClassConditionalSteps):
    def __init__(self, arch, loss, labels_info, input_padding: int = 0):
        super().__init__(arch, loss, labels_info)
        if loss != LOSS_NAME:
            raise ValueError(f"the PyTorch-GAN recipe has one loss ({LOSS_NAME}), not {loss!r}")
        # Pixels of padding added around each real image to reach the recipe's 32 px (Fashion-MNIST is 28);
        # not used in training, recorded in the checkpoint so evaluation can crop it off.
        self.input_padding = input_padding

    def d_step(self, ctx, real, labels):
        fake, _, fake_labels, _ = self.d_fakes(ctx, real.shape[0])  # the G step reuses them, as published
        real_pred, real_aux = ctx.D(real)
        fake_pred, fake_aux = ctx.D(fake)
        with _full_precision(ctx.device):
            d_real = (bce(real_pred, 1.0) + ce_on_probabilities(real_aux, labels)) / 2
            d_fake = (bce(fake_pred, 0.0) + ce_on_probabilities(fake_aux, fake_labels)) / 2
            loss = (d_real + d_fake) / 2
        with torch.no_grad():
            acc = torch.cat([real_aux.argmax(1) == labels, fake_aux.argmax(1) == fake_labels]).float().mean()
        return loss, {"d_loss": loss.item(), "d_acc": acc.item()}

    def g_step(self, ctx, real, labels):
        fake, _, fake_labels, _ = self.g_fakes(ctx, real.shape[0])
        validity, pred_label = ctx.D(fake)
        with _full_precision(ctx.device):
            loss = 0.5 * (bce(validity, 1.0) + ce_on_probabilities(pred_label, fake_labels))
        return loss, {"g_loss": loss.item()}
