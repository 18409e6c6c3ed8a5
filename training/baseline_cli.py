"""`python -m training acgan-pytorchgan`: the PyTorch-GAN ACGAN recipe trained by condgen's loop, as a baseline.

Its hyperparameters default to the published ones (Adam 2e-4, betas (0.5, 0.999), batch 64, latent 100,
32 px) and the step count to the demo ACGAN's 15,000, so both spend the same budget (`make train-baseline`
runs it to the demo CGAN's 20,000 and keeps its save at 15,000: the rate is constant, so that save holds the
weights a 15,000-step run ends with). The recipe has no EMA: the saved generator is the raw one (--ema-decay 0).

Fashion-MNIST is 28 px and the published networks need a multiple of 16. The images are padded (edge
pixels repeated: Fashion-MNIST's border is its black background) to 32 rather than resized as the recipe
does for MNIST: padding is undone exactly by a centre crop, so evaluation compares the baseline's 28 px
crop with real 28 px images and no resampling blur counts against it. `--fit resize` gives the recipe's.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from training.data import DATA_SPEC_HELP, ImageDataset, load_dataset

COMMAND = "acgan-pytorchgan"


def add_commands(sub: argparse._SubParsersAction) -> None:
    from training.cli import add_run_options, fraction, positive_float, positive_int

    text = ("train the PyTorch-GAN ACGAN recipe (eriklindernoren/PyTorch-GAN) as a baseline: its networks, losses "
            "and hyperparameters, mistakes included; never served")
    p = sub.add_parser(COMMAND, help=text, description=text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help=f"dataset spec: {DATA_SPEC_HELP}")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.safetensors), e.g. under "
                   "checkpoints/baselines/ (the service loads only the top level of checkpoints/)")
    p.add_argument("--steps", type=positive_int, default=15000, help="total steps (one D and one G update each)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=2e-4, help="Adam learning rate of G and D")
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--latent-dim", type=positive_int, default=100)
    p.add_argument("--image-size", type=positive_int, default=32, help="a multiple of 16")
    p.add_argument("--fit", choices=("pad", "resize"), default="pad",
                   help="how a smaller dataset reaches --image-size: pad (undone exactly by evaluation) or resize")
    p.add_argument("--ema-decay", type=fraction, default=0.0, help="0: save the raw generator, as published")
    add_run_options(p)


def fit_to_size(data: ImageDataset, size: int, fit: str) -> tuple[ImageDataset, int]:
    """The dataset at `size` px and the padding added on each side (0 when resized or already that size)."""
    margin = size - data.image_size
    if margin == 0:
        return data, 0
    if fit == "pad" and margin > 0 and margin % 2 == 0:
        pad = margin // 2
        images = F.pad(data.images.float(), (pad, pad, pad, pad), mode="replicate").to(torch.uint8)
        return ImageDataset(data.name, images, data.labels, data.classes), pad
    return data.resized(size, None), 0


def run(args: argparse.Namespace) -> None:
    from training.cli import CLIError, class_train_data, run_options, train_and_report
    from training.loop import TrainConfig

    if args.out.suffix != ".safetensors":
        raise CLIError(f"--out must end in .safetensors, got {args.out}")
    data, pad = fit_to_size(load_dataset(args.data, "train"), args.image_size, args.fit)
    arch = {"num_classes": len(data.classes), "image_size": data.image_size, "channels": data.channels,
            "latent_dim": args.latent_dim}
    cfg = TrainConfig(
        family=COMMAND, out=args.out, steps=args.steps, arch=arch, batch_size=args.batch_size, lr_g=args.lr,
        lr_d=args.lr, betas=(args.beta1, args.beta2), ema_decay=args.ema_decay, **run_options(args),
        family_options={"input_padding": pad})
    train_and_report(cfg, class_train_data(data, args.data))
