"""GET /models and GET /models/{name}: what is served, and the files that were skipped and why."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from app import errors
from app.deps import lookup_model, require_api_key, services

router = APIRouter(tags=["models"], dependencies=[Depends(require_api_key)])

_EXAMPLE = {"name": "acgan", "status": "ready", "family": "acgan", "operations": ["sample", "interpolate"],
            "classes": ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                        "ankle_boot"],
            "image_size": 28, "channels": 1, "latent_dim": 128, "device": "cpu", "dtype": "float32",
            "training": {"dataset": "fashion-mnist", "steps": 9000}}


def _entries(request: Request) -> list[dict[str, Any]]:
    registry = services(request).registry
    if registry is None:
        return []
    served = [{"name": m.name, "status": "ready", **{k: v for k, v in m.info().items() if k != "name"}}
              for m in registry.models.values()]
    skipped = [{"name": file.removesuffix(".safetensors"), "status": "skipped", "file": file, "reason": reason}
               for file, reason in registry.skipped.items()]
    return served + skipped


@router.get("/models", summary="the served models (and the skipped checkpoint files, status 'skipped')",
            responses={200: {"content": {"application/json": {"example": [_EXAMPLE]}}},
                       401: errors.ERROR_RESPONSES[401]})
async def list_models(request: Request) -> list[dict[str, Any]]:
    return _entries(request)


@router.get("/models/{name}", summary="one served model",
            responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}, 404: errors.ERROR_RESPONSES[404],
                       401: errors.ERROR_RESPONSES[401]})
async def get_model_info(request: Request, name: str) -> dict[str, Any]:
    model = lookup_model(request, name)
    return {"name": name, "status": "ready", **{k: v for k, v in model.info().items() if k != "name"}}
