"""`python -m training`: train a family, generate from a checkpoint, train a judge, score a checkpoint."""
from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import CheckpointError, load_checkpoint
from models.checkpoint import update_training_metadata
from training.data import DATA_SPEC_HELP, DatasetError, ImageDataset, load_dataset
from training.losses import ADVERSARIAL_LOSSES

if TYPE_CHECKING:  # the loop imports torch's heavier parts: only the commands that train load it
    from training.loop import TrainConfig, TrainData

EPILOG = """examples:
  python -m training acgan --data fashion-mnist --out checkpoints/acgan.safetensors --steps 20000
  python -m training cgan --data folder:my_images --image-size 64 --out runs/cgan.safetensors
  python -m training acgan --data fashion-mnist --out checkpoints/acgan.safetensors --steps 30000 --resume
  torchrun --nproc_per_node 2 -m training acgan --data fashion-mnist --out runs/acgan.safetensors
  python -m training generate checkpoints/acgan.safetensors --class sneaker -n 16 --out grid.png
  python -m training judge --data fashion-mnist
  python -m training score checkpoints/acgan.safetensors
"""


class CLIError(Exception):
    """A usage or input problem: printed as one line, exit status 2."""


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _unit_interval(text: str, one_allowed: bool) -> float:
    value = float(text)
    if not (0.0 <= value <= 1.0 if one_allowed else 0.0 <= value < 1.0):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in [0, {'1]' if one_allowed else '1)'}, got {text}")
    return value


def fraction(text: str) -> float:
    return _unit_interval(text, one_allowed=False)


def decay_start(text: str) -> float:
    """--lr-decay-start: a fraction of --steps; 1 keeps the rates constant to the end of this stage (a chain
    whose later stage, resumed with a larger --steps, does the decay)."""
    return _unit_interval(text, one_allowed=True)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a training run that every family shares: resume, grids, saves, seed, device, AMP,
    progress; `run_options` reads them back."""
    p.add_argument("--resume", action="store_true", help="continue from NAME.state.pt beside --out")
    p.add_argument("--sample-every", type=positive_int, default=500, help="write a sample grid every K steps")
    p.add_argument("--save-every", type=positive_int, default=1000, help="checkpoint and train state every K steps")
    p.add_argument("--keep-saves", action="store_true",
                   help="also keep each save's checkpoint as OUT_saves/step_N.safetensors (the run's history)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of weights, batches and noise")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="bfloat16 autocast on the CPU too (D's gradient penalties stay float32)")
    p.add_argument("--compile", action="store_true",
                   help="train G through torch.compile (needs a C++ compiler; a StarGAN step here in 0.84x the time)")


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields that add_run_options' options set, for every training command alike."""
    return {"resume": args.resume, "sample_every": args.sample_every, "save_every": args.save_every,
            "keep_saves": args.keep_saves, "seed": args.seed, "device": args.device, "amp": not args.no_amp,
            "progress": not args.no_progress, "compile_g": args.compile,
            "cpu_bf16": args.cpu_bf16}


def add_train_parser(sub: argparse._SubParsersAction, family: str, description: str) -> argparse.ArgumentParser:
    p = sub.add_parser(family, help=description, description=description,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help=f"dataset spec: {DATA_SPEC_HELP}")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.safetensors); the train state "
                   "goes beside it as NAME.state.pt and sample grids into NAME_samples/")
    p.add_argument("--steps", type=positive_int, default=20000, help="total training steps (D updates)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per step per process")
    p.add_argument("--lr-g", type=positive_float, default=2e-4, help="generator Adam learning rate")
    p.add_argument("--lr-d", type=positive_float, default=2e-4, help="discriminator Adam learning rate")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2")
    p.add_argument("--ema-decay", type=fraction, default=0.999, help="EMA decay of the served generator")
    add_run_options(p)
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="train at this size (default: the dataset's own; folder: 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="1 (grey) or 3 (RGB)")
    p.add_argument("--latent-dim", type=positive_int, default=128, help="size of z")
    p.add_argument("--g-width", type=positive_int, default=64, help="generator base width")
    p.add_argument("--d-width", type=positive_int, default=64, help="discriminator base width")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="condgen offline training: class-conditional GANs into "
        "self-describing .safetensors checkpoints that the condgen service serves.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family, text in (("acgan", "train an ACGAN (auxiliary classifier GAN, Odena et al. 2017)"),
                         ("cgan", "train a CGAN with a projection discriminator (Miyato & Koyama 2018)")):
        p = add_train_parser(sub, family, text)
        p.add_argument("--loss", choices=ADVERSARIAL_LOSSES, default=None,
                       help="adversarial loss (default: nonsaturating for acgan, hinge for cgan)")
        p.add_argument("--fresh-fakes", action="store_true",
                       help="draw a new batch of fakes for the G step instead of reusing the D step's "
                       "(how the demo checkpoints were trained; slower by a G forward per step)")
        p.add_argument("--lr-decay-start", type=decay_start, default=None,
                       help="fraction of --steps after which both lrs fall linearly to 0 (default: constant lrs)")
        p.add_argument("--lambda-ms", type=non_negative_float, default=0.0,
                       help="weight of the mode-seeking term (MSGAN, Mao et al. 2019) in G's loss: pushes "
                       "same-class samples from different z apart, against collapse (0: off)")
        if family == "acgan":
            p.add_argument("--fake-class-warmup", type=non_negative_int, default=2000,
                           help="D's class loss on fake images ramps in from step N/2 to N (0: from the start); "
                           "until then D's classifier learns from real images only, which keeps G and D "
                           "from agreeing on a permuted class mapping")
            p.add_argument("--lambda-twin", type=non_negative_float, default=0.0,
                           help="TAC-GAN (Gong et al. 2019): a twin class head in D learns the fakes' classes, "
                           "D's class head then reads real images only, and G is paid this weight times the "
                           "twin's error, against ACGAN's pull to over-certain samples of overlapping classes "
                           "(0: off, the plain ACGAN)")

    g = sub.add_parser("generate", help="images from a checkpoint alone",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g.add_argument("checkpoint", help="an acgan or cgan .safetensors checkpoint")
    g.add_argument("--class", dest="class_", default=None, help="class slug or index (default: a row per class)")
    g.add_argument("-n", type=positive_int, default=16, help="images (per class when --class is absent)")
    g.add_argument("--seed", type=non_negative_int, default=None, help="image i uses seed + i (default: random)")
    g.add_argument("--truncation", type=positive_float, default=None, help="truncation psi in (0, 1]")
    g.add_argument("--columns", type=positive_int, default=None, help="grid columns")
    g.add_argument("--out", default="grid.png", help="PNG to write")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")

    j = sub.add_parser("judge", help="train the judge classifier of a dataset on its real training split",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    j.add_argument("--data", required=True, help=f"dataset spec: {DATA_SPEC_HELP}")
    j.add_argument("--out", type=Path, default=None, help="default: checkpoints/judges/DATASET.safetensors")
    j.add_argument("--epochs", type=positive_int, default=6)
    j.add_argument("--seed", type=non_negative_int, default=0)
    j.add_argument("--image-size", type=positive_int, default=None)
    j.add_argument("--channels", type=int, choices=(1, 3), default=None)

    s = sub.add_parser("score", help="judge accuracy of a class-conditional checkpoint's samples, per class",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("checkpoint")
    s.add_argument("--judge", type=Path, default=None, help="default: the judge of the checkpoint's dataset")
    s.add_argument("--per-class", type=positive_int, default=100)
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--record", action="store_true", help="store the figures in the checkpoint's training.metrics")

    from training import stargan_cli  # imported here: it uses the argument types above

    stargan_cli.add_commands(sub)
    from training import baseline_cli

    baseline_cli.add_commands(sub)
    return parser


def run_train(args: argparse.Namespace) -> None:
    if args.out.suffix != ".safetensors":
        raise CLIError(f"--out must end in .safetensors, got {args.out}")
    train_and_report(*class_training(args))


def class_training(args: argparse.Namespace) -> tuple[TrainConfig, TrainData]:
    """The run `python -m training acgan|cgan ARGS` trains, as the loop's config and data (also what benchmarks
    build their trainers from, so they time the command's own recipe)."""
    from training.loop import TrainConfig

    data = load_dataset(args.data, "train", args.image_size, args.channels)
    arch = {"num_classes": len(data.classes), "image_size": data.image_size, "channels": data.channels,
            "latent_dim": args.latent_dim, "g_width": args.g_width, "d_width": args.d_width}
    cfg = TrainConfig(
        family=args.command, out=args.out, steps=args.steps, arch=arch, batch_size=args.batch_size,
        lr_g=args.lr_g, lr_d=args.lr_d, betas=(args.beta1, args.beta2), loss=args.loss,
        ema_decay=args.ema_decay, lr_decay_start=args.lr_decay_start, **run_options(args),
        family_options={"fresh_fakes": args.fresh_fakes, "lambda_ms": args.lambda_ms,
                        **({"fake_class_warmup": args.fake_class_warmup, "lambda_twin": args.lambda_twin}
                           if args.command == "acgan" else {})})
    return cfg, class_train_data(data, args.data)


def class_train_data(data: ImageDataset, spec: str) -> TrainData:
    """A class-labelled dataset as the loop takes it, named by its spec unless the loader named it fully."""
    from training.loop import TrainData

    return TrainData(data.name if ":" in data.name else spec, data.images, data.labels, {"classes": data.classes})


def train_and_report(cfg: TrainConfig, train_data: TrainData) -> None:
    """Train every command's run the same way: a bad resume or config is a CLI error; the main rank reports."""
    from training.distributed import shutdown_distributed
    from training.loop import ResumeError, Trainer

    # Under torchrun each rank must free its DDP wrappers and destroy its process group before the interpreter
    # exits: a gloo group (or a wrapper holding it) torn down during interpreter finalization can abort the rank
    # ("terminate called without an active exception"), which fails a run that trained and saved correctly.
    trainer = None
    try:
        try:
            trainer = Trainer(cfg, train_data)
        except (ResumeError, ValueError) as exc:
            raise CLIError(str(exc)) from None
        out = trainer.run()
        if trainer.dist.is_main:
            print(f"wrote {out} after {trainer.step} steps ({trainer.wall_time:.0f} s)")
    finally:
        # Dropping our name is not enough: the first optimizer's lazy torch imports leave a self-referencing frame
        # (torch.fx's wrap) whose f_back chain holds Trainer.__init__'s frame, and so the trainer, until a full
        # collection, which may come only at exit. Collect now, while the group and the interpreter are alive.
        trainer = None
        gc.collect()
        shutdown_distributed()


def run_judge(args: argparse.Namespace) -> None:
    from training.judge import default_judge_path, save_judge, train_judge

    train = load_dataset(args.data, "train", args.image_size, args.channels)
    test = load_dataset(args.data, "test", args.image_size, args.channels)
    judge = train_judge(train, test, epochs=args.epochs, seed=args.seed)  # on one thread: reruns give one judge
    judge.dataset = args.data
    out = args.out or default_judge_path(args.data)
    save_judge(judge, out)
    print(f"wrote {out}: test accuracy {judge.test_accuracy:.4f} on {len(test)} real test images")


def run_score(args: argparse.Namespace) -> None:
    from training.judge import default_judge_path, load_judge, score_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    judge_path = args.judge or default_judge_path(ckpt.training.get("dataset", ""))
    if not judge_path.is_file():
        raise CLIError(f"no judge at {judge_path}; train one with: python -m training judge --data DATASET")
    result = score_checkpoint(ckpt, load_judge(judge_path), args.per_class, args.seed)
    print(json.dumps(result, indent=2))
    if args.record:
        update_training_metadata(args.checkpoint, {"metrics": result})
        print(f"recorded in {args.checkpoint}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("acgan", "cgan"):
            run_train(args)
        elif args.command == "generate":
            from training.generate import generate_to_file

            path = generate_to_file(args.checkpoint, args.class_, args.n, args.seed, args.out, args.truncation,
                                    args.columns, args.device)
            print(f"wrote {path}")
        elif args.command == "judge":
            run_judge(args)
        elif args.command == "score":
            run_score(args)
        elif args.command == "acgan-pytorchgan":
            from training import baseline_cli

            baseline_cli.run(args)
        else:
            from training import stargan_cli

            stargan_cli.run(args)
    except (CLIError, DatasetError, CheckpointError, ValueError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
