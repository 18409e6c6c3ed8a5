"""The committed demo checkpoints were trained by the recipes the Makefile and checkpoints/README.md give: each
checkpoint's `training` metadata records its options, and a recipe changed without retraining (or a checkpoint
swapped without changing the recipe) is caught here, from the headers alone."""
from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from tests.makefile_recipes import ROOT, makefile_training_commands
from training.cli import build_parser

# Options the metadata names otherwise than the command line does.
_RENAMED = {"compile": "compile_g"}
# Options that shape the weights, as the parser names them; the rest (paths, save cadence, progress) do not.
_TRAINING_OPTIONS = ("seed", "batch_size", "lr_g", "lr_d", "ema_decay", "lr_decay_start", "loss", "fresh_fakes",
                     "lambda_ms", "fake_class_warmup", "lambda_twin", "compile", "cpu_bf16")
_ARCH_OPTIONS = ("latent_dim", "g_width", "d_width", "image_size", "channels")
# Options added to the loop after some demos were trained: a checkpoint that predates one ran its default.
_ADDED_LATER = ("compile", "cpu_bf16", "lambda_twin")


def _header(path) -> tuple[dict, dict]:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    return json.loads(meta["training"]), json.loads(meta["arch"])


@pytest.mark.parametrize("family", ["acgan", "cgan"])
def test_the_demo_checkpoint_records_the_makefiles_recipe(family):
    (argv,) = makefile_training_commands(f"train-{family}")
    args = vars(build_parser().parse_args(argv))
    defaults = vars(build_parser().parse_args([family, "--data", "d", "--out", "x.safetensors"]))
    training, arch = _header(ROOT / "checkpoints" / f"{family}.safetensors")

    assert args["out"].name == f"{family}.safetensors"
    assert training["dataset"] == args["data"]
    assert training["steps"] == training["schedule_steps"] == args["steps"]
    assert training["betas"] == [args["beta1"], args["beta2"]]
    for option in _TRAINING_OPTIONS:
        if option not in args or args[option] is None:  # not this family's, or left to the family's default
            continue
        key = _RENAMED.get(option, option)
        recorded = training.get(key, defaults[option]) if option in _ADDED_LATER else training[key]
        assert recorded == args[option], (family, option)
    for option in _ARCH_OPTIONS:
        if args[option] is not None:
            assert arch[option] == args[option], (family, option)

