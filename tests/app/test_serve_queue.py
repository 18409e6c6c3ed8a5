"""The inference queue on its own, with fake models: packing, splitting, bounds, deadlines, drops, failures."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from app.queue import DeadlineExceeded, InferenceQueue, JobDropped, JobFailed, QueueFull

pytestmark = pytest.mark.anyio


class FakeModel:
    """run() doubles its rows; it can wait at a gate and raise for batches holding a bad value."""

    def __init__(self, name: str = "fake", bad: float | None = None):
        self.name = name
        self.device = torch.device("cpu")
        self.bad = bad
        self.batches: list[torch.Tensor] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        v = batch["v"]
        self.batches.append(v.clone())
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(60)
        if self.bad is not None and (v == self.bad).any():
            raise RuntimeError("bad row")
        return v * 2

    def seen(self) -> list[float]:
        return [float(x) for b in self.batches for x in b]


def rows(*values: float) -> dict[str, torch.Tensor]:
    return {"v": torch.tensor(values, dtype=torch.float32)}


async def hold(queue: InferenceQueue, model: FakeModel) -> asyncio.Task:
    """Occupy the worker with a one-row job held at the model's gate; returns that job's task."""
    model.gate = threading.Event()
    task = asyncio.create_task(queue.run(model, rows(-1.0)))
    assert await asyncio.to_thread(model.entered.wait, 60)
    return task


async def settle(queue: InferenceQueue) -> None:
    while queue.queued_rows or queue.running:
        await asyncio.sleep(0.005)


@pytest.fixture
def queue():
    q = InferenceQueue(max_batch_rows=4, max_queue_rows=10, request_timeout_s=60, pad_batches=False)
    yield q
    q.close(timeout=5)


async def test_queued_jobs_share_one_batch_in_order(queue):
    model = FakeModel()
    held = await hold(queue, model)
    tasks = [asyncio.create_task(queue.run(model, rows(float(i)))) for i in range(3)]
    await asyncio.sleep(0.05)
    model.gate.set()
    results = await asyncio.gather(held, *tasks)
    assert [r.tolist() for r in results[1:]] == [[0.0], [2.0], [4.0]]
    assert [b.tolist() for b in model.batches] == [[-1.0], [0.0, 1.0, 2.0]]
    assert queue.stats.max_jobs_in_batch == 3 and queue.stats.batches == 2


async def test_large_job_is_split_and_reassembled(queue):
    model = FakeModel()
    out = await queue.run(model, rows(*range(10)))
    assert out.tolist() == [2.0 * i for i in range(10)]
    assert [len(b) for b in model.batches] == [4, 4, 2]


async def test_rows_of_jobs_are_packed_up_to_max_batch_rows(queue):
    model = FakeModel()
    held = await hold(queue, model)
    tasks = [asyncio.create_task(queue.run(model, rows(*[10.0 * j + i for i in range(3)]))) for j in range(3)]
    await asyncio.sleep(0.05)
    model.gate.set()
    results = await asyncio.gather(held, *tasks)
    # 9 rows in batches of 4: the second job is split across the first two batches.
    assert [len(b) for b in model.batches[1:]] == [4, 4, 1]
    assert [r.tolist() for r in results[1:]] == [[0.0, 2.0, 4.0], [20.0, 22.0, 24.0], [40.0, 42.0, 44.0]]


async def test_oldest_job_picks_the_model(queue):
    a, b = FakeModel("a"), FakeModel("b")
    held = await hold(queue, a)
    order = []

    async def go(model, v):
        await queue.run(model, rows(v))
        order.append(model.name)

    tasks = [asyncio.create_task(go(b, 1.0))]
    await asyncio.sleep(0.02)
    tasks.append(asyncio.create_task(go(a, 2.0)))
    await asyncio.sleep(0.02)
    tasks.append(asyncio.create_task(go(b, 3.0)))
    await asyncio.sleep(0.02)
    a.gate.set()
    await asyncio.gather(held, *tasks)
    # b's job is oldest, so b runs first and takes both its jobs; then a.
    assert b.batches[0].tolist() == [1.0, 3.0]
    assert order[-1] == "a"


async def test_queue_full_refuses_at_once_with_retry_after(queue):
    model = FakeModel()
    held = await hold(queue, model)
    waiting = asyncio.create_task(queue.run(model, rows(*range(8))))
    await asyncio.sleep(0.02)
    with pytest.raises(QueueFull) as info:
        await queue.run(model, rows(1.0, 2.0, 3.0))
    assert info.value.retry_after >= 1
    assert queue.stats.rejected == 1 and queue.queued_rows == 8
    # Two more rows still fit.
    fits = asyncio.create_task(queue.run(model, rows(20.0, 21.0)))
    await asyncio.sleep(0.02)
    model.gate.set()
    await asyncio.gather(held, waiting, fits)
    assert 3.0 not in model.seen()[9:] and 20.0 in model.seen()


async def test_deadline_passes_before_running_gives_504_and_the_job_never_runs(queue):
    model = FakeModel()
    held = await hold(queue, model)
    with pytest.raises(DeadlineExceeded):
        await queue.run(model, rows(7.0), timeout_s=0.1)
    model.gate.set()
    await held
    await settle(queue)
    assert 7.0 not in model.seen()
    assert queue.stats.timed_out == 1 and queue.queued_rows == 0


async def test_worker_side_expiry(queue):
    """A job whose deadline passed while queued is removed by the worker even if nobody is waiting on it."""
    model = FakeModel()
    held = await hold(queue, model)
    job = queue.submit(model, rows(8.0), timeout_s=0.05)
    await asyncio.sleep(0.1)
    model.gate.set()
    await held
    with pytest.raises(DeadlineExceeded):
        await job.future
    assert 8.0 not in model.seen() and queue.stats.timed_out == 1


async def test_dropped_job_never_runs(queue):
    model = FakeModel()
    held = await hold(queue, model)
    gone = asyncio.Event()

    async def disconnected() -> bool:
        return gone.is_set()

    task = asyncio.create_task(queue.run(model, rows(9.0), disconnected=disconnected))
    other = asyncio.create_task(queue.run(model, rows(10.0)))
    await asyncio.sleep(0.02)
    gone.set()
    with pytest.raises(JobDropped):
        await task
    model.gate.set()
    await asyncio.gather(held, other)
    await settle(queue)
    assert 9.0 not in model.seen() and 10.0 in model.seen()
    assert queue.stats.dropped == 1 and queue.queued_rows == 0


async def test_cancelled_waiter_drops_its_job(queue):
    model = FakeModel()
    held = await hold(queue, model)
    task = asyncio.create_task(queue.run(model, rows(11.0)))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # the cancellation has reached the waiter (and dropped the job) before the worker goes on
    model.gate.set()
    await held
    await settle(queue)
    assert 11.0 not in model.seen() and queue.stats.dropped == 1


async def test_failing_job_fails_alone_after_halving(queue):
    model = FakeModel(bad=13.0)
    held = await hold(queue, model)
    tasks = [asyncio.create_task(queue.run(model, rows(float(v)))) for v in (12.0, 13.0, 14.0, 15.0)]
    await asyncio.sleep(0.05)
    model.gate.set()
    results = await asyncio.gather(held, *tasks, return_exceptions=True)
    assert isinstance(results[2], JobFailed) and "bad row" in str(results[2])
    assert [r.tolist() for i, r in enumerate(results[1:]) if i != 1] == [[24.0], [28.0], [30.0]]
    # [12 13 14 15] fails, [12 13] fails, [12] ok, [13] fails alone, [14 15] ok.
    assert [b.tolist() for b in model.batches[1:]] == [[12, 13, 14, 15], [12, 13], [12], [13], [14, 15]]
    assert queue.stats.failed == 1 and queue.stats.failed_forwards == 3
    # The worker lives on.
    assert (await queue.run(model, rows(1.0))).tolist() == [2.0]


async def test_a_failed_split_job_does_not_run_its_remaining_rows():
    q = InferenceQueue(max_batch_rows=2, max_queue_rows=100, pad_batches=False)
    try:
        model = FakeModel(bad=1.0)
        with pytest.raises(JobFailed):
            await q.run(model, rows(0.0, 1.0, 2.0, 3.0, 4.0, 5.0))
        await settle(q)
        assert model.seen() == [0.0, 1.0]
        assert q.queued_rows == 0
    finally:
        q.close(5)


async def test_padding_gives_every_forward_the_same_shape():
    q = InferenceQueue(max_batch_rows=4, pad_batches=True)
    try:
        model = FakeModel()
        out = await q.run(model, rows(3.0))
        assert out.tolist() == [6.0]
        assert model.batches[0].tolist() == [3.0, 3.0, 3.0, 3.0]
        assert q.stats.rows == 1 and q.stats.padded_rows == 3
    finally:
        q.close(5)


async def test_max_wait_gathers_rows_that_arrive_later():
    # The batch fills at two rows, which ends the wait at once: the test is quick but tolerates a slow machine.
    q = InferenceQueue(max_batch_rows=2, max_wait_ms=20_000, pad_batches=False)
    try:
        model = FakeModel()
        first = asyncio.create_task(q.run(model, rows(1.0)))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(q.run(model, rows(2.0)))
        await asyncio.gather(first, second)
        assert [b.tolist() for b in model.batches] == [[1.0, 2.0]]
    finally:
        q.close(5)


async def test_max_wait_stops_waiting_when_the_batch_is_full():
    q = InferenceQueue(max_batch_rows=2, max_wait_ms=60_000, pad_batches=False)
    try:
        model = FakeModel()
        start = time.monotonic()
        await q.run(model, rows(1.0, 2.0))
        assert time.monotonic() - start < 30
    finally:
        q.close(5)


async def test_idle_worker_does_not_wait():
    """max_wait_ms=0: a lone job runs as soon as it is queued (a wait of 30 s would fail this)."""
    q = InferenceQueue(max_batch_rows=64, max_wait_ms=0, pad_batches=False, request_timeout_s=30)
    try:
        assert (await q.run(FakeModel(), rows(1.0))).tolist() == [2.0]
    finally:
        q.close(5)


async def test_close_finishes_queued_jobs_then_refuses(queue):
    model = FakeModel()
    held = await hold(queue, model)
    pending = asyncio.create_task(queue.run(model, rows(4.0)))
    await asyncio.sleep(0.02)
    closer = asyncio.create_task(asyncio.to_thread(queue.close, 5))
    await asyncio.sleep(0.02)
    model.gate.set()
    await closer
    assert (await pending).tolist() == [8.0]
    await held
    with pytest.raises(QueueFull, match="shutting down"):
        await queue.run(model, rows(1.0))
    assert not queue.alive


async def test_an_error_while_preparing_a_batch_fails_the_job_not_the_worker(queue, monkeypatch):
    model = FakeModel()
    calls = {"n": 0}
    original = queue._collate

    def flaky(segments, n):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("bug")
        return original(segments, n)

    monkeypatch.setattr(queue, "_collate", flaky)
    with pytest.raises(JobFailed):
        await queue.run(model, rows(1.0))
    assert (await queue.run(model, rows(2.0))).tolist() == [4.0]
    assert queue.alive


async def test_a_model_returning_too_few_rows_fails_the_job_not_the_worker(queue):
    model = FakeModel()
    model.run = lambda batch: batch["v"][:1] * 2  # type: ignore[method-assign]
    with pytest.raises(JobFailed, match="returned 1 rows for 2"):
        await queue.run(model, rows(1.0, 2.0))
    assert (await queue.run(model, rows(3.0))).tolist() == [6.0]
    assert queue.alive
