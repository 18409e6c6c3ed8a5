"""Family name -> its training steps and default adversarial loss."""
from __future__ import annotations

from training.families.base import FamilySteps, StepContext
from training.families.class_conditional import ACGANSteps, CGANSteps
from training.families.pytorchgan import LOSS_NAME as PYTORCHGAN_LOSS
from training.families.pytorchgan import PyTorchGANACGANSteps
from training.families.stargan import StarGANSteps

FAMILY_STEPS: dict[str, type[FamilySteps]] = {"acgan": ACGANSteps, "cgan": CGANSteps, "stargan": StarGANSteps,
                                               "acgan-pytorchgan": PyTorchGANACGANSteps}
DEFAULT_LOSS = {"acgan": "nonsaturating", "cgan": "hinge", "stargan": "wgan-gp", "acgan-pytorchgan": PYTORCHGAN_LOSS}

__all__ = ["DEFAULT_LOSS", "FAMILY_STEPS", "FamilySteps", "StepContext"]
