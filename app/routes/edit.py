"""stargan: POST /{name}/edit, an uploaded image with its attributes changed."""
from __future__ import annotations

import json
from typing import Any, Literal

import torch
from fastapi import APIRouter, Depends, File, Form, Path, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from app import codecs, errors
from app.codecs import UploadError
from app.deps import get_model, require_api_key, run_in_threadpool, run_rows, services
from app.offload import encode_images
from app.registry import ServedModel
from models.images import to_uint8

router = APIRouter(tags=["edit"], dependencies=[Depends(require_api_key)])


def attribute_values(model: ServedModel, text: str | None, field: str) -> dict[str, float]:
    """A JSON object attribute -> value in [0, 1]; 422 with what is wrong (unknown names list the valid ones)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.invalid(f"{field} must be a JSON object like {{\"smiling\": 1}}: {exc}") from None
    if not isinstance(value, dict):
        raise errors.invalid(f"{field} must be a JSON object of attribute name -> value in [0, 1]")
    names = model.attributes or []
    out = {}
    for key, v in value.items():
        if key not in names:
            raise errors.invalid(f"unknown attribute {errors.shorten(key)!r} in {field} for model {model.name!r}; "
                                 f"valid attributes: {', '.join(names)}")
        if isinstance(v, bool):
            v = float(v)
        if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise errors.invalid(f"{field}[{key!r}] must be a number in [0, 1], got {v!r}")
        out[key] = float(v)
    return out


def target_vector(model: ServedModel, source: torch.Tensor, targets: dict[str, float]) -> torch.Tensor:
    """The source vector with the named targets set; in a mutually exclusive group, naming one member
    turns the unnamed members off (a face has one skin tone), so the target stays a valid combination."""
    names = model.attributes or []
    c = source.clone()
    for key, v in targets.items():
        c[names.index(key)] = v
    for group in model.checkpoint.attribute_groups:
        if any(a in targets for a in group):
            for a in group:
                if a not in targets:
                    c[names.index(a)] = 0.0
    return c


def single_flips(model: ServedModel, source: torch.Tensor) -> tuple[list[str], list[torch.Tensor]]:
    """One target per attribute: that attribute flipped (on if < 0.5, else off), the rest as in the source."""
    names = model.attributes or []
    labels, targets = [], []
    for i, a in enumerate(names):
        on = float(source[i]) < 0.5
        labels.append(f"{a}={int(on)}")
        targets.append(target_vector(model, source, {a: 1.0 if on else 0.0}))
    return labels, targets


@router.post(
    "/{name}/edit", response_class=Response,
    responses={200: {"content": {codecs.MEDIA_TYPES[m]: {} for m in ("png", "jpeg", "webp", "json")},
                     "description": "the edited image, or with grid=true the input beside each single flip"},
               **errors.ERROR_RESPONSES,
               400: errors.error_response("Malformed multipart body"),
               413: errors.error_response("Upload too large (CONDGEN_MAX_UPLOAD_BYTES or CONDGEN_MAX_IMAGE_PIXELS)"),
               415: errors.error_response("Not an image that can be read")},
    summary="change the attributes of an uploaded image",
    description="The image (any size) is centre-cropped and resized to the model's size. The target for "
                "attribute a is attributes[a] when named, else source[a] (or 0); the generator gets "
                "c = c_source + strength * (c_target - c_source). grid=true returns the input beside one "
                "edit per attribute, that attribute flipped.")
async def edit(
    request: Request,
    name: str = Path(description="the model's name (its checkpoint's file stem)", examples=["stargan"]),
    image: UploadFile = File(..., description="the image to edit (PNG, JPEG, WebP, ...)"),
    attributes: str = Form("{}", description="JSON object: attribute -> target value in [0, 1]",
                           examples=['{"smiling": 1}']),
    source: str | None = Form(None, description="JSON object: the image's own attribute values (default 0)",
                              examples=['{"smiling": 0}']),
    strength: float = Form(1.0, ge=0.0, le=1.0, description="0 keeps the source, 1 is the full edit",
                           examples=[1.0]),
    grid: bool = Form(False, description="the input beside each single-attribute flip"),
    format: Literal["png", "jpeg", "webp", "json"] = Form("png"),
) -> Response:
    model = get_model(request, name, "edit")
    settings = services(request).settings
    data = await image.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise UploadError(413, f"upload is larger than {settings.max_upload_bytes} bytes (CONDGEN_MAX_UPLOAD_BYTES)")
    if not data:
        raise UploadError(415, "the uploaded image is empty")
    targets = attribute_values(model, attributes, "attributes")
    names = model.attributes or []
    src = torch.tensor([attribute_values(model, source, "source").get(a, 0.0) for a in names])
    x = await run_in_threadpool(codecs.decode_upload, data, model.image_size, model.channels,
                                settings.max_image_pixels)
    if grid:
        labels, wanted = single_flips(model, src)
    else:
        labels, wanted = ["edit"], [target_vector(model, src, targets)]
    c = torch.stack([src + strength * (t - src) for t in wanted])
    edited = await run_rows(request, model, {"x": x.expand(len(wanted), -1, -1, -1).contiguous(), "c": c})
    if grid:
        edited = torch.cat([to_uint8(x), edited])
        labels = ["input", *labels]
    if format == "json":
        body: dict[str, Any] = {"model": model.name, "strength": strength, "labels": labels,
                                "source": dict(zip(names, src.tolist())),
                                "targets": [dict(zip(names, t.tolist())) for t in wanted],
                                "images": await encode_images(codecs.encode_base64_pngs, edited)}
        return JSONResponse(body)
    out = await encode_images(codecs.encode_grid, edited, format, edited.shape[0])
    return Response(out, media_type=codecs.MEDIA_TYPES[format])
