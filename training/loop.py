"""One training loop for every family: devices, DDP, AMP, EMA, sample grids, checkpoints and exact resume.

A family contributes only its D step and G step (training/families); everything else lives here.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from models import build, build_discriminator, make_arch, save_checkpoint
from models.images import make_grid, to_uint8
from training.batches import StepBatches
from training.data import to_unit_range
from training.distributed import barrier, init_distributed
from training.ema import EMA
from training.families import DEFAULT_LOSS, FAMILY_STEPS, FamilySteps, StepContext


@dataclass
class TrainData:
    """What the loop needs of a dataset: uint8 images, labels (int classes or float attributes), names."""

    name: str
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N] or float [N, A]
    labels_info: dict[str, Any]  # {"classes": [...]} or {"attributes": [...], "attribute_groups": [...]}


@dataclass
class TrainConfig:
    family: str
    out: Path
    steps: int
    arch: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss: str | None = None  # None: the family's default
    ema_decay: float = 0.999
    lr_decay_start: float | None = None  # fraction of steps after which both lrs fall linearly to 0
    sample_every: int = 500
    save_every: int = 1000
    keep_saves: bool = False  # also keep each save's checkpoint under NAME_saves/, to evaluate the run's history
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    resume: bool = False
    progress: bool = True
    cpu_bf16: bool = False  # bfloat16 autocast on the CPU too (on CUDA, `amp` alone turns it on)
    compile_g: bool = False  # train through torch.compile(G); the saved weights are the plain module's
    family_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the family's steps


class ResumeError(Exception):
    pass


def state_path_for(out: Path) -> Path:
    """The resumable train state beside a checkpoint: checkpoints/acgan.safetensors -> checkpoints/acgan.state.pt."""
    return out.with_name(out.stem + ".state.pt")


def load_with_new_heads(module: torch.nn.Module, saved: dict[str, torch.Tensor], path: Path) -> int:
    """Load `saved` into `module`, which may have gained parameters since the state was written: a head that
    starts at zero, switched on by a resume (StarGAN D's projection), so the module still computes what the saved
    one did. Only the parameters it registers last may be missing, and only while they are zero; returns how
    many were missing (their optimizer state is extended by extend_optimizer_state)."""
    missing, unexpected = module.load_state_dict(saved, strict=False)
    names = [name for name, _ in module.named_parameters()]
    trailing = names[len(names) - len(missing):] if missing else []
    if unexpected:
        raise ResumeError(f"--resume: {path} has discriminator weights this run's discriminator lacks: "
                          f"{', '.join(unexpected)} (a resume cannot switch off an option that added them)")
    if sorted(missing) != sorted(trailing) or any(module.get_parameter(n).any() for n in missing):
        raise ResumeError(f"--resume: {path} lacks discriminator weights {', '.join(missing)} that do not start "
                          f"at zero, so the run cannot continue from it")
    return len(missing)


def extend_optimizer_state(saved: dict[str, Any], new_parameters: int) -> dict[str, Any]:
    """An optimizer's saved state for a module that has since gained `new_parameters`, registered last: their
    ids join the last parameter group with no moments, so Adam starts them fresh and keeps the others' state."""
    if not new_parameters:
        return saved
    groups = [dict(group) for group in saved["param_groups"]]
    first_new = max(i for group in groups for i in group["params"]) + 1
    groups[-1]["params"] = [*groups[-1]["params"], *range(first_new, first_new + new_parameters)]
    return {"state": saved["state"], "param_groups": groups}


def samples_dir_for(out: Path) -> Path:
    return out.with_name(out.stem + "_samples")


def saves_dir_for(out: Path) -> Path:
    """Where --keep-saves keeps every save: runs/x.safetensors -> runs/x_saves/step_0001000.safetensors."""
    return out.with_name(out.stem + "_saves")


def git_commit(repo: Path = Path(__file__).parent) -> str:
    """The checked-out commit, with "-dirty" when tracked files differ from it: a run started on uncommitted
    code must not be credited to the commit before it."""
    try:
        # --exclude=*: no tag names, the bare hash even once releases are tagged
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7", "--exclude=*"],
                              capture_output=True, text=True, check=True, cwd=repo).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def learning_rate(base: float, step: int, total: int, decay_start: float | None) -> float:
    """Linear decay to 0 from decay_start * total; the lr of `step` (0-based, the step about to run)."""
    if decay_start is None:
        return base
    start = int(total * decay_start)
    if step < start:
        return base
    return base * max(0.0, (total - step) / max(1, total - start))


