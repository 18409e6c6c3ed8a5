"""Concurrent requests through the real app (httpx.AsyncClient over ASGITransport): shared batches,
identical bytes under load, 503, 504, dropped jobs, and a failing job that fails alone."""
from __future__ import annotations

import asyncio
import re

import pytest
import torch

from models import seeded_latents
from serve_helpers import LATENT, Probe, running_app, served, wait_until

pytestmark = pytest.mark.anyio


def sample(http, seed, n=1, cls="sneaker", model="acgan", fmt="png"):
    return http.post(f"/{model}/sample", params={"class": cls, "seed": seed, "n": n, "format": fmt})


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


async def test_concurrent_requests_share_batches(checkpoint_dir):
    async with running_app(checkpoint_dir, max_batch_rows=8) as (app, http):
        probe = Probe(served(app, "acgan"))
        queue = app.state.services.queue
        probe.hold()
        first = asyncio.create_task(sample(http, 0))
        await probe.wait_entered()
        # Six requests of one row each arrive while the worker is busy...
        tasks = [asyncio.create_task(sample(http, seed)) for seed in range(1, 7)]
        await wait_until(lambda: queue.stats.submitted == 7)
        probe.release()
        responses = await asyncio.gather(first, *tasks)
        assert all(r.status_code == 200 for r in responses)
        # ...and run as one forward pass: two batches for seven requests.
        assert queue.stats.batches == 2 and queue.stats.max_jobs_in_batch == 6
        text = (await http.get("/metrics")).text
        assert metric(text, "condgen_batch_rows_count", model="acgan") == 2
        assert metric(text, "condgen_batch_rows_sum", model="acgan") == 7
        assert metric(text, "condgen_batch_jobs_bucket", model="acgan", le="4.0") == 1  # one batch of 1 job
        assert metric(text, "condgen_batch_jobs_bucket", model="acgan", le="8.0") == 2  # and one of 6


async def test_unforced_concurrency_also_batches(checkpoint_dir):
    """No gate: 24 concurrent requests in flight; while one batch runs the others queue, so fewer
    forwards than requests (observed through the queue's own counts)."""
    async with running_app(checkpoint_dir, max_batch_rows=8) as (app, http):
        queue = app.state.services.queue
        responses = await asyncio.gather(*[sample(http, seed, n=2) for seed in range(24)])
        assert all(r.status_code == 200 for r in responses)
        assert queue.stats.rows == 48
        assert queue.stats.batches < 24 and queue.stats.max_jobs_in_batch >= 2


async def test_identical_bytes_alone_and_amid_load(checkpoint_dir):
    # CONDGEN_PAD_BATCHES=true is the setting that promises this (README, Settings).
    async with running_app(checkpoint_dir, max_batch_rows=8, pad_batches=True) as (app, http):
        alone = {}
        for model, cls in (("acgan", "coat"), ("cgan", "bag")):
            for n in (1, 3, 11):  # 11 > max_batch_rows: split across batches
                r = await sample(http, 500, n=n, cls=cls, model=model)
                assert r.status_code == 200
                alone[model, n] = r.content
        probe = Probe(served(app, "acgan"))
        queue = app.state.services.queue
        probe.hold()
        blocker = asyncio.create_task(sample(http, 9, n=1))
        await probe.wait_entered()
        # The same requests again, in the middle of many others (other seeds, classes, sizes, models),
        # so their rows land at other offsets of batches shared with other rows.
        load = [sample(http, 1000 + i, n=1 + i % 5, cls=i % 10, model=("acgan", "cgan")[i % 2]) for i in range(12)]
        again = {key: sample(http, 500, n=key[1], cls="coat" if key[0] == "acgan" else "bag", model=key[0])
                 for key in alone}
        tasks = [asyncio.create_task(c) for c in load[:6]]
        tasks += [asyncio.create_task(c) for c in again.values()]
        tasks += [asyncio.create_task(c) for c in load[6:]]
        await wait_until(lambda: queue.stats.submitted == 6 + 1 + 12 + 6)
        probe.release()
        results = await asyncio.gather(blocker, *tasks)
        assert all(r.status_code == 200 for r in results)
        assert queue.stats.max_jobs_in_batch >= 3  # they really were batched together
        for key, response in zip(alone, results[7:13]):
            assert response.content == alone[key], key


async def test_503_when_the_queue_is_full(checkpoint_dir):
    async with running_app(checkpoint_dir, max_batch_rows=4, max_queue_rows=10) as (app, http):
        probe = Probe(served(app, "acgan"))
        probe.hold()
        blocker = asyncio.create_task(sample(http, 1))
        await probe.wait_entered()
        queued = asyncio.create_task(sample(http, 2, n=8))
        await wait_until(lambda: app.state.services.queue.queued_rows == 8)
        refused = await sample(http, 300, n=3)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert "queue is full" in refused.json()["detail"]
        fits = asyncio.create_task(sample(http, 4, n=2))
        await wait_until(lambda: app.state.services.queue.queued_rows == 10)
        probe.release()
        assert [r.status_code for r in await asyncio.gather(blocker, queued, fits)] == [200, 200, 200]
        assert not probe.saw(seeded_latents(300, 1, LATENT)[0])
        assert metric((await http.get("/metrics")).text, "condgen_jobs_total", model="acgan", outcome="rejected") == 1


