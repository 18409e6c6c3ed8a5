"""Screenshots of the playground in each mode: docs/playground-{sample,interpolate,edit}.png.

    python docs/screenshots.py [--checkpoints checkpoints] [--out docs]

Serves the demo checkpoints (acgan or cgan for sample and interpolate, stargan for edit) with uvicorn on a
free loopback port and drives Debian's Chromium headless with Playwright (apt-get install chromium;
pip install playwright; never `playwright install`). A family whose demo checkpoint is missing is stood in
for by a tiny random-weight checkpoint, and the script says so: its pictures are noise.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import torch  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

import models  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
FASHION = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def stand_in(directory: Path, family: str) -> None:
    """A tiny random-weight checkpoint with the demo's classes or attributes (pictures are noise)."""
    torch.manual_seed(0)
    if family == "stargan":
        index = json.loads((ROOT / "app/static/examples/index.json").read_text())
        attributes = list(index["examples"][0]["attributes"])
        groups = [[a for a in attributes if a.startswith("tone_")]]
        arch = dict(num_attributes=len(attributes), image_size=32, channels=3, g_width=8, d_width=8, res_blocks=1,
                    d_layers=2)
        models.save_checkpoint(directory / "stargan.safetensors", models.build("stargan", **arch), "stargan", arch,
                               {"dataset": "random weights (screenshot stand-in)"}, attributes=attributes,
                               attribute_groups=groups)
    else:
        arch = dict(num_classes=10, image_size=28, channels=1, latent_dim=32, g_width=8, d_width=8)
        models.save_checkpoint(directory / f"{family}.safetensors", models.build(family, **arch), family, arch,
                               {"dataset": "random weights (screenshot stand-in)"}, classes=FASHION)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--stargan", type=Path, default=None,
                        help="a StarGAN checkpoint to use instead of CHECKPOINTS/stargan.safetensors")
    args = parser.parse_args()

    served = Path(tempfile.mkdtemp(prefix="condgen-shots-"))
    generator = next((f for f in ("acgan", "cgan") if (args.checkpoints / f"{f}.safetensors").is_file()), None)
    used = {}
    for family in ("acgan", "cgan", "stargan"):
        src = args.checkpoints / f"{family}.safetensors"
        if src.is_file():
            (served / src.name).symlink_to(src.resolve())
            used[family] = str(src)
    if generator is None:
        stand_in(served, "acgan")
        generator = "acgan"
        used["acgan"] = "tiny random weights (no demo acgan or cgan checkpoint)"
    if args.stargan is not None:
        link = served / "stargan.safetensors"
        link.unlink(missing_ok=True)
        link.symlink_to(args.stargan.resolve())
        used["stargan"] = str(args.stargan)
    if "stargan" not in used:
        stand_in(served, "stargan")
        used["stargan"] = "tiny random weights (no demo stargan checkpoint)"
    for family, what in used.items():
        print(f"{family}: {what}", flush=True)

    port = free_port()
    app = create_app(Settings(checkpoint_dir=served, device="cpu", max_samples=64))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not (server.started and httpx.get(f"{base}/readyz", timeout=10).status_code == 200):
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.1)

    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(base_url=base, viewport={"width": 1200, "height": 760}, device_scale_factor=1,
                                    color_scheme="light", reduced_motion="reduce")
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)

            # sample: 16 sneakers, seed 7; the sixth image chosen
            page.goto(f"/#model={generator}&mode=sample")
            page.wait_for_selector("#sample-grid img")
            page.select_option("#sample-class", "sneaker")
            page.fill("#sample-n", "16")
            page.fill("#sample-seed", "7")
            page.press("#sample-seed", "Enter")
            page.wait_for_selector("#sample-grid img[alt='sneaker, seed 22']")
            page.locator("#sample-grid button").nth(5).click()
            expect(page.locator("#picked-text")).to_contain_text("Seed 12")
            page.locator("#sample-grid button").nth(5).blur()
            page.screenshot(path=str(args.out / "playground-sample.png"), full_page=True)

            # interpolate: sneaker seed 7 to ankle boot seed 8, stopped half way
            page.click("#tab-interpolate")
            page.select_option("#from-class", "sneaker")
            page.fill("#from-seed", "7")
            page.select_option("#to-class", "ankle_boot")
            page.fill("#to-seed", "8")
            page.fill("#interp-steps", "16")
            page.click("#interp-run")
            page.wait_for_selector("#player:not([hidden])")
            page.locator("#player-strip button").nth(7).click()
            expect(page.locator("#player")).to_have_attribute("data-frame", "7")
            page.locator("#player-strip button").nth(7).blur()
            page.screenshot(path=str(args.out / "playground-interpolate.png"), full_page=True)

            # edit: an example face, given the dark skin tone
            page.goto("/#model=stargan&mode=edit")
            page.wait_for_selector("#examples label.example")
            page.locator("label.example").nth(1).click()
            expect(page.locator("#edit-output")).to_have_attribute("data-change", "no attribute changed")
            target = page.locator("#target-attrs")
            target.locator("input[type=radio][value='tone_dark']").check()
            expect(page.locator("#edit-output")).to_have_attribute("data-change", "tone dark on; tone light off")
            page.click("#edit-flips")
            page.wait_for_selector("#edit-flips-row:not([hidden]) img")
            page.mouse.click(5, 5)
            page.screenshot(path=str(args.out / "playground-edit.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(30)
    for mode in ("sample", "interpolate", "edit"):
        print(args.out / f"playground-{mode}.png")


if __name__ == "__main__":
    main()
