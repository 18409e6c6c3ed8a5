"""The evaluation tables of README.md and checkpoints/README.md show, for each committed Fashion-MNIST checkpoint,
the figures `make eval` recorded in it (`training.metrics`), and their StarGAN tables the figures `stargan-eval
--record` recorded in the two StarGAN checkpoints: a checkpoint replaced or re-evaluated without the docs
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
STARGANS = {"stargan": ROOT / "checkpoints" / "stargan.safetensors",
            "long/stargan-long": ROOT / "checkpoints" / "long" / "stargan-long.safetensors"}
# README.md has one table for both; checkpoints/README.md a section (and a figure/target/measured table) for each.
STARGAN_README_TABLE = "## StarGAN attribute editing"
STARGAN_SECTIONS = {"stargan": "## StarGAN (`stargan.safetensors`)",
                    "long/stargan-long": "### The long chain (`long/stargan-long.safetensors`)"}


def section(document: str, heading: str) -> str:
    """The document's text from the heading to the next heading of level 2 or 3."""
    text = (ROOT / document).read_text()
    return re.split(r"\n#{2,3} ", text.split(heading, 1)[1], maxsplit=1)[0]


def documented_rows(document: str, heading: str | None = None) -> dict[str, list[str]]:
    """Rows of the first table under the heading that name a checkpoint first, as name -> cells after the name
    (later tables of the section compare other figures)."""
    rows: dict[str, list[str]] = {}
    in_table = False
    for line in section(document, heading or TABLES[document]).splitlines():
        if in_table and not line.startswith("|"):
            break
        in_table = line.startswith("|")
        match = ROW.match(line)
        if match:
            rows[match["name"]] = [cell.strip() for cell in match["cells"].split("|")]
    return rows


def percent_shows(shown: str, fraction: float) -> bool:
    """Whether a percentage as written ("42.2", "40.55", "81") is the fraction rounded to the decimals shown."""
    decimals = len(shown.partition(".")[2])
    return f"{100 * fraction:.{decimals}f}" == shown


def stargan_eval(path) -> tuple[int, dict[str, Any]]:
    training: dict[str, Any] = json.loads(read_metadata(path)["training"])
    return training["steps"], training["metrics"]["stargan_eval"]


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


def test_the_readme_stargan_table_shows_each_stargans_recorded_figures():
    rows = documented_rows("README.md", STARGAN_README_TABLE)
    assert set(STARGANS) <= set(rows), f"README.md's StarGAN table lacks rows for {set(STARGANS) - set(rows)}"
    for name, path in STARGANS.items():
        steps, figures = stargan_eval(path)
        training, closer, agreement, identity = rows[name]
        assert training.startswith(f"{steps:,} steps"), (name, training)
        assert percent_shows(re.fullmatch(r"([\d.]+)%", closer)[1], figures["tone"]["light_to_dark_closer"]), name
        assert percent_shows(re.match(r"([\d.]+)%", agreement)[1], figures["judge"]["judge_agreement"]), name
        assert identity == f"{figures['identity_l1']:.4f}", name


@pytest.mark.parametrize("name", sorted(STARGANS))
def test_each_stargans_section_shows_its_recorded_figures(name):
    """checkpoints/README.md's figure / target / measured table of the checkpoint: the light -> dark L1s and
    share closer, the agreement with each attribute it names and on the training emoji, the identity L1."""
    _, figures = stargan_eval(STARGANS[name])
    measured = {}
    for line in section("checkpoints/README.md", STARGAN_SECTIONS[name]).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for row, start in (("tone", "light -> dark edit"), ("agreement", "attribute classifier agrees"),
                           ("identity", "identity L1")):
            if cells[0].startswith(start):
                measured[row] = cells[-1]
    assert set(measured) == {"tone", "agreement", "identity"}, (name, measured)

    tone = figures["tone"]
    edit, original, closer = re.fullmatch(r"([\d.]+) vs ([\d.]+): ([\d.]+)% closer", measured["tone"]).groups()
    assert (float(edit), float(original)) == (tone["light_to_dark_l1_edit"], tone["light_to_dark_l1_input"]), name
    assert percent_shows(closer, tone["light_to_dark_closer"]), name

    judge = figures["judge"]
    assert percent_shows(re.match(r"([\d.]+)%", measured["agreement"])[1], judge["judge_agreement"]), name
    per_attribute = re.findall(r"(\w+) ([\d.]+)%", measured["agreement"])
    assert per_attribute, name
    for attribute, shown in per_attribute:
        if attribute in judge["judge_agreement_per_attribute"]:  # "the other tones 89-98%" is a summary
            assert percent_shows(shown, judge["judge_agreement_per_attribute"][attribute]), (name, attribute)
    on_training = re.search(r"([\d.]+)% on the training emoji", measured["agreement"])[1]
    assert percent_shows(on_training, figures["judge_on_training_images"]["judge_agreement"]), name

    assert measured["identity"] == f"{figures['identity_l1']:.4f}", name
