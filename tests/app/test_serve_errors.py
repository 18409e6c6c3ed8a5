"""Every error code DESIGN.md lists, as JSON {"detail": ...}; bad input never gets a 500."""
from __future__ import annotations

import io

import pytest
from PIL import Image


def png(size=(20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_404_unknown_model_names_the_served_ones(client):
    r = client.post("/nope/sample", params={"class": 1})
    assert r.status_code == 404
    assert r.json()["detail"] == "no model 'nope'; served: acgan, cgan, stargan (see GET /models)"
    assert client.post("/nope/interpolate", json={"from": {"class": 1}, "to": {"class": 2}}).status_code == 404
    assert client.post("/nope/edit", files={"image": ("a.png", png())}).status_code == 404
    assert client.get("/no/such/path").status_code == 404


def test_405_operation_the_family_lacks(client):
    r = client.post("/stargan/sample", params={"class": 1})
    assert r.status_code == 405 and "supports edit" in r.json()["detail"]
    r = client.post("/stargan/interpolate", json={"from": {"class": 1}, "to": {"class": 2}})
    assert r.status_code == 405
    r = client.post("/acgan/edit", files={"image": ("a.png", png())})
    assert r.status_code == 405 and "sample and interpolate" in r.json()["detail"]
    assert client.get("/acgan/sample").status_code == 405  # wrong method


@pytest.mark.parametrize("params,needle", [
    ({"class": "nope"}, "valid classes: tshirt, trouser"),
    ({"class": "10"}, "index 0..9"),
    ({}, "class"),
    ({"class": 1, "n": 0}, "n"),
    ({"class": 1, "n": 17}, "CONDGEN_MAX_SAMPLES"),
    ({"class": 1, "n": "many"}, "n"),
    ({"class": 1, "seed": -1}, "seed"),
    ({"class": 1, "seed": 2**63}, "seed"),
    ({"class": 1, "truncation": 0}, "truncation"),
    ({"class": 1, "truncation": 1.5}, "truncation"),
    ({"class": 1, "format": "bmp"}, "format"),
])
def test_422_sample(client, params, needle):
    r = client.post("/acgan/sample", params=params)
    assert r.status_code == 422
    assert needle in str(r.json()["detail"])


@pytest.mark.parametrize("body,needle", [
    ({"from": {"class": "nope"}, "to": {"class": 1}}, "valid classes"),
    ({"from": {"class": 1}, "to": {"class": 2}, "steps": 1}, "steps"),
    ({"from": {"class": 1}, "to": {"class": 2}, "steps": 65}, "steps"),
    ({"from": {"class": 1}, "to": {"class": 2}, "method": "cubic"}, "method"),
    ({"from": {"class": 1}, "to": {"class": 2}, "format": "jpeg"}, "format"),
    ({"from": {"class": 1}}, "to"),
    ({"from": {"class": 1, "seed": -3}, "to": {"class": 2}}, "seed"),
])
def test_422_interpolate(client, body, needle):
    r = client.post("/acgan/interpolate", json=body)
    assert r.status_code == 422 and needle in str(r.json()["detail"])


def test_422_interpolate_not_json(client):
    r = client.post("/acgan/interpolate", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize("data,needle", [
    ({"attributes": '{"wings": 1}'}, "valid attributes: light, dark, smiling"),
    ({"attributes": "{not json"}, "JSON object"),
    ({"attributes": "[1, 2]"}, "JSON object"),
    ({"attributes": '{"dark": 2}'}, "in [0, 1]"),
    ({"attributes": '{"dark": "yes"}'}, "in [0, 1]"),
    ({"source": '{"wings": 0}'}, "unknown attribute"),
    ({"strength": "1.5"}, "strength"),
    ({"format": "gif"}, "format"),
    ({"grid": "perhaps"}, "grid"),
])
def test_422_edit(client, data, needle):
    r = client.post("/stargan/edit", files={"image": ("a.png", png())}, data=data)
    assert r.status_code == 422 and needle in str(r.json()["detail"])


def test_422_edit_without_image(client):
    r = client.post("/stargan/edit", data={"attributes": "{}"})
    assert r.status_code == 422 and "image" in str(r.json()["detail"])


def test_413_upload_too_large(make_client):
    client = make_client(max_upload_bytes=2000)
    big = png((200, 200)) + b"\0" * 3000  # trailing junk: PIL still reads it, so only the size refuses it
    r = client.post("/stargan/edit", files={"image": ("a.png", big)})
    assert r.status_code == 413 and "CONDGEN_MAX_UPLOAD_BYTES" in r.json()["detail"]
    # A body far past the limit is refused from its Content-Length, before it is parsed.
    r = client.post("/stargan/edit", files={"image": ("a.png", b"\0" * 200_000)})
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    assert client.post("/stargan/edit", files={"image": ("a.png", png())}).status_code == 200


def test_413_too_many_pixels(make_client):
    client = make_client(max_image_pixels=100 * 100)
    r = client.post("/stargan/edit", files={"image": ("a.png", png((101, 100)))})
    assert r.status_code == 413 and "CONDGEN_MAX_IMAGE_PIXELS" in r.json()["detail"]
    assert client.post("/stargan/edit", files={"image": ("a.png", png((100, 100)))}).status_code == 200


@pytest.mark.parametrize("data", [b"hello, not an image", b"", png()[:40], b"\x89PNG\r\n\x1a\n" + b"\0" * 100])
def test_415_not_an_image(client, data):
    r = client.post("/stargan/edit", files={"image": ("a.png", data, "image/png")})
    assert r.status_code == 415 and "image" in r.json()["detail"]


def test_401_with_api_key_and_health_stays_open(make_client):
    client = make_client(api_key="s3cret")
    assert client.post("/acgan/sample", params={"class": 1}).status_code == 401
    assert client.post("/acgan/sample", params={"class": 1}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/models").status_code == 401
    ok = client.post("/acgan/sample", params={"class": 1}, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200
    bearer = client.post("/acgan/sample", params={"class": 1}, headers={"Authorization": "Bearer s3cret"})
    assert bearer.status_code == 200
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert client.get(path).status_code == 200


def test_errors_never_stop_the_service(client):
    for _ in range(3):
        client.post("/acgan/sample", params={"class": "x"})
        client.post("/stargan/edit", files={"image": ("a.png", b"junk")})
    assert client.post("/acgan/sample", params={"class": 1}).status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("params", [{"class": 1, "truncation": "nan"}, {"class": 1, "seed": "1e3"},
                                    {"class": 1, "n": "2.5"}, {"class": ""}, {"class": "-1"}])
def test_odd_query_values_are_422(client, params):
    assert client.post("/acgan/sample", params=params).status_code == 422


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-0.5", "null"])
def test_odd_attribute_values_are_422(client, value):
    r = client.post("/stargan/edit", files={"image": ("a.png", png())}, data={"attributes": f'{{"dark": {value}}}'})
    assert r.status_code == 422


def test_strength_nan_is_422(client):
    r = client.post("/stargan/edit", files={"image": ("a.png", png())}, data={"strength": "nan"})
    assert r.status_code == 422
