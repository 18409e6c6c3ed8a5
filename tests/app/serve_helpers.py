"""Helpers for the service tests (a unique module name: tests/ dirs have no __init__.py)."""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import torch
from fastapi import FastAPI

import models
from app.main import create_app
from app.registry import ServedModel
from app.settings import Settings

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
ATTRIBUTES = ["light", "dark", "smiling"]
GROUPS = [["light", "dark"]]
LATENT = 16


def write_checkpoints(directory: Path) -> Path:
    """acgan and cgan (28 px, grey), stargan (16 px, RGB): widths of 8 so every forward is cheap."""
    torch.manual_seed(0)
    for family in ("acgan", "cgan"):
        arch = dict(num_classes=10, image_size=28, channels=1, latent_dim=LATENT, g_width=8, d_width=8)
        g = models.build(family, **arch)
        # Non-trivial BatchNorm statistics, so images are not flat grey.
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        models.save_checkpoint(directory / f"{family}.safetensors", g, family, arch,
                               {"dataset": "random", "steps": 0}, classes=CLASSES)
    arch = dict(num_attributes=3, image_size=16, channels=3, g_width=8, d_width=8, res_blocks=1, d_layers=2)
    models.save_checkpoint(directory / "stargan.safetensors", models.build("stargan", **arch), "stargan", arch,
                           {"dataset": "random"}, attributes=ATTRIBUTES, attribute_groups=GROUPS)
    return directory


def settings_for(directory: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(checkpoint_dir=directory, device="cpu", max_batch_rows=8, max_samples=16,
                                  request_timeout_s=60.0)
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_app(directory: Path, **overrides: Any):
    """(app, AsyncClient over ASGITransport) with the lifespan run, for tests that need real concurrency."""
    app = create_app(settings_for(directory, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:
            yield app, http


def served(app: FastAPI, name: str) -> ServedModel:
    return app.state.services.registry.models[name]


class Probe:
    """Wraps a served model's run(): records every batch it runs, can hold the worker at a gate, and can
    raise for batches holding a poisoned latent row. The queue calls model.run, so this sees all it does."""

    def __init__(self, model: ServedModel):
        self.model = model
        self.inner = model.run
        self.batches: list[dict[str, torch.Tensor]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.poison: torch.Tensor | None = None
        model.run = self.run  # type: ignore[method-assign]

    def hold(self) -> None:
        """The next batch waits at the gate until release()."""
        self.gate = threading.Event()
        self.entered.clear()

    def release(self) -> None:
        if self.gate is not None:
            self.gate.set()

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.batches.append({k: v.clone() for k, v in batch.items()})
        gate = self.gate
        if gate is not None:
            self.entered.set()
            gate.wait(60)
            self.gate = None
        if self.poison is not None and (batch["z"] == self.poison).all(dim=1).any():
            raise RuntimeError("poisoned row")
        return self.inner(batch)

    def saw(self, z: torch.Tensor) -> bool:
        """Did any batch run hold this latent row?"""
        return any((b["z"] == z).all(dim=1).any() for b in self.batches)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 60), "the worker never reached the gate"


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)
