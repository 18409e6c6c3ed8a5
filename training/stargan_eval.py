"""StarGAN evaluation on held-out data (`python -m training stargan-eval CKPT --data twemoji-faces:DIR`).

Three figures, all on the test split (emoji whose every tone was held out of training):
- tone: light-tone input -> tone_dark edit, L1 to the TRUE dark variant against the input's own L1 to it
  (with where the rest goes: tone pixels the edit left alone, and the share of its L1 outside them);
- judge agreement: an attribute classifier trained on the real training split checks each
  single-attribute edit (the edited attribute, and the whole vector; inside a group, also split by the input's
  own value, and counted by what the misses were read as);
- identity: with target = source attributes, the L1 change of the image.
Beside them, not a target: the same agreement on edits of the TRAINING emoji, with the classifier's accuracy on
those real images; a gap between the two agreements is G (or D's head) learning the training shapes. And the
agreement's ceiling: the classifier's recall on real held-out images of each value, and what edits read as those
images are would score over the same edits.
L1 is the mean absolute pixel difference on a [0, 1] scale.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import load_checkpoint
from training.attribute_judge import accuracy_by_group, predict, recall_per_value, train_attribute_judge
from training.attributes import (TWEMOJI_DEFAULT_DIR, AttributeDataset, group_indices,
                                 load_attribute_dataset, single_attribute_edits)
from training.data import to_unit_range
from training.families.stargan import edit_grid
from training.twemoji import read_counterparts

PASS = {"tone_closer": 0.40, "judge_agreement": 0.90, "identity_l1": 0.05}


@torch.no_grad()
def edit(G: nn.Module, x: torch.Tensor, c: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([G(x[i:i + batch_size], c[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().mean() / 2).item()  # [-1, 1] images: halve for the [0, 1] scale


def closer(edited: float, unedited: float) -> float:
    """How much closer to the truth the edit is than its input: 1 - L1(edit) / L1(input)."""
    return round(1.0 - edited / unedited, 4) if unedited > 0 else float("nan")


TONE_PIXEL_MIN_CHANGE = 0.05  # a pixel whose colour differs between two tones by more than this ([0, 1] scale)


def where_the_error_goes(out: torch.Tensor, source: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Split a tone edit's miss: tone pixels (where source and true counterpart differ) the edit left alone
    (moved less than a tenth of the way), and the share of the edit's L1 that lies outside the tone pixels."""
    needed = (source - true).abs().mean(1) / 2
    tone_pixels = needed > TONE_PIXEL_MIN_CHANGE
    moved = (out - source).abs().mean(1) / 2
    error = (out - true).abs().mean(1)
    left_alone = (tone_pixels & (moved < 0.1 * needed)).sum() / tone_pixels.sum().clamp(min=1)
    outside = error[~tone_pixels].sum() / error.sum().clamp(min=1e-12)
    return {"tone_pixels_left_alone": round(left_alone.item(), 4), "error_outside_tone_pixels": round(outside.item(), 4)}


