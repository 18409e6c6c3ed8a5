"""An attribute classifier trained on real images only: it judges whether a StarGAN edit did what was asked."""
from __future__ import annotations

import torch
from torch import nn

from training.attributes import AttributeDataset, binary_indices
from training.data import to_unit_range
from training.diff_augment import shifted_crops
from training.losses import attribute_loss
from training.threads import one_intra_op_thread


class AttributeNet(nn.Module):
    """A small CNN: raw logits [B, A] (softmax inside a group, sigmoid for a binary attribute)."""

    def __init__(self, channels: int, num_attributes: int, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(channels, width), nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        )
        self.head = nn.Linear(4 * width, num_attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_attribute_judge(data: AttributeDataset, groups: list[list[int]], epochs: int = 60, batch_size: int = 64,
                          seed: int = 0) -> AttributeNet:
    """The classifier is the measuring instrument, so its weights must depend on the seed alone: trained on two
    threads instead of one, the same seed gave a classifier reading 94.1% of held-out tones instead of 95.1% and
    moved every agreement figure. One thread gives the same weights whatever the machine's thread count."""
    with one_intra_op_thread():
        return _train_attribute_judge(data, groups, epochs, batch_size, seed)


def _train_attribute_judge(data: AttributeDataset, groups: list[list[int]], epochs: int, batch_size: int,
                           seed: int) -> AttributeNet:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = AttributeNet(data.channels, len(data.attributes))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = max(1, len(data) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(data), generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            x = to_unit_range(data.images[idx])
            flip = torch.rand(len(idx), generator=gen) < 0.5  # a mirrored person keeps tone and gender
            x = shift(torch.where(flip[:, None, None, None], x.flip(-1), x), 2, gen)
            loss = attribute_loss(net(x), data.labels[idx], groups)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval().requires_grad_(False)


def shift(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Move each image by up to `pixels` in x and y over a white border: the held-out emoji are new shapes,
    so the judge should look at colours and parts, not at where they sit."""
    offsets = torch.randint(0, 2 * pixels + 1, (len(x), 2), generator=gen)
    return shifted_crops(x, offsets[:, 0], offsets[:, 1], pixels, pixels, fill=1.0)


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, groups: list[list[int]], batch_size: int = 256) -> torch.Tensor:
    """0/1 predictions [B, A] for images in [-1, 1]: argmax one-hot inside each group, logit > 0 elsewhere."""
    logits = torch.cat([net(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    pred = (logits > 0).float()
    for group in groups:
        pred[:, group] = 0.0
        pred[torch.arange(len(pred)), torch.tensor(group)[logits[:, group].argmax(1)]] = 1.0
    return pred


def accuracy_by_group(pred: torch.Tensor, labels: torch.Tensor, attributes: list[str],
                      groups: list[list[int]]) -> dict[str, float]:
    """Share of images read right, per group (all its members right: "first..last") and per binary attribute."""
    out = {}
    for index in groups + [[i] for i in binary_indices(len(attributes), groups)]:
        key = attributes[index[0]] if len(index) == 1 else f"{attributes[index[0]]}..{attributes[index[-1]]}"
        out[key] = round((pred[:, index] == labels[:, index]).all(1).float().mean().item(), 4)
    return out


def recall_per_value(pred: torch.Tensor, labels: torch.Tensor, attributes: list[str],
                     groups: list[list[int]]) -> dict[str, float]:
    """Per attribute value, the share of the images that have it which the classifier reads as having it: each
    member of a one-hot group, and each binary attribute both set (NAME) and unset ("not NAME"). An editor whose
    edits looked exactly like real images of the target would be read as asked this often, so it is the ceiling
    an edit's agreement is read against."""
    def share(index: int, value: int) -> float:
        has = labels[:, index] == value
        return round((pred[has, index] == value).float().mean().item(), 4)

    values = [(i, 1, attributes[i]) for group in groups for i in group]  # "not tone_dark" is no one target
    for i in binary_indices(len(attributes), groups):
        values += [(i, 1, attributes[i]), (i, 0, f"not {attributes[i]}")]
    return {key: share(i, value) for i, value, key in values if (labels[:, i] == value).any()}
