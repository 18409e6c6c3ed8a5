"""Bad input the error tests (test_serve_errors.py) do not cover: truncated and bomb images, streamed
oversize bodies, NaN and absurd numbers in JSON, wrong content types, malformed multipart. Each gets a 4xx
with a useful detail, and the service keeps serving."""
from __future__ import annotations

import io
import json
import resource
import struct
import zlib
from typing import AsyncIterator

import pytest
from PIL import Image, ImageFile

from serve_helpers import running_app


def png(size: tuple[int, int] = (40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buf, "PNG")  # noise: the data does not compress away
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int) -> bytes:
    """A real, valid 1-bit PNG of side x side black pixels: tens of KB on the wire, side**2 bytes decoded."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    deflate = zlib.compressobj(9)
    data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
            + png_chunk(b"IEND", b""))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def edit(client, image: bytes, **data: str):
    return client.post("/stargan/edit", files={"image": ("a.png", image, "image/png")}, data=data)


def still_serving(client) -> None:
    assert client.post("/acgan/sample", params={"class": "sneaker", "seed": 1}).status_code == 200
    assert edit(client, png()).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_truncated_png_is_415(client):
    whole = png((64, 64))
    assert edit(client, whole).status_code == 200
    for cut in (len(whole) // 4, len(whole) // 2, len(whole) * 3 // 4):  # the pixel data stops short
        r = edit(client, whole[:cut])
        assert r.status_code == 415, r.text
        assert "not an image that can be read" in r.json()["detail"]
    still_serving(client)


@pytest.mark.parametrize("side", [30000, 5000])
def test_decompression_bomb_is_refused_before_decoding(client, monkeypatch, side):
    """30000^2 passes Pillow's own bomb limit; 5000^2 is under it but over CONDGEN_MAX_IMAGE_PIXELS."""
    bomb = bomb_png(side)
    assert len(bomb) < 200_000  # small on the wire
    decoded = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original_load(self))
    before = peak_rss_mib()
    r = edit(client, bomb)
    assert r.status_code == 413
    assert "pixels" in r.json()["detail"] and "CONDGEN_MAX_IMAGE_PIXELS" in r.json()["detail"]
    assert decoded == []  # refused from the header: the pixel data was never decoded
    assert peak_rss_mib() - before < 100  # decoding 30000^2 would take 900 MiB (1 byte per pixel)
    still_serving(client)


def test_pillow_pixel_limit_is_an_error_even_above_the_configured_limit(make_client, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60 * 60)
    client = make_client(max_image_pixels=10**9)
    r = edit(client, png((61, 60)))
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    assert edit(client, png((60, 60))).status_code == 200


@pytest.mark.parametrize("data", [
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",  # EPS: Pillow would run Ghostscript
    b"GIF89a" + b"\0" * 7,  # a GIF header and nothing else
    b"\xff\xd8\xff" + b"\0" * 50,  # a JPEG start and garbage
])
def test_other_formats_and_broken_headers_are_415(client, data):
    r = edit(client, data)
    assert r.status_code == 415 and "PNG, JPEG, WebP, GIF, BMP" in r.json()["detail"]


