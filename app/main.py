"""The app factory: `uvicorn app.main:app` serves the checkpoints in CONDGEN_CHECKPOINT_DIR."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app import errors, threads
from app.deps import Services
from app.limits import BodySizeLimitMiddleware, keep_uploads_in_memory
from app.metrics import Metrics, RequestMetricsMiddleware
from app.queue import InferenceQueue
from app.registry import load_registry
from app.routes import edit, generate, health, models, playground
from app.security import install_cors
from app.settings import Settings

log = logging.getLogger("condgen")

DESCRIPTION = """Class-conditional image generators (ACGAN, CGAN) and attribute editors (StarGAN), served
through one batched inference queue: the rows of concurrent requests share forward passes.

Errors are JSON `{"detail": ...}`: 404 unknown model, 405 an operation the model's family lacks,
422 invalid field, 413 upload too large, 415 not an image, 503 queue full (see Retry-After),
504 deadline passed."""

# CONDGEN_OPENTELEMETRY=false (the default): none of FastAPI's OpenTelemetry, not even its per-request
# look-up of the global providers.
TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    svc = Services(settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        device, dtype = settings.torch_device(), settings.torch_dtype()
        previous_threads = threads.configure(settings.torch_threads, device)
        # Warm up at the shape every forward will have (padded batches), or one row when not padding.
        warmup_rows = settings.max_batch_rows if settings.pad_batches else 1
        registry = await run_in_threadpool(load_registry, settings.checkpoint_dir, device, dtype, warmup_rows)
        queue = InferenceQueue(
            max_batch_rows=settings.max_batch_rows, max_wait_ms=settings.max_wait_ms,
            max_queue_rows=settings.max_queue_rows, request_timeout_s=settings.request_timeout_s,
            pad_batches=settings.pad_batches, observer=metrics)
        queue.start(sorted({m.device for m in registry.models.values()}, key=str))
        svc.registry, svc.queue = registry, queue
        log.info("condgen ready: %d model(s) on %s, %d skipped", len(registry.models), device, len(registry.skipped))
        try:
            yield
        finally:
            # The server has stopped taking requests: finish what is queued and running, then stop.
            await run_in_threadpool(queue.close, settings.request_timeout_s)
            threads.restore(previous_threads)

    app = FastAPI(title="condgen", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  telemetry=None if settings.opentelemetry else TELEMETRY_OFF)
    app.state.services = svc
    errors.install(app)
    for router in (health.router, models.router, generate.router, edit.router):
        app.include_router(router)
    playground.mount(app)  # GET / and /static/
    app.add_middleware(BodySizeLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    keep_uploads_in_memory(settings.max_upload_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)  # it times the 413s too
    install_cors(app, settings.cors_origins)  # outermost, when configured
    return app


app = create_app()
