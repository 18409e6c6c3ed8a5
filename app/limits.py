"""Request body limits: an over-large body is refused with 413 before it is read in full, and what is
accepted stays in memory (an upload never touches the disk)."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Multipart framing and the small form fields around the file.
FORM_OVERHEAD = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from receive() once a body sent without a Content-Length passes the limit. An HTTPException,
    so that FastAPI, reading the body, passes it on as it is (any other error there becomes a 400)."""

    def __init__(self, max_upload_bytes: int, limit: int):
        super().__init__(413, f"request body of more than {limit} bytes is too large; uploads are limited to "
                              f"{max_upload_bytes} bytes (CONDGEN_MAX_UPLOAD_BYTES)")


class BodySizeLimitMiddleware:
    """413 from the Content-Length header when it is too large, before anything reads the body; a body
    sent without one (chunked) is counted as it arrives and refused the moment it passes the limit."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.limit = max_upload_bytes + FORM_OVERHEAD

    def _too_large(self, length: int) -> JSONResponse:
        return JSONResponse(
            {"detail": f"request body of {length} bytes is too large; uploads are limited to "
                       f"{self.max_upload_bytes} bytes (CONDGEN_MAX_UPLOAD_BYTES)"}, 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(int(length))(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.max_upload_bytes, self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:  # raised where no exception handler turned it into the 413 response
            if started:  # too late for a 413: the server closes the connection
                raise
            await JSONResponse({"detail": exc.detail}, 413)(scope, receive, send)


def keep_uploads_in_memory(max_upload_bytes: int) -> None:
    """Starlette spools an uploaded file to a temporary file on disk past spool_max_size (1 MiB). Every
    accepted body is below the limit above, so a spool that large never rolls over to the disk."""
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, max_upload_bytes + FORM_OVERHEAD)
