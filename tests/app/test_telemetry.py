from typing import Callable

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace


def test_fastapi_opentelemetry_is_off_unless_asked(make_client: Callable[..., TestClient],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # FastAPI's telemetry looks the global tracer provider up on every request, configured or not: that
    # look-up is the cost CONDGEN_OPENTELEMETRY=false (the default) removes.
    lookups: list[int] = []
    real = trace.get_tracer_provider
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: lookups.append(1) or real())

    client = make_client()
    assert client.post("/acgan/sample?class=0&seed=1").status_code == 200
    assert lookups == []

    client = make_client(opentelemetry=True)
    assert client.post("/acgan/sample?class=0&seed=1").status_code == 200
    assert lookups  # asked for: FastAPI's own telemetry runs, with whatever providers are set
