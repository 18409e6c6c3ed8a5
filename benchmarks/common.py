"""Shared pieces of the benchmarks: the model sets, the workloads, latency summaries and the machine's description.

Benchmarks are run by hand or by `make bench`, never by the test suite (DESIGN.md); only the pure helpers here
(percentiles, summaries, interpolation of the ceiling curve) have a unit test.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FASHION_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot"]
T = TypeVar("T")


# --- the models -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSet:
    """What one service instance serves in a benchmark: a sampling model and, optionally, an editor."""

    name: str
    title: str
    sampler: str = "acgan"          # the served name of the acgan checkpoint
    editor: str | None = "stargan"  # the served name of the stargan checkpoint, None: no edit workload


MODEL_SETS = {
    "demo": ModelSet("demo", "demo ACGAN (28x28 grey, g_width 64) + demo StarGAN (32x32 RGB)"),
    # A production-size generator: random weights cost what trained ones do. No 128 px StarGAN: its
    # edit workload would only repeat what the ACGAN's figures show about the queue.
    "prod128": ModelSet("prod128", "production-size ACGAN (128x128 RGB, g_width 64, 12.3 M parameters)",
                        editor=None),
}

PROD_ARCH = dict(num_classes=10, image_size=128, channels=3, latent_dim=128, g_width=64, d_width=64)


def write_model_set(model_set: str, directory: Path) -> Path:
    """A checkpoint folder for the service: the committed demo checkpoints, or a random 128 px ACGAN."""
    directory.mkdir(parents=True, exist_ok=True)
    if model_set == "demo":
        for name in ("acgan", "stargan"):
            shutil.copy(ROOT / "checkpoints" / f"{name}.safetensors", directory / f"{name}.safetensors")
    elif model_set == "prod128":
        import torch

        import models

        torch.manual_seed(0)
        models.save_checkpoint(directory / "acgan.safetensors", models.build("acgan", **PROD_ARCH), "acgan",
                               PROD_ARCH, {"dataset": "random weights (speed benchmark)"}, classes=FASHION_CLASSES)
    else:
        raise ValueError(f"unknown model set {model_set!r}; known: {sorted(MODEL_SETS)}")
    return directory


# --- the workloads --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One kind of request. `rows` is the generator rows a request costs; `group` how many of its images
    go into one encoded picture (1: one PNG per image; 16: a grid or strip of 16)."""

    name: str
    title: str
    operation: str  # sample, interpolate or edit
    rows: int
    group: int
    columns: int | None = None  # grid columns of the encoded picture (None: square-ish)


WORKLOADS = {
    "sample1": Workload("sample1", "sample n=1", "sample", rows=1, group=1),
    "sample16": Workload("sample16", "sample n=16", "sample", rows=16, group=16),
    "interp16": Workload("interp16", "interpolate 16 steps", "interpolate", rows=16, group=16, columns=16),
    "edit": Workload("edit", "edit (1 image)", "edit", rows=1, group=1, columns=1),
}


def edit_upload() -> bytes:
    """A bundled example face (PNG) for the edit workload."""
    return (ROOT / "app" / "static" / "examples" / "woman-light.png").read_bytes()


class RequestMaker:
    """The HTTP request of a workload, the same bytes for condgen and the Ray Serve deployment (which serves
    the same paths). Seeds advance per request so no two requests ask for the same images."""

    def __init__(self, workload: Workload, model_set: ModelSet):
        self.workload = workload
        self.model_set = model_set
        self._boundary = uuid.uuid4().hex
        self._upload = edit_upload() if workload.operation == "edit" else b""

    def request(self, seed: int) -> tuple[str, dict[str, str], bytes]:
        """(path with query, headers, body) of the request with this seed."""
        w, m = self.workload, self.model_set
        if w.operation == "sample":
            return f"/{m.sampler}/sample?class=sneaker&n={w.rows}&seed={seed}", {}, b""
        if w.operation == "interpolate":
            body = json.dumps({"from": {"class": "sneaker", "seed": seed}, "to": {"class": "sandal", "seed": seed + 1},
                               "steps": w.rows, "method": "slerp", "format": "png"}).encode()
            return f"/{m.sampler}/interpolate", {"content-type": "application/json"}, body
        if w.operation == "edit":
            fields = {"attributes": json.dumps({"tone_dark": 1}), "source": json.dumps({"tone_default": 1}),
                      "strength": f"{0.5 + (seed % 50) / 100:.2f}"}
            parts = [f'--{self._boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                     for k, v in fields.items()]
            parts.append(f'--{self._boundary}\r\nContent-Disposition: form-data; name="image"; '
                         f'filename="face.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + self._upload + b"\r\n")
            body = b"".join(parts) + f"--{self._boundary}--\r\n".encode()
            return (f"/{m.editor}/edit", {"content-type": f"multipart/form-data; boundary={self._boundary}"}, body)
        raise ValueError(f"unknown operation {w.operation!r}")


def workloads_for(model_set: ModelSet, names: list[str]) -> list[Workload]:
    return [WORKLOADS[n] for n in names if WORKLOADS[n].operation != "edit" or model_set.editor]


# --- statistics -----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 and mean in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    out = {f"p{q}_ms": percentile(ms, q) for q in (50, 95, 99)}
    out["mean_ms"] = sum(ms) / len(ms) if ms else None
    return {k: (round(v, 2) if v is not None else None) for k, v in out.items()}


def interpolate_curve(points: dict[int, float], x: float) -> float:
    """Linear interpolation of a curve given at integer points (clamped to its ends)."""
    xs = sorted(points)
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]]
    for a, b in zip(xs, xs[1:]):
        if a <= x <= b:
            return points[a] + (points[b] - points[a]) * (x - a) / (b - a)
    raise AssertionError("unreachable")


def ceiling_rate_at(ms_per_batch: dict[int, float], rows: float) -> float:
    """Images/s of the ceiling at a (mean, maybe fractional) batch size: the time of a batch is interpolated
    between the measured sizes, as a forward's cost is close to affine in its rows between them."""
    return rows / (interpolate_curve(ms_per_batch, rows) / 1000.0)


def batch_sizes(max_rows: int) -> list[int]:
    """1, 2, 4, ... up to max_rows (max_rows itself included even when not a power of two)."""
    sizes, b = [], 1
    while b < max_rows:
        sizes.append(b)
        b *= 2
    sizes.append(max_rows)
    return sizes


# --- the machine ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out: dict[str, Any] = {
        "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


class LoadSampler:
    """The 1-minute load average sampled every few seconds in a background thread (the machine is shared:
    the figures say how busy it was)."""

    def __init__(self, every_s: float = 5.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._every = every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self._every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


# --- processes ------------------------------------------------------------------------------------

def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run fn in a fresh thread, as the service's queue worker runs its forwards: on an oversubscribed CPU
    host, OpenMP regions entered from the main thread can run several times slower than from another."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(every_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s:g}s")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


K = TypeVar("K")


def train_steps_in_alternating_blocks(trainers: dict[K, Any], steps: int, rounds: int, warmup: int) -> dict[K, float]:
    """Seconds each Trainer spent on rounds x steps of `train_step`, after `warmup` untimed steps each (compilation
    included); the trainers take turns block by block, so a drift of the CPU share on a shared machine hits all alike."""
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.train_step()
    seconds = dict.fromkeys(trainers, 0.0)
    for _ in range(rounds):
        for key, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            seconds[key] += time.perf_counter() - start
    return seconds
