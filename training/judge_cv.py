"""How well the attribute classifier of `stargan-eval` can read real images at all
(`python -m training stargan-judge-cv --data twemoji-faces:DIR`).

K-fold cross-validation on the training split with every person's images (all tones of one emoji) in one fold,
as the held-out split is drawn: the accuracy it gives bounds the agreement an editor can reach, since an edit
that looked exactly like a real image would be read no better than one. Not a target; a ceiling to read
`judge_agreement` against.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from training.attribute_judge import accuracy_by_group, predict, train_attribute_judge
from training.attributes import TWEMOJI_DEFAULT_DIR, AttributeDataset, group_indices, load_attribute_dataset
from training.data import to_unit_range
from training.twemoji import read_counterparts


def people_of(files: list[str], counterparts: dict[str, dict[str, str]]) -> list[str]:
    """One key per image naming its person: the first file name among its tone counterparts (the same for
    every tone of one emoji), or the file itself where it has none."""
    return [min(counterparts[f].values()) if f in counterparts else f for f in files]


def person_folds(people: list[str], folds: int, seed: int = 0) -> torch.Tensor:
    """The fold of each image [N]: people shuffled and dealt out in turn, so a person never spans two folds."""
    distinct = sorted(set(people))
    if folds < 2 or folds > len(distinct):
        raise ValueError(f"{folds} folds need 2 to {len(distinct)} (the number of people)")
    order = torch.randperm(len(distinct), generator=torch.Generator().manual_seed(seed))
    fold_of = {distinct[int(j)]: k % folds for k, j in enumerate(order)}
    return torch.tensor([fold_of[p] for p in people])


def subset(data: AttributeDataset, index: torch.Tensor) -> AttributeDataset:
    return replace(data, images=data.images[index], labels=data.labels[index],
                   files=[data.files[int(i)] for i in index] if data.files else [])


def cross_validate_judge(data: AttributeDataset, groups: list[list[int]], people: list[str], folds: int = 5,
                         epochs: int = 60, seed: int = 0) -> dict[str, Any]:
    """Accuracy per group and binary attribute over all folds' held-out images (each read by the classifier
    trained on the other folds, the way `stargan-eval` trains it)."""
    fold = person_folds(people, folds, seed)
    pred = torch.zeros_like(data.labels)
    for k in range(folds):
        held = (fold == k).nonzero().squeeze(1)
        judge = train_attribute_judge(subset(data, (fold != k).nonzero().squeeze(1)), groups, epochs, seed=seed)
        pred[held] = predict(judge, to_unit_range(data.images[held]), groups)
    return {"images": len(data), "people": len(set(people)), "folds": folds, "epochs": epochs,
            "accuracy": accuracy_by_group(pred, data.labels, data.attributes, groups)}


def judge_cross_validation(data_spec: str = f"twemoji-faces:{TWEMOJI_DEFAULT_DIR}", image_size: int = 32,
                           folds: int = 5, epochs: int = 60, seed: int = 0) -> dict[str, Any]:
    data = load_attribute_dataset(data_spec, "train", image_size).labelled()  # what stargan-eval's classifier reads
    counterparts = read_counterparts(data_spec) or {}  # CelebA has none: each image is its own person
    groups = group_indices(data.attributes, data.attribute_groups)
    result = cross_validate_judge(data, groups, people_of(data.files, counterparts), folds, epochs, seed)
    return {"data": data_spec, "image_size": image_size, **result}
