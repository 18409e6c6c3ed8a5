"""Overload soak: drive a real uvicorn server at 10x its measured capacity and check that it holds up.

    python benchmarks/soak.py [--checkpoint checkpoints/acgan.safetensors] [--factor 10] [--seconds 60]

1. Starts `uvicorn app.main:app` in a subprocess, serving only the checkpoint (the demo ACGAN).
2. Capacity: a closed-loop run (--concurrency clients back to back, --capacity-seconds) gives the
   requests/s the server completes, each request `n` images.
3. Soak: an open-loop client sends factor x capacity requests/s for --seconds, whatever the answers.
   Latency counts from the moment each request was due (no coordinated omission).
4. Recovery: after the queue drains, the closed-loop run again; throughput and p99 should match step 2.

The server's resident memory (VmRSS from /proc) is sampled throughout. Pass/fail: no answer other than
200 or 503 (with Retry-After), 503s answered fast, served p99 bounded by the queue bound, RSS bounded,
recovery within 25% of the capacity run. A JSON summary goes to stdout (and --json PATH).

The client is a lean HTTP/1.1 keep-alive client on asyncio streams: it shares the machine with the
server, and a general-purpose client would take several times the CPU per request from it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


# --- a lean HTTP client ------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection error or client timeout)
    latency: float
    retry_after: str | None = None
    error: str | None = None


class StaleConnection(ConnectionError):
    """A reused keep-alive connection the server had closed (idle timeout) before the request reached it."""


class Pool:
    """Keep-alive connections to one host; a new one opens whenever none is idle (open-loop load).

    uvicorn closes a connection idle for 5 s (--timeout-keep-alive), so idle ones are reused for at most
    IDLE_S; and, as HTTP clients do, a request whose reused connection turns out closed before any byte
    of an answer came back is sent once more on a new connection (counted in `stale_retries`)."""

    IDLE_S = 2.0

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0
        self.stale_retries = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.perf_counter() - since < self.IDLE_S:
                return reader, writer, True
            writer.close()
        self.opened += 1
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return reader, writer, False

    async def post(self, path: str) -> tuple[int, dict[str, str], int]:
        try:
            return await self._post_once(path)
        except StaleConnection:
            self.stale_retries += 1
            return await self._post_once(path, fresh=True)

    async def _post_once(self, path: str, fresh: bool = False) -> tuple[int, dict[str, str], int]:
        if fresh:
            self.opened += 1
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            reused = False
        else:
            reader, writer, reused = await self._connection()
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Length: 0\r\n\r\n".encode())
            try:
                status_line = await reader.readline()
            except ConnectionResetError:
                status_line = b""
            if not status_line:
                raise (StaleConnection if reused else ConnectionError)("server closed the connection unanswered")
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            size = int(headers.get("content-length", "0"))
            await reader.readexactly(size)
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer, time.perf_counter()))
        return status, headers, size

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def timed(pool: Pool, path: str, due: float, timeout: float) -> Answer:
    try:
        status, headers, _ = await asyncio.wait_for(pool.post(path), timeout)
    except Exception as exc:  # counted as a failure: the soak requires none
        return Answer(0, time.perf_counter() - due, error=type(exc).__name__)
    return Answer(status, time.perf_counter() - due, headers.get("retry-after"))


def sample_path(n: int, rng: random.Random) -> str:
    return f"/acgan/sample?class={rng.choice(CLASSES)}&n={n}&seed={rng.randrange(2**31)}"


# --- the runs -----------------------------------------------------------------------------------------

async def closed_loop(host: str, port: int, n: int, concurrency: int, seconds: float) -> list[Answer]:
    pool, rng, answers = Pool(host, port), random.Random(0), []
    stop = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < stop:
            answers.append(await timed(pool, sample_path(n, rng), time.perf_counter(), 120.0))

    await asyncio.gather(*[client() for _ in range(concurrency)])
    pool.close()
    return answers


async def open_loop(host: str, port: int, n: int, rate: float,
                    seconds: float) -> tuple[list[Answer], float, int, int]:
    """rate requests/s for `seconds`, each sent when due whatever happened to the others. Returns the
    answers, the largest lag of the sender behind schedule (s), the connections opened and the requests
    resent after a stale keep-alive connection."""
    pool, rng = Pool(host, port), random.Random(1)
    tasks: list[asyncio.Task[Answer]] = []
    total = int(rate * seconds)
    start = time.perf_counter()
    worst_lag = 0.0
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.002:
            await asyncio.sleep(delay)
        else:
            worst_lag = max(worst_lag, -delay)
            if i % 64 == 0:
                await asyncio.sleep(0)  # let answers be read even when behind
        tasks.append(asyncio.create_task(timed(pool, sample_path(n, rng), due, 120.0)))
    answers = await asyncio.gather(*tasks)
    pool.close()
    return list(answers), worst_lag, pool.opened, pool.stale_retries


# --- measuring ----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latency_ms(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q) * 1000, 1) for q in (50, 90, 99)} | {
        "max": round(max(values) * 1000, 1) if values else float("nan")}


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


@dataclass
class RssSampler:
    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MiB)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        t0 = time.perf_counter()

        def run() -> None:
            while not self._stop.wait(0.5):
                try:
                    self.samples.append((time.perf_counter() - t0, rss_mib(self.pid)))
                except (FileNotFoundError, AttributeError):
                    return
        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def peak(self, since: float = 0.0, until: float = math.inf) -> float:
        return max((m for t, m in self.samples if since <= t <= until), default=float("nan"))


def summarize_closed(answers: list[Answer], seconds: float, n: int) -> dict[str, Any]:
    ok = [a.latency for a in answers if a.status == 200]
    return {"requests_per_s": round(len(ok) / seconds, 1), "images_per_s": round(len(ok) * n / seconds, 1),
            "latency_ms": latency_ms(ok), "not_200": len(answers) - len(ok)}


# --- the server ---------------------------------------------------------------------------------------

def start_server(checkpoint: Path, env_overrides: dict[str, str]) -> tuple[subprocess.Popen, int, Path]:
    directory = Path(tempfile.mkdtemp(prefix="condgen-soak-"))
    shutil.copy(checkpoint, directory / "acgan.safetensors")
    env = {**os.environ, "CONDGEN_CHECKPOINT_DIR": str(directory), "PYTHONPATH": str(ROOT), **env_overrides}
    # Its own session (and so scheduler group), apart from the client, as a deployed server runs.
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "0",
         "--no-access-log", "--backlog", "4096"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write("  server: " + line)
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1))
            break
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start in time")
    else:
        raise SystemExit("the server exited during start-up")
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [sys.stderr.write("  server: " + l) for l in proc.stdout], daemon=True).start()
    return proc, port, directory


async def queued_rows(host: str, port: int) -> float:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    found = re.search(r'condgen_queued_rows\{model="acgan"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


# --- main -----------------------------------------------------------------------------------------------

async def soak(args: argparse.Namespace, port: int, sampler: RssSampler, t0: float) -> dict[str, Any]:
    host, n = "127.0.0.1", args.n
    print(f"warm-up {args.warmup_seconds:g}s ...", file=sys.stderr)
    await closed_loop(host, port, n, args.concurrency, args.warmup_seconds)
    rss_before = rss_mib(sampler.pid)

    print(f"capacity: closed loop, {args.concurrency} clients, {args.capacity_seconds:g}s ...", file=sys.stderr)
    capacity = summarize_closed(
        await closed_loop(host, port, n, args.concurrency, args.capacity_seconds), args.capacity_seconds, n)
    rate = args.factor * capacity["requests_per_s"]

    print(f"soak: {rate:.0f} requests/s open loop for {args.seconds:g}s ...", file=sys.stderr)
    soak_start, cpu_start, load_start = time.perf_counter() - t0, cpu_seconds(sampler.pid), os.getloadavg()[0]
    answers, lag, connections, stale_retries = await open_loop(host, port, n, rate, args.seconds)
    soak_end, cpu_end = time.perf_counter() - t0, cpu_seconds(sampler.pid)
    served = [a.latency for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 503]
    others: dict[str, int] = {}
    for a in answers:
        if a.status not in (200, 503):
            key = a.error or str(a.status)
            others[key] = others.get(key, 0) + 1

    # Recovery: the queue drains, then the capacity run again.
    drain_start = time.perf_counter()
    while await queued_rows(host, port) > 0 and time.perf_counter() - drain_start < 60:
        await asyncio.sleep(0.1)
    drained_s = time.perf_counter() - drain_start
    recovery = summarize_closed(
        await closed_loop(host, port, n, args.concurrency, args.capacity_seconds), args.capacity_seconds, n)
    rss_after = rss_mib(sampler.pid)

    timeline: dict[int, int] = {}  # the first sample of each 5 s of the soak
    for t, m in sampler.samples:
        if soak_start <= t <= soak_end:
            timeline.setdefault(int((t - soak_start) // 5) * 5, round(m))
    result = {
        "checkpoint": str(args.checkpoint), "n_per_request": n, "server_env": args.env,
        "capacity": capacity,
        "soak": {
            "factor": args.factor, "offered_requests_per_s": round(rate, 1), "seconds": args.seconds,
            "sent": len(answers), "client_max_lag_s": round(lag, 3),
            "served": len(served), "served_requests_per_s": round(len(served) / args.seconds, 1),
            "served_latency_ms": latency_ms(served),
            "refused_503": len(refused), "refused_share": round(len(refused) / max(1, len(answers)), 4),
            "refused_latency_ms": latency_ms([a.latency for a in refused]),
            "refused_without_retry_after": sum(1 for a in refused if not a.retry_after),
            "other_outcomes": others, "connections_opened": connections,
            "resent_after_stale_keepalive": stale_retries,
            # The machine may be shared: how much CPU the server got, and the load around it.
            "server_cpu_cores_used": round((cpu_end - cpu_start) / (soak_end - soak_start), 2),
            "machine_load_avg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "cpu_count": os.cpu_count(),
        },
        "rss_mib": {"before": round(rss_before, 1), "peak_during_soak": round(sampler.peak(soak_start, soak_end), 1),
                    "after_recovery": round(rss_after, 1), "timeline_every_5s": list(timeline.items())},
        "recovery": {"queue_drained_in_s": round(drained_s, 2), **recovery},
    }
    max_wait_s = args.max_queue_rows / max(capacity["images_per_s"], 1e-9)
    checks = {
        "no_other_outcomes": not others,
        "every_503_has_retry_after": result["soak"]["refused_without_retry_after"] == 0,
        "refusals_fast_p99_under_250ms": result["soak"]["refused_latency_ms"]["p99"] < 250,
        # A served request waits at most for the queue ahead of it (MAX_QUEUE_ROWS at capacity), plus slack.
        "served_p99_within_queue_bound": result["soak"]["served_latency_ms"]["p99"] < (2 * max_wait_s + 2) * 1000,
        "rss_growth_under_200mib": result["rss_mib"]["peak_during_soak"] - rss_before < 200,
        "recovered_throughput_within_25pct": recovery["requests_per_s"] >= 0.75 * capacity["requests_per_s"],
        "recovered_without_errors": recovery["not_200"] == 0,
    }
    result["queue_bound_s"] = round(max_wait_s, 2)
    result["checks"] = checks
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "acgan.safetensors")
    parser.add_argument("--n", type=int, default=16, help="images per request")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the closed-loop runs")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the soak")
    parser.add_argument("--factor", type=float, default=10.0, help="offered load as a multiple of capacity")
    parser.add_argument("--max-queue-rows", type=int, default=512,
                        help="CONDGEN_MAX_QUEUE_ROWS of the server: the bound on queued work")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    args.env = {"CONDGEN_DEVICE": "cpu", "CONDGEN_MAX_QUEUE_ROWS": str(args.max_queue_rows)}

    proc, port, directory = start_server(args.checkpoint, args.env)
    sampler = RssSampler(proc.pid)
    t0 = time.perf_counter()
    sampler.start()
    try:
        result = asyncio.run(soak(args, port, sampler, t0))
    finally:
        sampler.stop()
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(directory, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    failed = [name for name, ok in result["checks"].items() if not ok]
    if failed:
        raise SystemExit(f"soak failed: {', '.join(failed)}")
    print("soak passed: every check held", file=sys.stderr)


if __name__ == "__main__":
    main()
