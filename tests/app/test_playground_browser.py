"""The playground at / in a real browser: Debian's Chromium, headless, driven by Playwright for Python, against a
live uvicorn on loopback serving tiny random-weight checkpoints (acgan 28 px grey, stargan 16 px RGB).

Needs /usr/bin/chromium (apt-get install chromium) and playwright (pip install playwright; never
`playwright install`: the browser is Debian's). Without either, the module is skipped and says why.
"""
from __future__ import annotations

import io
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import uvicorn
from PIL import Image

from app.main import create_app

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium): browser tests skipped", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000  # generous: CI machines are small and may be busy
sync_api.expect.set_options(timeout=TIMEOUT_MS)
MAX_SAMPLES = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(checkpoint_dir: Path) -> Iterator[str]:
    """uvicorn on a free loopback port, configured as an operator would: CONDGEN_* environment variables.

    It runs in a thread of this process (torch is imported once: a second process would pay for it again).
    """
    port = _free_port()
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("CONDGEN_")]:
            env.delenv(name)
        env.setenv("CONDGEN_CHECKPOINT_DIR", str(checkpoint_dir))
        env.setenv("CONDGEN_DEVICE", "cpu")
        env.setenv("CONDGEN_MAX_BATCH_ROWS", "8")
        env.setenv("CONDGEN_MAX_SAMPLES", str(MAX_SAMPLES))
        app = create_app()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not (uv.started and httpx.get(f"{base}/readyz", timeout=5).status_code == 200):
            assert thread.is_alive(), "uvicorn stopped while starting (see the log above)"
            assert time.monotonic() < deadline, "uvicorn was not ready in 60 s"
            time.sleep(0.05)
        yield base
    finally:
        uv.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shared_page(browser, server: str) -> Iterator["sync_api.Page"]:
    """One page for the module (a new page costs a renderer process: seconds on a busy machine)."""
    context = browser.new_context(base_url=server, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    pg.console_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def page(shared_page) -> "sync_api.Page":
    """The shared page, its console errors cleared; each test loads the page afresh with open_mode."""
    shared_page.console_errors.clear()
    return shared_page


def open_mode(page, model: str | None = None, mode: str | None = None) -> None:
    """A fresh load of the page (a new query string, so never a same-document navigation) at model and mode."""
    hash_ = f"#model={model}&mode={mode}" if model else ""
    page.goto(f"/?load={time.monotonic_ns()}{hash_}")
    if mode:
        page.wait_for_selector(f"#tab-{mode}[aria-selected='true']")
        sync_api.expect(page.locator(f"#panel-{mode}")).to_be_visible()


def natural_width(locator) -> int:
    return locator.evaluate("img => img.complete ? img.naturalWidth : -1")


def png_bytes(size: int = 40, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    img = Image.new("RGB", (size, size), colour)
    img.paste((30, 60, 200), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_page_loads_without_console_errors(page):
    open_mode(page)
    # The first model (acgan) is chosen and a first grid sampled without any click.
    page.wait_for_selector("#sample-grid img")
    sync_api.expect(page.locator("#model")).to_have_value("acgan")
    assert page.locator("a[href='/docs']").count() == 1 and page.locator("a[href='/metrics']").count() == 1
    # Every image has alt text; every visible control has a label (or an aria-label).
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, button, img')]
        .filter(el => el.offsetParent !== null)
        .filter(el => el.tagName === 'IMG' ? !el.alt
                      : el.tagName === 'BUTTON' ? !(el.textContent.trim() || el.getAttribute('aria-label')
                                                    || el.querySelector('img[alt]'))
                      : !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    assert page.console_errors == []


def test_sample_shows_an_image_of_the_model_size_and_its_seed(page):
    open_mode(page, "acgan", "sample")
    page.fill("#sample-n", "3")
    page.fill("#sample-seed", "5")
    page.click("#sample-run")
    second = page.locator("#sample-grid img[alt='tshirt, seed 6']")
    second.wait_for()
    assert page.locator("#sample-grid img").count() == 3
    assert natural_width(second) == 28  # the model's image size, not the displayed size
    page.locator("#sample-grid button").nth(1).click()  # click an image: its seed is shown
    sync_api.expect(page.locator("#picked-text")).to_contain_text("Seed 6")
    # Keyboard: focus the third image and press Enter.
    page.locator("#sample-grid button").nth(2).focus()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#picked-text")).to_contain_text("Seed 7")
    assert page.console_errors == []


def test_changing_class_and_seed_changes_the_image(page):
    open_mode(page, "acgan", "sample")
    page.fill("#sample-n", "1")
    page.fill("#sample-seed", "11")
    page.press("#sample-seed", "Enter")
    first = page.locator("img[alt='tshirt, seed 11']").first
    first.wait_for()
    src_a = first.get_attribute("src")
    page.select_option("#sample-class", "trouser")  # a new class samples at once
    by_class = page.locator("#sample-grid img[alt='trouser, seed 11']")
    by_class.wait_for()
    src_b = by_class.get_attribute("src")
    page.fill("#sample-seed", "12")
    page.press("#sample-seed", "Enter")
    by_seed = page.locator("#sample-grid img[alt='trouser, seed 12']")
    by_seed.wait_for()
    src_c = by_seed.get_attribute("src")
    assert src_a.startswith("data:image/png;base64,")
    assert len({src_a, src_b, src_c}) == 3
    # The dice rolls a new seed and samples with it.
    page.click("button[data-dice='sample-seed']")
    page.wait_for_function("() => document.querySelector('#sample-grid').dataset.seed !== '12'")
    assert page.locator("#sample-grid img").first.get_attribute("src") != src_c
    assert page.console_errors == []


def test_interpolation_plays_and_scrubs(page):
    open_mode(page, "acgan", "interpolate")
    page.select_option("#from-class", "sneaker")
    page.fill("#from-seed", "1")
    page.select_option("#to-class", "bag")
    page.fill("#to-seed", "2")
    page.fill("#interp-steps", "6")
    page.click("#interp-run")
    page.wait_for_selector("#player:not([hidden])")
    assert page.locator("#player-strip img").count() == 6
    assert natural_width(page.locator("#player-image")) == 28
    # It plays: the frame index advances by itself.
    page.wait_for_function("() => Number(document.querySelector('#player').dataset.frame) > 0")
    page.wait_for_function("() => Number(document.querySelector('#player').dataset.frame) >= 2")
    # Pause, then scrub with the keyboard.
    page.click("#player-toggle")
    sync_api.expect(page.locator("#player-toggle")).to_have_text("Play")
    page.locator("#player-scrub").focus()
    page.keyboard.press("Home")
    sync_api.expect(page.locator("#player")).to_have_attribute("data-frame", "0")
    page.keyboard.press("ArrowRight")
    sync_api.expect(page.locator("#player")).to_have_attribute("data-frame", "1")
    sync_api.expect(page.locator("#player-image")).to_have_attribute("alt", "Frame 2 of 6 from sneaker seed 1 to bag seed 2")
    assert page.console_errors == []


def test_upload_and_toggle_an_attribute_shows_an_edit(page):
    open_mode(page, "stargan", "edit")
    assert page.locator("#tab-sample").is_hidden()  # a stargan has no sampling
    page.set_input_files("#edit-upload", {"name": "face.png", "mimeType": "image/png", "buffer": png_bytes()})
    output = page.locator("#edit-output")
    sync_api.expect(output).to_have_attribute("data-change", "no attribute changed")
    before = output.get_attribute("src")
    # The checkpoint's group (light, dark) is a radio group; smiling, a binary attribute, a checkbox.
    target = page.locator("#target-attrs")
    assert target.locator("input[type=radio]").count() == 3  # light, dark, none of these
    target.get_by_label("smiling").check()
    sync_api.expect(output).to_have_attribute("data-change", "smiling on")
    assert natural_width(output) == 16
    after_smile = output.get_attribute("src")
    assert after_smile != before
    target.get_by_label("dark").check()  # the other member of the group: light goes off
    sync_api.expect(output).to_have_attribute("data-change", "dark, smiling on; light off")
    assert output.get_attribute("src") != after_smile
    assert "face.png" in page.locator("#edit-input").get_attribute("alt")
    # A bundled example works as the input too.
    page.locator("label.example").first.click()
    sync_api.expect(page.locator("#edit-input")).to_have_attribute("alt", "Example: woman: red hair (default yellow skin tone)")
    sync_api.expect(output).to_have_attribute("data-change", "no attribute changed")
    assert page.console_errors == []


def test_api_errors_are_shown_in_words(page, server):
    open_mode(page, "acgan", "sample")
    page.wait_for_selector("#sample-grid img")
    error = page.locator("#error")
    # n over CONDGEN_MAX_SAMPLES: the route's own message.
    detail = httpx.post(f"{server}/acgan/sample", params={"class": "bag", "n": 100}).json()["detail"]
    assert detail.startswith("n must be between 1 and 16")
    page.fill("#sample-n", "100")
    page.press("#sample-n", "Enter")
    sync_api.expect(error).to_be_visible()
    sync_api.expect(error).to_contain_text(detail)
    sync_api.expect(error).to_contain_text("422")
    # A seed out of range: pydantic's message, with the field's name.
    page.fill("#sample-n", "1")
    page.fill("#sample-seed", str(2**63))
    page.press("#sample-seed", "Enter")
    sync_api.expect(error).to_contain_text("seed: Input should be less than or equal to 9223372036854775807")
    # A good request clears the error.
    page.fill("#sample-seed", "3")
    page.press("#sample-seed", "Enter")
    sync_api.expect(error).to_be_hidden()
    # An upload that is not an image: 415 with the service's words.
    open_mode(page, "stargan", "edit")
    page.set_input_files("#edit-upload", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
    sync_api.expect(error).to_contain_text("415")
    sync_api.expect(error).to_contain_text("the upload is not an image that can be read")
