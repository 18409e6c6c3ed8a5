"""The served models: every *.safetensors at the top of CHECKPOINT_DIR, loaded, moved to the device and warmed up.

A file that cannot be served is skipped with its reason (logged, and shown by /readyz and /models),
so one bad file never keeps the others from being served.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from models import Checkpoint, CheckpointError, load_checkpoint, make_arch
from models.images import to_uint8

log = logging.getLogger("condgen.registry")

# The generator's positional inputs per family, in call order: G(z, y) or G(x, c).
FAMILY_INPUTS = {"acgan": ("z", "y"), "cgan": ("z", "y"), "stargan": ("x", "c")}


@dataclass(eq=False)
class ServedModel:
    """One checkpoint on its device: what the queue runs and what /models describes."""

    checkpoint: Checkpoint
    device: torch.device
    dtype: torch.dtype = torch.float32
    load_seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.checkpoint.name

    @property
    def family(self) -> str:
        return self.checkpoint.family

    @property
    def inputs(self) -> tuple[str, ...]:
        return FAMILY_INPUTS[self.family]

    @cached_property
    def arch(self) -> dict[str, Any]:
        """The full constructor arguments: a checkpoint's `arch` may leave defaults out."""
        return asdict(make_arch(self.family, **self.checkpoint.arch))

    @property
    def image_size(self) -> int:
        return int(self.arch["image_size"])

    @property
    def channels(self) -> int:
        return int(self.arch["channels"])

    @property
    def latent_dim(self) -> int | None:
        return int(self.arch["latent_dim"]) if "latent_dim" in self.arch else None

    @property
    def classes(self) -> list[str] | None:
        return self.checkpoint.classes

    @property
    def attributes(self) -> list[str] | None:
        return self.checkpoint.attributes

    @property
    def operations(self) -> list[str]:
        return ["edit"] if self.family == "stargan" else ["sample", "interpolate"]

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "family": self.family, "operations": self.operations}
        if self.classes is not None:
            out["classes"] = self.classes
        if self.attributes is not None:
            out["attributes"] = self.attributes
            out["attribute_groups"] = self.checkpoint.attribute_groups
        out.update(image_size=self.image_size, channels=self.channels, latent_dim=self.latent_dim,
                   device=str(self.device), dtype=str(self.dtype).removeprefix("torch."),
                   training=self.checkpoint.training)
        return out

    def dummy_rows(self, n: int) -> dict[str, torch.Tensor]:
        """Inputs of the right shapes (for warm-up): zeros latents / a mid-grey image, the first condition."""
        if self.family == "stargan":
            c = torch.zeros(n, len(self.attributes or []))
            return {"x": torch.zeros(n, self.channels, self.image_size, self.image_size), "c": c}
        y = torch.zeros(n, len(self.classes or []))
        y[:, 0] = 1.0
        return {"z": torch.zeros(n, self.latent_dim or 0), "y": y}

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """CPU float rows -> uint8 [B, H, W, C] on the CPU. Called only from the device's worker thread.

        On CUDA the host side is pinned so the copies can be asynchronous; the conversion to uint8 runs
        on the device so a quarter of the bytes come back.
        """
        cuda = self.device.type == "cuda"
        args = []
        for key in self.inputs:
            t = batch[key]
            if cuda:
                t = t.pin_memory().to(self.device, non_blocking=True)
            args.append(t.to(self.dtype) if t.is_floating_point() else t)
        with torch.inference_mode():
            images = self.checkpoint.generator(*args)
            if not cuda:
                return to_uint8(images)
            u8 = images.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
            u8 = u8.permute(0, 2, 3, 1).contiguous()
            host = torch.empty(u8.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(u8, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            return host


@dataclass
class Registry:
    models: dict[str, ServedModel] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> why it is not served
    checkpoint_dir: str = ""

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)


# How torch.save files and raw pickles begin: a zip archive, or the pickle PROTO opcode.
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


def refuse_pickle(path: Path) -> None:
    """Name the usual mistake plainly: a torch.save file renamed .safetensors. It is never opened as one."""
    with path.open("rb") as f:
        head = f.read(9)
    # A safetensors file is an 8-byte header length, then the JSON header: its ninth byte is "{".
    if head[8:9] != b"{" and head.startswith(PICKLE_MAGIC):
        raise CheckpointError(path, "a pickle (torch.save) file, not safetensors: refused, since unpickling "
                                    "can run code; save the generator with models.save_checkpoint")


def channels_last_pays(family: str, device: torch.device) -> bool:
    """NHWC weights where measured to pay (benchmarks/README.md): on the CPU they cut the class-conditional
    generators' forward by about 10%, while StarGAN's residual blocks got slower at batch 64. Not measured
    on a GPU yet, so left off there."""
    return device.type == "cpu" and family in ("acgan", "cgan")


def load_one(path: Path, device: torch.device, dtype: torch.dtype, warmup_rows: int) -> ServedModel:
    start = time.perf_counter()
    refuse_pickle(path)
    checkpoint = load_checkpoint(path, device=device)
    if checkpoint.family not in FAMILY_INPUTS:
        raise CheckpointError(path, f"family {checkpoint.family!r} has no serving code")
    if dtype != torch.float32:
        checkpoint.generator.to(dtype)
    if channels_last_pays(checkpoint.family, device):
        checkpoint.generator.to(memory_format=torch.channels_last)
    model = ServedModel(checkpoint, device, dtype)
    # Warm-up at the shape the queue will use, so the first request pays no allocation or autotuning.
    out = model.run(model.dummy_rows(warmup_rows))
    expected = (warmup_rows, model.image_size, model.image_size, model.channels)
    if tuple(out.shape) != expected:
        raise CheckpointError(path, f"generator returned shape {tuple(out.shape)}, expected {expected}")
    model.load_seconds = time.perf_counter() - start
    return model


def load_registry(checkpoint_dir: Path, device: torch.device, dtype: torch.dtype, warmup_rows: int) -> Registry:
    registry = Registry(checkpoint_dir=str(checkpoint_dir))
    if not checkpoint_dir.is_dir():
        log.warning("checkpoint dir %s does not exist: serving no models", checkpoint_dir)
        return registry
    # Top level only: subfolders hold other things (judges, run state), not served models.
    for path in sorted(checkpoint_dir.glob("*.safetensors")):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            model = load_one(path, device, dtype, warmup_rows)
        except CheckpointError as exc:
            reason = exc.reason
        except Exception as exc:  # a broken file must not stop the others: record why and go on
            reason = f"{type(exc).__name__}: {exc}"
        else:
            registry.models[model.name] = model
            log.info("serving %s (%s, %s) from %s, loaded in %.2fs",
                     model.name, model.family, device, path, model.load_seconds)
            continue
        registry.skipped[path.name] = reason
        log.error("skipping %s: %s", path, reason)
    return registry
