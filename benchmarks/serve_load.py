"""Closed-loop load against real servers: condgen as it ships, condgen without padding, condgen unbatched
(MAX_BATCH_ROWS=1) and a Ray Serve deployment of the same generators with @serve.batch, in one run.

Every server runs as its own process on loopback and all are up at once; the points are interleaved (for
each workload, for each concurrency, each server in turn), so a drift of the CPU share on a shared machine
hits every server alike and the ratios between them stay fair. Each point: `concurrency` clients, each
sending its next request as soon as the last one answered, for --warmup-s then --seconds; requests that
complete inside the measured window count. The in-process ceiling (benchmarks/ceiling.py) is measured at
the start, and again right after each condgen point at the batch size that point's queue used.

    python benchmarks/serve_load.py [--model-set demo|prod128] [--seconds 5] [--concurrency 1,4,16,64]

Writes benchmarks/results/serve-MODELSET.json; `python benchmarks/report.py` turns it into tables and plots.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.registry import load_one  # noqa: E402
from benchmarks import ceiling  # noqa: E402
from benchmarks.common import (MODEL_SETS, RESULTS, ROOT, WORKLOADS, LoadSampler, ModelSet,  # noqa: E402
                               RequestMaker, Workload, free_port, latency_summary, machine, wait_until,
                               workloads_for, write_json, write_model_set)
from benchmarks.http_client import Connection, get  # noqa: E402

HOST = "127.0.0.1"
RAY_PYTHON = ROOT / "benchmarks" / ".venv-ray" / "bin" / "python"
TARGETS = ("condgen", "condgen-pad", "unbatched", "ray")
TARGET_TITLES = {
    "condgen": "condgen (defaults: MAX_BATCH_ROWS={mbr}, PAD_BATCHES=false)",
    "condgen-pad": "condgen, PAD_BATCHES=true",
    "unbatched": "condgen unbatched (MAX_BATCH_ROWS=1)",
    "ray": "Ray Serve, @serve.batch (max {mbr} rows, wait 0)",
}


# --- process CPU time (Linux /proc): how much of the machine each server took ------------------------------

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.extend(tree.get(p, []))
        todo.extend(tree.get(p, []))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Ray's raylet, workers, proxy...)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


# --- the servers ------------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    max_batch_rows: int
    torch_threads: int  # the forward's threads: the service's own choice, given to Ray too
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def title(self) -> str:
        return TARGET_TITLES[self.name].format(mbr=self.max_batch_rows)

    def start(self, checkpoint_dir: Path, logs: Path, timeout_s: float) -> None:
        self.log_path = logs / f"{self.name}.log"
        log = self.log_path.open("w")
        if self.name == "ray":
            cmd = [str(RAY_PYTHON), str(ROOT / "benchmarks" / "ray_serve_app.py"), "--checkpoint-dir",
                   str(checkpoint_dir), "--port", str(self.port), "--max-batch-rows", str(self.max_batch_rows),
                   "--threads", str(self.torch_threads)]
            env = dict(os.environ)
        else:
            cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(self.port),
                   "--log-level", "warning", "--no-access-log"]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "CONDGEN_CHECKPOINT_DIR": str(checkpoint_dir),
                   "CONDGEN_MAX_BATCH_ROWS": str(1 if self.name == "unbatched" else self.max_batch_rows),
                   "CONDGEN_PAD_BATCHES": "true" if self.name == "condgen-pad" else "false",
                   # Room for every client's request: the benchmark measures speed, not refusals.
                   "CONDGEN_MAX_QUEUE_ROWS": "65536", "CONDGEN_REQUEST_TIMEOUT_S": str(timeout_s),
                   "CONDGEN_TORCH_THREADS": str(self.torch_threads)}
        # Not a session of its own: on Linux a session is a scheduling group (autogroup), and CPU time is
        # shared between groups first; in the benchmark's group every server gets the same share.
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")
        if self.name == "ray":
            return "READY" in self.log_path.read_text(errors="replace")
        status, _ = asyncio.run(get(HOST, self.port, "/readyz"))
        return status == 200

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM if self.name != "ray" else signal.SIGINT)
        helpers = descendants(self.proc.pid)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in helpers:  # Ray's raylet, GCS and workers, if its shutdown left any
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def batch_counters(self, model: str) -> tuple[float, float]:
        """(forward passes, real rows) run for `model` so far."""
        if self.name == "ray":
            status, body = await get(HOST, self.port, f"/{model}/_stats")
            data = json.loads(body) if status == 200 else {"batches": 0, "rows": 0}
            return float(data["batches"]), float(data["rows"])
        _, body = await get(HOST, self.port, "/metrics")
        text = body.decode()

        def value(metric: str) -> float:
            m = re.search(rf'^{metric}\{{model="{re.escape(model)}"\}} (\S+)$', text, re.M)
            return float(m.group(1)) if m else 0.0

        return value("condgen_batch_rows_count"), value("condgen_batch_rows_sum")

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid) if self.proc else 0.0


def idle_cores(target: Target, seconds: float = 2.0) -> float:
    """Cores the server uses doing nothing (Ray's controller, raylet and GCS tick along)."""
    before = target.cpu_seconds()
    time.sleep(seconds)
    return (target.cpu_seconds() - before) / seconds


def wait_idle(target: Target, baseline_cores: float, timeout_s: float, margin_cores: float = 0.1) -> float:
    """Wait until the server is back to its idle CPU use (abandoned requests finished or dropped), so the
    next point, on whichever server, starts on a quiet machine."""
    start = time.monotonic()
    last = target.cpu_seconds()
    while time.monotonic() - start < timeout_s:
        time.sleep(0.5)
        now = target.cpu_seconds()
        if (now - last) / 0.5 < baseline_cores + margin_cores:
            break
        last = now
    return time.monotonic() - start


# --- one point ------------------------------------------------------------------------------------------

async def load_point(target: Target, maker: RequestMaker, concurrency: int, warmup_s: float, seconds: float,
                     max_phase_s: float) -> dict[str, Any]:
    """Closed-loop clients; what completes inside the measured window counts.

    Closed-loop latency only reaches its steady state once every client has been answered once (the first
    requests all arrive together), so the warm-up lasts until then (at least warmup_s), and the window
    lasts at least `seconds` and at least as many completions as clients (a full cycle); each phase is cut
    at max_phase_s. On a slow or starved server that makes a point longer, never its figures optimistic.
    """
    workload = maker.workload
    model = maker.model_set.editor if workload.operation == "edit" else maker.model_set.sampler
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answered = [0] * concurrency
    conns = [Connection(HOST, target.port) for _ in range(concurrency)]
    t0 = time.perf_counter()
    window: dict[str, float] = {"start": float("inf"), "end": float("inf")}
    counters: dict[str, Any] = {}

    async def user(k: int) -> None:
        seed = (k + 1) * 1_000_000_007 + int(t0 * 1000) % 1_000_000
        while True:
            path, headers, body = maker.request(seed)
            seed += workload.rows
            sent = time.perf_counter()
            try:
                status, _ = await conns[k].request("POST", path, headers, body)
                key = str(status)
            except Exception as exc:  # a refused or broken connection is an error of the point, not a crash
                key = type(exc).__name__
                await asyncio.sleep(0.05)
            done = time.perf_counter()
            answered[k] += 1
            if window["start"] <= done <= window["end"]:
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(done - sent)

    async def snapshot(tag: str) -> None:
        counters[tag] = (await target.batch_counters(model), target.cpu_seconds(), time.process_time())

    users = [asyncio.create_task(user(k)) for k in range(concurrency)]
    while True:  # warm-up: until every client has been answered once
        await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        if (elapsed >= warmup_s and min(answered) >= 1) or elapsed >= max_phase_s:
            break
    await snapshot("before")
    window["start"] = time.perf_counter()
    while True:
        await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - window["start"]
        if (elapsed >= seconds and sum(statuses.values()) >= concurrency) or elapsed >= max_phase_s:
            break
    window["end"] = time.perf_counter()
    await snapshot("after")
    # Requests still in flight are abandoned: closing their connections lets the server drop them.
    for task in users:
        task.cancel()
    await asyncio.gather(*users, return_exceptions=True)
    for conn in conns:
        await conn.close()
    measured = window["end"] - window["start"]
    ok = statuses.get("200", 0)
    (b0, r0), cpu0, client0 = counters["before"]
    (b1, r1), cpu1, client1 = counters["after"]
    return {
        "target": target.name, "workload": workload.name, "concurrency": concurrency,
        "warmup_s": round(window["start"] - t0, 2), "seconds": round(measured, 2),
        "requests": ok, "requests_per_s": round(ok / measured, 2), "images_per_s": round(ok * workload.rows / measured, 1),
        "errors": sum(v for k, v in statuses.items() if k != "200"), "statuses": statuses,
        **latency_summary(latencies),
        "mean_batch_rows": round((r1 - r0) / (b1 - b0), 2) if b1 > b0 else None, "batches": int(b1 - b0),
        # Cores the server's processes (and the load generator) used in the window: on a shared machine
        # they say whether a server was starved; images per server CPU-second is the figure least moved by it.
        "server_cores": round((cpu1 - cpu0) / measured, 2),
        "images_per_server_cpu_s": round(ok * workload.rows / (cpu1 - cpu0), 1) if cpu1 > cpu0 else None,
        "client_cores": round((client1 - client0) / measured, 2),
    }


# --- the run --------------------------------------------------------------------------------------------

def paired_ceiling(models: dict[str, Any], model_set: ModelSet, workload: Workload, batch: int,
                   seconds: float) -> dict[str, float]:
    served = models[model_set.editor if workload.operation == "edit" else model_set.sampler]
    return ceiling.in_thread(ceiling.measure_point, served, workload, batch, seconds)


def run(args: argparse.Namespace) -> dict[str, Any]:
    model_set = MODEL_SETS[args.model_set]
    workloads = workloads_for(model_set, args.workloads.split(","))
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    threads = ceiling.service_threads(args.torch_threads, ceiling.resolve_device("auto"))
    targets = [Target(name, args.max_batch_rows, threads) for name in args.targets.split(",")]
    if any(t.name == "ray" for t in targets) and not RAY_PYTHON.exists():
        raise SystemExit(f"{RAY_PYTHON} is missing: `make bench-env` creates the Ray Serve environment")
    tmp = Path(tempfile.mkdtemp(prefix="condgen-load-"))
    directory = write_model_set(args.model_set, tmp / "checkpoints")
    logs = tmp / "logs"
    logs.mkdir()
    result: dict[str, Any] = {
        "model_set": model_set.name, "model_set_title": model_set.title, "machine": machine(),
        "max_batch_rows": args.max_batch_rows, "torch_threads": threads, "warmup_s": args.warmup_s,
        "seconds": args.seconds,
        "concurrency": concurrencies, "workloads": [w.name for w in workloads],
        "targets": {t.name: t.title for t in targets}, "points": [], "paired_ceilings": [],
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    started = time.time()
    with LoadSampler() as load:
        try:
            # The full ceiling curve first, while no server is running (they start after it).
            print(f"[{args.model_set}] ceiling curves ...", flush=True)
            result["ceiling"] = ceiling.measure(directory, args.model_set, [w.name for w in workloads],
                                                args.max_batch_rows, args.ceiling_seconds, torch_threads=threads)
            for t in targets:
                t.start(directory, logs, args.request_timeout_s)
            baseline: dict[str, float] = {}
            for t in targets:
                wait_until(t.ready, args.start_timeout_s, f"{t.name} ready", every_s=0.5)
                baseline[t.name] = idle_cores(t)
                print(f"[{args.model_set}] {t.name} ready on port {t.port} (idle: {baseline[t.name]:.2f} cores)",
                      flush=True)
            loaded = {name: load_one(directory / f"{name}.safetensors", torch.device("cpu"), torch.float32, 1)
                      for name in filter(None, (model_set.sampler, model_set.editor))}
            for w in workloads:
                maker = RequestMaker(w, model_set)
                for c in concurrencies:
                    for t in targets:
                        point = asyncio.run(load_point(t, maker, c, args.warmup_s, args.seconds, args.max_phase_s))
                        point["idle_wait_s"] = round(wait_idle(t, baseline[t.name], args.drain_timeout_s), 2)
                        result["points"].append(point)
                        print(f"[{args.model_set}] {w.name:9s} c={c:<3d} {t.name:14s} {point['images_per_s']:8.1f} img/s "
                              f"p50 {point['p50_ms']} p99 {point['p99_ms']} ms  batch {point['mean_batch_rows']} "
                              f"errors {point['errors']}  server {point['server_cores']} cores", flush=True)
                        if t.name.startswith("condgen") and point["mean_batch_rows"]:
                            # The ceiling at the batch size this point's queue used, measured right after it.
                            batch = max(1, min(args.max_batch_rows, round(point["mean_batch_rows"])))
                            sizes = {batch} | ({1, args.max_batch_rows} if c == max(concurrencies) else set())
                            for b in sorted(sizes):
                                pc = paired_ceiling(loaded, model_set, w, b, args.paired_seconds)
                                result["paired_ceilings"].append({"after": t.name, "workload": w.name,
                                                                  "concurrency": c, **pc})
        finally:
            for t in targets:
                t.stop()
            for t in targets:  # the servers' logs travel with the results: errors are explained there
                if t.log_path and t.log_path.exists():
                    result.setdefault("server_log_tail", {})[t.name] = t.log_path.read_text(errors="replace")[-2000:]
    result["idle_cores"] = {k: round(v, 3) for k, v in baseline.items()}
    result["load_average"] = load.summary()
    result["wall_s"] = round(time.time() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-set", choices=sorted(MODEL_SETS), default="demo")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--max-batch-rows", type=int, default=64)
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="CONDGEN_TORCH_THREADS of every server (0: the service's choice; Ray gets the same)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per point")
    parser.add_argument("--warmup-s", type=float, default=1.0,
                        help="least load before the window (it lasts until every client was answered once)")
    parser.add_argument("--max-phase-s", type=float, default=60.0, help="cap of the warm-up and of the window")
    parser.add_argument("--ceiling-seconds", type=float, default=0.75, help="per point of the ceiling curves")
    parser.add_argument("--paired-seconds", type=float, default=1.0, help="per ceiling measured after a point")
    parser.add_argument("--request-timeout-s", type=float, default=120.0)
    parser.add_argument("--start-timeout-s", type=float, default=300.0)
    parser.add_argument("--drain-timeout-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/serve-MODELSET.json")
    args = parser.parse_args(argv)
    result = run(args)
    out = args.out or RESULTS / f"serve-{args.model_set}.json"
    write_json(out, result)
    print(f"wrote {out} ({result['wall_s']} s, load average {result['load_average']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
