"""Who gets in: the API key on every generation and model route (and only there), CORS closed unless
configured, no pickle on the serving path, uploads kept off the disk."""
from __future__ import annotations

import io
import pickle
import re
import tempfile

import pytest
import torch
from PIL import Image

KEY = "s3cret-key"
# What stays open with CONDGEN_API_KEY set: probes, metrics, the playground and the API docs.
OPEN = {"/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def png(size=(24, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 40, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_every_route_but_the_open_ones_needs_the_key(make_client):
    client = make_client(api_key=KEY)
    guarded = []
    for route, operations in client.app.openapi()["paths"].items():
        if route in OPEN:
            continue
        path = re.sub(r"\{[^}]+\}", "acgan", route)
        for method in operations:
            r = client.request(method, path)
            assert r.status_code == 401, (method, route, r.status_code)
            assert "API key" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
            guarded.append(route)
    # Every generation route is among them (a new route cannot slip in unguarded unnoticed).
    assert {"/{name}/sample", "/{name}/interpolate", "/{name}/edit", "/models", "/models/{name}"} <= set(guarded)
    for path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/static/playground.js"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("headers", [
    {}, {"X-API-Key": ""}, {"X-API-Key": "s3cret"}, {"X-API-Key": KEY + "x"}, {"Authorization": f"Basic {KEY}"},
    {"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {KEY[:-1]}"},
])
def test_a_missing_or_wrong_key_is_401(make_client, headers):
    client = make_client(api_key=KEY)
    r = client.post("/acgan/sample", params={"class": 1}, headers=headers)
    assert r.status_code == 401
    r = client.post("/stargan/edit", files={"image": ("a.png", png())}, headers=headers)
    assert r.status_code == 401


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"},
                                     {"Authorization": f"bearer {KEY}"}])
def test_the_right_key_in_either_header_is_let_in(make_client, headers):
    client = make_client(api_key=KEY)
    assert client.post("/acgan/sample", params={"class": 1}, headers=headers).status_code == 200
    assert client.post("/stargan/edit", files={"image": ("a.png", png())}, headers=headers).status_code == 200
    assert client.get("/models", headers=headers).status_code == 200


def test_a_blank_key_setting_means_no_key(make_client):
    client = make_client(api_key="  ")
    assert client.app.state.services.settings.api_key is None
    assert client.post("/acgan/sample", params={"class": 1}).status_code == 200


def test_cors_is_closed_by_default(client):
    r = client.post("/acgan/sample", params={"class": 1}, headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    preflight = client.options("/acgan/sample", headers={"Origin": "https://elsewhere.example",
                                                         "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(make_client):
    client = make_client(api_key=KEY, cors_origins="https://playground.example, https://other.example")
    allowed = {"Origin": "https://playground.example"}
    preflight = client.options("/acgan/sample", headers={**allowed, "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "x-api-key"})
    assert preflight.status_code == 200  # the preflight itself needs no key
    assert preflight.headers["access-control-allow-origin"] == "https://playground.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    ok = client.post("/acgan/sample", params={"class": 1, "seed": 3}, headers={**allowed, "X-API-Key": KEY})
    assert ok.headers["access-control-allow-origin"] == "https://playground.example"
    assert "x-seed" in ok.headers["access-control-expose-headers"].lower()
    # Refusals carry the header too, so the page can read why.
    refused = client.post("/acgan/sample", params={"class": 1}, headers=allowed)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://playground.example"
    stranger = client.post("/acgan/sample", params={"class": 1}, headers={"Origin": "https://evil.example",
                                                                         "X-API-Key": KEY})
    assert "access-control-allow-origin" not in stranger.headers
    bad = client.options("/acgan/sample", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers


def test_no_pickle_on_the_serving_path(make_client, monkeypatch):
    """Loading checkpoints and serving every operation with every unpickler disabled."""
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling on the serving path")

    class NoUnpickler:
        def __init__(self, *args, **kwargs):
            refuse()

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", NoUnpickler)
    monkeypatch.setattr(torch, "load", refuse)
    client = make_client()
    assert client.get("/readyz").json()["skipped"] == {}
    assert client.post("/acgan/sample", params={"class": 1, "n": 2, "format": "json"}).status_code == 200
    assert client.post("/cgan/interpolate", json={"from": {"class": 1}, "to": {"class": 2}}).status_code == 200
    assert client.post("/stargan/edit", files={"image": ("a.png", png())}).status_code == 200


def test_uploads_never_touch_the_disk(client, monkeypatch):
    """A 2 MiB upload is past Starlette's default in-memory spool (1 MiB); nothing may go to a file."""
    opened = []

    def record(name):
        original = getattr(tempfile, name)

        def wrapper(*args, **kwargs):
            opened.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(tempfile, name, wrapper)

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        record(name)
    buf = io.BytesIO()
    Image.effect_noise((900, 800), 80).convert("RGB").save(buf, "PNG", compress_level=0)
    big = buf.getvalue()
    assert 2 * 1024 * 1024 < len(big) < client.app.state.services.settings.max_upload_bytes
    r = client.post("/stargan/edit", files={"image": ("big.png", big, "image/png")})
    assert r.status_code == 200
    assert opened == []
