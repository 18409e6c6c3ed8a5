"""Family name -> its training steps and default adversarial loss."""
from __future__ import annotations

from training.families.base import FamilySteps, StepContext
from training.families.class_conditional import ACGANSteps, CGANSteps
from training.families.stargan import StarGANSteps

FAMILY_STEPS: dict[str, type[FamilySteps]] = {"acgan": ACGANSteps, "cgan": CGANSteps, "stargan": StarGANSteps}
DEFAULT_LOSS = {"acgan": "nonsaturating", "cgan": "hinge", "stargan": "wgan-gp"}

__all__ = ["DEFAULT_LOSS", "FAMILY_STEPS", "FamilySteps", "StepContext"]
