"""The command line of `python -m training.evaluate`."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from models import FAMILIES, CheckpointError, load_checkpoint, read_metadata
from models.checkpoint import update_training_metadata
from training.cli import non_negative_int, positive_float, positive_int
from training.data import DATA_SPEC_HELP, DatasetError, ImageDataset, load_dataset
from training.evaluate.class_conditional import RealReference, Settings, evaluate_class_conditional, real_reference
from training.evaluate.samples import sample_labels
from training.judge import Judge, default_judge_path, load_judge

EPILOG = """examples:
  python -m training.evaluate checkpoints/acgan.safetensors --data fashion-mnist --out reports/acgan
  python -m training.evaluate checkpoints/acgan.safetensors checkpoints/cgan.safetensors \\
      checkpoints/baselines/acgan-pytorchgan-15000.safetensors checkpoints/baselines/acgan-pytorchgan-20000.safetensors \\
      --data fashion-mnist --out checkpoints/report --record
  python -m training.evaluate checkpoints/stargan.safetensors --data twemoji-faces:data/twemoji-faces
"""


class EvaluateError(Exception):
    """A usage problem: printed as one line, exit status 2."""


def at_least_two_pairs(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (a standard error needs two pairs), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Evaluate checkpoints against real data and write DIR/report.md with PNG figures. "
        "Class-conditional: judge accuracy, Fréchet distance in the judge's features (with its real-data floor), "
        "precision, recall, density and coverage in those features, same-class MS-SSIM, Classification Accuracy "
        "Score, memorisation. StarGAN: attribute-classifier "
        "agreement per attribute, identity and reconstruction L1, L1 to true counterparts (twemoji tones).")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="one or more .safetensors checkpoints")
    p.add_argument("--data", default=None, help=f"dataset spec (default: each checkpoint's training dataset): "
                   f"{DATA_SPEC_HELP}; StarGAN: twemoji-faces[:DIR] or celeba:PATH")
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="folder for report.md and the PNGs "
                   "(default: runs/eval)")
    p.add_argument("--record", action="store_true", help="store the figures in each checkpoint's training.metrics "
                   "(and so in GET /models/{name})")
    p.add_argument("--judge", type=Path, default=None, help="judge classifier (default: "
                   "checkpoints/judges/DATASET.safetensors; train one with `python -m training judge`)")
    p.add_argument("--samples-per-class", type=positive_int, default=d.samples_per_class,
                   help=f"samples of each class behind every metric (default: {d.samples_per_class})")
    p.add_argument("--ms-ssim-pairs", type=at_least_two_pairs, default=d.ms_ssim_pairs,
                   help=f"random same-class pairs per class, at least 2 for a standard error (default: "
                   f"{d.ms_ssim_pairs})")
    p.add_argument("--cas-epochs", type=positive_int, default=d.cas_epochs,
                   help=f"epochs of each CAS classifier (default: {d.cas_epochs})")
    p.add_argument("--memorisation-per-class", type=positive_int, default=d.memorisation_per_class,
                   help=f"samples per class checked against the training set (default: {d.memorisation_per_class})")
    p.add_argument("--memorisation-held-apart", type=positive_int, default=d.memorisation_held_apart,
                   help="training images whose nearest-neighbour distances to the rest set the threshold "
                   f"(default: {d.memorisation_held_apart})")
    p.add_argument("--memorisation-percentile", type=positive_float, default=d.memorisation_percentile,
                   help=f"percentile of those distances used as the threshold (default: {d.memorisation_percentile:g})")
    p.add_argument("--prdc-k", type=positive_int, default=d.prdc_k,
                   help=f"nearest neighbours behind precision, recall, density and coverage (default: {d.prdc_k})")
    p.add_argument("--stargan-judge-epochs", type=positive_int, default=60,
                   help="epochs of StarGAN's attribute classifier (default: 60)")
    p.add_argument("--truncation", type=positive_float, default=None, metavar="PSI",
                   help="class-conditional: draw the samples' latents with |z_i| <= PSI (the truncation trick; "
                   "PSI >= 10 is no truncation) to measure what it trades; not with --record, whose figures are "
                   "those of the untruncated samples the service draws by default")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of samples, pairs and subsets")
    p.add_argument("--progress", action="store_true", help="progress bars for the CAS classifiers")
    return p


class RealData:
    """The judge and real splits of each dataset, loaded once however many checkpoints use them."""

    def __init__(self, judge_path: Path | None):
        self.judge_path = judge_path
        self._cache: dict[str, tuple[Judge, ImageDataset, ImageDataset]] = {}
        self._references: dict[str, RealReference] = {}

    def get(self, spec: str) -> tuple[Judge, ImageDataset, ImageDataset]:
        if spec not in self._cache:
            path = self.judge_path or default_judge_path(spec)
            if not path.is_file():
                raise EvaluateError(f"no judge at {path}; train one with: python -m training judge --data {spec}")
            judge = load_judge(path)
            train = load_dataset(spec, "train", judge.image_size, judge.channels)
            test = load_dataset(spec, "test", judge.image_size, judge.channels)
            self._cache[spec] = (judge, train, test)
        return self._cache[spec]

    def reference(self, spec: str, settings: Settings) -> RealReference:
        """The real-data figures every checkpoint evaluated on `spec` is set beside (one settings per run)."""
        if spec not in self._references:
            judge, train, test = self.get(spec)
            labels = sample_labels(len(judge.classes), settings.samples_per_class)
            self._references[spec] = real_reference(judge, train, test, labels, settings)
        return self._references[spec]


def evaluate_one(path: str, args: argparse.Namespace, real: RealData) -> dict[str, Any]:
    ckpt = load_checkpoint(path)
    spec = args.data or ckpt.training.get("dataset")
    if not spec:
        raise EvaluateError(f"{path} records no dataset; give --data")
    name = ckpt.name
    result: dict[str, Any] = {"name": name, "path": str(path), "family": ckpt.family,
                              "steps": ckpt.training.get("steps"), "data": spec}
    if ckpt.classes is not None:
        judge, train, test = real.get(spec)
        settings = Settings(args.samples_per_class, args.ms_ssim_pairs, args.cas_epochs, args.memorisation_per_class,
                            args.memorisation_held_apart, args.memorisation_percentile, args.seed, args.progress,
                            truncation=args.truncation, prdc_k=args.prdc_k)
        metrics = evaluate_class_conditional(ckpt, judge, train, test, settings, real.reference(spec, settings),
                                             args.out, name)
        metrics["evaluation"]["judge"] = str(args.judge or default_judge_path(spec))
        metrics["evaluation"]["data"] = spec
        result.update(kind="classes", metrics=metrics)
    else:
        from training.evaluate.stargan import evaluate_stargan

        metrics = evaluate_stargan(path, spec, args.out, name, args.stargan_judge_epochs, args.seed)
        result.update(kind="attributes", metrics=metrics)
    return result


def refuse_truncation_of_editors(paths: list[str]) -> None:
    """--truncation applies to latents: refuse an attribute editor among the checkpoints before any is evaluated,
    from the headers alone, so a long run over a mixed list does not end in this error. A header that cannot be
    read or names no known family is left for load_checkpoint to report in its turn."""
    for path in paths:
        try:
            family = FAMILIES.get(read_metadata(path).get("family", ""))
        except CheckpointError:
            continue
        if family is not None and family.conditioning != "classes":
            raise EvaluateError(f"{path} is a {family.name} editor: it draws no latents, so --truncation does not "
                                "apply")


def record(result: dict[str, Any]) -> None:
    """Merge the figures into the checkpoint's training.metrics (figure paths stay out: they are local files)."""
    metrics = {k: v for k, v in result["metrics"].items() if k != "figures"}
    if result["kind"] == "attributes":
        metrics = {"stargan_eval": metrics}  # where `python -m training stargan-eval --record` puts them
    update_training_metadata(result["path"], {"metrics": metrics})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.truncation is not None and args.record:
        parser.error("--record stores the figures of untruncated samples only; leave out --truncation or --record")
    if args.samples_per_class <= args.prdc_k:
        parser.error(f"--samples-per-class ({args.samples_per_class}) must exceed --prdc-k ({args.prdc_k}): each "
                     "sample's ball reaches its k-th nearest sample of the same class")
    try:
        if args.truncation is not None:
            refuse_truncation_of_editors(args.checkpoints)
        real = RealData(args.judge)
        results = []
        for path in args.checkpoints:
            print(f"evaluating {path} ...", file=sys.stderr)
            results.append(evaluate_one(path, args, real))
        args.out.mkdir(parents=True, exist_ok=True)
        from training.evaluate.report import write_report

        command = "python -m training.evaluate " + shlex.join(argv if argv is not None else sys.argv[1:])
        report = write_report(results, args.out, command)
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if args.record:
            for result in results:
                record(result)
                print(f"recorded in {result['path']}", file=sys.stderr)
        print(f"wrote {report}")
    except (EvaluateError, DatasetError, CheckpointError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0
