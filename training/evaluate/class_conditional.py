"""The figures of a class-conditional checkpoint (acgan, cgan, the PyTorch-GAN baseline) against real data.

One set of samples (samples_per_class of every class, fixed seeds) feeds every metric:
- accuracy: the judge's accuracy on them, overall and per class, beside its accuracy on the real test split;
- fid: Fréchet distance in the judge's 256-d feature space to the real test split; fid_floor: the same
  from as many real training images (class-matched), so both sides of the comparison have equal counts;
  fid_scale: the same from those real images after known pixel noise and blur, to read fid against;
  fid_per_class: the same within each class (intra-FID), samples and floor, to say which classes fid comes from;
- kid: the kernel distance (KID) in the same features to the same test split, samples and floor, with its spread
  over random subsets: unbiased where fid's estimate grows as samples shrink, so real against real reads about 0;
- prdc: precision, recall, density and coverage in the same features against the same test split, overall and
  within each class, beside the floor's real training images: fid's distance split into fidelity and variety;
- ms_ssim: mean MS-SSIM of random same-class pairs, per class, beside real test images of the class, with the
  standard error of each mean, so a class at or below real by less than the pairs' noise reads as undecided;
- cas: a classifier trained on the samples only, tested on real test images, beside one trained on as
  many real training images (same architecture, same epochs);
- memorisation: share of samples nearer (pixel L2) to a training image than the 1st percentile of
  train-to-train nearest-neighbour distances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import Checkpoint
from training.data import ImageDataset, to_unit_range
from training.evaluate import figures
from training.evaluate.fid_scale import fid_scale
from training.evaluate.samples import class_samples, fit_to_judge
from training.judge import Judge
from training.metrics.accuracy import accuracy, per_class_accuracy
from training.metrics.cas import class_matched_subset, classification_accuracy_score, classifier_accuracy
from training.metrics.fid import frechet_distance_of_features, frechet_distance_per_class
from training.metrics.kid import KernelDistance, kernel_distance
from training.metrics.memorisation import MemorisationThreshold, memorisation, memorisation_threshold
from training.metrics.ms_ssim import PairMSSSIM, pair_ms_ssim
from training.metrics.prdc import PRDC, kth_neighbour_radii, prdc, prdc_per_class


@dataclass
class Settings:
    samples_per_class: int = 500
    ms_ssim_pairs: int = 500  # random same-class pairs per class (the ACGAN paper used 100)
    cas_epochs: int = 5
    memorisation_per_class: int = 100  # samples per class checked for memorisation
    memorisation_held_apart: int = 1000  # training images whose nearest-neighbour distances set the threshold
    memorisation_percentile: float = 1.0
    seed: int = 0
    progress: bool = False
    # Samples drawn with |z_i| <= psi (BigGAN's truncation trick: typical samples for variety); None: N(0, 1), the
    # way the service samples by default and the only way figures are recorded in a checkpoint.
    truncation: float | None = None
    prdc_k: int = 5  # neighbours behind each ball of precision, recall, density and coverage (Naeem et al.'s 5)
    kid_subset_size: int = 1000  # rows of each side per KID subset, and the subsets averaged (torch-fidelity's)
    kid_subsets: int = 100


# A class's samples are "clearly" more (less) diverse than its real images when their mean MS-SSIMs differ by more
# than this many standard errors of the difference: about a 2.5% chance each way that another draw of pairs from
# the same images would reverse it (pairs share images, so the true spread is a little wider than this reads).
CLEAR_MARGIN_STANDARD_ERRORS = 2.0


@torch.no_grad()
def judge_features(judge: Judge, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([judge.net.features(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def first_per_class(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first n images of every class."""
    return torch.cat([torch.nonzero(labels == k).flatten()[:n] for k in labels.unique(sorted=True)])


