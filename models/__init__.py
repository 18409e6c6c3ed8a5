"""condgen networks, checkpoint format and latent helpers. Imports torch only."""
from models.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from models.latent import lerp, seeded_latents, slerp, truncated_normal
from models.registry import FAMILIES, build, build_discriminator, get_family, make_arch

__all__ = [
    "FAMILIES", "Checkpoint", "CheckpointError", "build", "build_discriminator", "get_family",
    "lerp", "load_checkpoint", "make_arch", "read_metadata", "save_checkpoint", "seeded_latents",
    "slerp", "truncated_normal",
]
