"""The ceiling: the raw rate of a generator on a device, in this process, with no HTTP and no queue.

For each workload and each batch size 1, 2, 4, ... MAX_BATCH_ROWS: the forward of `batch` rows, their
conversion to uint8 and their encoding to PNG bytes the way the workload's responses are encoded (one PNG
per image, or one grid/strip per 16 images), serially. A served figure is held to this.

    python benchmarks/ceiling.py [--model-set demo|prod128] [--max-batch-rows 64] [--seconds 1.5]

Writes benchmarks/results/ceiling-MODELSET.json and prints a table.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import codecs, threads  # noqa: E402
from app.registry import load_one  # noqa: E402
from benchmarks.common import (MODEL_SETS, RESULTS, WORKLOADS, Workload, batch_sizes, in_thread,  # noqa: E402
                               machine, write_json, write_model_set)


def workload_rows(served: Any, workload: Workload, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Inputs of `batch` rows as the routes build them (the latents' seeds change per call)."""
    import models

    if workload.operation == "edit":
        x = torch.rand(1, served.channels, served.image_size, served.image_size).mul_(2).sub_(1)
        c = torch.zeros(batch, len(served.attributes or []))
        c[:, 0] = 0.5
        return {"x": x.expand(batch, -1, -1, -1).contiguous(), "c": c}
    y = torch.zeros(batch, len(served.classes or []))
    y[:, 7] = 1.0
    return {"z": models.seeded_latents(seed, batch, served.latent_dim), "y": y}


def measure_point(served: Any, workload: Workload, batch: int, seconds: float, min_batches: int = 2) -> dict[str, float]:
    """Serial forward + PNG encoding of `batch` rows, repeated for `seconds` (at least min_batches times)."""
    served.run(workload_rows(served, workload, batch, 0))  # warm the shape up
    t_forward = t_encode = 0.0
    batches = 0
    cpu_start = time.process_time()  # every thread of this process: the forward's OpenMP threads too
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or batches < min_batches:
        rows = workload_rows(served, workload, batch, batches * batch)
        t0 = time.perf_counter()
        images = served.run(rows)  # forward + uint8, exactly as the service's worker does it
        t1 = time.perf_counter()
        for i in range(0, batch, workload.group):
            codecs.encode_grid(images[i:i + workload.group], "png", workload.columns)
        t_encode += time.perf_counter() - t1
        t_forward += t1 - t0
        batches += 1
    cpu = time.process_time() - cpu_start
    ms_per_batch = (t_forward + t_encode) * 1000.0 / batches
    return {"batch": batch, "batches": batches, "ms_per_batch": round(ms_per_batch, 3),
            "images_per_s": round(batch * 1000.0 / ms_per_batch, 1),
            # Per CPU-second: the figure a starved share of a shared machine moves least.
            "images_per_cpu_s": round(batch * batches / cpu, 1) if cpu > 0 else None,
            "forward_ms": round(t_forward * 1000.0 / batches, 3), "encode_ms": round(t_encode * 1000.0 / batches, 3)}


def resolve_device(device: str) -> torch.device:
    return torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                        ("cpu" if device == "auto" else device))


def service_threads(setting: int, device: torch.device) -> int:
    """The forward's thread count the service would use with CONDGEN_TORCH_THREADS=setting."""
    return threads.intra_op_threads(setting, device) or torch.get_num_threads()


def measure(checkpoint_dir: Path, model_set: str, workloads: list[str], max_batch_rows: int, seconds: float,
            device: str = "auto", dtype: str = "float32", torch_threads: int = 0) -> dict[str, Any]:
    """The ceiling curves of every workload the model set supports, loaded the way the service loads them
    and with the service's thread count."""
    ms = MODEL_SETS[model_set]
    dev = resolve_device(device)
    threads.configure(torch_threads, dev)
    dt = getattr(torch, dtype)
    loaded: dict[str, Any] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    for name in workloads:
        w = WORKLOADS[name]
        served_name = ms.editor if w.operation == "edit" else ms.sampler
        if served_name is None:
            continue
        if served_name not in loaded:
            loaded[served_name] = load_one(checkpoint_dir / f"{served_name}.safetensors", dev, dt, 1)
        # In a fresh thread, like the service's worker (see in_thread).
        curves[name] = [in_thread(measure_point, loaded[served_name], w, b, seconds)
                        for b in batch_sizes(max_batch_rows)]
    return {"model_set": model_set, "device": str(dev), "dtype": dtype, "max_batch_rows": max_batch_rows,
            "torch_threads": torch.get_num_threads(), "seconds_per_point": seconds, "curves": curves}


def ms_per_batch(curve: list[dict[str, float]]) -> dict[int, float]:
    return {int(p["batch"]): float(p["ms_per_batch"]) for p in curve}


def format_table(result: dict[str, Any]) -> str:
    lines = [f"ceiling: {result['model_set']} on {result['device']} ({result['dtype']})", "",
             "| workload | batch | ms/batch | images/s | forward ms | PNG ms |", "| --- | --- | --- | --- | --- | --- |"]
    for name, curve in result["curves"].items():
        for p in curve:
            lines.append(f"| {WORKLOADS[name].title} | {p['batch']} | {p['ms_per_batch']:.2f} | {p['images_per_s']:.1f} "
                         f"| {p['forward_ms']:.2f} | {p['encode_ms']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-set", choices=sorted(MODEL_SETS), default="demo")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--max-batch-rows", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per (workload, batch) point")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--torch-threads", type=int, default=0, help="as CONDGEN_TORCH_THREADS (0: the service's choice)")
    parser.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/ceiling-MODELSET.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="condgen-ceiling-") as tmp:
        directory = write_model_set(args.model_set, Path(tmp))
        result = measure(directory, args.model_set, args.workloads.split(","), args.max_batch_rows, args.seconds,
                         args.device, args.dtype, args.torch_threads)
    result["machine"] = machine()
    write_json(args.out or RESULTS / f"ceiling-{args.model_set}.json", result)
    print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