def real_ms_ssim_per_class(real: ImageDataset, pairs: int, seed: int) -> dict[str, PairMSSSIM]:
    return {name: pair_ms_ssim(to_unit_range(real.images[real.labels == index]), pairs,
                               torch.Generator().manual_seed(seed + index))
            for index, name in enumerate(real.classes)}


def ms_ssim_figures(gen: torch.Tensor, gen_labels: torch.Tensor, classes: list[str],
                    per_real: dict[str, PairMSSSIM], pairs: int, seed: int) -> dict[str, Any]:
    per_gen = {name: pair_ms_ssim(gen[gen_labels == index], pairs, torch.Generator().manual_seed(seed + index))
               for index, name in enumerate(classes)}
    means = {name: round(figure.mean, 4) for name, figure in per_gen.items()}
    real_means = {name: round(figure.mean, 4) for name, figure in per_real.items()}
    at_or_below = [name for name in means if means[name] <= real_means[name]]

    def margin(name: str) -> float:
        """The difference of the two means, in standard errors of that difference."""
        spread = (per_gen[name].standard_error ** 2 + per_real[name].standard_error ** 2) ** 0.5
        difference = per_gen[name].mean - per_real[name].mean
        if spread == 0:  # neither side varies (every pair alike): any difference is clear
            return 0.0 if difference == 0 else math.copysign(math.inf, difference)
        return difference / spread

    margins = {name: margin(name) for name in classes}
    clearly_below = [name for name in classes if margins[name] < -CLEAR_MARGIN_STANDARD_ERRORS]
    clearly_above = [name for name in classes if margins[name] > CLEAR_MARGIN_STANDARD_ERRORS]
    return {"generated": round(sum(means.values()) / len(means), 4),
            "real": round(sum(real_means.values()) / len(real_means), 4),
            "classes_at_or_below_real": round(len(at_or_below) / len(means), 4),
            # The share above is decided only where the means differ by more than the pairs' noise: another
            # draw of pairs may land anywhere between the share clearly below and 1 - the share clearly above.
            "classes_clearly_below_real": round(len(clearly_below) / len(means), 4),
            "classes_clearly_above_real": round(len(clearly_above) / len(means), 4),
            "clearly_below_real": clearly_below, "clearly_above_real": clearly_above,
            "clear_margin_standard_errors": CLEAR_MARGIN_STANDARD_ERRORS,
            "generated_per_class": means, "real_per_class": real_means,
            "generated_standard_error_per_class": {n: round(f.standard_error, 4) for n, f in per_gen.items()},
            "real_standard_error_per_class": {n: round(f.standard_error, 4) for n, f in per_real.items()},
            "pairs_per_class": pairs}


@dataclass
class RealReference:
    """The real-data side of every comparison: the same for each checkpoint evaluated with one judge, one
    dataset and one set of sample labels, so an evaluate run over several checkpoints computes it once."""
    labels: torch.Tensor  # the sample labels it was made for (the floor set matches their class counts)
    real_test_accuracy: float
    real_test_per_class: dict[str, float]
    test_features: torch.Tensor
    test_labels: torch.Tensor
    fid_floor: float
    fid_floor_per_class: dict[str, float]
    fid_floor_train_images: int
    fid_scale: dict[str, float]
    kid_floor: KernelDistance  # the floor set's kernel distance to the test split
    test_radii: torch.Tensor  # each test feature's distance to its prdc_k-th nearest test feature
    prdc_floor: PRDC  # the floor set's figures against the test split
    prdc_floor_per_class: dict[str, PRDC]
    ms_ssim_real_per_class: dict[str, PairMSSSIM]
    cas_real_accuracy: float  # CAS's classifier trained on the floor set's real images
    memorisation_reference: torch.Tensor  # the training images samples are checked against, in [-1, 1]
    memorisation_threshold: MemorisationThreshold  # from the held-apart training images' distances to them


