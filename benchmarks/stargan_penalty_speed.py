"""StarGAN training steps with D's gradient penalties paid every step or lazily (`--penalty-every K`).

The demo StarGAN's first-stage recipe (32 px twemoji-faces, widths 32, six residual blocks, mask, skip,
identity loss, flips, classifier penalty 3, D's head also trained on edits; n_critic 5, batch 16) at
K = 1, 2 and 4, each its own Trainer in one process, timed in alternating blocks of steps so a drift of the
CPU share on a shared machine hits every K alike. A step is one D update; G updates on every fifth.

    python benchmarks/stargan_penalty_speed.py [--steps 60] [--rounds 3] [--data twemoji-faces:data/twemoji-faces]
Writes benchmarks/results/stargan-penalty-speed.json (needs `make prepare-twemoji` first).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, train_steps_in_alternating_blocks, write_json  # noqa: E402
from training.attributes import AttributeDataset, load_attribute_dataset  # noqa: E402
from training.cli import build_parser  # noqa: E402
from training.loop import Trainer  # noqa: E402
from training.stargan_cli import stargan_training  # noqa: E402

EVERY = (1, 2, 4)
IMAGE_SIZE = 32
# `make train-stargan`'s first-stage options but --penalty-every (the Makefile's STARGAN, without grids and saves)
DEMO_FLAGS = ["--image-size", str(IMAGE_SIZE), "--g-width", "32", "--d-width", "32", "--res-blocks", "6",
              "--batch-size", "16", "--seed", "0", "--mask", "--lambda-id", "5", "--hflip", "--lambda-cls-gp", "3",
              "--lambda-cls-fake", "1", "--skip"]


def demo_trainer(data: AttributeDataset, spec: str, out: Path, penalty_every: int) -> Trainer:
    args = build_parser().parse_args(["stargan", "--data", spec, "--out", str(out), *DEMO_FLAGS, "--steps", "1000000",
                                      "--penalty-every", str(penalty_every), "--device", "cpu", "--no-progress"])
    return Trainer(*stargan_training(args, data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="twemoji-faces:data/twemoji-faces")
    parser.add_argument("--steps", type=int, default=60, help="steps per timed block (a multiple of 20 keeps "
                        "G updates and penalty steps in every block alike)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "stargan-penalty-speed.json")
    args = parser.parse_args(argv)

    data = load_attribute_dataset(args.data, "train", IMAGE_SIZE, None)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {k: demo_trainer(data, args.data, Path(tmp) / f"every{k}.safetensors", k) for k in EVERY}
        seconds = train_steps_in_alternating_blocks(trainers, args.steps, args.rounds, args.warmup)
    steps = args.steps * args.rounds
    result = {
        "machine": machine(), "threads": torch.get_num_threads(), "data": args.data, "steps_per_k": steps,
        "ms_per_step": {str(k): round(1000 * s / steps, 1) for k, s in seconds.items()},
        "ratio_to_every_step": {str(k): round(s / seconds[1], 3) for k, s in seconds.items()},
    }
    for k in EVERY:
        print(f"--penalty-every {k}: {result['ms_per_step'][str(k)]} ms per step, "
              f"{result['ratio_to_every_step'][str(k)]:.2f}x the time of paying both penalties every step")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
