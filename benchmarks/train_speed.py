"""Training throughput: condgen's training loop against a plain loop written the way the PyTorch-GAN scripts
write theirs (eriklindernoren/PyTorch-GAN, implementations/acgan), on the same network, batch and data.

Both train an ACGAN at the widths of the demo before 2026-11-25 (g_width = d_width = 32) on Fashion-MNIST,
64 images per step, on this machine's device, in one process. They run in alternating blocks of steps so a
drift of the CPU share on a shared machine hits both alike.

condgen's side is `training.loop.Trainer.train_step` (D step on real and fake in one forward, G step, EMA;
the periodic grid and checkpoint are I/O outside the timed steps). The plain side: a shuffling DataLoader
whose dataset converts one image at a time, G step first (D also back-propagated into and then zeroed, as
there), D on real and on the detached fakes in two forwards, BCE + cross-entropy, two Adam optimisers,
no EMA.

    python benchmarks/train_speed.py [--steps 5] [--rounds 3]
Writes benchmarks/results/train-speed.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, in_thread, machine, write_json  # noqa: E402
from models import build, build_discriminator  # noqa: E402
from training.data import load_dataset  # noqa: E402
from training.loop import TrainConfig, TrainData, Trainer  # noqa: E402

ARCH = dict(num_classes=10, image_size=28, channels=1, latent_dim=128, g_width=32, d_width=32)


class PerImageDataset(Dataset):
    """What torchvision's MNIST + ToTensor + Normalize([0.5], [0.5]) hands a DataLoader: one float image at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float().div(255.0).sub(0.5).div(0.5), int(self.labels[i])


class PlainLoop:
    """The PyTorch-GAN ACGAN training loop, on condgen's networks (whose D returns raw logits, so the
    sigmoid + BCELoss of the original is BCEWithLogits here: the same loss, computed stably)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device, seed: int):
        torch.manual_seed(seed)
        self.device = device
        self.G = build("acgan", **ARCH).to(device)
        self.D = build_discriminator("acgan", **ARCH).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loader = DataLoader(PerImageDataset(images, labels), batch_size=batch_size, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)

    def _next(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self) -> None:
        imgs, labels = self._next()
        real_imgs, labels = imgs.to(self.device), labels.to(self.device)
        b = real_imgs.shape[0]
        valid = torch.ones(b, device=self.device)
        fake = torch.zeros(b, device=self.device)

        self.opt_g.zero_grad()
        z = torch.randn(b, ARCH["latent_dim"], device=self.device)
        gen_labels = torch.randint(0, ARCH["num_classes"], (b,), device=self.device)
        gen_imgs = self.G(z, F.one_hot(gen_labels, ARCH["num_classes"]).float())
        validity, pred_label = self.D(gen_imgs)
        g_loss = 0.5 * (F.binary_cross_entropy_with_logits(validity.view(-1), valid)
                        + F.cross_entropy(pred_label, gen_labels))
        g_loss.backward()
        self.opt_g.step()

        self.opt_d.zero_grad()
        real_pred, real_aux = self.D(real_imgs)
        d_real_loss = (F.binary_cross_entropy_with_logits(real_pred.view(-1), valid)
                       + F.cross_entropy(real_aux, labels)) / 2
        fake_pred, fake_aux = self.D(gen_imgs.detach())
        d_fake_loss = (F.binary_cross_entropy_with_logits(fake_pred.view(-1), fake)
                       + F.cross_entropy(fake_aux, gen_labels)) / 2
        d_loss = (d_real_loss + d_fake_loss) / 2
        d_loss.backward()
        self.opt_d.step()


def timed(fn: Callable[[], Any], steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--rounds", type=int, default=4, help="alternating blocks of each loop")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each loop first")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS / "train-speed.json")
    args = parser.parse_args(argv)

    data = load_dataset(args.data, "train")
    with tempfile.TemporaryDirectory(prefix="condgen-train-speed-") as tmp:
        cfg = TrainConfig(family="acgan", out=Path(tmp) / "acgan.safetensors", steps=10**9, arch=ARCH,
                          batch_size=args.batch_size, sample_every=10**9, save_every=10**9, seed=0,
                          device=args.device, progress=False)
        trainer = Trainer(cfg, TrainData(args.data, data.images, data.labels, {"classes": data.classes}))
        plain = PlainLoop(data.images, data.labels, args.batch_size, trainer.device, seed=0)
        loops: dict[str, Callable[[], Any]] = {"condgen": trainer.train_step, "plain": plain.step}
        seconds = {name: 0.0 for name in loops}
        # Both in a worker thread: on an oversubscribed CPU, OpenMP regions entered from the main thread
        # spin for their partner threads (see in_thread); a training run on a dedicated machine would not.
        for name, fn in loops.items():
            in_thread(timed, fn, args.warmup, trainer.device)
        for _ in range(args.rounds):
            for name, fn in loops.items():
                seconds[name] += in_thread(timed, fn, args.steps, trainer.device)
    images = args.steps * args.rounds * args.batch_size
    rates = {name: round(images / s, 1) for name, s in seconds.items()}
    result = {
        "machine": machine(), "device": str(trainer.device), "data": args.data, "arch": ARCH,
        "batch_size": args.batch_size, "steps_per_block": args.steps, "rounds": args.rounds,
        "images_per_s": rates, "ratio_condgen_over_plain": round(rates["condgen"] / rates["plain"], 3),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    write_json(args.out, result)
    print(f"condgen {rates['condgen']} img/s, plain {rates['plain']} img/s, "
          f"ratio {result['ratio_condgen_over_plain']} (wrote {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