def real_reference(judge: Judge, train: ImageDataset, test: ImageDataset, labels: torch.Tensor,
                   settings: Settings) -> RealReference:
    s = settings
    real_test = to_unit_range(test.images)
    real_pred = judge.predict(real_test)
    # fid's floor, and CAS's real-data classifier: as many class-matched real training images as there are samples
    floor_set = class_matched_subset(train, labels, s.seed)
    test_features = judge_features(judge, real_test)
    floor_images = to_unit_range(floor_set.images)
    floor_features = judge_features(judge, floor_images)
    fid_floor = frechet_distance_of_features(floor_features, test_features)
    floor_per_class = frechet_distance_per_class(floor_features, floor_set.labels, test_features, test.labels,
                                                 judge.classes)
    scale = fid_scale(lambda images: judge_features(judge, images), floor_images, test_features, s.seed)
    kid_floor = kernel_distance(floor_features, test_features, s.kid_subset_size, s.kid_subsets, s.seed)
    test_radii = kth_neighbour_radii(test_features, s.prdc_k)
    prdc_floor = prdc(test_features, floor_features, s.prdc_k, real_radii=test_radii)
    prdc_floor_per_class = prdc_per_class(test_features, test.labels, floor_features, floor_set.labels,
                                          judge.classes, s.prdc_k)
    # memorisation: every training image but the held-apart ones is a reference a sample may copy
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(s.seed))
    held_apart, reference = order[:s.memorisation_held_apart], order[s.memorisation_held_apart:]
    reference_images = to_unit_range(train.images[reference])
    threshold = memorisation_threshold(reference_images, to_unit_range(train.images[held_apart]),
                                       s.memorisation_percentile)
    return RealReference(labels.clone(), accuracy(real_pred, test.labels),
                         per_class_accuracy(real_pred, test.labels, judge.classes), test_features, test.labels,
                         round(fid_floor, 4), _rounded(floor_per_class), len(floor_set), scale, kid_floor,
                         test_radii, prdc_floor, prdc_floor_per_class,
                         real_ms_ssim_per_class(test, s.ms_ssim_pairs, s.seed),
                         classifier_accuracy(floor_set, test, s.cas_epochs, s.seed, progress=s.progress),
                         reference_images, threshold)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def evaluate_class_conditional(ckpt: Checkpoint, judge: Judge, train: ImageDataset, test: ImageDataset,
                               settings: Settings, ref: RealReference, out_dir: Path, name: str) -> dict[str, Any]:
    """All figures as a JSON-able dict (what --record stores); PNGs go to out_dir/NAME_*.png. `ref`: the real-data
    side (real_reference), made once for every checkpoint of a run."""
    if list(ckpt.classes or []) != judge.classes or list(test.classes) != judge.classes:
        raise ValueError(f"{ckpt.path}: classes {ckpt.classes} must match the judge's {judge.classes} and the data's")
    s = settings
    raw, labels = class_samples(ckpt, s.samples_per_class, s.seed, truncation=s.truncation)
    padding = int(ckpt.training.get("input_padding", 0))
    gen = fit_to_judge(raw, padding, judge.image_size, judge.channels)
    classes = judge.classes

    if not torch.equal(ref.labels, labels):
        raise ValueError(f"the real-data reference was made for other sample labels than {name}'s")

    # accuracy: the judge on samples, beside its accuracy on real test images
    gen_pred = judge.predict(gen)
    acc = {"generated": accuracy(gen_pred, labels), "real_test": ref.real_test_accuracy,
           "generated_per_class": per_class_accuracy(gen_pred, labels, classes),
           "real_test_per_class": ref.real_test_per_class,
           "judge_test_accuracy": round(judge.test_accuracy, 4)}

    gen_features = judge_features(judge, gen)
    fid = frechet_distance_of_features(gen_features, ref.test_features)
    fid_per_class = frechet_distance_per_class(gen_features, labels, ref.test_features, ref.test_labels, classes)
    kid = kernel_distance(gen_features, ref.test_features, s.kid_subset_size, s.kid_subsets, s.seed)

    fidelity = prdc(ref.test_features, gen_features, s.prdc_k, real_radii=ref.test_radii)
    fidelity_per_class = prdc_per_class(ref.test_features, ref.test_labels, gen_features, labels, classes, s.prdc_k)

    diversity = ms_ssim_figures(gen, labels, classes, ref.ms_ssim_real_per_class, s.ms_ssim_pairs, s.seed)

    cas = classification_accuracy_score(gen, labels, train, test, s.cas_epochs, s.seed, progress=s.progress,
                                        real_accuracy=ref.cas_real_accuracy)

    # memorisation: a fixed subset of samples against the reference's training images
    checked = first_per_class(labels, s.memorisation_per_class)
    mem_threshold = ref.memorisation_threshold
    mem = memorisation(gen[checked], ref.memorisation_reference, mem_threshold)
    closest = mem.generated_nn.argsort()[:10]

    out_dir.mkdir(parents=True, exist_ok=True)
    columns = min(10, s.samples_per_class)  # a row per class
    grid_rows = torch.cat([torch.nonzero(labels == k).flatten()[:columns] for k in range(len(classes))])
    figure_paths = {
        "samples": figures.image_grid(gen[grid_rows], columns, out_dir / f"{name}_samples.png"),
        "per_class": figures.grouped_bars(
            f"{name}: judge accuracy and same-class MS-SSIM (lower = more diverse)", classes,
            {"judge acc, samples": list(acc["generated_per_class"].values()),
             "judge acc, real test": list(acc["real_test_per_class"].values()),
             "MS-SSIM, samples": list(diversity["generated_per_class"].values()),
             "MS-SSIM, real test": list(diversity["real_per_class"].values())},
            out_dir / f"{name}_per_class.png"),
        "nearest": figures.nearest_pairs(gen[checked][closest],
                                         ref.memorisation_reference[mem.generated_nn_index[closest]],
                                         out_dir / f"{name}_nearest.png"),
    }
    return {
        "accuracy": acc,
        "fid": round(fid, 4),
        "fid_floor": ref.fid_floor,
        "fid_scale": ref.fid_scale,
        "fid_per_class": {"generated": _rounded(fid_per_class), "floor": ref.fid_floor_per_class},
        "kid": {"generated": kid.rounded(), "floor": ref.kid_floor.rounded()},
        "prdc": {"generated": fidelity.rounded(), "floor": ref.prdc_floor.rounded(),
                 "generated_per_class": {c: v.rounded() for c, v in fidelity_per_class.items()},
                 "floor_per_class": {c: v.rounded() for c, v in ref.prdc_floor_per_class.items()},
                 "k": s.prdc_k, "test_images": len(ref.test_features)},
        "ms_ssim": diversity,
        "cas": {"cas": cas.cas, "real": cas.real, "ratio": round(cas.ratio, 4), "train_images": cas.train_images,
                "epochs": cas.epochs},
        "memorisation": {"share": mem.share, "threshold": round(mem_threshold.threshold, 4),
                         "percentile": mem_threshold.percentile,
                         "samples_checked": len(checked), "reference_images": len(ref.memorisation_reference),
                         "generated_nn_median": round(mem.generated_nn.median().item(), 4),
                         "train_nn_median": round(mem_threshold.train_nn.median().item(), 4),
                         "closest_distances": [round(v, 4) for v in mem.generated_nn[closest].tolist()]},
        "evaluation": {"samples_per_class": s.samples_per_class, "seed": s.seed, "truncation": s.truncation,
                       "fid_test_images": len(test),
                       "fid_floor_train_images": ref.fid_floor_train_images, "input_padding_cropped": padding,
                       "generated_size": int(raw.shape[-1]), "judge_size": judge.image_size},
        "figures": {k: str(v) for k, v in figure_paths.items()},
    }
