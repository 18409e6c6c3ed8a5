"""The inference queue (DESIGN.md, Serving): one worker thread per device packs the rows of many requests
into shared forward passes.

- Per-model FIFO queues. The worker takes the model whose oldest job is oldest and packs that model's
  jobs row by row up to max_batch_rows; a larger job is split across batches.
- Idle, it waits for nothing: whatever queued while the last batch ran is the next batch. max_wait_ms > 0
  lets a batch wait that long (from its oldest job's arrival) for more rows.
- Bounded: a job that would push the queued rows past max_queue_rows is refused at once (QueueFull);
  a job whose deadline passes before it runs fails with DeadlineExceeded; a dropped job (its client went
  away) is removed before it runs.
- A failing batch is retried in halves down to single jobs, so only a job that fails alone fails
  (JobFailed). The worker catches everything and never dies.
- With pad_to set, every forward runs at exactly that many rows, so a row's numbers do not depend on
  which other rows share its batch (kernels choose their algorithm by batch size).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

import torch

log = logging.getLogger("condgen.queue")


class Runnable(Protocol):
    """What the queue needs of a model (registry.ServedModel, or a fake in tests)."""

    name: str
    device: torch.device

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


class QueueFull(Exception):
    """503: the queue holds too many rows (or is shutting down); try again after retry_after seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """504: the job's deadline passed before it ran."""


class JobFailed(Exception):
    """500: the forward failed for this job even when run alone."""


class JobDropped(Exception):
    """The job was dropped (its client went away) before it ran."""


class QueueObserver(Protocol):
    """Where the queue reports what it does (app.metrics.Metrics); every method is optional to care about."""

    def queued_rows(self, model: str, rows: int) -> None: ...
    def batch(self, model: str, rows: int, jobs: int, seconds: float) -> None: ...
    def job(self, model: str, outcome: str) -> None: ...


