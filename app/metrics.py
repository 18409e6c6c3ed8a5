"""Prometheus metrics, in a registry of the app's own (so several apps in one process, as in tests, never clash)."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the route)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "condgen_request_seconds", "HTTP request latency", ["route", "method", "status"],
            registry=self.registry)
        self.queued_rows_gauge = Gauge(
            "condgen_queued_rows", "rows waiting in the inference queue", ["model"], registry=self.registry)
        self.batch_rows = Histogram(
            "condgen_batch_rows", "real rows per forward pass (padding excluded)", ["model"],
            buckets=_BATCH_ROW_BUCKETS, registry=self.registry)
        self.batch_jobs = Histogram(
            "condgen_batch_jobs", "jobs (requests) sharing one forward pass", ["model"],
            buckets=_BATCH_ROW_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram(
            "condgen_batch_seconds", "seconds per forward pass", ["model"], registry=self.registry)
        self.rows_total = Counter("condgen_rows", "rows generated", ["model"], registry=self.registry)
        self.jobs_total = Counter(
            "condgen_jobs", "jobs by outcome (ok, failed, timed_out, dropped, rejected)", ["model", "outcome"],
            registry=self.registry)

    # QueueObserver: called by the inference queue (from its worker thread; prometheus-client is thread-safe)
    def queued_rows(self, model: str, rows: int) -> None:
        self.queued_rows_gauge.labels(model).set(rows)

    def batch(self, model: str, rows: int, jobs: int, seconds: float) -> None:
        self.batch_rows.labels(model).observe(rows)
        self.batch_jobs.labels(model).observe(jobs)
        self.batch_seconds.labels(model).observe(seconds)
        self.rows_total.labels(model).inc(rows)

    def job(self, model: str, outcome: str) -> None:
        self.jobs_total.labels(model, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware, which would hide the client's disconnect from the routes).

    Labels use the route's template (/{name}/sample), never the raw path, so label cardinality stays bounded.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(template, scope.get("method", ""), str(status)).observe(
                time.perf_counter() - start)