async def test_504_when_the_deadline_passes_and_the_job_never_runs(checkpoint_dir):
    async with running_app(checkpoint_dir, request_timeout_s=0.5) as (app, http):
        probe = Probe(served(app, "acgan"))
        queue = app.state.services.queue
        probe.hold()
        # The blocker goes straight to the queue with a long deadline of its own, so it surely runs.
        acgan = served(app, "acgan")
        blocker = asyncio.create_task(queue.run(acgan, acgan.dummy_rows(1), timeout_s=60))
        await probe.wait_entered()
        late = await sample(http, 77)
        assert late.status_code == 504 and "CONDGEN_REQUEST_TIMEOUT_S" in late.json()["detail"]
        probe.release()
        await blocker
        await wait_until(lambda: queue.queued_rows == 0 and queue.running == 0)
        assert not probe.saw(seeded_latents(77, 1, LATENT)[0])
        assert queue.stats.timed_out >= 1
        # The worker goes on.
        assert (await queue.run(acgan, acgan.dummy_rows(2), timeout_s=60)).shape[0] == 2


async def test_job_of_a_disconnected_client_is_dropped_before_it_runs(checkpoint_dir):
    async with running_app(checkpoint_dir) as (app, http):
        probe = Probe(served(app, "acgan"))
        queue = app.state.services.queue
        probe.hold()
        blocker = asyncio.create_task(sample(http, 1))
        await probe.wait_entered()

        # A raw ASGI request whose client goes away while its job waits in the queue.
        gone = asyncio.Event()
        sent: list[dict] = []

        async def receive():
            if gone.is_set():
                return {"type": "http.disconnect"}
            if not sent and not getattr(receive, "body_sent", False):
                receive.body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/acgan/sample", "raw_path": b"/acgan/sample",
                 "query_string": b"class=sneaker&seed=555", "root_path": "", "headers": [(b"host", b"test")],
                 "client": ("127.0.0.1", 1), "server": ("test", 80)}
        call = asyncio.create_task(app(scope, receive, send))
        await wait_until(lambda: queue.stats.submitted == 2)
        gone.set()
        await asyncio.wait_for(call, 30)  # the route gives up on the job at once
        probe.release()
        assert (await blocker).status_code == 200
        await wait_until(lambda: queue.stats.dropped == 1 and queue.queued_rows == 0)
        assert not probe.saw(seeded_latents(555, 1, LATENT)[0])
        assert (await sample(http, 555)).status_code == 200 and probe.saw(seeded_latents(555, 1, LATENT)[0])


async def test_a_failing_job_fails_alone_and_everything_else_is_served(checkpoint_dir):
    async with running_app(checkpoint_dir, max_batch_rows=8) as (app, http):
        reference = {seed: (await sample(http, seed)).content for seed in (11, 12, 13)}
        probe = Probe(served(app, "acgan"))
        queue = app.state.services.queue
        probe.poison = seeded_latents(666, 1, LATENT)[0]
        probe.hold()
        blocker = asyncio.create_task(sample(http, 10))
        await probe.wait_entered()
        tasks = [asyncio.create_task(sample(http, 11)), asyncio.create_task(sample(http, 666)),
                 asyncio.create_task(sample(http, 12)), asyncio.create_task(sample(http, 13)),
                 asyncio.create_task(sample(http, 5, model="cgan", n=2))]
        await wait_until(lambda: queue.stats.submitted == 3 + 1 + 5)
        probe.release()
        r11, bad, r12, r13, other_model = await asyncio.gather(*tasks)
        assert (await blocker).status_code == 200
        assert bad.status_code == 500 and "poisoned row" in bad.json()["detail"]
        assert [r11.content, r12.content, r13.content] == [reference[11], reference[12], reference[13]]
        assert other_model.status_code == 200
        assert queue.stats.failed == 1 and queue.stats.failed_forwards >= 2
        # The worker lives on: the same model serves the next requests.
        assert (await sample(http, 14)).status_code == 200
        assert (await http.get("/readyz")).status_code == 200


async def test_sampling_and_editing_models_share_one_worker(checkpoint_dir):
    async with running_app(checkpoint_dir) as (app, http):
        import io
        from PIL import Image
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (9, 9, 9)).save(buf, "PNG")
        edits = [http.post("/stargan/edit", files={"image": ("a.png", buf.getvalue())},
                           data={"attributes": '{"dark": 1}'}) for _ in range(4)]
        samples = [sample(http, s) for s in range(4)]
        results = await asyncio.gather(*edits, *samples)
        assert [r.status_code for r in results] == [200] * 8
        assert len({r.content for r in results[:4]}) == 1  # the same edit gives the same bytes
        assert app.state.services.queue.stats.completed == 8
        assert torch.device("cpu") == served(app, "stargan").device