@dataclass
class QueueStats:
    """Counters for tests and operators (the same facts /metrics exports)."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    dropped: int = 0
    rejected: int = 0
    batches: int = 0          # forward passes that succeeded
    failed_forwards: int = 0  # forward passes that raised (each is retried in halves)
    rows: int = 0             # real rows run (padding excluded)
    padded_rows: int = 0
    max_jobs_in_batch: int = 0
    batch_sizes: list[int] = field(default_factory=list)  # real rows per successful batch, last 10,000

    @property
    def mean_batch_rows(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


@dataclass(eq=False)
class Job:
    model: Runnable
    rows: dict[str, torch.Tensor]
    n: int
    deadline: float
    seq: int
    enqueued_at: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    taken: int = 0        # rows handed to batches so far (guarded by the worker lock)
    done_rows: int = 0
    output: torch.Tensor | None = None
    finished: bool = False
    dropped: bool = False  # set from the event loop; read by the worker under its lock

    def settle(self, result: torch.Tensor | None = None, error: BaseException | None = None,
               cancel: bool = False) -> None:
        """Resolve the future from any thread; only the first settlement counts.

        A dropped job's future is cancelled rather than given an error nobody will read (asyncio
        would log "exception was never retrieved").
        """
        if self.finished:
            return
        self.finished = True

        def _set() -> None:
            if self.future.done():
                return
            if cancel:
                self.future.cancel()
            elif error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(_set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


@dataclass
class Segment:
    """Rows [start, stop) of one job inside a batch."""

    job: Job
    start: int
    stop: int


class _DeviceWorker:
    """The per-model FIFOs of one device and the thread that runs them."""

    def __init__(self, owner: "InferenceQueue", device: str):
        self.owner = owner
        self.device = device
        self.queues: dict[str, deque[Job]] = {}
        self.thread = threading.Thread(target=self._loop, name=f"condgen-worker-{device}", daemon=True)

    # --- everything below runs in the worker thread -------------------------------------------------

    def _loop(self) -> None:
        owner = self.owner
        while True:
            try:
                with owner.cond:
                    segments = self._next_batch()
                    if segments is None:
                        return
                    if segments:
                        owner.running += 1
                if segments:
                    try:
                        self._execute(segments)
                    except Exception as exc:  # a bug past the forward: fail these jobs, not the worker
                        log.exception("inference worker %s: unexpected error", self.device)
                        with owner.cond:
                            for seg in segments:
                                owner._fail(seg.job, JobFailed(f"internal error: {type(exc).__name__}: {exc}"))
                    finally:
                        with owner.cond:
                            owner.running -= 1
                            owner.cond.notify_all()
            except Exception:  # a bug here must not kill the service: log it and keep serving
                log.exception("inference worker %s: unexpected error", self.device)
                time.sleep(0.01)

    def _oldest_model(self) -> str | None:
        heads = [(q[0].seq, name) for name, q in self.queues.items() if q]
        return min(heads)[1] if heads else None

    def _next_batch(self) -> list[Segment] | None:
        """Under the lock: wait for work, then take one model's rows. None means: closed and drained."""
        owner = self.owner
        while True:
            self._purge()
            name = self._oldest_model()
            if name is None:
                if owner.closing:
                    return None
                owner.cond.wait()
                continue
            if owner.max_wait_s > 0 and not owner.closing:
                queue = self.queues[name]
                waiting = sum(j.n - j.taken for j in queue if not j.dropped)
                remaining = queue[0].enqueued_at + owner.max_wait_s - time.monotonic()
                if waiting < owner.max_batch_rows and remaining > 0:
                    owner.cond.wait(remaining)
                    continue
            return self._pack(name)

    def _purge(self) -> None:
        """Settle, without running them, the jobs at the heads of the queues that are dropped or expired."""
        now = time.monotonic()
        for queue in self.queues.values():
            while queue:
                job = queue[0]
                if job.dropped or job.finished:
                    outcome = "dropped"
                elif now >= job.deadline:
                    outcome = "timed_out"
                else:
                    break
                queue.popleft()
                self.owner._release(job, job.n - job.taken, outcome)

    def _pack(self, name: str) -> list[Segment]:
        owner = self.owner
        queue = self.queues[name]
        now = time.monotonic()
        capacity = owner.max_batch_rows
        segments: list[Segment] = []
        for job in list(queue):
            if capacity == 0:
                break
            if job.dropped or job.finished or now >= job.deadline:
                queue.remove(job)
                outcome = "dropped" if job.dropped or job.finished else "timed_out"
                owner._release(job, job.n - job.taken, outcome)
                continue
            k = min(capacity, job.n - job.taken)
            segments.append(Segment(job, job.taken, job.taken + k))
            job.taken += k
            capacity -= k
            owner.queued_rows -= k
            owner._queued_by_model[name] -= k
            if job.taken == job.n:
                queue.remove(job)
        owner._observe_queued(name)
        return segments

    def _execute(self, segments: list[Segment]) -> None:
        """Run the segments as one forward; on failure, retry each half; a single job that fails is failed."""
        owner = self.owner
        model = segments[0].job.model
        rows = sum(s.stop - s.start for s in segments)
        start = time.perf_counter()
        try:
            out = model.run(owner._collate(segments, rows))
            if out.shape[0] < rows:
                raise RuntimeError(f"model returned {out.shape[0]} rows for {rows}")
        except Exception as exc:
            owner.stats.failed_forwards += 1
            if model.device.type == "cuda":  # an out-of-memory leaves cached blocks: free them before retrying
                torch.cuda.empty_cache()
            if len(segments) == 1:
                job = segments[0].job
                log.warning("model %s: job of %d rows failed alone: %s", model.name, job.n, exc)
                with owner.cond:
                    owner._fail(job, JobFailed(f"inference failed: {type(exc).__name__}: {exc}"))
                return
            # Jobs settled meanwhile (client gone, deadline passed) are not retried.
            segments = [seg for seg in segments if not seg.job.finished and not seg.job.dropped]
            if len(segments) == 1:
                self._execute(segments)  # the one job left is retried alone
            elif segments:
                half = len(segments) // 2
                self._execute(segments[:half])
                self._execute(segments[half:])
            return
        seconds = time.perf_counter() - start
        with owner.cond:
            owner._record_batch(model.name, rows, len(segments), seconds)
            offset = 0
            for seg in segments:
                k = seg.stop - seg.start
                job = seg.job
                if not job.finished:
                    if k == job.n:  # the whole job in this batch: a view of the output, no copy
                        job.output = out[offset:offset + k]
                    else:
                        if job.output is None:
                            job.output = torch.empty((job.n, *out.shape[1:]), dtype=out.dtype)
                        job.output[seg.start:seg.stop] = out[offset:offset + k]
                    job.done_rows += k
                    if job.done_rows == job.n:
                        owner.stats.completed += 1
                        owner._observe_job(model.name, "ok")
                        job.settle(result=job.output)
                offset += k


