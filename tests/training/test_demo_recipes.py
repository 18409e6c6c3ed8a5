"""The committed demo checkpoints were trained by the recipes the Makefile and checkpoints/README.md give: each
checkpoint's `training` metadata records its options (a resumed run's earlier stages under `stages`), and a recipe
changed without retraining, or a checkpoint swapped without changing the recipe, is caught here from the headers
alone."""
from __future__ import annotations

import json
from typing import Any

import pytest

from models.checkpoint import read_metadata
from tests.makefile_recipes import ROOT, makefile_training_commands
from training.cli import build_parser

# Command-line options that say where and how often, not what is trained: the metadata leaves them out.
_NOT_TRAINING = {"command", "data", "out", "steps", "resume", "sample_every", "save_every", "keep_saves", "device",
                 "no_progress", "beta1", "beta2"}
# Options the metadata names otherwise than the command line does.
_RENAMED = {"compile": "compile_g"}


def _header(path) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = read_metadata(path)
    return json.loads(meta["training"]), json.loads(meta["arch"])


def _assert_stage_records(recorded: dict[str, Any], arch: dict[str, Any], args: dict[str, Any]) -> None:
    """Every option the command `args` sets is what the stage recorded; one the metadata does not record (a
    checkpoint made before the option existed) must be left at its default, which is what such a run trained with."""
    defaults = vars(build_parser().parse_args([args["command"], "--data", args["data"], "--out", "x.safetensors"]))
    assert recorded["dataset"] == args["data"]
    assert recorded["schedule_steps"] == args["steps"]
    assert recorded["betas"] == [args["beta1"], args["beta2"]]
    for option, value in args.items():
        if option in _NOT_TRAINING or value is None:  # None: left to the family's own default
            continue
        key = _RENAMED.get(option, option)
        if key in recorded:
            assert recorded[key] == value, (option, recorded[key], value)
        elif key in arch:
            assert arch[key] == value, (option, arch[key], value)
        else:
            assert value == defaults[option], f"the recipe asks --{option} {value}; the checkpoint does not record it"


@pytest.mark.parametrize("family", ["acgan", "cgan", "stargan"])
def test_the_demo_checkpoint_records_the_makefiles_recipe(family):
    commands = [vars(build_parser().parse_args(argv)) for argv in makefile_training_commands(f"train-{family}")]
    training, arch = _header(ROOT / "checkpoints" / f"{family}.safetensors")
    assert all(args["out"].name == f"{family}.safetensors" for args in commands)
    # one stage per command: a resumed run keeps the earlier ones under `stages`, the last is the top level
    stages = [*training.get("stages", []), training]
    assert len(stages) == len(commands), f"{len(stages)} recorded stages for {len(commands)} commands"
    for stage, args in zip(stages, commands):
        _assert_stage_records(stage, arch, args)
    assert training["steps"] == commands[-1]["steps"]