def save_image_grid(images: torch.Tensor, columns: int, path: str | Path) -> None:
    grid = make_grid(to_uint8(images), columns).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: TrainData):
        if cfg.family not in FAMILY_STEPS:
            raise ValueError(f"unknown family {cfg.family!r}; known: {sorted(FAMILY_STEPS)}")
        self.cfg, self.data = cfg, data
        self.dist, self.device = init_distributed(cfg.device)
        self.loss_kind = cfg.loss or DEFAULT_LOSS[cfg.family]
        self.arch = make_arch(cfg.family, **cfg.arch)
        self.steps: FamilySteps = FAMILY_STEPS[cfg.family](self.arch, self.loss_kind, data.labels_info,
                                                         **cfg.family_options)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G = build(cfg.family, **cfg.arch).to(self.device)
        self.D = build_discriminator(cfg.family, self.steps.discriminator_options(), **cfg.arch).to(self.device)
        self.ema = EMA(self.G, cfg.ema_decay)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        on_cuda = self.device.type == "cuda"
        self.use_amp = cfg.amp and (on_cuda or cfg.cpu_bf16)
        self.amp_dtype = torch.bfloat16 if self.use_amp and (not on_cuda or torch.cuda.is_bf16_supported()) \
            else torch.float16
        scale = self.use_amp and self.amp_dtype == torch.float16  # bf16 needs no loss scaling
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=scale)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=scale)
        self.batches = StepBatches(len(data.images), cfg.batch_size, cfg.seed, self.dist.rank, self.dist.world_size)
        self.commit = git_commit()  # the code that starts the run, not whatever is checked out at save time
        self.step = 0
        self.wall_time = 0.0
        self.smoothed: dict[str, float] = {}
        self.stages: list[dict[str, Any]] = []  # earlier stages of a chain of resumes, oldest first
        if cfg.resume:
            self._load_state()
        self.G_train: torch.nn.Module = self.G
        self.D_train: torch.nn.Module = self.D
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = DistributedDataParallel(self.G, device_ids=ids)
            self.D_train = DistributedDataParallel(self.D, device_ids=ids)
        if cfg.compile_g:
            # G only: D's gradient penalties differentiate D twice, which compiled graphs do not support, and
            # a compiled D on the steps without a penalty measured no faster (checkpoints/README.md).
            self.G_train = torch.compile(self.G_train)
        self.fixed = self.steps.fixed_inputs(data.images, data.labels, cfg.seed)

    # --- state -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "family": self.cfg.family, "arch": asdict(self.arch), "step": self.step, "wall_time": self.wall_time,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
            "smoothed": dict(self.smoothed), "cpu_rng": torch.get_rng_state(),
            "stage": self.stage(), "stages": self.stages,
        }

    def _load_state(self) -> None:
        path = state_path_for(self.cfg.out)
        if not path.is_file():
            raise ResumeError(f"--resume: no train state at {path} (it is written beside the checkpoint at each save)")
        state = torch.load(path, map_location=self.device, weights_only=True)  # never unpickles code
        try:  # a state written before an arch field existed holds that field's default
            saved_arch = asdict(make_arch(state["family"], **state["arch"]))
        except (KeyError, ValueError):
            saved_arch = state["arch"]
        if state["family"] != self.cfg.family or saved_arch != asdict(self.arch):
            raise ResumeError(f"--resume: {path} holds a {state['family']} run with arch {state['arch']}, "
                              f"not {self.cfg.family} with {asdict(self.arch)}")
        self.G.load_state_dict(state["G"])
        new_heads = load_with_new_heads(self.D, state["D"], path)
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(extend_optimizer_state(state["opt_d"], new_heads))
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        torch.set_rng_state(state["cpu_rng"].cpu())
        self.step, self.wall_time = int(state["step"]), float(state["wall_time"])
        self.smoothed = dict(state["smoothed"])
        self.stages = list(state.get("stages", []))
        previous = state.get("stage")
        if previous != self.stage():  # resumed with other options, schedule or code: the old ones end here
            recorded = previous if previous is not None else {}  # a state written before stages were recorded
            self.stages.append({**recorded, "to_step": self.step, "wall_time_s": round(self.wall_time, 1)})

    def stage(self) -> dict[str, Any]:
        """What this run was asked to do: its options, schedule and code, without what it measured.

        A checkpoint made by resuming with other options (a longer schedule, another loss weight) records the
        earlier stages under `training.stages`, so the summary describes how the weights were really made.
        """
        cfg = self.cfg
        return {
            "dataset": self.data.name, "seed": cfg.seed, "commit": self.commit,
            "batch_size": cfg.batch_size, "world_size": self.dist.world_size, "loss": self.loss_kind,
            "lr_g": cfg.lr_g, "lr_d": cfg.lr_d, "betas": list(cfg.betas), "ema_decay": cfg.ema_decay, **cfg.family_options,
            "lr_decay_start": cfg.lr_decay_start, "device": self.device.type, "schedule_steps": cfg.steps,
            # The same seed on another intra-op thread count rounds float sums otherwise and trains other weights.
            "cpu_threads": torch.get_num_threads(),
            # A compiled G fuses ops and rounds otherwise: the same seed trains other weights than eager.
            "compile_g": cfg.compile_g, "cpu_bf16": self.use_amp and self.device.type == "cpu",
        }

    def training_summary(self) -> dict[str, Any]:
        """The stage's options beside what was measured: steps done, wall time, losses, and the earlier stages."""
        return {
            **self.stage(), "steps": self.step, "wall_time_s": round(self.wall_time, 1),
            "metrics": {"losses": {k: round(v, 4) for k, v in sorted(self.smoothed.items())}},
            **({"stages": self.stages} if self.stages else {}),
        }

    def save(self) -> None:
        if not self.dist.is_main:
            return
        save_checkpoint(self.cfg.out, self.ema.model, self.cfg.family, asdict(self.arch), self.training_summary(),
                        **self.steps.checkpoint_metadata())
        if self.cfg.keep_saves:
            kept = saves_dir_for(self.cfg.out) / f"step_{self.step:07d}.safetensors"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.cfg.out, kept)
        state_path = state_path_for(self.cfg.out)
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save(self._state(), tmp)
        tmp.replace(state_path)

    def save_samples(self) -> Path | None:
        if not self.dist.is_main:
            return None
        images, columns = self.steps.sample_grid(self.ema.model, self.fixed)
        path = samples_dir_for(self.cfg.out) / f"step_{self.step:07d}.png"
        save_image_grid(images, columns, path)
        return path

    # --- the loop --------------------------------------------------------------------------------
    def _set_lr(self) -> None:
        for opt, base in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = learning_rate(base, self.step, self.cfg.steps, self.cfg.lr_decay_start)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def _context(self) -> StepContext:
        # The noise of a step is a function of (seed, rank, step): exact resume at any world size.
        noise = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + self.dist.rank) * 10_000_019 + self.step)
        return StepContext(self.G_train, self.D_train, self.device, noise, self.step)

    def train_step(self) -> dict[str, float]:
        idx = self.batches.indices(self.step)
        real = to_unit_range(self.data.images[idx].to(self.device, non_blocking=True))
        labels = self.data.labels[idx].to(self.device, non_blocking=True)
        ctx = self._context()
        self._set_lr()
        self.G.train()
        self.D.train()

        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss_d, logs = self.steps.d_step(ctx, real, labels)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        if (self.step + 1) % self.steps.n_critic == 0:
            # Outside DDP, skip D's weight gradients in the G step; under DDP every parameter must get one.
            if not self.dist.enabled:
                self.D.requires_grad_(False)
            self.opt_g.zero_grad(set_to_none=True)
            with self._autocast():
                loss_g, g_logs = self.steps.g_step(ctx, real, labels)
            self.scaler_g.scale(loss_g).backward()
            self.scaler_g.step(self.opt_g)
            self.scaler_g.update()
            self.D.requires_grad_(True)
            self.ema.update(self.G, self.step)
            logs.update(g_logs)
        self.step += 1
        return logs

    def _smooth(self, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            old = self.smoothed.get(key)
            self.smoothed[key] = value if old is None else 0.98 * old + 0.02 * value

    def run(self) -> Path:
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main),
                   desc=f"{cfg.family} {self.data.name}", dynamic_ncols=True, mininterval=1.0)
        last = time.perf_counter()
        while self.step < cfg.steps:
            logs = self.train_step()
            self._smooth(logs)
            now = time.perf_counter()
            self.wall_time += now - last
            last = now
            bar.update(1)
            if self.step % 20 == 0 or self.step == cfg.steps:
                bar.set_postfix({k: f"{v:.3f}" for k, v in sorted(self.smoothed.items())}, refresh=False)
            if self.step % cfg.sample_every == 0 or self.step == cfg.steps:
                self.save_samples()
            if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                self.save()
                barrier()
        bar.close()
        return cfg.out
