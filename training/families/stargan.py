"""StarGAN steps (Choi et al. 2018): WGAN-GP, attribute classification, cycle reconstruction.

Targets are the batch's own label vectors in a random order, so every target is a combination that
exists in the data and one-hot groups stay one-hot. Options beyond the paper, all off by default:
an identity loss (G(x, c_org) ~ x, CycleGAN's identity term), which teaches G directly that an edit to
the attributes an image already has changes nothing, and, for small datasets such as twemoji-faces, random
horizontal flips of the real batch and differentiable augmentation of everything D sees.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.attributes import group_indices, single_attribute_targets
from training.diff_augment import apply_policy, parse_policy
from training.families.base import FamilySteps, StepContext
from training.geometric_augment import rotate_zoom
from training.losses import attribute_loss, gradient_norm_penalty, total_variation

GRID_ROWS = 8
# What G reads for a binary attribute an image does not label (a NaN in its labels): halfway between the two
# values. Nothing scores it (attribute_loss leaves out targets that are neither 0 nor 1); it only has to be a
# number G can read, the same whenever the attribute is unknown.
UNLABELLED_INPUT = 0.5


def as_input(labels: torch.Tensor) -> torch.Tensor:
    """An image's own attribute vector as G and the projection read it: unlabelled attributes at UNLABELLED_INPUT."""
    return labels.nan_to_num(UNLABELLED_INPUT)


