"""The evaluation tables of README.md and checkpoints/README.md show, for each committed Fashion-MNIST checkpoint,
the figures `make eval` recorded in it (`training.metrics`): a checkpoint replaced or re-evaluated without the docs
following, or a figure mistyped by hand, is caught here from the headers alone."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from models.checkpoint import read_metadata
from tests.makefile_recipes import ROOT

CHECKPOINTS = {name: ROOT / "checkpoints" / f"{name}.safetensors"
               for name in ("acgan", "cgan", "baselines/acgan-pytorchgan-15000", "baselines/acgan-pytorchgan-20000")}
# Where each document keeps its table: from the heading to the next heading of any level.
TABLES = {"README.md": "### How good they are", "checkpoints/README.md": "## Evaluation report (`make eval`)"}
ROW = re.compile(r"^\| `(?P<name>[^`]+)`[^|]*\|(?P<cells>.*)\|\s*$")


def documented_rows(document: str) -> dict[str, list[str]]:
    """Rows of the document's evaluation table that name a checkpoint first, as name -> cells after the name."""
    text = (ROOT / document).read_text()
    section = re.split(r"\n#{2,3} ", text.split(TABLES[document], 1)[1], maxsplit=1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = [cell.strip() for cell in match["cells"].split("|")]
    return rows


def recorded_cells(path) -> list[str]:
    """The recorded figures written as the tables write them: steps, accuracy, fid, same-class MS-SSIM, CAS and
    memorisation share."""
    training: dict[str, Any] = json.loads(read_metadata(path)["training"])
    m = training["metrics"]
    ms = m["ms_ssim"]
    return [f"{training['steps']:,}",
            f"{100 * m['accuracy']['generated']:.1f}%",
            f"{m['fid']:.2f}",
            f"{ms['generated']:.3f} / {ms['real']:.3f} ({100 * ms['classes_at_or_below_real']:.0f}%)",
            f"{100 * m['cas']['cas']:.1f}% ({m['cas']['ratio']:.2f} of real)",
            f"{100 * m['memorisation']['share']:.1f}%"]


@pytest.mark.parametrize("document", sorted(TABLES))
def test_the_evaluation_table_shows_each_checkpoints_recorded_figures(document):
    rows = documented_rows(document)
    assert set(CHECKPOINTS) <= set(rows), f"{document} lacks rows for {set(CHECKPOINTS) - set(rows)}"
    for name, path in CHECKPOINTS.items():
        shown = [cell.replace("*", "") for cell in rows[name]]  # bold marks the best of a column
        assert shown == recorded_cells(path), (document, name)
