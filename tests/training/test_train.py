import copy
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import torch

from models import load_checkpoint
from training.data import load_dataset, to_unit_range
from training.loop import (TrainConfig, TrainData, Trainer, git_commit, learning_rate, samples_dir_for,
                           saves_dir_for, state_path_for)

ROOT = Path(__file__).resolve().parents[2]
TINY_ARCH = dict(latent_dim=16, g_width=8, d_width=8)


def make_trainer(tiny_fashion, out, family="acgan", steps=4, resume=False, **overrides) -> Trainer:
    data = load_dataset(f"fashion-mnist:{tiny_fashion}")
    arch = {"num_classes": 10, "image_size": 28, "channels": 1, **TINY_ARCH}
    cfg = TrainConfig(family=family, out=out, steps=steps, arch=arch, batch_size=16, sample_every=2,
                      save_every=2, device="cpu", resume=resume, progress=False, **overrides)
    return Trainer(cfg, TrainData("tiny", data.images, data.labels, {"classes": data.classes}))


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_a_few_steps_give_a_loadable_checkpoint_with_finite_losses(tiny_fashion, tmp_path, family):
    out = tmp_path / f"{family}.safetensors"
    trainer = make_trainer(tiny_fashion, out, family)
    trainer.run()
    ckpt = load_checkpoint(out)
    assert ckpt.family == family and ckpt.classes[7] == "sneaker"
    losses = ckpt.training["metrics"]["losses"]
    assert losses and all(math.isfinite(v) for v in losses.values())
    assert ckpt.training["steps"] == 4 and ckpt.training["dataset"] == "tiny"
    # The served weights are the EMA copy, not the raw generator.
    assert torch.equal(ckpt.generator.to_image[0].weight, trainer.ema.model.to_image[0].weight)
    assert not torch.equal(ckpt.generator.to_image[0].weight, trainer.G.to_image[0].weight)
    grids = sorted(samples_dir_for(out).glob("step_*.png"))
    assert [g.name for g in grids] == ["step_0000002.png", "step_0000004.png"]
    assert state_path_for(out).is_file()
    assert not saves_dir_for(out).exists()  # history only when asked for


def test_keep_saves_keeps_every_save_as_its_own_loadable_checkpoint(tiny_fashion, tmp_path):
    out = tmp_path / "a.safetensors"
    make_trainer(tiny_fashion, out, steps=4, keep_saves=True).run()
    kept = sorted(saves_dir_for(out).glob("*.safetensors"))
    assert [k.name for k in kept] == ["step_0000002.safetensors", "step_0000004.safetensors"]
    early, last = (load_checkpoint(k) for k in kept)
    assert (early.training["steps"], last.training["steps"]) == (2, 4)
    assert kept[1].read_bytes() == out.read_bytes()  # the last kept save is the run's checkpoint
    # A copy of the step-2 save, not the final weights written twice.
    assert not torch.equal(early.generator.to_image[0].weight, last.generator.to_image[0].weight)


