"""Fixtures for the service tests: tiny random-weight checkpoints in a temp dir, and apps built over them."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import starlette.exceptions

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx still works and is what the tests pin.
    warnings.simplefilter("ignore", getattr(starlette.exceptions, "StarletteDeprecationWarning", DeprecationWarning))
    from fastapi.testclient import TestClient

from app.main import create_app
from serve_helpers import settings_for, write_checkpoints


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture
def make_client(checkpoint_dir: Path) -> Iterator[Callable[..., TestClient]]:
    """make_client(**settings) -> a started TestClient; closed (lifespan shut down) at the test's end."""
    stack = contextlib.ExitStack()

    def make(directory: Path | None = None, **overrides: Any) -> TestClient:
        app = create_app(settings_for(directory or checkpoint_dir, **overrides))
        return stack.enter_context(TestClient(app, raise_server_exceptions=False))

    with stack:
        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


