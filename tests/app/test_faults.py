"""Faults: broken checkpoint files at start-up, a model whose forward raises, and SIGTERM with jobs in flight."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from serve_helpers import running_app, served

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs code: it touches the marker file. A serving path that unpickles would show it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def faulty_dir(tmp_path: Path, checkpoint_dir: Path) -> Path:
    """cgan and stargan as they are, plus three files that must be refused."""
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    for name in ("cgan", "stargan"):
        shutil.copy(checkpoint_dir / f"{name}.safetensors", directory)
    whole = (checkpoint_dir / "acgan.safetensors").read_bytes()
    (directory / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    torch.save({"generator": Payload(tmp_path / "pwned")}, directory / "pickled.safetensors")
    with safe_open(checkpoint_dir / "cgan.safetensors", "pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        metadata = dict(f.metadata())
    save_file(tensors, directory / "alien.safetensors", metadata={**metadata, "family": "biggan"})
    return directory


def test_broken_checkpoints_are_skipped_with_the_file_and_reason(make_client, faulty_dir, caplog):
    caplog.set_level(logging.ERROR, logger="condgen.registry")
    client = make_client(faulty_dir)

    ready = client.get("/readyz")
    assert ready.status_code == 200  # the models that loaded serve; the skipped files are listed
    body = ready.json()
    assert body["models"] == ["cgan", "stargan"]
    reasons = body["skipped"]
    assert set(reasons) == {"truncated.safetensors", "pickled.safetensors", "alien.safetensors"}
    assert "not a safetensors file" in reasons["truncated.safetensors"]
    assert "pickle (torch.save) file" in reasons["pickled.safetensors"] and "run code" in reasons["pickled.safetensors"]
    assert "biggan" in reasons["alien.safetensors"]

    # One log line per file, naming the file and the reason.
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "condgen.registry"]
    for file, reason in reasons.items():
        assert any(str(faulty_dir / file) in line and reason in line for line in logged), (file, logged)

    listed = {m["name"]: m for m in client.get("/models").json()}
    assert {n: m["status"] for n, m in listed.items()} == {
        "cgan": "ready", "stargan": "ready", "truncated": "skipped", "pickled": "skipped", "alien": "skipped"}
    assert listed["alien"]["reason"] == reasons["alien.safetensors"]

    # The pickle was never unpickled: its payload did not run.
    assert not (faulty_dir.parent / "pwned").exists()
    r = client.post("/pickled/sample", params={"class": 1})
    assert r.status_code == 404 and "was not loaded" in r.json()["detail"]
    assert client.post("/cgan/sample", params={"class": "bag"}).status_code == 200


@pytest.mark.anyio
async def test_a_model_whose_forward_raises_fails_only_its_own_requests(checkpoint_dir):
    async with running_app(checkpoint_dir, max_batch_rows=8) as (app, http):
        async def sample(model: str, seed: int) -> httpx.Response:
            return await http.post(f"/{model}/sample", params={"class": 1, "seed": seed, "n": 2})

        reference = [(await sample("cgan", seed)).content for seed in range(4)]
        generator = served(app, "acgan").checkpoint.generator

        fault = "CUDA error: an illegal memory access was encountered"

        def broken(*args, **kwargs):
            raise RuntimeError(fault)

        generator.forward = broken
        responses = await asyncio.gather(*[sample(model, seed) for seed in range(4) for model in ("acgan", "cgan")])
        broken_model, other_model = responses[0::2], responses[1::2]
        for r in broken_model:
            assert r.status_code == 500
            assert r.json()["detail"] == f"inference failed: RuntimeError: {fault}"
        assert [r.status_code for r in other_model] == [200] * 4
        assert [r.content for r in other_model] == reference  # the same bytes as before the fault
        assert (await http.get("/readyz")).status_code == 200

        del generator.forward  # the fault clears: the same model serves again, nothing was left broken
        assert (await sample("acgan", 0)).status_code == 200


def free_listener_port(proc: subprocess.Popen, log: list[str], timeout: float = 600.0) -> int:
    """The port uvicorn bound (it was asked for port 0), read from its log. The timeout is only a safety
    net: start-up takes seconds, but minutes on a machine starved of CPU."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(log):
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                return int(found.group(1))
        assert proc.poll() is None, "uvicorn exited:\n" + "".join(log)
        time.sleep(0.05)
    raise AssertionError("uvicorn did not start:\n" + "".join(log))


def refuses_new_requests(base: str, timeout: float = 120.0) -> bool:
    """Once uvicorn has handled the signal (at once, unless the machine is starved) it closes its listening
    socket: a new connection is refused, or reset unanswered when it raced the close (seen once in CI), or, had
    it slipped in, would get 503 from a closing queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"{base}/acgan/sample", params={"class": 1}, timeout=30)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):  # no response: not served
            return True
        if r.status_code == 503:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_finishes_the_jobs_in_flight_and_refuses_new_ones(checkpoint_dir):
    # MAX_WAIT_MS holds queued jobs for more rows, so they are surely in flight when SIGTERM comes.
    env = {**os.environ, "CONDGEN_CHECKPOINT_DIR": str(checkpoint_dir), "CONDGEN_DEVICE": "cpu",
           "CONDGEN_MAX_BATCH_ROWS": "64", "CONDGEN_MAX_WAIT_MS": "1500", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        base = f"http://127.0.0.1:{free_listener_port(proc, log)}"
        assert httpx.get(f"{base}/readyz", timeout=120).status_code == 200

        answered_at: list[float] = []

        def sample(seed: int) -> httpx.Response:
            r = httpx.post(f"{base}/acgan/sample", params={"class": 1, "seed": seed, "n": 4}, timeout=300)
            answered_at.append(time.monotonic())
            return r

        with ThreadPoolExecutor(4) as pool:
            in_flight = [pool.submit(sample, seed) for seed in range(4)]
            deadline = time.monotonic() + 300
            while 'condgen_queued_rows{model="acgan"} 16.0' not in httpx.get(f"{base}/metrics").text:
                assert time.monotonic() < deadline, "the requests never reached the queue"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            signalled_at = time.monotonic()
            assert refuses_new_requests(base)
            finished = [f.result(timeout=300) for f in in_flight]
        assert [r.status_code for r in finished] == [200] * 4
        assert min(answered_at) > signalled_at  # they were still in flight when the signal came
        assert all(r.content.startswith(b"\x89PNG") for r in finished)
        # uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit status says SIGTERM.
        assert proc.wait(timeout=300) in (0, -signal.SIGTERM)
        reader.join(timeout=10)
        text = "".join(log)
        assert "Application shutdown complete" in text and "Finished server process" in text, text
        assert "Traceback" not in text and "ERROR" not in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
