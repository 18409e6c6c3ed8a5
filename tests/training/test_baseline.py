"""The PyTorch-GAN ACGAN baseline: its published networks and losses (mistakes kept), trainable by the CLI, never served."""
import math

import pytest
import torch
import torch.nn.functional as F

from models import build, build_discriminator, load_checkpoint
from models.checkpoint import CheckpointError
from models.pytorchgan_acgan import PUBLISHED_BN_EPS, PyTorchGANArch
from training.cli import main
from training.families.base import StepContext
from training.families.pytorchgan import LOSS_NAME, PyTorchGANACGANSteps, ce_on_probabilities

ARCH = dict(num_classes=10, image_size=16, channels=1, latent_dim=8)


def test_networks_have_the_published_shapes_and_outputs():
    torch.manual_seed(0)
    G, D = build("acgan-pytorchgan", **ARCH), build_discriminator("acgan-pytorchgan", **ARCH)
    y = F.one_hot(torch.arange(4), 10).float()
    images = G(torch.randn(4, 8), y)
    assert images.shape == (4, 1, 16, 16) and images.abs().max() <= 1
    validity, classes = D(images)
    assert validity.shape == (4,) and ((validity > 0) & (validity < 1)).all()  # a sigmoid, as published
    assert torch.allclose(classes.sum(1), torch.ones(4))  # a softmax, as published
    # BatchNorm eps 0.8 where the recipe passes 0.8; D's first block has no BatchNorm.
    eps = [m.eps for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert eps == [1e-5, PUBLISHED_BN_EPS, PUBLISHED_BN_EPS]
    assert [m.eps for m in D.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [PUBLISHED_BN_EPS] * 3
    assert not isinstance(D.conv_blocks[3], torch.nn.BatchNorm2d)


def test_the_class_enters_only_by_scaling_z():
    G = build("acgan-pytorchgan", **ARCH).eval()
    z, y = torch.randn(3, 8), F.one_hot(torch.tensor([2, 5, 9]), 10).float()
    h = G.l1(G.label_emb.weight.T[[2, 5, 9]] * z)  # nn.Embedding(label) * z
    expected = G.conv_blocks(h.view(3, 128, 4, 4))
    assert torch.allclose(G(z, y), expected)


def test_image_sizes_the_published_networks_cannot_take_are_refused():
    with pytest.raises(ValueError, match="multiple of 16"):
        PyTorchGANArch(num_classes=10, image_size=28)


def test_the_auxiliary_loss_applies_a_second_softmax_as_published():
    logits = torch.tensor([[4.0, 0.0, -2.0]])
    label = torch.tensor([0])
    probabilities = F.softmax(logits, 1)
    kept = ce_on_probabilities(probabilities, label)
    assert kept == pytest.approx(F.cross_entropy(probabilities, label).item())
    assert kept.item() > F.cross_entropy(logits, label).item() + 0.4  # far flatter than CE on the logits


class FixedD(torch.nn.Module):
    """D reading every image as validity 0.5 with uniform class probabilities."""

    def forward(self, x):
        return torch.full((len(x),), 0.5), torch.full((len(x), 10), 0.1)


class CountingG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, y):
        self.calls += 1
        return torch.zeros(len(z), 1, 16, 16) + self.w


def test_losses_are_the_recipes_and_one_batch_of_fakes_serves_both_steps():
    steps = PyTorchGANACGANSteps(PyTorchGANArch(**ARCH), LOSS_NAME, {"classes": [str(i) for i in range(10)]})
    G = CountingG()
    ctx = StepContext(G, FixedD(), torch.device("cpu"), torch.Generator().manual_seed(0), step=3)
    real, labels = torch.zeros(6, 1, 16, 16), torch.arange(6)
    d_loss, _ = steps.d_step(ctx, real, labels)
    g_loss, _ = steps.g_step(ctx, real, labels)
    # BCE(0.5) = ln 2; CE of uniform probabilities (softmax of a constant is uniform) = ln 10.
    assert d_loss.item() == pytest.approx((math.log(2) + math.log(10)) / 2)
    assert g_loss.item() == pytest.approx(0.5 * (math.log(2) + math.log(10)))
    assert G.calls == 1  # the recipe runs G forward once a step
    with pytest.raises(ValueError, match="one loss"):
        PyTorchGANACGANSteps(PyTorchGANArch(**ARCH), "hinge", {"classes": []})


def test_the_cli_trains_it_padded_to_32_px_and_the_service_refuses_to_serve_it(tiny_fashion, tmp_path):
    out = tmp_path / "baselines" / "acgan-pytorchgan.safetensors"
    assert main(["acgan-pytorchgan", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(out), "--steps", "2",
                 "--batch-size", "16", "--latent-dim", "8", "--sample-every", "2", "--save-every", "2",
                 "--no-progress"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.family == "acgan-pytorchgan" and ckpt.arch["image_size"] == 32 and ckpt.classes[7] == "sneaker"
    t = ckpt.training
    assert t["input_padding"] == 2 and t["ema_decay"] == 0.0 and t["loss"] == LOSS_NAME and t["steps"] == 2
    assert t["lr_g"] == t["lr_d"] == 2e-4 and t["betas"] == [0.5, 0.999] and t["batch_size"] == 16

    registry = pytest.importorskip("app.registry")
    with pytest.raises(CheckpointError, match="no serving code"):
        registry.load_one(out, torch.device("cpu"), torch.float32, 1)