def tone_figures(G: nn.Module, x: torch.Tensor, c: torch.Tensor, files: list[str], attributes: list[str],
                 tone_group: list[int], counterparts: dict[str, dict[str, str]]) -> dict[str, Any]:
    index = {f: i for i, f in enumerate(files)}
    names = [attributes[i] for i in tone_group]

    def to_tone(sources: list[int], tone: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The edits of `sources` to `tone`, and their true counterparts in it."""
        true = [index[counterparts[files[i]][tone]] for i in sources]
        target = c[sources].clone()
        target[:, tone_group] = 0.0
        target[:, attributes.index(tone)] = 1.0
        return edit(G, x[sources], target), x[true]

    light = [i for i in range(len(files)) if c[i, attributes.index("tone_light")] == 1]
    out, true = to_tone(light, "tone_dark")
    edited, unedited = l1(out, true), l1(x[light], true)
    split = where_the_error_goes(out, x[light], true)
    pairs = {}
    for src in names:
        for dst in names:
            if src != dst:
                sources = [i for i in range(len(files)) if c[i, attributes.index(src)] == 1]
                pair_out, pair_true = to_tone(sources, dst)
                pairs[f"{src}->{dst}"] = closer(l1(pair_out, pair_true), l1(x[sources], pair_true))
    return {"light_to_dark_inputs": len(light), "light_to_dark_l1_edit": round(edited, 4),
            "light_to_dark_l1_input": round(unedited, 4), "light_to_dark_closer": closer(edited, unedited),
            **{f"light_to_dark_{k}": v for k, v in split.items()},
            "all_tone_pairs_mean_closer": round(sum(pairs.values()) / len(pairs), 4),
            "all_tone_pairs_closer": pairs}


def agreement_ceiling(c: torch.Tensor, attributes: list[str], groups: list[list[int]],
                      recall: dict[str, float]) -> float:
    """The agreement an editor would score whose every edit the classifier read as it reads real held-out images
    of the target value (recall_per_value), over the same edits judge_figures makes. On twemoji-faces a tone
    edit's true result is a held-out image (the same person in the target tone), so for tones this is exact."""
    total = hits = 0.0
    for i, _, t in single_attribute_edits(c, groups):
        name = attributes[i]
        to_set = int((t[:, i] == 1).sum())  # edits that set the attribute
        hits += to_set * recall.get(name, 0.0) + (len(t) - to_set) * recall.get(f"not {name}", 0.0)
        total += len(t)
    return round(hits / total, 4) if total else float("nan")


def judge_figures(G: nn.Module, judge: nn.Module, x: torch.Tensor, c: torch.Tensor, attributes: list[str],
                  groups: list[list[int]]) -> dict[str, Any]:
    per: dict[str, float] = {}
    read_as: dict[str, dict[str, int]] = {}  # per target inside a one-hot group: what the edits were read as
    by_source: dict[str, dict[str, float]] = {}  # per target inside a group: agreement per source value
    hits = whole = total = misses_as_source = 0
    for i, changed, t in single_attribute_edits(c, groups):  # identity "edits" (already that tone) left out
        name = attributes[i]
        pred = predict(judge, edit(G, x[changed], t), groups)
        group = next((g for g in groups if i in g), [i])
        ok = (pred[:, group] == t[:, group]).all(1)
        own = c[changed][:, group]  # each input's own values in the edited group
        per[name] = round(ok.float().mean().item(), 4)
        hits += int(ok.sum())
        whole += int((pred == t).all(1).sum())
        total += len(t)
        misses_as_source += int((~ok & (pred[:, group] == own).all(1)).sum())
        if len(group) > 1:
            counts = pred[:, group].sum(0).int().tolist()
            read_as[name] = {attributes[j]: n for j, n in zip(group, counts) if n}
            # Whether a weak target is weak from every source or only from one (a hair colour that stays).
            source = torch.where(own.sum(1) == 1, own.argmax(1), -1)  # -1: no single source value
            by_source[name] = {attributes[j]: round(ok[source == k].float().mean().item(), 4)
                               for k, j in enumerate(group) if (source == k).any()}
    misses = total - hits
    # Tells an edit too faint to read (the classifier still sees the input's own value) from a wrong one.
    source_share = round(misses_as_source / misses, 4) if misses else None
    return {"edits": total, "judge_agreement": round(hits / total, 4),
            "judge_agreement_whole_vector": round(whole / total, 4), "judge_agreement_per_attribute": per,
            "judge_misses_reading_the_source": source_share, "judge_reads_group_edits_as": read_as,
            "judge_agreement_by_source": by_source}


TRAINING_IMAGES_SCORED = 2000  # all of twemoji-faces' 918; a fixed first slice of a CelebA-sized split


def training_split_figures(G: nn.Module, judge: nn.Module, train: AttributeDataset,
                           groups: list[list[int]]) -> dict[str, Any]:
    """Agreement on edits of the training images, beside the classifier's accuracy on them (it was trained on
    them, so it reads them better than held-out ones: compare the gap between agreements with this one's)."""
    n = min(len(train), TRAINING_IMAGES_SCORED)
    x, c = to_unit_range(train.images[:n]), train.labels[:n]
    real_right = (predict(judge, x, groups) == c).all(1).float().mean().item()
    figures = judge_figures(G, judge, x, c, train.attributes, groups)
    return {"images": n, "judge_real_accuracy_whole_vector": round(real_right, 4),
            "judge_agreement": figures["judge_agreement"],
            "judge_agreement_per_attribute": figures["judge_agreement_per_attribute"]}


def write_grid(G: nn.Module, x: torch.Tensor, c: torch.Tensor, attributes: list[str], groups: list[list[int]],
               path: Path, rows: int = 8) -> None:
    """Held-out inputs x edits: light-tone inputs where the data has that tone (a tone edit shows most there)."""
    from training.loop import save_image_grid

    light = attributes.index("tone_light") if "tone_light" in attributes else None
    pick = [i for i in range(len(x)) if light is None or c[i, light] == 1][:rows]
    images, columns = edit_grid(G, x[pick], c[pick], groups)
    save_image_grid(images, columns, path)


def other_judges_figures(G: nn.Module, train: AttributeDataset, x: torch.Tensor, c: torch.Tensor,
                         groups: list[list[int]], epochs: int, seeds: list[int], agreement: float) -> dict[str, Any]:
    """The agreement that classifiers trained with other seeds read: one classifier's figure moves by points
    with its seed, so a figure near the target means little without its spread."""
    readings = []
    for seed in seeds:
        judge = train_attribute_judge(train, groups, epochs, seed=seed)
        figures = judge_figures(G, judge, x, c, train.attributes, groups)
        readings.append({"seed": seed, "judge_agreement": figures["judge_agreement"],
                         "judge_agreement_per_attribute": figures["judge_agreement_per_attribute"],
                         "judge_real_test_accuracy": accuracy_by_group(predict(judge, x, groups), c,
                                                                       train.attributes, groups)})
    every = [agreement] + [r["judge_agreement"] for r in readings]
    return {"judges": readings, "judge_agreement_min": min(every), "judge_agreement_max": max(every),
            "judge_agreement_mean": round(sum(every) / len(every), 4)}


def evaluate(checkpoint: str, data_spec: str = f"twemoji-faces:{TWEMOJI_DEFAULT_DIR}", judge_epochs: int = 60,
             seed: int = 0, grid: Path | None = None, extra_judges: int = 0) -> dict[str, Any]:
    ckpt = load_checkpoint(checkpoint)
    if ckpt.family != "stargan":
        raise ValueError(f"{checkpoint}: family {ckpt.family}, stargan-eval needs a stargan checkpoint")
    attributes, size = list(ckpt.attributes or []), int(ckpt.arch["image_size"])
    # The classifier, and the agreement on training edits, from the fully labelled rows: a folder with partially
    # labelled people added for training (prepare-twemoji --add-unlabelled-people) measures as the plain one does.
    train = load_attribute_dataset(data_spec, "train", size, attributes).labelled()
    test = load_attribute_dataset(data_spec, "test", size, attributes).labelled()
    groups = group_indices(attributes, ckpt.attribute_groups)
    G = ckpt.generator
    x, c = to_unit_range(test.images), test.labels

    judge = train_attribute_judge(train, groups, judge_epochs, seed=seed)
    real_pred = predict(judge, x, groups)
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint), "data": data_spec, "test_images": len(test), "image_size": size,
        "judge_real_test_accuracy": accuracy_by_group(real_pred, c, attributes, groups),
        # What a perfect editor would score per target: the classifier on real held-out images of that value.
        "judge_real_test_recall": recall_per_value(real_pred, c, attributes, groups),
    }
    result["judge_agreement_ceiling"] = agreement_ceiling(c, attributes, groups, result["judge_real_test_recall"])
    tone_group = next((g for g in groups if "tone_dark" in [attributes[i] for i in g]), None)
    if tone_group is not None and (counterparts := read_counterparts(data_spec)) is not None:
        result["tone"] = tone_figures(G, x, c, test.files, attributes, tone_group, counterparts)
    result["judge"] = judge_figures(G, judge, x, c, attributes, groups)
    result["judge_on_training_images"] = training_split_figures(G, judge, train, groups)
    if extra_judges:
        seeds = [seed + k for k in range(1, extra_judges + 1)]
        result["judge_other_seeds"] = other_judges_figures(G, train, x, c, groups, judge_epochs, seeds,
                                                           result["judge"]["judge_agreement"])
    result["identity_l1"] = round(l1(edit(G, x, c), x), 4)
    checks = {"judge_agreement": result["judge"]["judge_agreement"] >= PASS["judge_agreement"],
              "identity_l1": result["identity_l1"] <= PASS["identity_l1"]}
    if "tone" in result:
        checks["tone_closer"] = result["tone"]["light_to_dark_closer"] >= PASS["tone_closer"]
    if grid is not None:
        write_grid(G, x, c, attributes, groups, grid)
        result["grid"] = str(grid)
    result["thresholds"] = PASS
    result["passed"] = checks
    return result
