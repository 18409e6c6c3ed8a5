"""A row's numbers must not depend on the rows it shares a forward pass with.

On the CPU (and on GPUs) kernels choose their algorithm by batch size, so the same row computed in a
batch of 1 and in a batch of 5 can differ in the last float bits, and now and then a pixel rounds the
other way. The queue therefore runs every forward at one fixed shape (padded to max_batch_rows); with
that, a row's float output is bit-identical whatever its position and company. These tests compare
float outputs of the real tiny generators, so they fail when the padding is switched off.
"""
from __future__ import annotations

import asyncio
import threading

import pytest
import torch

import models
from app.queue import InferenceQueue
from models import seeded_latents

pytestmark = pytest.mark.anyio


class FloatGenerator:
    """A real generator behind the queue's model interface, returning its raw float output."""

    def __init__(self, family: str):
        torch.manual_seed(1)
        self.name = family
        self.device = torch.device("cpu")
        self.g = models.build(family, num_classes=10, image_size=28, channels=1, latent_dim=16, g_width=8).eval()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def run(self, batch):
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(60)
            self.gate = None
        with torch.inference_mode():
            return self.g(batch["z"], batch["y"])


def job(seed: int, n: int, cls: int) -> dict[str, torch.Tensor]:
    y = torch.zeros(n, 10)
    y[:, cls] = 1.0
    return {"z": seeded_latents(seed, n, 16), "y": y}


async def alone_and_amid(family: str, pad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    q = InferenceQueue(max_batch_rows=16, pad_batches=pad)
    try:
        model = FloatGenerator(family)
        alone = await q.run(model, job(7, 3, 2))
        model.gate = threading.Event()
        blocker = asyncio.create_task(q.run(model, job(1, 1, 0)))
        assert await asyncio.to_thread(model.entered.wait, 60)
        before = [asyncio.create_task(q.run(model, job(100 + i, 4, i))) for i in range(2)]
        target = asyncio.create_task(q.run(model, job(7, 3, 2)))
        after = [asyncio.create_task(q.run(model, job(200 + i, 2, i))) for i in range(3)]
        await asyncio.sleep(0.05)
        model.gate.set()
        await asyncio.gather(blocker, *before, *after)
        assert q.stats.max_jobs_in_batch == 6  # the target ran at offset 8 of a 14-row batch
        return alone, await target
    finally:
        q.close(5)


@pytest.mark.parametrize("family", ["acgan", "cgan"])
async def test_padded_forward_is_bit_identical_alone_and_amid_others(family):
    alone, amid = await alone_and_amid(family, pad=True)
    assert torch.equal(alone, amid)


def test_stargan_rows_are_independent_of_their_company_at_a_fixed_shape():
    torch.manual_seed(2)
    g = models.build("stargan", num_attributes=3, image_size=8, g_width=4, res_blocks=1, d_layers=2).eval()
    x, c = torch.rand(6, 3, 8, 8) * 2 - 1, torch.rand(6, 3)
    with torch.inference_mode():
        ref = g(x, c)
        perm = torch.randperm(6)
        other = g(x[perm], c[perm])
    assert torch.equal(ref[perm], other)
