"""Family name -> its training steps and default adversarial loss."""
from __future__ import annotations

from training.families.base import FamilySteps, StepContext
from training.families.class_conditional import ACGANSteps, CGANSteps

FAMILY_STEPS: dict[str, type[FamilySteps]] = {"acgan": ACGANSteps, "cgan": CGANSteps}
DEFAULT_LOSS = {"acgan": "nonsaturating", "cgan": "hinge"}

__all__ = ["DEFAULT_LOSS", "FAMILY_STEPS", "FamilySteps", "StepContext"]
