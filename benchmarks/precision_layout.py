"""Does half precision or channels_last pay for a generator on this device? Forward time of each choice.

For each model of the demo and prod128 sets and each batch size: the generator's forward in float32 NCHW
(the reference), float32 channels_last, and the half type of the device (bfloat16 on a CPU, float16 on a
GPU) in both layouts. The choices are interleaved round by round, so a drift of the machine's load hits
them alike; each figure is the median over rounds. What the service does with the answer lives in
app/registry.py (channels_last_pays) and CONDGEN_DTYPE.

    python benchmarks/precision_layout.py [--rounds 3] [--seconds 1.0] [--device auto]

Writes benchmarks/results/precision-layout.json and prints a Markdown table (ratios to float32 NCHW: above
1 is faster), with what the half type does to the served pixels: the mean and largest difference, in uint8
levels, from the float32 images of the same 16 inputs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from app import threads  # noqa: E402
from benchmarks.common import RESULTS, in_thread, machine, write_json, write_model_set  # noqa: E402
from models.images import to_uint8  # noqa: E402

BATCHES = {"demo": (1, 16, 64), "prod128": (1, 8)}


def choices(device: torch.device) -> list[tuple[str, torch.dtype, bool]]:
    half = torch.float16 if device.type == "cuda" else torch.bfloat16
    return [("float32", torch.float32, False), ("float32 channels_last", torch.float32, True),
            (str(half).removeprefix("torch."), half, False),
            (f"{str(half).removeprefix('torch.')} channels_last", half, True)]


def inputs(checkpoint: Any, batch: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    arch = checkpoint.arch
    if checkpoint.family == "stargan":
        size = arch["image_size"]
        x = torch.rand(batch, arch.get("channels", 3), size, size, device=device).mul_(2).sub_(1)
        c = torch.zeros(batch, arch["num_attributes"], device=device)
        c[:, 0] = 1.0
        return x.to(dtype), c.to(dtype)
    z = torch.randn(batch, arch["latent_dim"], device=device)
    y = torch.zeros(batch, arch["num_classes"], device=device)
    y[:, 0] = 1.0
    return z.to(dtype), y.to(dtype)


@torch.inference_mode()
def forward_ms(G: torch.nn.Module, args: tuple[torch.Tensor, ...], seconds: float, device: torch.device) -> float:
    """Mean ms per forward over `seconds` (at least 3 forwards), after one warm-up forward."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    G(*args)
    sync()
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < seconds:
        G(*args)
        runs += 1
    sync()
    return (time.perf_counter() - start) / runs * 1e3


@torch.inference_mode()
def pixel_difference(checkpoint: Any, reference: torch.nn.Module, half: torch.nn.Module, half_dtype: torch.dtype,
                     device: torch.device) -> dict[str, float]:
    """Mean and largest |difference| in uint8 levels between the half-precision and the float32 images."""
    args = inputs(checkpoint, 16, device, torch.float32)
    full = to_uint8(reference(*args).float()).int()
    halved = to_uint8(half(*(a.to(half_dtype) for a in args)).float()).int()
    diff = (full - halved).abs().float()
    return {"mean_levels": round(diff.mean().item(), 3), "max_levels": int(diff.max().item())}


def measure(model_sets: list[str], rounds: int, seconds: float, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_set in model_sets:
            folder = write_model_set(model_set, Path(tmp) / model_set)
            for path in sorted(folder.glob("*.safetensors")):
                checkpoint = models.load_checkpoint(path)
                variants = {}
                for name, dtype, channels_last in choices(device):
                    G = models.load_checkpoint(path).generator.to(device=device, dtype=dtype).eval()
                    variants[name] = (G.to(memory_format=torch.channels_last) if channels_last else G, dtype)
                half_name, (half_G, half_dtype) = list(variants.items())[2]
                difference = pixel_difference(checkpoint, variants["float32"][0], half_G, half_dtype, device)
                print(f"{model_set}/{path.stem}: {half_name} images differ from float32 by {difference['mean_levels']} "
                      f"uint8 levels on average, {difference['max_levels']} at most", flush=True)
                for batch in BATCHES[model_set]:
                    times: dict[str, list[float]] = {name: [] for name in variants}
                    for _ in range(rounds):
                        for name, (G, dtype) in variants.items():
                            args = inputs(checkpoint, batch, device, dtype)
                            times[name].append(in_thread(forward_ms, G, args, seconds, device))
                    median = {name: statistics.median(t) for name, t in times.items()}
                    reference = median["float32"]
                    rows.append({"model": f"{model_set}/{path.stem}", "family": checkpoint.family, "batch": batch,
                                 "half_pixel_difference": difference,
                                 "ms": {k: round(v, 3) for k, v in median.items()},
                                 "speedup": {k: round(reference / v, 3) for k, v in median.items()}})
                    print(f"{model_set}/{path.stem} batch {batch}: " + ", ".join(
                        f"{k} {v:.2f} ms ({reference / v:.2f}x)" for k, v in median.items()), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    names = list(rows[0]["ms"])
    lines = ["| model | batch | " + " | ".join(names) + " | half vs float32 pixels (mean / max levels) |",
             "| --- | --- |" + " --- |" * (len(names) + 1)]
    for r in rows:
        cells = [f"{r['ms'][n]:.2f} ms ({r['speedup'][n]:.2f}x)" for n in names]
        d = r["half_pixel_difference"]
        lines.append(f"| {r['model']} | {r['batch']} | " + " | ".join(cells) + f" | {d['mean_levels']} / {d['max_levels']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-sets", default="demo,prod128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="per figure per round")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--torch-threads", type=int, default=0, help="as CONDGEN_TORCH_THREADS (0: the service's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS / "precision-layout.json")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    threads.configure(args.torch_threads, device)
    rows = measure(args.model_sets.split(","), args.rounds, args.seconds, device)
    write_json(args.out, {"machine": machine(), "device": str(device), "torch_threads": torch.get_num_threads(),
                          "rounds": args.rounds, "seconds": args.seconds, "rows": rows})
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
