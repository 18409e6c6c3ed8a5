"""Served images/s of a demo-sized ACGAN at concurrency C (n images per request), beside the raw
forward-plus-PNG-encode rate at the same batch sizes, in the same run, and the mean batch size seen.

    python benchmarks/quick_serve.py [--checkpoint checkpoints/acgan.safetensors] [--concurrency 32] [--n 16]

Without --checkpoint it writes a random-weight ACGAN of the demo's size (28 px, 1 channel, 10 classes,
g_width 32): the weights do not change the cost. It starts a real uvicorn server in a subprocess, so the
figures include HTTP, the queue, encoding and the client (which shares the machine). On a machine
shared with other work, wall-clock rates depend on the CPU share each process gets, so the script also
gives images per CPU-second of the server process and of the raw loop.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from app import codecs  # noqa: E402
from models.images import to_uint8  # noqa: E402

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def demo_checkpoint(directory: Path) -> Path:
    arch = dict(num_classes=10, image_size=28, channels=1, g_width=32, d_width=32)
    path = directory / "acgan.safetensors"
    models.save_checkpoint(path, models.build("acgan", **arch), "acgan", arch, {"dataset": "random"}, classes=CLASSES)
    return path


def raw_rate(path: Path, batch: int, n: int, seconds: float) -> dict[str, float]:
    """Images/s of forward(batch rows) + uint8 + one PNG grid per n images, serially in this process;
    and of the forward alone and the encoding alone (the server overlaps the two in different threads)."""
    ckpt = models.load_checkpoint(path)
    y = torch.zeros(batch, 10)
    y[:, 7] = 1.0
    done, t_forward, t_encode = 0, 0.0, 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds or done == 0:
        z = models.seeded_latents(done, batch, ckpt.generator.arch.latent_dim)
        t0 = time.perf_counter()
        with torch.inference_mode():
            images = to_uint8(ckpt.generator(z, y))
        t1 = time.perf_counter()
        for i in range(0, batch, n):
            codecs.encode_grid(images[i:i + n], "png")
        t_forward += t1 - t0
        t_encode += time.perf_counter() - t1
        done += batch
    return {"forward_plus_png": round(done / (t_forward + t_encode), 1),
            "forward_plus_png_per_cpu_s": round(done / (time.process_time() - cpu_start), 1),
            "forward_only": round(done / t_forward, 1), "png_only": round(done / t_encode, 1)}


def in_thread(fn, *args):
    """Run fn in a fresh thread, as the server's queue worker runs its forwards: on a CPU host whose cores
    are oversubscribed, OpenMP regions started from the main thread can be several times slower."""
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("r", fn(*args)))
    worker.start()
    worker.join()
    return out["r"]


def metric_sum(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


async def load(base: str, concurrency: int, n: int, seconds: float) -> tuple[int, float, dict[int, int]]:
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    images = 0

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:
        async def user(k: int) -> None:
            nonlocal images
            seed = k * 1_000_000
            while time.perf_counter() < stop:
                r = await http.post("/acgan/sample", params={"class": "sneaker", "n": n, "seed": seed})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    images += n
                seed += n

        start = time.perf_counter()
        await asyncio.gather(*[user(k) for k in range(concurrency)])
        return images, time.perf_counter() - start, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="an acgan checkpoint (default: a random demo-sized one)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the load and of each raw run")
    parser.add_argument("--max-batch-rows", type=int, default=64)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="condgen-bench-"))
    try:
        if args.checkpoint:
            shutil.copy(args.checkpoint, tmp / "acgan.safetensors")
            path = tmp / "acgan.safetensors"
        else:
            path = demo_checkpoint(tmp)
        # Raw rates before and after the load: on a shared machine the CPU share drifts, so the spread shows it.
        raw_before = {b: in_thread(raw_rate, path, b, args.n, args.seconds / 4) for b in (args.n, args.max_batch_rows)}
        port = free_port()
        env = {**os.environ, "CONDGEN_CHECKPOINT_DIR": str(tmp), "CONDGEN_MAX_BATCH_ROWS": str(args.max_batch_rows),
               "CONDGEN_MAX_QUEUE_ROWS": str(max(4096, 2 * args.concurrency * args.n)), "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("the server did not become ready")
            before = httpx.get(f"{base}/metrics").text
            cpu_before = cpu_seconds(server.pid)
            images, elapsed, statuses = asyncio.run(load(base, args.concurrency, args.n, args.seconds))
            server_cpu = cpu_seconds(server.pid) - cpu_before
            after = httpx.get(f"{base}/metrics").text
        finally:
            server.terminate()
            server.wait(30)
        batches = metric_sum(after, "condgen_batch_rows_count") - metric_sum(before, "condgen_batch_rows_count")
        rows = metric_sum(after, "condgen_batch_rows_sum") - metric_sum(before, "condgen_batch_rows_sum")
        forward_s = metric_sum(after, "condgen_batch_seconds_sum") - metric_sum(before, "condgen_batch_seconds_sum")
        raw_after = {b: in_thread(raw_rate, path, b, args.n, args.seconds / 4) for b in (args.n, args.max_batch_rows)}
        load_avg = os.getloadavg()[0]
        result = {
            "device": "cuda" if torch.cuda.is_available() else "cpu", "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "load_average_1m": round(load_avg, 2), "seconds": args.seconds,
            "concurrency": args.concurrency, "n": args.n, "max_batch_rows": args.max_batch_rows,
            "served_images_per_s": round(images / elapsed, 1),
            # Per CPU-second of the server process: comparable with the raw figure on a shared machine.
            "served_images_per_server_cpu_s": round(images / server_cpu, 1) if server_cpu else None,
            "responses": statuses,
            "mean_batch_rows": round(rows / batches, 2) if batches else None, "batches": int(batches),
            # The worker's forward time alone (the rest of the server's time is HTTP, encoding, Python).
            "server_forward_images_per_s": round(rows / forward_s, 1) if forward_s else None,
            **{f"raw_images_per_s_batch_{b}_{when}": rates[b]
               for when, rates in (("before", raw_before), ("after", raw_after)) for b in rates},
        }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
