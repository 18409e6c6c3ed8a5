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
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, write_json  # noqa: E402
from training.attributes import load_attribute_dataset  # noqa: E402
from training.loop import TrainConfig, TrainData, Trainer  # noqa: E402
from training.stargan_cli import default_d_layers  # noqa: E402

EVERY = (1, 2, 4)
IMAGE_SIZE = 32
DEMO_OPTIONS = {"lambda_id": 5.0, "hflip": True, "lambda_cls_gp": 3.0, "n_critic": 5, "lambda_cls_fake": 1.0}


def demo_trainer(data, out: Path, penalty_every: int) -> Trainer:
    arch = {"num_attributes": len(data.attributes), "image_size": IMAGE_SIZE, "channels": 3, "g_width": 32,
            "d_width": 32, "res_blocks": 6, "mask": True, "skip": True, "d_layers": default_d_layers(IMAGE_SIZE)}
    cfg = TrainConfig(family="stargan", out=out, steps=10**6, arch=arch, batch_size=16, device="cpu", seed=0,
                      progress=False, family_options={**DEMO_OPTIONS, "penalty_every": penalty_every})
    return Trainer(cfg, TrainData(data.name, data.images, data.labels, data.labels_info))


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
        trainers = {k: demo_trainer(data, Path(tmp) / f"every{k}.safetensors", k) for k in EVERY}
        for trainer in trainers.values():
            for _ in range(args.warmup):
                trainer.train_step()
        seconds = dict.fromkeys(trainers, 0.0)
        for _ in range(args.rounds):
            for k, trainer in trainers.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step()
                seconds[k] += time.perf_counter() - start
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
