"""POST /{name}/edit (stargan): uploads of any size and mode, targets, strength, grid, formats."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image


def upload(size=(40, 30), mode="RGB", color=(200, 30, 30), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img = Image.new(mode, size, color)
    # Some structure, so crops and resizes matter.
    img.paste(Image.new(mode, (size[0] // 3, size[1] // 3), (20, 220, 20) if mode != "L" else 40), (0, 0))
    img.save(buf, fmt)
    return buf.getvalue()


def edit(client, data=None, image=None, name="stargan"):
    files = {"image": ("face.png", image if image is not None else upload(), "image/png")}
    return client.post(f"/{name}/edit", files=files, data=data or {})


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_edit_png(client):
    r = edit(client, {"attributes": json.dumps({"dark": 1})})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = decode(r.content)
    assert img.size == (16, 16) and img.mode == "RGB"


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_edit_formats(client, fmt):
    r = edit(client, {"attributes": '{"smiling": 1}', "format": fmt})
    assert r.status_code == 200 and r.headers["content-type"] == f"image/{fmt}"
    assert decode(r.content).format == fmt.upper()


def test_edit_json_reports_source_and_target(client):
    r = edit(client, {"attributes": json.dumps({"dark": 1, "smiling": 0.5}), "source": json.dumps({"light": 1}),
                      "strength": "0.5", "format": "json"})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == {"light": 1.0, "dark": 0.0, "smiling": 0.0}
    # light and dark are one group: naming dark turns light off.
    assert body["targets"] == [{"light": 0.0, "dark": 1.0, "smiling": 0.5}]
    assert body["labels"] == ["edit"] and len(body["images"]) == 1


def test_strength_zero_equals_keeping_the_source(client):
    keep = edit(client, {"attributes": '{"smiling": 1}', "strength": "0", "format": "json"}).json()["images"][0]
    plain = edit(client, {"format": "json"}).json()["images"][0]
    full = edit(client, {"attributes": '{"smiling": 1}', "format": "json"}).json()["images"][0]
    assert keep == plain != full


def test_edit_grid_is_the_input_beside_each_flip(client):
    r = edit(client, {"grid": "true", "format": "json", "source": '{"light": 1}'})
    body = r.json()
    assert body["labels"] == ["input", "light=0", "dark=1", "smiling=1"]
    assert len(body["images"]) == 4
    # Flipping dark on turns light (same group) off.
    assert body["targets"][1] == {"light": 0.0, "dark": 1.0, "smiling": 0.0}
    png = edit(client, {"grid": "true", "source": '{"light": 1}'})
    assert decode(png.content).size == (4 * 16 + 5 * 2, 16 + 2 * 2)
    # The first tile is the preprocessed input itself.
    first = np.asarray(decode(base64.b64decode(body["images"][0])))
    assert first.shape == (16, 16, 3) and tuple(first[-1, -1]) == (200, 30, 30)


def test_any_size_and_mode_is_cropped_and_resized(client):
    for image in (upload((300, 120)), upload((9, 9)), upload((64, 64), "L", 90),
                  upload((50, 50), "RGBA", (10, 10, 10, 0)), upload((33, 40), fmt="JPEG")):
        r = edit(client, {"format": "png"}, image=image)
        assert r.status_code == 200, r.text
        assert decode(r.content).size == (16, 16)


def test_transparent_pixels_become_white_like_training(client):
    body = edit(client, {"grid": "true", "format": "json"}, image=upload((20, 20), "RGBA", (0, 0, 0, 0))).json()
    first = np.asarray(decode(base64.b64decode(body["images"][0])))
    assert tuple(first[-1, -1]) == (255, 255, 255)


def test_unusual_image_modes_are_served(client):
    cmyk = io.BytesIO()
    Image.new("CMYK", (20, 20), (0, 100, 200, 0)).save(cmyk, "JPEG")
    deep = io.BytesIO()
    Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)).save(deep, "PNG")
    anim = io.BytesIO()
    frames = [Image.new("P", (20, 20), i) for i in range(3)]
    frames[0].save(anim, "GIF", save_all=True, append_images=frames[1:])
    for data in (cmyk.getvalue(), deep.getvalue(), anim.getvalue()):
        r = edit(client, {"format": "png"}, image=data)
        assert r.status_code == 200, r.text
