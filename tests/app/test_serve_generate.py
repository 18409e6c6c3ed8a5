"""POST /{name}/sample and /{name}/interpolate: every format, seeds, grids, class and latent moving together."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from serve_helpers import CLASSES


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(decode(data))


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_sample_one_png_is_the_image_itself(client, family):
    r = client.post(f"/{family}/sample", params={"class": "sneaker", "seed": 7})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "7"
    img = decode(r.content)
    assert img.format == "PNG" and img.size == (28, 28) and img.mode == "L"
    assert np.asarray(img).std() > 0  # a real image, not a blank


def test_sample_grid_png_and_random_seed(client):
    r = client.post("/acgan/sample", params={"class": "bag", "n": 4})
    assert r.status_code == 200
    seed = int(r.headers["x-seed"])
    assert decode(r.content).size == (2 * 28 + 3 * 2, 2 * 28 + 3 * 2)  # 2x2 grid with 2 px padding
    again = client.post("/acgan/sample", params={"class": "bag", "n": 4, "seed": seed})
    assert again.content == r.content


@pytest.mark.parametrize("fmt,pil", [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
def test_sample_image_formats(client, fmt, pil):
    r = client.post("/cgan/sample", params={"class": 3, "n": 2, "seed": 1, "format": fmt})
    assert r.status_code == 200 and r.headers["content-type"] == f"image/{fmt}"
    img = decode(r.content)
    assert img.format == pil and img.size == (2 * 28 + 3 * 2, 28 + 2 * 2)


def test_sample_json_images_equal_single_requests_with_seed_plus_i(client):
    r = client.post("/acgan/sample", params={"class": "coat", "n": 3, "seed": 40, "format": "json"})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "acgan" and body["class"] == "coat" and body["seeds"] == [40, 41, 42]
    assert len(body["images"]) == 3
    for i, b64 in enumerate(body["images"]):
        single = client.post("/acgan/sample", params={"class": "coat", "seed": 40 + i})
        assert np.array_equal(pixels(base64.b64decode(b64)), pixels(single.content))
    # Different seeds, different images.
    assert body["images"][0] != body["images"][1]


def test_class_by_index_equals_class_by_slug(client):
    by_slug = client.post("/acgan/sample", params={"class": "sneaker", "seed": 3})
    by_index = client.post("/acgan/sample", params={"class": CLASSES.index("sneaker"), "seed": 3})
    other = client.post("/acgan/sample", params={"class": "trouser", "seed": 3})
    assert by_slug.content == by_index.content != other.content


def test_truncation_changes_the_image_and_is_deterministic(client):
    plain = client.post("/acgan/sample", params={"class": 1, "seed": 5}).content
    t1 = client.post("/acgan/sample", params={"class": 1, "seed": 5, "truncation": 0.5}).content
    t2 = client.post("/acgan/sample", params={"class": 1, "seed": 5, "truncation": 0.5}).content
    assert t1 == t2 != plain


def test_max_seed_is_accepted(client):
    r = client.post("/acgan/sample", params={"class": 1, "seed": 2**63 - 1, "n": 2, "format": "json"})
    assert r.status_code == 200 and r.json()["seeds"] == [2**63 - 1, 2**63]


def interp(client, fmt="png", **extra):
    body = {"from": {"class": "sneaker", "seed": 1}, "to": {"class": "sandal", "seed": 2}, "steps": 5,
            "format": fmt, **extra}
    return client.post("/acgan/interpolate", json=body)


def test_interpolate_png_strip(client):
    r = interp(client)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert decode(r.content).size == (5 * 28 + 6 * 2, 28 + 2 * 2)


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_interpolate_animations(client, fmt):
    r = interp(client, fmt)
    assert r.status_code == 200 and r.headers["content-type"] == f"image/{fmt}"
    img = decode(r.content)
    assert img.format == fmt.upper() and img.size == (28, 28)
    assert getattr(img, "n_frames", 1) == 8  # 5 frames forth, 3 back


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate_json_ends_are_the_samples(client, method):
    r = interp(client, "json", method=method)
    assert r.status_code == 200
    body = r.json()
    assert body["t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(body["images"]) == 5
    assert body["from"] == {"class": "sneaker", "seed": 1} and body["method"] == method
    first = pixels(base64.b64decode(body["images"][0]))
    last = pixels(base64.b64decode(body["images"][-1]))
    assert np.array_equal(first, pixels(client.post("/acgan/sample", params={"class": "sneaker", "seed": 1}).content))
    assert np.array_equal(last, pixels(client.post("/acgan/sample", params={"class": "sandal", "seed": 2}).content))


def test_slerp_and_lerp_differ_in_the_middle(client):
    s = interp(client, "json", method="slerp").json()["images"][2]
    l = interp(client, "json", method="lerp").json()["images"][2]
    assert s != l


def test_interpolate_cgan_and_class_index(client):
    r = client.post("/cgan/interpolate", json={"from": {"class": 0, "seed": 3}, "to": {"class": "9", "seed": 3},
                                               "steps": 2})
    assert r.status_code == 200 and decode(r.content).size == (2 * 28 + 3 * 2, 32)