class InferenceQueue:
    def __init__(
        self,
        max_batch_rows: int = 64,
        max_wait_ms: float = 0.0,
        max_queue_rows: int = 4096,
        request_timeout_s: float = 30.0,
        pad_batches: bool = True,
        observer: QueueObserver | None = None,
    ):
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self.request_timeout_s = request_timeout_s
        self.pad_to = max_batch_rows if pad_batches else None
        self.observer = observer
        self.stats = QueueStats()
        self.cond = threading.Condition()
        self.queued_rows = 0
        self.running = 0
        self.closing = False
        self._queued_by_model: dict[str, int] = {}
        self._workers: dict[str, _DeviceWorker] = {}
        self._seq = itertools.count()
        self._recent_rows_per_s = 0.0  # smoothed throughput, for Retry-After

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self, devices: list[torch.device] | None = None) -> None:
        for device in devices or []:
            self._worker(device)

    def _worker(self, device: torch.device) -> _DeviceWorker:
        key = str(device)
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = _DeviceWorker(self, key)
            worker.thread.start()
        return worker

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, let the workers finish what is queued and running, then stop them."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers.values():
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def alive(self) -> bool:
        return not self.closing and all(w.thread.is_alive() for w in self._workers.values())

    # --- the event-loop side ------------------------------------------------------------------------

    def submit(self, model: Runnable, rows: dict[str, torch.Tensor], timeout_s: float | None = None) -> Job:
        """Queue a job (from the event loop's thread); QueueFull at once when there is no room."""
        n = int(next(iter(rows.values())).shape[0])
        if n < 1 or any(int(t.shape[0]) != n for t in rows.values()):
            raise ValueError("every input of a job needs the same number of rows, at least one")
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        with self.cond:
            if self.closing:
                raise QueueFull("the service is shutting down", retry_after=5)
            if self.queued_rows + n > self.max_queue_rows:
                self.stats.rejected += 1
                self._observe_job(model.name, "rejected")
                raise QueueFull(
                    f"the queue is full ({self.queued_rows} of {self.max_queue_rows} rows queued); "
                    f"retry later", retry_after=self._retry_after(n))
            job = Job(model=model, rows={k: v.contiguous() for k, v in rows.items()}, n=n,
                      deadline=now + (timeout_s if timeout_s is not None else self.request_timeout_s),
                      seq=next(self._seq), enqueued_at=now, loop=loop, future=loop.create_future())
            worker = self._worker(model.device)
            worker.queues.setdefault(model.name, deque()).append(job)
            self.queued_rows += n
            self._queued_by_model[model.name] = self._queued_by_model.get(model.name, 0) + n
            self.stats.submitted += 1
            self._observe_queued(model.name)
            self.cond.notify_all()
        return job

    def drop(self, job: Job) -> None:
        """The client went away: the job will be removed before it runs (rows already running finish)."""
        with self.cond:
            if not job.finished:
                job.dropped = True
                self.cond.notify_all()

    async def run(
        self,
        model: Runnable,
        rows: dict[str, torch.Tensor],
        disconnected: Callable[[], Awaitable[bool]] | None = None,
        timeout_s: float | None = None,
        poll_s: float = 0.1,
    ) -> torch.Tensor:
        """Submit and await: the uint8 images of the job's rows, in order.

        Raises QueueFull, DeadlineExceeded, JobFailed, or JobDropped (when `disconnected` says the
        client went away). Cancelling the awaiting task drops the job too.
        """
        job = self.submit(model, rows, timeout_s)
        try:
            while True:
                remaining = job.deadline - time.monotonic()
                if remaining <= 0:
                    self._expire(job)
                    # The worker may have settled it a moment before: a result that exists is served.
                    if job.future.done() and not job.future.cancelled():
                        return job.future.result()
                    raise DeadlineExceeded(self._deadline_message(job))
                wait = min(remaining, poll_s) if disconnected is not None else remaining
                done, _ = await asyncio.wait({job.future}, timeout=wait)
                if done:
                    return job.future.result()
                if disconnected is not None and await disconnected():
                    self.drop(job)
                    raise JobDropped("the client went away")
        except asyncio.CancelledError:
            self.drop(job)
            raise

    def _expire(self, job: Job) -> None:
        with self.cond:
            if not job.finished:
                job.dropped = True  # the worker removes it without running it
                self.stats.timed_out += 1
                self._observe_job(job.model.name, "timed_out")
                job.finished = True
                self.cond.notify_all()

    def _deadline_message(self, job: Job) -> str:
        return (f"the request did not finish within {job.deadline - job.enqueued_at:g}s "
                f"(CONDGEN_REQUEST_TIMEOUT_S); the service is busy, retry later")

    # --- shared helpers (callers hold self.cond) --------------------------------------------------------

    def _release(self, job: Job, untaken: int, outcome: str) -> None:
        """Forget a job that will not run (dropped or expired): its untaken rows leave the queue."""
        self.queued_rows -= untaken
        self._queued_by_model[job.model.name] -= untaken
        self._observe_queued(job.model.name)
        if job.finished:  # settled already (expired while awaited, or a part failed): counted then
            return
        if outcome == "timed_out":
            self.stats.timed_out += 1
            self._observe_job(job.model.name, "timed_out")
            job.settle(error=DeadlineExceeded(self._deadline_message(job)))
        else:
            self.stats.dropped += 1
            self._observe_job(job.model.name, "dropped")
            job.settle(cancel=True)

    def _fail(self, job: Job, error: Exception) -> None:
        if job.finished:
            return
        self.stats.failed += 1
        self._observe_job(job.model.name, "failed")
        # Rows of this job still queued will be purged without running (finished jobs are skipped).
        job.settle(error=error)

    def _collate(self, segments: list[Segment], rows: int) -> dict[str, torch.Tensor]:
        """The batch's inputs in one copy at most: a lone unpadded segment is passed as it is."""
        # Padding repeats the last row: the forward always has the same shape (see module doc).
        pad = self.pad_to - rows if self.pad_to is not None and rows < self.pad_to else 0
        batch = {}
        for key in segments[0].job.rows:
            parts = [s.job.rows[key][s.start:s.stop] for s in segments]
            if pad:
                parts.append(parts[-1][-1:].expand(pad, *parts[-1].shape[1:]))
            batch[key] = parts[0] if len(parts) == 1 else torch.cat(parts)
        self.stats.padded_rows += pad
        return batch

    def _record_batch(self, model: str, rows: int, jobs: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.rows += rows
        s.max_jobs_in_batch = max(s.max_jobs_in_batch, jobs)
        s.batch_sizes.append(rows)
        if len(s.batch_sizes) > 10_000:
            del s.batch_sizes[:5_000]
        rate = rows / max(seconds, 1e-6)
        self._recent_rows_per_s = rate if not self._recent_rows_per_s else 0.8 * self._recent_rows_per_s + 0.2 * rate
        if self.observer is not None:
            self.observer.batch(model, rows, jobs, seconds)

    def _retry_after(self, n: int) -> int:
        """Seconds until the queue has drained enough for n more rows, at the recent rate (1..60)."""
        if not self._recent_rows_per_s:
            return 1
        excess = self.queued_rows + n - self.max_queue_rows
        return max(1, min(60, math.ceil(max(excess, n) / self._recent_rows_per_s)))

    def _observe_queued(self, model: str) -> None:
        if self.observer is not None:
            self.observer.queued_rows(model, self._queued_by_model.get(model, 0))

    def _observe_job(self, model: str, outcome: str) -> None:
        if self.observer is not None:
            self.observer.job(model, outcome)
