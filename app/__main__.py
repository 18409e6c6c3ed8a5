"""`python -m app`: serve on CONDGEN_HOST:CONDGEN_PORT (127.0.0.1:8000) and say where."""
from __future__ import annotations

import logging

import uvicorn

from app.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"condgen: serving {settings.checkpoint_dir}/*.safetensors on http://{settings.host}:{settings.port} "
          f"(API docs at http://{settings.host}:{settings.port}/docs)", flush=True)
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
