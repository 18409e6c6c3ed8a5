"""Training steps with G run eagerly, through torch.compile (`--compile`), and compiled under bfloat16 autocast
(`--compile --cpu-bf16`), on the demo recipes.

Each recipe's Trainer comes from the training command's own parser and config builder, fed the Makefile's flags
(restated here, without grids, saves and the learning-rate schedule, which do not change a step's cost; a test
checks them against what `make -n` expands, so they cannot drift from the demos' recipes): the demo
StarGAN's first stage (`make train-stargan`'s first command, lazy penalties, n_critic 5) and its tail (G's
classification weight 3, n_critic 2), and the demo CGAN (`make train-cgan`). For each, one Trainer per variant in
one process, timed in alternating blocks of steps after a warm-up that includes the compilation, so a drift of
the CPU share on a shared machine hits every variant alike. A step is one D update.

    python benchmarks/compile_speed.py [--steps 60] [--rounds 3] [--recipes stargan,stargan-tail,cgan]
Writes benchmarks/results/compile-speed.json (the StarGAN recipes need `make prepare-twemoji` first).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, train_steps_in_alternating_blocks, write_json  # noqa: E402
from benchmarks.stargan_penalty_speed import DEMO_FLAGS  # noqa: E402
from training.attributes import load_attribute_dataset  # noqa: E402
from training.cli import build_parser, class_training  # noqa: E402
from training.loop import Trainer  # noqa: E402
from training.stargan_cli import stargan_training  # noqa: E402

STARGAN_DATA = "twemoji-faces:data/twemoji-faces"
VARIANTS = {"eager": [], "compiled": ["--compile"], "compiled-bf16": ["--compile", "--cpu-bf16"]}
# The flags each recipe adds to its command (the Makefile's STARGAN, its tail, and train-cgan).
RECIPES = {
    "stargan": ["stargan", *DEMO_FLAGS, "--penalty-every", "4"],
    "stargan-tail": ["stargan", *DEMO_FLAGS, "--penalty-every", "4", "--lambda-cls-g", "3", "--n-critic", "2"],
    "cgan": ["cgan", "--g-width", "64", "--d-width", "32", "--seed", "0", "--fresh-fakes", "--lambda-ms", "0.2"],
}


def recipe_trainer(recipe: str, out: Path, variant: str, fashion: str) -> Trainer:
    command, *flags = RECIPES[recipe]
    data_spec = STARGAN_DATA if command == "stargan" else fashion
    argv = [command, "--data", data_spec, "--out", str(out), *flags, "--steps", "1000000", "--device", "cpu",
            "--no-progress", *VARIANTS[variant]]
    args = build_parser().parse_args(argv)
    if command == "stargan":
        data = load_attribute_dataset(data_spec, "train", int(args.image_size), None)
        return Trainer(*stargan_training(args, data))
    return Trainer(*class_training(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated, of: " + ", ".join(RECIPES))
    parser.add_argument("--fashion", default="fashion-mnist", help="the CGAN recipe's data spec")
    parser.add_argument("--steps", type=int, default=60, help="steps per timed block (a multiple of 20 keeps "
                        "G updates and penalty steps in every block alike)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first, the compilation among them")
    parser.add_argument("--out", type=Path, default=RESULTS / "compile-speed.json")
    args = parser.parse_args(argv)

    recipes = args.recipes.split(",")
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipes {sorted(unknown)}; known: {', '.join(RECIPES)}")
    result = {"machine": machine(), "threads": torch.get_num_threads(), "steps_per_variant": args.steps * args.rounds,
              "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            trainers = {variant: recipe_trainer(recipe, Path(tmp) / f"{recipe}-{variant}.safetensors",
                                                variant, args.fashion)
                        for variant in VARIANTS}
            seconds = train_steps_in_alternating_blocks(trainers, args.steps, args.rounds, args.warmup)
            steps = args.steps * args.rounds
            figures = {"ms_per_step": {v: round(1000 * s / steps, 1) for v, s in seconds.items()},
                       "ratio_to_eager": {v: round(s / seconds["eager"], 3) for v, s in seconds.items()}}
            result["recipes"][recipe] = figures
            print(f"{recipe}: " + ", ".join(f"{v} {figures['ms_per_step'][v]} ms ({figures['ratio_to_eager'][v]:.2f}x)"
                                            for v in VARIANTS), flush=True)
            del trainers
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
