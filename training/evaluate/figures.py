"""The report's PNG figures, drawn with Pillow alone (no plotting dependency)."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from models.images import make_grid, to_uint8

SERIES_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def _save(array: torch.Tensor, path: Path, scale: int) -> Path:
    grid = array.numpy()
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def image_grid(images: torch.Tensor, columns: int, path: Path, scale: int = 2) -> Path:
    """[-1, 1] images [B, C, H, W], row-major, `columns` per row."""
    return _save(make_grid(to_uint8(images), columns), path, scale)


def nearest_pairs(generated: torch.Tensor, nearest: torch.Tensor, path: Path, scale: int = 2) -> Path:
    """Top row: generated images; bottom row: the training image nearest to each."""
    return image_grid(torch.cat([generated, nearest]), len(generated), path, scale)


def grouped_bars(title: str, categories: list[str], series: dict[str, list[float]], path: Path,
                 value_max: float = 1.0) -> Path:
    """Horizontal bars: one group per category, one bar per series, the value written beside each bar."""
    font = ImageFont.load_default()
    label_w, bar_w, bar_h, gap, top = 110, 420, 12, 10, 48
    n_series = len(series)
    group_h = n_series * bar_h + gap
    height = top + len(categories) * group_h + 10
    image = Image.new("RGB", (label_w + bar_w + 70, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), title, fill="black", font=font)
    x = 8
    for k, name in enumerate(series):  # legend
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        draw.rectangle((x, 26, x + 10, 36), fill=colour)
        draw.text((x + 14, 25), name, fill="black", font=font)
        x += 24 + int(draw.textlength(name, font=font))
    for row, category in enumerate(categories):
        y0 = top + row * group_h
        draw.text((8, y0 + (n_series * bar_h) / 2 - 6), category, fill="black", font=font)
        for k, values in enumerate(series.values()):
            value = values[row]
            y = y0 + k * bar_h
            length = int(bar_w * max(0.0, min(value, value_max)) / value_max)
            draw.rectangle((label_w, y, label_w + max(length, 1), y + bar_h - 2),
                           fill=SERIES_COLOURS[k % len(SERIES_COLOURS)])
            draw.text((label_w + length + 4, y), f"{value:.3f}", fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
