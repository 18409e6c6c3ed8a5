"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

The load generator shares the machine with the server it measures; a general-purpose client spends
several times more CPU per request than this one, and every CPU-second it takes is one the server lacks.
It speaks just what the benchmark needs: one request at a time per connection, Content-Length or chunked
responses.
"""
from __future__ import annotations

import asyncio


class HTTPError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self._reader = self._writer = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, bytes]:
        """(status, body). Reconnects once if a kept-alive connection was closed by the server."""
        for attempt in (0, 1):
            if self._writer is None:
                await self._open()
            try:
                return await self._exchange(method, path, headers or {}, body)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if attempt == 1:
                    raise HTTPError(f"connection failed: {exc}") from exc
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HTTPError(f"bad status line {status_line!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            data = bytearray()
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")
                    break
                data += await self._reader.readexactly(size + 2)
                del data[-2:]
            payload = bytes(data)
        elif length is not None:
            payload = await self._reader.readexactly(length)
        else:
            payload = await self._reader.read()
            close = True
        if close:
            await self.close()
        return status, payload


async def get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = Connection(host, port)
    try:
        return await conn.request("GET", path)
    finally:
        await conn.close()
