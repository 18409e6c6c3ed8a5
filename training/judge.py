"""The judge: a classifier trained on a dataset's real training split, never on generated data.

It scores generated samples (does a 'sneaker' look like a sneaker?) and its penultimate layer is the
feature space of the Fréchet distance. Saved as safetensors with its test accuracy, like a checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from models.checkpoint import CheckpointError, read_metadata, read_tensors, write_safetensors
from training.data import ImageDataset, to_unit_range
from training.generate import generate
from training.threads import one_intra_op_thread

JUDGE_FORMAT = "condgen-judge/1"


class JudgeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 32, feature_dim: int = 256):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(channels, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations [B, feature_dim]: the space Fréchet distances are measured in."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@dataclass
class Judge:
    net: JudgeNet
    classes: list[str]
    dataset: str
    image_size: int
    channels: int
    test_accuracy: float

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Class index of each image in [-1, 1]."""
        return torch.cat([self.net(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def accuracy(net: nn.Module, data: ImageDataset, batch_size: int = 500) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        logits = net(to_unit_range(data.images[i:i + batch_size]))
        correct += (logits.argmax(1) == data.labels[i:i + batch_size]).sum().item()
    return correct / len(data)


def train_judge(train: ImageDataset, test: ImageDataset, epochs: int = 6, batch_size: int = 128,
                seed: int = 0, progress: bool = True) -> Judge:
    """A classifier of `train`'s classes with its accuracy on `test`: the judge, or CAS's classifier."""
    batch_size = min(batch_size, len(train))  # a set smaller than a batch is one batch, not zero steps
    # One thread: both are measuring instruments, so their weights (and the figures they give) depend on the seed
    # and the CPU's kernels, not on the machine's thread count (on two threads against one, the demo CGAN's CAS
    # moved by 0.6 point; on another CPU by 0.35, checkpoints/README.md).
    with one_intra_op_thread():
        torch.manual_seed(seed)
        net = JudgeNet(train.channels, len(train.classes))
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
        steps = epochs * (len(train) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        gen = torch.Generator().manual_seed(seed)
        bar = tqdm(total=steps, desc=f"judge {train.name}", disable=not progress, mininterval=1.0)
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(len(train), generator=gen)
            for b in range(len(train) // batch_size):
                idx = perm[b * batch_size:(b + 1) * batch_size]
                x = to_unit_range(train.images[idx])
                flip = torch.rand(len(idx), generator=gen) < 0.5  # mirror images: clothes and faces are symmetric
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                loss = F.cross_entropy(net(x), train.labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        bar.close()
        net.eval()
        return Judge(net, list(train.classes), train.name, train.image_size, train.channels, accuracy(net, test))


def save_judge(judge: Judge, path: str | Path) -> None:
    metadata = {
        "format": JUDGE_FORMAT, "dataset": judge.dataset, "classes": json.dumps(judge.classes),
        "image_size": str(judge.image_size), "channels": str(judge.channels),
        "test_accuracy": f"{judge.test_accuracy:.6f}",
    }
    tensors = {k: v.detach().contiguous().clone() for k, v in judge.net.state_dict().items()}
    write_safetensors(path, tensors, metadata)


def load_judge(path: str | Path) -> Judge:
    meta = read_metadata(path)
    if meta.get("format") != JUDGE_FORMAT:
        raise CheckpointError(path, f"not a judge (format {meta.get('format')!r}, expected {JUDGE_FORMAT!r})")
    classes = json.loads(meta["classes"])
    net = JudgeNet(int(meta["channels"]), len(classes))
    net.load_state_dict(read_tensors(path))
    net.eval().requires_grad_(False)
    return Judge(net, classes, meta["dataset"], int(meta["image_size"]), int(meta["channels"]),
                 float(meta["test_accuracy"]))


def default_judge_path(dataset: str) -> Path:
    slug = dataset.split(":", 1)[0]
    return Path("checkpoints") / "judges" / f"{slug}.safetensors"


@torch.no_grad()
def score_checkpoint(ckpt, judge: Judge, per_class: int = 100, seed: int = 0) -> dict[str, Any]:
    """Share of generated samples the judge assigns to the asked class: overall and per class."""
    if list(ckpt.classes or []) != judge.classes:
        raise ValueError(f"checkpoint classes {ckpt.classes} differ from the judge's {judge.classes}")
    per: dict[str, float] = {}
    for index, name in enumerate(judge.classes):
        images = generate(ckpt, index, per_class, seed + index * per_class)
        per[name] = round((judge.predict(images.cpu()) == index).float().mean().item(), 4)
    return {"judge_accuracy": round(sum(per.values()) / len(per), 4), "judge_accuracy_per_class": per,
            "judge_test_accuracy": judge.test_accuracy, "samples_per_class": per_class}
