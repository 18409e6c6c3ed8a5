"""Errors as JSON {"detail": ...} with the status codes DESIGN.md lists; nothing a client sends yields a 500."""
from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.codecs import UploadError
from app.queue import DeadlineExceeded, JobDropped, JobFailed, QueueFull

log = logging.getLogger("condgen.errors")


class ErrorBody(BaseModel):
    """Every error: a sentence saying what is wrong, or FastAPI's list of invalid fields."""

    detail: str | list[dict[str, Any]]


def error_response(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "model": ErrorBody, **extra}


# For OpenAPI: the error responses each model route may give, each with its body schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error_response("Missing or wrong API key (only when CONDGEN_API_KEY is set)"),
    404: error_response("Unknown model",
                        content={"application/json": {"example": {"detail": "no model 'x'; served: acgan, cgan"}}}),
    405: error_response("The model's family lacks this operation"),
    413: error_response("Request body too large (CONDGEN_MAX_UPLOAD_BYTES)"),
    422: error_response("Invalid field (an unknown class lists the valid ones)"),
    500: error_response("The model's forward failed for this request (the service keeps serving the others)"),
    503: error_response("Queue full or shutting down; retry after the Retry-After header's seconds",
                        headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}),
    504: error_response("The request's deadline passed before it ran"),
}


def unknown_model(name: str, served: list[str]) -> HTTPException:
    return HTTPException(404, f"no model {shorten(name)!r}; served: {', '.join(served) or 'none'} (see GET /models)")


def wrong_family(name: str, family: str, operation: str, supported: list[str]) -> HTTPException:
    return HTTPException(
        405, f"model {name!r} is a {family} model; it supports {' and '.join(supported)}, not {operation}",
        headers={"Allow": "POST"})


def invalid(detail: str) -> HTTPException:
    return HTTPException(422, detail)


# How much of an invalid input a 422 echoes back: enough to recognise it, never the whole body again.
ECHO_CHARS = 200


def shorten(text: str) -> str:
    """A client's value quoted in an error: long ones cut short."""
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "..."


def _echo_safe(value: Any) -> Any:
    """A validation error made JSON-safe: NaN and infinities (which json.dumps refuses, so FastAPI's own
    handler fails with a 500) become strings, long strings are cut short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, dict):
        return {k: _echo_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_echo_safe(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _echo_safe(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers a body it cannot even decode (bytes that are not UTF-8) with a bare 400, while a JSON
        # syntax error gets 422; condgen raises no 400 itself, so both are an invalid body: 422, saying why.
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            cause = exc.__cause__
            return JSONResponse({"detail": shorten(f"the request body cannot be read as JSON: {type(cause).__name__}: "
                                                   f"{cause}")}, 422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(DeadlineExceeded)
    async def _deadline(request: Request, exc: DeadlineExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 504)

    @app.exception_handler(JobFailed)
    async def _failed(request: Request, exc: JobFailed) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 500)

    @app.exception_handler(JobDropped)
    async def _dropped(request: Request, exc: JobDropped) -> JSONResponse:
        # Nobody reads this (the client is gone); 499 is the de-facto "client closed request" code.
        return JSONResponse({"detail": str(exc)}, 499)

    @app.exception_handler(UploadError)
    async def _upload(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service log"}, 500)
