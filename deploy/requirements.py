"""Used by the Dockerfile: the requirements of condgen's given extras, read from pyproject.toml, without torch.

    python3 deploy/requirements.py serve        # writes requirements.txt and constraints.txt beside it

torch is left out of the requirements and pinned in the constraints to the build the base image already
has, so `pip install -r requirements.txt -c constraints.txt` never replaces a CUDA torch with another.
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path


def name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(@]", requirement.strip(), maxsplit=1)[0].lower()


def main(pyproject: Path, extras: list[str], out: Path) -> None:
    torch_version = version("torch")  # the base image's build; fails at once if it has none

    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    reqs = [r for r in reqs if name(r) != "torch"]
    (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (out / "constraints.txt").write_text(f"torch=={torch_version}\n")
    print(f"condgen extras {extras}: {', '.join(reqs)}; keeping torch {torch_version}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(here / "pyproject.toml", [e for e in ",".join(sys.argv[1:]).split(",") if e], here)