@pytest.mark.parametrize("command", ["cgan", "acgan", "acgan-pytorchgan"])
@pytest.mark.parametrize("flag", [True, False])
def test_class_training_commands_pass_keep_saves_on(train_config_of, tiny_fashion, tmp_path, command, flag):
    argv = [command, "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "x.safetensors")]
    assert train_config_of(argv + (["--keep-saves"] if flag else [])).keep_saves is flag


@pytest.mark.parametrize("command", ["cgan", "acgan", "acgan-pytorchgan"])
@pytest.mark.parametrize("flag", [True, False])
def test_class_training_commands_pass_compile_on(train_config_of, tiny_fashion, tmp_path, command, flag):
    argv = [command, "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "x.safetensors")]
    assert train_config_of(argv + (["--compile"] if flag else [])).compile_g is flag


@pytest.mark.parametrize("command", ["cgan", "acgan", "acgan-pytorchgan"])
def test_class_training_commands_pass_cpu_bf16_on(train_config_of, tiny_fashion, tmp_path, command):
    argv = [command, "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "x.safetensors")]
    assert train_config_of(argv + ["--cpu-bf16"]).cpu_bf16 is True
    assert train_config_of(argv).cpu_bf16 is False


def test_cpu_bf16_runs_the_steps_under_bfloat16_autocast_and_is_recorded(tiny_fashion, tmp_path):
    out = tmp_path / "bf16.safetensors"
    trainer = make_trainer(tiny_fashion, out, steps=2, cpu_bf16=True)
    z = torch.randn(2, TINY_ARCH["latent_dim"])
    labels = torch.nn.functional.one_hot(torch.tensor([0, 7]), 10).float()
    with trainer._autocast():
        assert trainer.G(z, labels).dtype == torch.bfloat16
    with make_trainer(tiny_fashion, tmp_path / "f32.safetensors", steps=2)._autocast():
        assert trainer.G(z, labels).dtype == torch.float32  # off by default on the CPU
    trainer.run()
    ckpt = load_checkpoint(out)
    assert ckpt.training["cpu_bf16"] is True
    assert all(math.isfinite(v) for v in ckpt.training["metrics"]["losses"].values())
    # The saved weights stay float32: autocast computes in bfloat16, the parameters do not change type.
    assert ckpt.generator.to_image[0].weight.dtype == torch.float32


@pytest.mark.skipif(shutil.which("g++") is None or not Path(sysconfig.get_paths()["include"], "Python.h").exists(),
                    reason="torch.compile's CPU backend builds C++ against Python's headers (.ci/run installs g++)")
def test_a_compiled_generator_trains_the_same_module_as_eager(tiny_fashion, tmp_path):
    eager = make_trainer(tiny_fashion, tmp_path / "eager.safetensors", steps=2)
    out = tmp_path / "compiled.safetensors"
    compiled = make_trainer(tiny_fashion, out, steps=2, compile_g=True)
    assert compiled.G_train is not compiled.G
    before = compiled.G.to_image[0].weight.detach().clone()
    # Same seed, same weights, same batches: the losses of the first two steps (a D step and a D + G step)
    # agree to float rounding, so compiling changes how G is computed, not what is trained.
    for _ in range(2):
        eager_logs, compiled_logs = eager.train_step(), compiled.train_step()
        assert compiled_logs.keys() == eager_logs.keys()
        for key, value in eager_logs.items():
            assert compiled_logs[key] == pytest.approx(value, rel=1e-3, abs=1e-5), key
    # The G updates reached the plain module, which is what is saved and averaged.
    assert not torch.equal(compiled.G.to_image[0].weight, before)
    compiled.save()
    ckpt = load_checkpoint(out)
    assert ckpt.training["compile_g"] is True
    assert torch.equal(ckpt.generator.to_image[0].weight, compiled.ema.model.to_image[0].weight)


@pytest.mark.parametrize("loss", ["lsgan", "hinge"])
def test_losses_are_selectable(tiny_fashion, tmp_path, loss):
    out = tmp_path / "a.safetensors"
    make_trainer(tiny_fashion, out, "acgan", steps=2, loss=loss).run()
    assert load_checkpoint(out).training["loss"] == loss


def test_resume_continues_exactly(tiny_fashion, tmp_path):
    straight = make_trainer(tiny_fashion, tmp_path / "a.safetensors", steps=4)
    straight.run()
    first = make_trainer(tiny_fashion, tmp_path / "b.safetensors", steps=2)
    first.run()
    resumed = make_trainer(tiny_fashion, tmp_path / "b.safetensors", steps=4, resume=True)
    assert resumed.step == 2
    resumed.run()
    assert resumed.step == 4
    for name in ("G", "D", "ema"):
        a, b = getattr(straight, name), getattr(resumed, name)
        a_state = a.state_dict()
        for key, value in b.state_dict().items():
            assert torch.equal(a_state[key], value), f"{name}.{key} differs after resume"
    assert straight.opt_g.state_dict()["state"][0]["step"] == resumed.opt_g.state_dict()["state"][0]["step"]
    exp_a = straight.opt_d.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(exp_a, resumed.opt_d.state_dict()["state"][0]["exp_avg"])


def test_resume_without_state_or_with_other_arch_is_refused(tiny_fashion, tmp_path):
    from training.loop import ResumeError

    with pytest.raises(ResumeError, match="no train state"):
        make_trainer(tiny_fashion, tmp_path / "none.safetensors", resume=True)
    make_trainer(tiny_fashion, tmp_path / "c.safetensors", steps=2).run()
    data = load_dataset(f"fashion-mnist:{tiny_fashion}")
    cfg = TrainConfig(family="acgan", out=tmp_path / "c.safetensors", steps=4, batch_size=16, device="cpu",
                      resume=True, progress=False,
                      arch={"num_classes": 10, "image_size": 28, "channels": 1, **TINY_ARCH, "g_width": 16})
    with pytest.raises(ResumeError, match="holds a acgan run with arch"):
        Trainer(cfg, TrainData("tiny", data.images, data.labels, {"classes": data.classes}))


def test_resume_reads_a_state_written_before_an_arch_field_existed(tiny_fashion, tmp_path):
    from training.loop import state_path_for

    out = tmp_path / "old.safetensors"
    first = make_trainer(tiny_fashion, out, steps=2)
    first.run()
    state = torch.load(state_path_for(out), weights_only=True)
    # A field left at its default, dropped, as a state from before the field was added lacks it.
    at_default = [f.name for f in fields(first.arch) if f.default is not MISSING and state["arch"][f.name] == f.default]
    assert at_default, "the tiny arch leaves no field at its default"
    state["arch"].pop(at_default[-1])
    torch.save(state, state_path_for(out))
    resumed = make_trainer(tiny_fashion, out, steps=4, resume=True)
    assert resumed.step == 2


def test_a_resume_with_other_options_records_the_earlier_stage(tiny_fashion, tmp_path):
    out = tmp_path / "chain.safetensors"
    make_trainer(tiny_fashion, out, steps=2).run()
    make_trainer(tiny_fashion, out, steps=4, resume=True, lr_g=5e-5).run()
    training = load_checkpoint(out).training
    assert training["steps"] == 4 and training["lr_g"] == 5e-5 and training["schedule_steps"] == 4
    [first] = training["stages"]
    assert (first["to_step"], first["schedule_steps"], first["lr_g"]) == (2, 2, 2e-4)
    assert first["wall_time_s"] <= training["wall_time_s"]
    assert "metrics" not in first  # what a stage was asked to do, not what it measured

    # A resume that changes nothing (a run picked up after a crash) continues the same stage.
    crashed = make_trainer(tiny_fashion, out, steps=8, resume=True, lr_g=5e-5)
    crashed.train_step()
    crashed.train_step()
    crashed.save()
    make_trainer(tiny_fashion, out, steps=8, resume=True, lr_g=5e-5).run()
    stages = load_checkpoint(out).training["stages"]
    assert [(s["to_step"], s["schedule_steps"]) for s in stages] == [(2, 2), (4, 4)]


def test_the_thread_count_is_recorded_and_a_resume_on_another_count_starts_a_stage(tiny_fashion, tmp_path):
    out = tmp_path / "threads.safetensors"
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = make_trainer(tiny_fashion, out, steps=4)  # stopped after 2 steps: the same schedule resumes
        first.train_step()
        first.train_step()
        first.save()
        assert load_checkpoint(out).training["cpu_threads"] == 1
        torch.set_num_threads(2)
        make_trainer(tiny_fashion, out, steps=4, resume=True).run()
    finally:
        torch.set_num_threads(before)
    training = load_checkpoint(out).training
    assert training["cpu_threads"] == 2
    assert [(s["to_step"], s["cpu_threads"]) for s in training["stages"]] == [(2, 1)]


def test_a_state_written_before_stages_were_recorded_leaves_an_unrecorded_stage(tiny_fashion, tmp_path):
    out = tmp_path / "old.safetensors"
    make_trainer(tiny_fashion, out, steps=2).run()
    state = torch.load(state_path_for(out), weights_only=True)
    del state["stage"], state["stages"]
    torch.save(state, state_path_for(out))
    make_trainer(tiny_fashion, out, steps=4, resume=True).run()
    [old] = load_checkpoint(out).training["stages"]
    assert old["to_step"] == 2 and "lr_g" not in old


def test_a_run_never_resumed_has_no_stages(tiny_fashion, tmp_path):
    out = tmp_path / "one.safetensors"
    make_trainer(tiny_fashion, out, steps=2).run()
    assert "stages" not in load_checkpoint(out).training


def test_the_recorded_commit_says_when_the_tree_was_dirty(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "loop.py").write_text("a\n")
    git("add", "loop.py")
    git("commit", "-qm", "first")
    git("tag", "v1")  # a tag does not replace the hash
    head = git("rev-parse", "--short=7", "HEAD")
    (tmp_path / "untracked.txt").write_text("ignored by the check\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "loop.py").write_text("b\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_learning_rate_decays_linearly_to_zero():
    assert learning_rate(1e-3, 10, 100, None) == 1e-3
    assert learning_rate(1e-3, 49, 100, 0.5) == 1e-3
    assert learning_rate(1e-3, 75, 100, 0.5) == pytest.approx(5e-4)
    assert learning_rate(1e-3, 100, 100, 0.5) == 0.0
    # 1: constant to the end of the stage, so a later stage of the chain can do the decay
    assert [learning_rate(1e-3, step, 100, 1.0) for step in (0, 99)] == [1e-3, 1e-3]


@pytest.mark.parametrize("text, accepted", [("0", True), ("1", True), ("0.5", True), ("1.01", False), ("-0.1", False)])
def test_lr_decay_start_accepts_the_closed_unit_interval(train_config_of, tiny_fashion, tmp_path, text, accepted):
    argv = ["cgan", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "x.safetensors"),
            "--lr-decay-start", text]
    if accepted:
        assert train_config_of(argv).lr_decay_start == float(text)
    else:
        with pytest.raises(SystemExit):
            train_config_of(argv)


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_class_conditional_lr_decay_is_off_unless_asked_and_then_really_decays(train_config_of, tiny_fashion,
                                                                               tmp_path, family):
    argv = [family, "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "x.safetensors")]
    assert train_config_of(argv).lr_decay_start is None  # the demo checkpoints' constant rates stay the default
    assert train_config_of(argv + ["--lr-decay-start", "0.5"]).lr_decay_start == 0.5
    trainer = make_trainer(tiny_fashion, tmp_path / "d.safetensors", family, steps=4, lr_g=1e-3, lr_d=4e-4,
                           lr_decay_start=0.5)
    seen = []
    while trainer.step < 4:
        trainer.train_step()
        seen.append((trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]))
    assert seen == pytest.approx([(1e-3, 4e-4), (1e-3, 4e-4), (1e-3, 4e-4), (5e-4, 2e-4)])


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=timeout)


def test_cli_trains_and_generates(tiny_fashion, tmp_path):
    out = tmp_path / "cgan.safetensors"
    r = run_cli("cgan", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(out), "--steps", "2",
                "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--no-progress", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    grid = tmp_path / "grid.png"
    r = run_cli("generate", str(out), "--class", "sneaker", "-n", "4", "--seed", "3", "--out", str(grid))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    with Image.open(grid) as img:
        assert img.size == (2 + 2 * 30, 2 + 2 * 30)  # 2x2 grid of 28 px images with 2 px padding


@pytest.mark.parametrize("args,message", [
    (["acgan", "--data", "fashion-mnist", "--out", "x.safetensors", "--steps", "0"], "must be a positive integer"),
    (["acgan", "--out", "x.safetensors"], "the following arguments are required: --data"),
    (["acgan", "--data", "nonsense", "--out", "x.safetensors"], "unknown data spec 'nonsense'"),
    (["acgan", "--data", "fashion-mnist:/nonexistent", "--out", "x.safetensors"], "apt-get install"),
    (["acgan", "--data", "fashion-mnist", "--out", "x.pt"], "must end in .safetensors"),
    (["cgan", "--data", "fashion-mnist", "--out", "x.safetensors", "--loss", "wgan"], "invalid choice: 'wgan'"),
    (["generate", "missing.safetensors"], "missing.safetensors: no such file"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_cli_errors_are_clear_with_status_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_unknown_class_lists_valid_ones(tiny_fashion, tmp_path):
    out = tmp_path / "a.safetensors"
    make_trainer(tiny_fashion, out, steps=1).run()
    r = run_cli("generate", str(out), "--class", "hat")
    assert r.returncode == 2 and "valid: tshirt, trouser" in r.stderr


def test_ddp_two_process_gloo_run(tiny_fashion, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training", "acgan", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(out),
           "--steps", "3", "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--device", "cpu",
           "--no-progress", "--save-every", "3"]
    # PYTHONFAULTHANDLER: should a rank ever abort again, its Python stack shows where.
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ckpt = load_checkpoint(out)
    assert ckpt.training["world_size"] == 2 and ckpt.training["steps"] == 3
    assert r.stdout.count("wrote") == 1  # only rank 0 writes


@pytest.mark.parametrize("resume", [False, True])  # a finished run, and a --resume refused for want of state
def test_training_destroys_its_process_group_even_on_error(tiny_fashion, tmp_path, resume):
    # A rank that exits with its gloo group alive can abort at interpreter exit (the flake this guards).
    import torch.distributed as dist

    from training.cli import CLIError, class_train_data, train_and_report

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        data = load_dataset(f"fashion-mnist:{tiny_fashion}")
        arch = {"num_classes": 10, "image_size": 28, "channels": 1, **TINY_ARCH}
        cfg = TrainConfig(family="acgan", out=tmp_path / "a.safetensors", steps=2, arch=arch, batch_size=8,
                          sample_every=2, save_every=2, device="cpu", progress=False, resume=resume)
        if not resume:
            train_and_report(cfg, class_train_data(data, "fashion-mnist"))
        else:
            with pytest.raises(CLIError, match="no train state"):
                train_and_report(cfg, class_train_data(data, "fashion-mnist"))
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


FREED_BEFORE_SHUTDOWN = """
import gc, sys
gc.disable()  # only the run's own collection may free the trainer
import training.distributed as distributed
from training.cli import main
from training.loop import Trainer

def shutdown_and_count() -> None:
    print("trainers alive at shutdown:", sum(isinstance(o, Trainer) for o in gc.get_objects()))
    real_shutdown()

real_shutdown, distributed.shutdown_distributed = distributed.shutdown_distributed, shutdown_and_count
sys.exit(main(sys.argv[1:]))
"""


def test_training_frees_its_trainer_before_destroying_the_process_group(tiny_fashion, tmp_path):
    # In a fresh interpreter the first optimizer's lazy torch imports leave a frame cycle that holds the trainer
    # (and under torchrun its DDP wrappers and their group) until a full collection, which may come only during
    # interpreter finalization, where tearing a gloo group down can abort the rank. The run must free it first.
    out = tmp_path / "a.safetensors"
    r = subprocess.run([sys.executable, "-c", FREED_BEFORE_SHUTDOWN, "acgan", "--data", f"fashion-mnist:{tiny_fashion}",
                        "--out", str(out), "--steps", "1", "--batch-size", "8", "--g-width", "8", "--d-width", "8",
                        "--device", "cpu", "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trainers alive at shutdown: 0" in r.stdout, r.stdout


def test_acgan_fake_class_loss_ramps_in_after_real_only_warmup():
    from models import build, build_discriminator, make_arch
    from training.families import StepContext
    from training.families.class_conditional import ACGANSteps
    from training.losses import class_cross_entropy, d_adversarial

    arch = dict(num_classes=3, image_size=28, channels=1, latent_dim=8, g_width=8, d_width=8)
    steps = ACGANSteps(make_arch("acgan", **arch), "nonsaturating", {"classes": ["a", "b", "c"]},
                       fake_class_warmup=100)
    assert [steps.fake_class_weight(s) for s in (0, 50, 75, 100, 5000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert ACGANSteps(steps.arch, "nonsaturating", {}, fake_class_warmup=0).fake_class_weight(0) == 1.0

    torch.manual_seed(0)
    G, D = build("acgan", **arch), build_discriminator("acgan", **arch)
    real, labels = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0])
    for step, weight in ((10, 0.0), (75, 0.5)):
        ctx = StepContext(G, D, torch.device("cpu"), torch.Generator().manual_seed(1), step)
        loss, logs = steps.d_step(ctx, real, labels)
        expected = logs["d_adv"] + logs["d_cls_real"] + weight * logs["d_cls_fake"]
        assert loss.item() == pytest.approx(expected, rel=1e-5)
        assert logs["d_cls_fake"] > 0


def test_tac_gan_twin_head_learns_the_fakes_and_g_is_paid_its_error(tiny_fashion, tmp_path):
    from training.families import StepContext
    from training.losses import class_cross_entropy

    trainer = make_trainer(tiny_fashion, tmp_path / "t.safetensors", "acgan", steps=2,
                           family_options={"lambda_twin": 0.5, "fake_class_warmup": 100})
    D, steps = trainer.D, trainer.steps
    assert D.twin is not None and D.twin.weight.shape == D.classes.weight.shape
    real, labels = to_unit_range(trainer.data.images[:8]), trainer.data.labels[:8]

    def ctx():
        return StepContext(trainer.G, D, torch.device("cpu"), torch.Generator().manual_seed(3), 10)

    before = copy.deepcopy(D.state_dict())  # spectral norm's power iteration moves with every training forward
    loss, logs = steps.d_step(ctx(), real, labels)
    D.zero_grad()
    loss.backward()
    assert D.twin.weight.grad.abs().sum() > 0 and D.classes.weight.grad.abs().sum() > 0
    fake, _, fake_labels, _ = steps.d_fakes(ctx(), 8)  # the fakes that step drew, from the same noise
    D.load_state_dict(before)
    with torch.no_grad():
        _, classes, twin = D(torch.cat([real, fake]))
    # The first head reads real images only; the twin reads the fakes, at full weight even before step 100
    # (the plain ACGAN's warm-up would still have weighted fakes by 0 at step 10).
    assert logs["d_cls_real"] == pytest.approx(class_cross_entropy(classes[:8], labels).item(), rel=1e-5)
    assert logs["d_cls_fake"] == pytest.approx(class_cross_entropy(twin[8:], fake_labels).item(), rel=1e-5)
    assert loss.item() == pytest.approx(logs["d_adv"] + logs["d_cls_real"] + logs["d_cls_fake"], rel=1e-5)

    g_loss, g_logs = steps.g_step(ctx(), real, labels)
    assert g_logs["g_twin"] > 0
    # G is paid the twin's error: the more the twin misreads its samples, the lower G's loss.
    assert g_loss.item() == pytest.approx(g_logs["g_adv"] + g_logs["g_cls"] - 0.5 * g_logs["g_twin"], rel=1e-5)

    trainer.run()
    assert load_checkpoint(tmp_path / "t.safetensors").training["lambda_twin"] == 0.5
    resumed = make_trainer(tiny_fashion, tmp_path / "t.safetensors", "acgan", steps=4, resume=True,
                           family_options={"lambda_twin": 0.5})
    assert resumed.step == 2 and torch.equal(resumed.D.twin.weight, D.twin.weight)  # the twin is in the train state


def test_without_lambda_twin_the_acgan_discriminator_has_no_twin(tiny_fashion, tmp_path):
    trainer = make_trainer(tiny_fashion, tmp_path / "a.safetensors", "acgan", steps=2)
    assert trainer.D.twin is None and len(trainer.D(torch.zeros(2, 1, 28, 28))) == 2


def test_acgan_cli_passes_lambda_twin(train_config_of, tiny_fashion, tmp_path):
    argv = ["acgan", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(tmp_path / "a.safetensors")]
    assert train_config_of(argv + ["--lambda-twin", "0.5"]).family_options["lambda_twin"] == 0.5
    assert train_config_of(argv).family_options["lambda_twin"] == 0.0


@pytest.mark.parametrize("family", ["acgan", "cgan"])
@pytest.mark.parametrize("fresh", [False, True])
def test_the_g_step_reuses_the_d_steps_fakes_unless_fresh_fakes(tiny_fashion, tmp_path, family, fresh):
    trainer = make_trainer(tiny_fashion, tmp_path / "a.safetensors", family, steps=3,
                           family_options={"fresh_fakes": fresh})
    outputs = []
    hook = trainer.G.register_forward_hook(lambda module, args, out: outputs.append(out))
    trainer.train_step()
    hook.remove()
    assert len(outputs) == (2 if fresh else 1)  # one G forward a step when the fakes are shared
    # The G step really trained G through those fakes: its weights (not only BatchNorm statistics) moved.
    before = {k: v.detach().clone() for k, v in trainer.G.named_parameters()}
    trainer.train_step()
    assert any(not torch.equal(before[k], v) for k, v in trainer.G.named_parameters())
    assert trainer.training_summary()["fresh_fakes"] is fresh


def test_mode_seeking_term_is_the_inverse_of_the_image_to_latent_gap_ratio():
    from training.families.class_conditional import mode_seeking_loss

    z = torch.zeros(4, 3)
    z[2:] = 2.0  # each pair (i, i + 2) is 2 apart in every latent coordinate
    images = torch.zeros(4, 1, 2, 2)
    images[2] = 0.5  # pair 0: image gap 0.5, ratio 0.25
    images[3] = 1.5  # pair 1: image gap 1.5, ratio 0.75
    assert mode_seeking_loss(images, z).item() == pytest.approx(1.0 / 0.5, rel=1e-4)
    # Samples that ignore z (collapse) cost far more than ones that follow it.
    assert mode_seeking_loss(torch.zeros(4, 1, 2, 2), z).item() > 1e4


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_mode_seeking_pairs_share_a_class_and_join_the_g_loss(tiny_fashion, tmp_path, family):
    from training.families import StepContext

    trainer = make_trainer(tiny_fashion, tmp_path / "a.safetensors", family, steps=2,
                           family_options={"lambda_ms": 2.0})
    ctx = StepContext(trainer.G, trainer.D, torch.device("cpu"), torch.Generator().manual_seed(0), 0)
    for n in (8, 7):
        fakes = trainer.steps.fake_batch(ctx, n)
        assert torch.equal(fakes.labels[: n // 2], fakes.labels[n // 2: 2 * (n // 2)])
        assert not torch.equal(fakes.z[: n // 2], fakes.z[n // 2: 2 * (n // 2)])
    real, labels = to_unit_range(trainer.data.images[:8]), trainer.data.labels[:8]
    loss, logs = trainer.steps.g_step(ctx, real, labels)
    others = sum(v for k, v in logs.items() if k != "g_ms")
    assert logs["g_ms"] > 0 and loss.item() == pytest.approx(others + 2.0 * logs["g_ms"], rel=1e-5)
    trainer.run()
    assert load_checkpoint(tmp_path / "a.safetensors").training["lambda_ms"] == 2.0
