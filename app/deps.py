"""Shared objects for the routes (FastAPI dependencies): the services, the API key check, model lookup."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch
from fastapi import Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool  # noqa: F401  (routes import it from here)

from app import errors
from app.metrics import Metrics
from app.queue import InferenceQueue
from app.registry import Registry, ServedModel
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    registry: Registry | None = None  # None until the lifespan has loaded the checkpoints
    queue: InferenceQueue | None = None


def services(request: Request) -> Services:
    return request.app.state.services


async def require_api_key(
    request: Request,
    x_api_key: str | None = Header(None, description="the API key, when CONDGEN_API_KEY is set"),
    authorization: str | None = Header(None, include_in_schema=False),
) -> None:
    """With CONDGEN_API_KEY set, model routes need it (X-API-Key or Authorization: Bearer); health stays open.

    async although it never awaits: FastAPI runs a plain def dependency in a worker thread, a thread hop per
    request that costs more than the check itself, and most under overload."""
    expected = services(request).settings.api_key
    if expected is None:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    # Constant-time comparison: the key must not leak through response timing.
    if not given or not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong API key: send it as the X-API-Key header",
                            headers={"WWW-Authenticate": "Bearer"})


def lookup_model(request: Request, name: str) -> ServedModel:
    """The served model `name`, or 404 (naming the served ones, or why the file was skipped)."""
    registry = services(request).registry
    model = registry.get(name) if registry else None
    if model is None:
        served = sorted(registry.models) if registry else []
        if registry and f"{name}.safetensors" in registry.skipped:
            raise HTTPException(404, f"model {name!r} was not loaded: {registry.skipped[name + '.safetensors']}")
        raise errors.unknown_model(name, served)
    return model


def get_model(request: Request, name: str, operation: str) -> ServedModel:
    """The served model `name`, or 404 (unknown) / 405 (its family lacks `operation`)."""
    model = lookup_model(request, name)
    if operation not in model.operations:
        raise errors.wrong_family(name, model.family, operation, model.operations)
    return model


async def run_rows(request: Request, model: ServedModel, rows: dict[str, torch.Tensor]) -> torch.Tensor:
    """Through the inference queue; the job is dropped if the client goes away while it waits."""
    queue = services(request).queue
    if queue is None:
        raise HTTPException(503, "the service is starting; retry shortly", headers={"Retry-After": "1"})
    return await queue.run(model, rows, disconnected=request.is_disconnected)
