"""Refuse an over-large request body from its Content-Length, before anything reads or spools it."""
from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Multipart framing and the small form fields around the file.
FORM_OVERHEAD = 64 * 1024


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_upload_bytes: int):
        self.app = app
        self.limit = max_upload_bytes + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                response = JSONResponse(
                    {"detail": f"request body of {int(length)} bytes is too large; uploads are limited to "
                               f"{self.limit - FORM_OVERHEAD} bytes (CONDGEN_MAX_UPLOAD_BYTES)"}, 413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