@pytest.mark.anyio
async def test_oversize_body_without_content_length_is_refused_early(checkpoint_dir):
    """A chunked upload (no Content-Length) is counted as it arrives and cut off just past the limit."""
    sent = 0

    async def body(head: bytes = b"") -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(640):  # 10 MiB in 16 KiB chunks
            sent += 16 * 1024
            yield b"\0" * (16 * 1024)

    async with running_app(checkpoint_dir, max_upload_bytes=32 * 1024) as (_, http):
        part = b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        r = await http.post("/stargan/edit", content=body(part),
                            headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 413, r.text
        assert "CONDGEN_MAX_UPLOAD_BYTES" in r.json()["detail"]
        assert sent < 256 * 1024  # read up to the limit (32 KiB + form overhead), not the 10 MiB
        # The same limit on a JSON body streamed to another route.
        sent = 0
        r = await http.post("/acgan/interpolate", content=body(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and sent < 256 * 1024
        assert (await http.post("/acgan/sample", params={"class": 1})).status_code == 200


@pytest.mark.parametrize("raw,where", [
    (b'{"from": {"class": 1, "seed": NaN}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": 1}, "to": {"class": Infinity}}', "class"),
    (b'{"from": {"class": 1, "seed": 1.5}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": 1, "seed": true}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": true}, "to": {"class": 2}}', "class"),
    (b'{"from": {"class": 1, "seed": -7}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": 1, "seed": 1e400}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": 1, "seed": 100000000000000000000000000000000}, "to": {"class": 2}}', "seed"),
    (b'{"from": {"class": 1}, "to": {"class": 2}, "steps": 1000000000}', "steps"),
    (b'{"from": {"class": 1}, "to": {"class": 2}, "steps": "8"}', "steps"),
    (b'{"from": {"class": 1}, "to": {"class": 2}, "steps": -3}', "steps"),
    (b'[1, 2, 3]', "body"),
    (b'"from"', "body"),
    (b'{"from": {"class": 1}, "to": {"class": 2}', "JSON decode error"),  # cut short
    (b'', "body"),
    (b'{"from": {"class": 1}, "to": {"class": 2}, "steps": "\xff\xfe8"}', "cannot be read as JSON"),  # not UTF-8
    (b'e\xe9\x02\x04\xbaX-7', "cannot be read as JSON"),  # what the schema fuzzer sent
])
def test_nan_absurd_and_malformed_json_is_422(client, raw, where):
    r = client.post("/acgan/interpolate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert where in json.dumps(r.json()["detail"])


def test_a_huge_invalid_value_is_not_echoed_back_whole(client):
    r = client.post("/acgan/sample", params={"class": "x" * 50_000})
    assert r.status_code == 422 and "valid classes" in r.json()["detail"]
    assert len(r.content) < 2_000
    r = client.post("/acgan/interpolate", json={"from": {"class": 1, "seed": "9" * 50_000}, "to": {"class": 2}})
    assert r.status_code == 422 and len(r.content) < 2_000


@pytest.mark.parametrize("params", [
    {"class": 1, "n": 10**12}, {"class": 1, "n": -5}, {"class": 1, "seed": 10**30}, {"class": 1, "seed": "nan"},
    {"class": 1, "truncation": "inf"}, {"class": 1, "truncation": "-0.5"}, {"class": 1, "truncation": "1e-400"},
    {"class": "1e3"}, {"class": " "},
])
def test_absurd_sample_numbers_are_422(client, params):
    r = client.post("/acgan/sample", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("data", [{"strength": "inf"}, {"strength": "-1"}, {"strength": "1e999"},
                                  {"attributes": '{"dark": 1e999}'}, {"source": '{"dark": -Infinity}'}])
def test_absurd_edit_numbers_are_422(client, data):
    r = edit(client, png(), **data)
    assert r.status_code == 422, r.text


def test_wrong_content_types(client):
    valid = {"from": {"class": 1}, "to": {"class": 2}}
    # JSON sent as text, or a form where JSON is expected: 422 naming the body.
    r = client.post("/acgan/interpolate", content=json.dumps(valid), headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "dictionary" in json.dumps(r.json()["detail"])
    r = client.post("/acgan/interpolate", data={"from": "sneaker", "to": "sandal"})
    assert r.status_code == 422
    # JSON where a multipart upload is expected: the image is missing.
    r = client.post("/stargan/edit", json={"image": "aGVsbG8=", "attributes": "{}"})
    assert r.status_code == 422 and "image" in json.dumps(r.json()["detail"])
    # The declared type of the part does not matter; its bytes do.
    r = client.post("/stargan/edit", files={"image": ("a.txt", png(), "text/plain")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = client.post("/stargan/edit", files={"image": ("a.png", b"plain text, not pixels", "image/png")})
    assert r.status_code == 415
    still_serving(client)


@pytest.mark.parametrize("content_type,body,status,needle", [
    ("multipart/form-data", b"garbage", 400, "boundary"),
    ("multipart/form-data; boundary=zz", b"garbage without any boundary", 400, "multipart"),
    ("multipart/form-data; boundary=zz",
     b'--zz\r\nContent-Disposition: form-data; filename="a.png"\r\n\r\nabc\r\n--zz--\r\n', 400, "name"),
    ("multipart/form-data; boundary=zz",  # cut off before the closing boundary: the part never ended
     b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG', 422, "image"),
    ("multipart/form-data; boundary=zz", b"--zz--\r\n", 422, "image"),
])
def test_malformed_multipart_is_4xx_with_a_detail(client, content_type, body, status, needle):
    r = client.post("/stargan/edit", content=body, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert needle in json.dumps(r.json()["detail"])
    still_serving(client)
