"""Family name -> (arch dataclass, generator, discriminator). `build` is how a checkpoint is rebuilt."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from torch import nn

from models.acgan import ACGANDiscriminator
from models.acgan_arch import ClassConditionalArch
from models.cgan import ProjectionDiscriminator
from models.generator import ConditionalGenerator
from models.pytorchgan_acgan import PyTorchGANArch, PyTorchGANDiscriminator, PyTorchGANGenerator
from models.stargan import StarGANArch, StarGANDiscriminator, StarGANGenerator


@dataclass(frozen=True)
class Family:
    name: str
    arch_type: type
    generator: Callable[[Any], nn.Module]
    discriminator: Callable[[Any], nn.Module]
    conditioning: str  # "classes" or "attributes": what the checkpoint metadata must list


FAMILIES: dict[str, Family] = {
    "acgan": Family("acgan", ClassConditionalArch, ConditionalGenerator, ACGANDiscriminator, "classes"),
    "cgan": Family("cgan", ClassConditionalArch, ConditionalGenerator, ProjectionDiscriminator, "classes"),
    "stargan": Family("stargan", StarGANArch, StarGANGenerator, StarGANDiscriminator, "attributes"),
    # The baseline condgen's ACGAN is measured against (issue 5); evaluated, never served.
    "acgan-pytorchgan": Family("acgan-pytorchgan", PyTorchGANArch, PyTorchGANGenerator, PyTorchGANDiscriminator,
                               "classes"),
}


def register_family(family: Family) -> None:
    FAMILIES[family.name] = family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def make_arch(family: str, **arch: Any):
    """Validate `arch` against the family's constructor arguments and return the arch dataclass."""
    arch_type = get_family(family).arch_type
    known = {f.name for f in fields(arch_type)}
    unknown = sorted(set(arch) - known)
    if unknown:
        raise ValueError(f"unknown {family} arch fields {unknown}; known: {sorted(known)}")
    try:
        return arch_type(**arch)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"bad {family} arch {arch}: {exc}") from None


def build(family: str, **arch: Any) -> nn.Module:
    """Rebuild a family's generator from its constructor arguments (a checkpoint's `arch`)."""
    return get_family(family).generator(make_arch(family, **arch))


def build_discriminator(family: str, options: dict[str, Any] | None = None, **arch: Any) -> nn.Module:
    """A family's discriminator; `options`: keyword arguments of its constructor beyond the arch (training
    choices such as an extra head, which the served checkpoint does not record since it holds G only)."""
    return get_family(family).discriminator(make_arch(family, **arch), **(options or {}))
