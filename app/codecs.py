"""Image codecs: uint8 [B, H, W, C] tensors to PNG, JPEG, WebP, GIF and base64 JSON, and uploads to tensors.

Everything here is CPU-bound and blocking: routes call it through a worker thread (app.offload decides when
an encoding is small enough to run inline instead).
"""
from __future__ import annotations

import base64
import io
import math
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from models.images import make_grid

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif",
               "json": "application/json"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_SAVE_OPTIONS = {"png": {}, "jpeg": {"quality": 92}, "webp": {"quality": 92, "method": 4}, "gif": {}}


UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class UploadError(ValueError):
    """An upload that cannot be used: status is 413 (too large) or 415 (not an image)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def to_pil(image: torch.Tensor) -> Image.Image:
    """uint8 [H, W, C] with C 1 or 3 -> a PIL image (L or RGB)."""
    array = image.numpy()
    return Image.fromarray(array[:, :, 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")


def encode(image: torch.Tensor, fmt: str) -> bytes:
    """One uint8 [H, W, C] image as png, jpeg or webp bytes."""
    buf = io.BytesIO()
    to_pil(image).save(buf, _PIL_FORMATS[fmt], **_SAVE_OPTIONS[fmt])
    return buf.getvalue()


def grid(images: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """uint8 [B, H, W, C] -> one [H', W', C] image: the image itself when B is 1, else a padded grid."""
    if images.shape[0] == 1:
        return images[0]
    return make_grid(images, columns=columns or math.ceil(math.sqrt(images.shape[0])))


def encode_grid(images: torch.Tensor, fmt: str, columns: int | None = None) -> bytes:
    return encode(grid(images, columns), fmt)


def encode_base64_pngs(images: torch.Tensor) -> list[str]:
    return [base64.b64encode(encode(img, "png")).decode("ascii") for img in images]


def encode_animation(frames: torch.Tensor, fmt: str, frame_ms: int = 100) -> bytes:
    """uint8 [B, H, W, C] as a looping animated GIF or WebP; it plays forth and back so it loops smoothly."""
    pictures = [to_pil(f) for f in frames]
    sequence = pictures + pictures[-2:0:-1]
    buf = io.BytesIO()
    options = {"lossless": True} if fmt == "webp" else {"optimize": False}
    sequence[0].save(buf, _PIL_FORMATS[fmt], save_all=True, append_images=sequence[1:], duration=frame_ms,
                     loop=0, **options)
    return buf.getvalue()


def _square(img: Image.Image, image_size: int, channels: int) -> Image.Image:
    """Alpha onto white, grey or RGB, centre crop to a square, resize (training's loader does the same)."""
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    elif img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16/32-bit greys: scale to 8 bits first (PIL's direct convert to L clips instead of scaling).
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(array.max()), 1.0)
        img = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
    img = img.convert("L" if channels == 1 else "RGB")
    side = min(img.size)
    left, top_ = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top_, left + side, top_ + side))
    if side != image_size:
        img = img.resize((image_size, image_size), Image.LANCZOS)
    return img


def decode_upload(data: bytes, image_size: int, channels: int, max_pixels: int) -> torch.Tensor:
    """Bytes of any image -> float [1, C, S, S] in [-1, 1]: alpha flattened onto white, centre-cropped, resized.

    The same preprocessing as training's image loader (which app/ may not import), so an edit sees what
    the generator was trained on.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Reads the header only: nothing is decoded yet. Only common web formats: Pillow's others
            # include EPS, which it renders by running Ghostscript on the upload.
            img = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
            width, height = img.size
            # Pillow's own limit too, as an error: the warning filter above is process-wide and not
            # thread-safe, so a concurrent decode could otherwise see the bomb warning as a mere warning.
            if Image.MAX_IMAGE_PIXELS is not None:
                max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
            if width * height > max_pixels:
                raise UploadError(413, f"image is {width}x{height} pixels; the limit is {max_pixels} pixels "
                                       f"(CONDGEN_MAX_IMAGE_PIXELS)")
            img.load()
    except UploadError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError(413, f"image has too many pixels; the limit is {max_pixels} "
                               f"(CONDGEN_MAX_IMAGE_PIXELS)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(415, f"the upload is not an image that can be read "
                               f"(PNG, JPEG, WebP, GIF, BMP): {exc}") from None
    try:
        img = _square(img, image_size, channels)
    except (OSError, ValueError) as exc:  # an exotic mode PIL cannot convert (e.g. 16-bit with alpha)
        raise UploadError(415, f"cannot use an image of mode {img.mode!r}: {exc}") from None
    array = np.asarray(img, dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    x = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
    return x.unsqueeze(0)
