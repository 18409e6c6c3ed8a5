"""Cross-origin access (CORS): closed unless CONDGEN_CORS_ORIGINS names the sites whose pages may call the API.

The API key check itself is a route dependency (app.deps.require_api_key): generation and model routes
need it when CONDGEN_API_KEY is set; /healthz, /readyz, /metrics and the playground stay open.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Add last, so it is the outermost middleware: 401, 413 and 503 answers carry the CORS headers too,
    and a browser can read why it was refused."""
    if not origins:
        return  # no CORS headers at all: browsers keep other sites' pages from reading responses
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "X-API-Key", "Authorization"],
        expose_headers=["X-Seed", "Retry-After"],
        max_age=600,
    )