class StarGANSteps(FamilySteps):
    lambda_cls = 1.0
    lambda_rec = 10.0
    lambda_gp = 10.0

    def __init__(self, arch: Any, loss: str, labels_info: dict[str, Any], lambda_id: float = 0.0,
                 hflip: bool = False, lambda_cls_gp: float = 0.0, diff_augment: str = "", n_critic: int = 5,
                 lambda_cls_g: float = 1.0, lambda_change: float = 0.0, lambda_change_tv: float = 0.0,
                 rec_noise: float = 0.0, rotate: float = 0.0, zoom: float = 0.0, lambda_cls_fake: float = 0.0,
                 penalty_every: int = 1, d_projection: bool = False):
        super().__init__(arch, loss, labels_info)
        weights = {"lambda_id": lambda_id, "lambda_cls_gp": lambda_cls_gp, "lambda_cls_g": lambda_cls_g,
                   "lambda_change": lambda_change, "lambda_change_tv": lambda_change_tv, "rec_noise": rec_noise,
                   "lambda_cls_fake": lambda_cls_fake}
        negative = {k: v for k, v in weights.items() if v < 0}
        if negative:
            raise ValueError(f"weights must be >= 0, got {negative}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.n_critic = n_critic
        if penalty_every < 1:
            raise ValueError(f"penalty_every must be >= 1, got {penalty_every}")
        # Lazy regularisation (StyleGAN2, Karras et al. 2020): D's two gradient penalties, each a second
        # backward through D, on every k-th D step only, k times as heavy, so their mean weight is unchanged.
        self.penalty_every = penalty_every
        self.lambda_id = lambda_id
        self.lambda_cls_gp = lambda_cls_gp
        # G's weight on D's attribute reading of its edits (the paper's lambda_cls, 1, by default); D's own
        # weight stays lambda_cls. Above 1, G pushes edits past what D's head barely accepts.
        self.lambda_cls_g = lambda_cls_g
        # D's attribute head also reads G's edits, and learns to read the attributes they were made FROM.
        # Without it the head is trained on real images only, and G learns to paint what that head reads
        # (on twemoji-faces it reads 96-100% of held-out edits as their target, the independent judge 69% of
        # those to the light tone: the skin turns pale, the blond hair stays). Reading the source in an edit
        # means finding what the edit left of it, so G is paid to change all of an attribute, not its cue.
        self.lambda_cls_fake = lambda_cls_fake
        # D's source map also reads the attributes each image should have (models/stargan.py's projection):
        # a real image's own, an edit's target, and for the penalty's interpolates the same blend of the two.
        self.d_projection = d_projection
        # L1 of the edit itself, |G(x, c_trg) - x|: sparse edits, so G changes the pixels the attribute
        # lives in and leaves the rest, instead of spreading texture that D's head reads over the image.
        self.lambda_change = lambda_change
        # Total variation of the edit: a recolour of a region changes neighbouring pixels alike and pays only
        # along its border, while the striped texture G paints for D's head pays at nearly every pixel.
        self.lambda_change_tv = lambda_change_tv
        # Gaussian noise (std, on the [-1, 1] scale) added to the edit before G reconstructs the input from it.
        # The cycle loss otherwise pays G to hide what an edit removed (a red hair turned black) in a faint
        # texture it can read back (Chu et al. 2017, "CycleGAN, a master of steganography"); noise drowns
        # that channel, so whatever the reconstruction needs has to stay visibly in the edit. On twemoji-faces
        # (0.2) it did not help: the hair still turns black, so that is learnt, not hidden (checkpoints/README).
        self.rec_noise = rec_noise
        self.hflip = hflip
        if rotate < 0 or not 0 <= zoom < 1:
            raise ValueError(f"rotate must be >= 0 degrees and zoom in [0, 1), got {rotate} and {zoom}")
        self.rotate, self.zoom = rotate, zoom
        self.diff_augment = parse_policy(diff_augment)
        if loss != "wgan-gp":
            raise ValueError(f"stargan trains with the wgan-gp loss only, not {loss!r}")
        self.attributes = list(labels_info["attributes"])
        self.groups = [list(g) for g in labels_info.get("attribute_groups", [])]
        if len(self.attributes) != arch.num_attributes:
            raise ValueError(f"{len(self.attributes)} attributes but arch.num_attributes = {arch.num_attributes}")
        self.group_index = group_indices(self.attributes, self.groups)

    def discriminator_options(self) -> dict[str, Any]:
        return {"projection": True} if self.d_projection else {}

    def targets(self, ctx: StepContext, labels: torch.Tensor) -> torch.Tensor:
        """Each image's target: the vector of another image of the batch. Where that image does not label an
        attribute, the target keeps the source's own value: nothing says which way to move it."""
        perm = torch.randperm(labels.shape[0], generator=ctx.noise).to(labels.device)
        borrowed = labels[perm]
        return torch.where(borrowed.isnan(), as_input(labels), borrowed)

    def augment(self, ctx: StepContext, real: torch.Tensor) -> torch.Tensor:
        """With hflip, each image mirrored with probability 1/2 (a mirrored face keeps its attributes); with
        rotate or zoom, each image turned and scaled with probability 1/2."""
        if self.hflip:
            flip = ctx.rand(real.shape[0], 1, 1, 1) < 0.5
            real = torch.where(flip, real.flip(-1), real)
        return rotate_zoom(real, ctx.rand, self.rotate, self.zoom)

    def noisy(self, ctx: StepContext, fake: torch.Tensor) -> torch.Tensor:
        """The edit as the reconstruction sees it: with --rec-noise, plus Gaussian noise (none drawn when off)."""
        if self.rec_noise == 0:
            return fake
        return fake + self.rec_noise * ctx.randn(*fake.shape).to(fake.dtype)

    def seen_by_d(self, ctx: StepContext, images: torch.Tensor) -> torch.Tensor:
        """What D is shown: with --diff-augment, the images through the policy's random transforms."""
        return apply_policy(images, self.diff_augment, ctx.rand)

    def d_step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b = real.shape[0]
        real = self.augment(ctx, real)
        c_trg = self.targets(ctx, labels)
        with torch.no_grad():
            fake = ctx.G(real, c_trg)
        alpha = ctx.rand(b, 1, 1, 1)
        penalise = ctx.step % self.penalty_every == 0
        weight = float(self.penalty_every)  # a lazy penalty counts k times on the steps it is paid
        # The penalty differentiates D twice: float32, outside autocast. Real, fake and interpolates go
        # through ONE forward, so under DDP D runs once per backward and every parameter gets a gradient.
        with torch.autocast(ctx.device.type, enabled=False):
            real32, fake32 = real.float(), fake.float()
            if penalise and self.lambda_cls_gp > 0:
                real32 = real32.clone().requires_grad_(True)
            real_seen, fake_seen = self.seen_by_d(ctx, real32), self.seen_by_d(ctx, fake32)
            own = as_input(labels)
            seen, should_have = [real_seen, fake_seen], [own, c_trg]
            if penalise:
                x_hat = (alpha * real_seen.detach() + (1.0 - alpha) * fake_seen).requires_grad_(True)
                seen.append(x_hat)
                should_have.append(alpha.flatten(1) * own + (1.0 - alpha.flatten(1)) * c_trg)
            source, logits = ctx.D(torch.cat(seen), torch.cat(should_have).float())
            src_real, src_fake = source[:b], source[b:2 * b]
            adv = src_fake.mean() - src_real.mean()
            cls = attribute_loss(logits[:b], labels, self.group_index)
            loss = adv + self.lambda_cls * cls
            logs = {"d_adv": adv.item(), "d_cls": cls.item()}
            if penalise:
                gp = gradient_norm_penalty(source[2 * b:], x_hat)
                loss = loss + weight * self.lambda_gp * gp
                logs["d_gp"] = gp.item()
            if self.lambda_cls_fake > 0:
                cls_fake = attribute_loss(logits[b:2 * b], labels, self.group_index)
                loss = loss + self.lambda_cls_fake * cls_fake
                logs["d_cls_fake"] = cls_fake.item()
            if penalise and self.lambda_cls_gp > 0:
                cls_gp = classifier_gradient_penalty(cls, real32)
                loss = loss + weight * self.lambda_cls_gp * cls_gp
                logs["d_cls_gp"] = cls_gp.item()
        return loss, logs

    def g_step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        real = self.augment(ctx, real)
        c_trg = self.targets(ctx, labels)
        fake = ctx.G(real, c_trg)
        source, logits = ctx.D(self.seen_by_d(ctx, fake), c_trg)
        own = as_input(labels)
        rec = ctx.G(self.noisy(ctx, fake), own)
        adv = -source.float().mean()
        cls = attribute_loss(logits.float(), c_trg, self.group_index)
        l1 = (rec.float() - real).abs().mean()
        loss = adv + self.lambda_cls_g * cls + self.lambda_rec * l1
        logs = {"g_adv": adv.item(), "g_cls": cls.item(), "g_rec": l1.item()}
        delta = fake.float() - real  # the edit itself, for the change terms
        if self.lambda_change > 0:
            change = delta.abs().mean()
            loss = loss + self.lambda_change * change
            logs["g_change"] = change.item()
        if self.lambda_change_tv > 0:
            change_tv = total_variation(delta)
            loss = loss + self.lambda_change_tv * change_tv
            logs["g_change_tv"] = change_tv.item()
        if self.lambda_id > 0:
            same = (ctx.G(real, own).float() - real).abs().mean()
            loss = loss + self.lambda_id * same
            logs["g_id"] = same.item()
        return loss, logs

    def fixed_inputs(self, data_images: torch.Tensor, data_labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data_images), generator=gen)[:GRID_ROWS]
        return {"x": data_images[idx].float().div(127.5).sub(1.0), "c": as_input(data_labels[idx].float())}

    @torch.no_grad()
    def sample_grid(self, G: nn.Module, fixed: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """One row per input: the input, then its edit towards each attribute in vector order."""
        return edit_grid(G, fixed["x"], fixed["c"], self.group_index)

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"attributes": list(self.attributes), "attribute_groups": [list(g) for g in self.groups]}


def classifier_gradient_penalty(cls_loss: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x cls_loss||^2 per image (R1 on the attribute head): a classifier whose input gradient is
    small cannot be flipped by the small perturbations G learns instead of real edits on small datasets."""
    grad, = torch.autograd.grad(cls_loss * real.shape[0], real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


@torch.no_grad()
def edit_grid(G: nn.Module, x: torch.Tensor, c: torch.Tensor, groups: list[list[int]]) -> tuple[torch.Tensor, int]:
    """Images [R * (1 + A), C, H, W] for a grid of R rows: each input followed by its A single edits."""
    device = next(G.parameters()).device
    x, c = x.to(device), c.to(device)
    r, a = c.shape
    targets = single_attribute_targets(c, groups).reshape(r * a, a)
    edits = G(x.repeat_interleave(a, 0), targets).float().reshape(r, a, *x.shape[1:])
    return torch.cat([x[:, None], edits], 1).reshape(r * (a + 1), *x.shape[1:]), a + 1
