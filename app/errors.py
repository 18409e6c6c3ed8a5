"""Errors as JSON {"detail": ...} with the status codes DESIGN.md lists; nothing a client sends yields a 500."""
from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from app.codecs import UploadError
from app.queue import DeadlineExceeded, JobDropped, JobFailed, QueueFull

log = logging.getLogger("condgen.errors")

# For OpenAPI: the error responses each model route may give.
ERROR_RESPONSES = {
    404: {"description": "Unknown model",
          "content": {"application/json": {"example": {"detail": "no model 'x'; served: acgan, cgan"}}}},
    405: {"description": "The model's family lacks this operation"},
    422: {"description": "Invalid field (an unknown class lists the valid ones)"},
    503: {"description": "Queue full; retry after the Retry-After header's seconds"},
    504: {"description": "The request's deadline passed before it ran"},
}


def unknown_model(name: str, served: list[str]) -> HTTPException:
    return HTTPException(404, f"no model {name!r}; served: {', '.join(served) or 'none'} (see GET /models)")


def wrong_family(name: str, family: str, operation: str, supported: list[str]) -> HTTPException:
    return HTTPException(
        405, f"model {name!r} is a {family} model; it supports {' and '.join(supported)}, not {operation}",
        headers={"Allow": "POST"})


def invalid(detail: str) -> HTTPException:
    return HTTPException(422, detail)


def install(app: FastAPI) -> None:
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
