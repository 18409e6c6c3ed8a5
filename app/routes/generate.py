"""acgan and cgan: POST /{name}/sample and POST /{name}/interpolate."""
from __future__ import annotations

import secrets
from typing import Any, Literal

import torch
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from app import codecs, errors
from app.deps import get_model, require_api_key, run_rows, services
from app.offload import encode_images
from app.registry import ServedModel
from models import lerp, seeded_latents, slerp

router = APIRouter(tags=["generate"], dependencies=[Depends(require_api_key)])

MAX_SEED = 2**63 - 1
NAME = Path(description="the model's name (its checkpoint's file stem)", examples=["acgan"])


def _image_responses(*media: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {codecs.MEDIA_TYPES[m]: {} for m in media}, "description": "the image(s)"},
            **errors.ERROR_RESPONSES}


def class_index(model: ServedModel, value: str | int) -> int:
    """A class slug or an index; 422 naming the valid classes otherwise."""
    classes = model.classes or []
    text = str(value).strip()
    if text in classes:
        return classes.index(text)
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    raise errors.invalid(f"unknown class {errors.shorten(text)!r} for model {model.name!r}; valid classes: "
                         f"{', '.join(classes)} (or an index 0..{len(classes) - 1})")


def one_hot(model: ServedModel, index: int, n: int) -> torch.Tensor:
    y = torch.zeros(n, len(model.classes or []))
    y[:, index] = 1.0
    return y


@router.post(
    "/{name}/sample", response_class=Response, responses=_image_responses("png", "jpeg", "webp", "json"),
    summary="n images of a class",
    description="PNG, JPEG or WebP: the image itself when n = 1, a grid when n > 1, with the first seed in "
                "X-Seed. JSON: {model, class, seeds, images (base64 PNG)}. Image i equals the single "
                "image asked with seed + i, however the requests are batched.")
async def sample(
    request: Request,
    name: str = NAME,
    class_: str = Query(..., alias="class", description="class slug or index", examples=["sneaker"]),
    n: int = Query(1, ge=1, description="how many images (1..CONDGEN_MAX_SAMPLES)", examples=[16]),
    seed: int | None = Query(None, ge=0, le=MAX_SEED, description="row i uses seed + i; random when absent",
                             examples=[7]),
    truncation: float | None = Query(None, gt=0.0, le=1.0, description="truncation psi: |z| <= psi",
                                     examples=[0.7]),
    format: Literal["png", "jpeg", "webp", "json"] = Query("png", examples=["png"]),
) -> Response:
    model = get_model(request, name, "sample")
    max_samples = services(request).settings.max_samples
    if n > max_samples:
        raise errors.invalid(f"n must be between 1 and {max_samples} (CONDGEN_MAX_SAMPLES), got {n}")
    index = class_index(model, class_)
    if seed is None:
        seed = secrets.randbelow(2**32)
    rows = {"z": seeded_latents(seed, n, model.latent_dim or 0, truncation), "y": one_hot(model, index, n)}
    images = await run_rows(request, model, rows)
    if format == "json":
        body = {"model": model.name, "class": (model.classes or [])[index], "seeds": [seed + i for i in range(n)],
                "images": await encode_images(codecs.encode_base64_pngs, images)}
        return JSONResponse(body, headers={"X-Seed": str(seed)})
    data = await encode_images(codecs.encode_grid, images, format)
    return Response(data, media_type=codecs.MEDIA_TYPES[format], headers={"X-Seed": str(seed)})


class Point(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    # Strict: JSON true or 7.5 is a mistake to report, not a class or seed to guess at.
    class_: StrictStr | StrictInt = Field(alias="class", description="class slug or index", examples=["sneaker"])
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED, description="the latent's seed", examples=[7])


class InterpolateRequest(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [{"from": {"class": "sneaker", "seed": 7}, "to": {"class": "sandal", "seed": 8},
                                         "steps": 8, "method": "slerp", "format": "png"}]})

    from_: Point = Field(alias="from")
    to: Point
    steps: StrictInt = Field(8, ge=2, le=64, description="frames, both ends included")
    method: Literal["slerp", "lerp"] = "slerp"
    format: Literal["png", "gif", "webp", "json"] = Field(
        "png", description="png: a strip; gif, webp: an animation; json: base64 PNG frames")


@router.post(
    "/{name}/interpolate", response_class=Response, responses=_image_responses("png", "gif", "webp", "json"),
    summary="the way between two (class, seed) points",
    description="Class and latent move together: frame k has z = method(z_from, z_to, t_k) and "
                "y = lerp(y_from, y_to, t_k) with t_k = k / (steps - 1).")
async def interpolate(request: Request, body: InterpolateRequest, name: str = NAME) -> Response:
    model = get_model(request, name, "interpolate")
    a, b = class_index(model, body.from_.class_), class_index(model, body.to.class_)
    d = model.latent_dim or 0
    za, zb = seeded_latents(body.from_.seed, 1, d)[0], seeded_latents(body.to.seed, 1, d)[0]
    t = torch.linspace(0.0, 1.0, body.steps)
    z = (slerp if body.method == "slerp" else lerp)(za, zb, t)
    y = lerp(one_hot(model, a, 1)[0], one_hot(model, b, 1)[0], t)
    frames = await run_rows(request, model, {"z": z.contiguous(), "y": y.contiguous()})
    classes = model.classes or []
    if body.format == "json":
        out = {"model": model.name, "from": {"class": classes[a], "seed": body.from_.seed},
               "to": {"class": classes[b], "seed": body.to.seed}, "method": body.method,
               "t": [round(float(v), 6) for v in t],
               "images": await encode_images(codecs.encode_base64_pngs, frames)}
        return JSONResponse(out)
    if body.format == "png":
        data = await encode_images(codecs.encode_grid, frames, "png", body.steps)
    else:
        data = await encode_images(codecs.encode_animation, frames, body.format)
    return Response(data, media_type=codecs.MEDIA_TYPES[body.format])
