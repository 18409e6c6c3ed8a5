"""GET /healthz, /readyz and /metrics: open even when CONDGEN_API_KEY is set (so is the playground at /)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.deps import services
from app.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="liveness: the process answers",
            responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="readiness: models loaded and warmed up, queue running",
            responses={200: {"content": {"application/json": {"example": {
                "status": "ready", "models": ["acgan", "cgan"], "skipped": {}}}}},
                503: {"description": "not ready, with the reason"}})
async def readyz(request: Request) -> JSONResponse:
    svc = services(request)
    registry, queue = svc.registry, svc.queue
    skipped = registry.skipped if registry else {}
    if registry is None or queue is None:
        reason = "loading checkpoints"
    elif not queue.alive:
        reason = "the inference queue is stopped (shutting down)"
    elif not registry.models:
        reason = f"no model could be loaded from {registry.checkpoint_dir}"
    else:
        return JSONResponse({"status": "ready", "models": sorted(registry.models), "skipped": skipped})
    return JSONResponse({"status": "not ready", "detail": reason, "skipped": skipped}, 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(services(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
