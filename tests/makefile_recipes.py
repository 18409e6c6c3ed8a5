"""The training commands the Makefile's recipes run, read from `make -n`: tests compare them with what the
benchmarks restate and with what the committed demo checkpoints record."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def makefile_training_commands(target: str) -> list[list[str]]:
    """The `python -m training ...` commands `make -n TARGET` would run, as argument lists after `-m training`."""
    # The check is on the recipes as committed: a Makefile default (`NAME ?= ...`) that this shell's environment
    # happens to override (CLASS_FAST="--cpu-bf16", say) is left out of make's environment.
    defaults = set(re.findall(r"^(\w+) \?=", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    env = {name: value for name, value in os.environ.items() if name not in defaults}
    dry = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.replace("\\\n", " ")
    commands = []
    for line in dry.splitlines():
        argv = shlex.split(line)
        if argv[1:3] == ["-m", "training"] and argv[3] in ("stargan", "cgan", "acgan"):
            commands.append(argv[3:])
    return commands
