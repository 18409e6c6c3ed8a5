"""report.md: a headline table of every class-conditional checkpoint, the issue's targets, then a section per
checkpoint with its per-class figures and PNGs; StarGAN checkpoints get their own table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.evaluate.checks import (BASELINE_FAMILY, MAX_FID_OVER_FLOOR, baseline_for, better_than,
                                      threshold_checks)
from training.evaluate.fid_scale import nearest_rungs


def _mark(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor > 0 else "a zero floor"


def class_conditional_tables(results: list[dict[str, Any]]) -> list[str]:
    lines = ["## Class-conditional checkpoints", "",
             "| checkpoint | family | steps | accuracy (judge on real test) | fid (fid_floor) | "
             "ms_ssim samples / real (classes at or below real) | cas (real-data classifier) | memorisation |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        m = r["metrics"]
        lines.append(
            f"| `{r['name']}` | {r['family']} | {r['steps']} | {_pct(m['accuracy']['generated'])} "
            f"({_pct(m['accuracy']['real_test'])}) | {m['fid']:.2f} ({m['fid_floor']:.2f}) | "
            f"{m['ms_ssim']['generated']:.3f} / {m['ms_ssim']['real']:.3f} "
            f"({_pct(m['ms_ssim']['classes_at_or_below_real'])}) | {_pct(m['cas']['cas'])} "
            f"({_pct(m['cas']['real'])}) | {_pct(m['memorisation']['share'])} |")
    lines += fid_scale_table(results)
    lines += kid_table(results)
    lines += prdc_table(results)
    baselines = [r for r in results if r["family"] == BASELINE_FAMILY]
    lines += ["", "### Targets (issue 5)", ""]
    first = threshold_checks(results[0]["metrics"])
    header = list(first)
    extra = ["better than the baseline trained as many steps: accuracy, fid, ms_ssim, cas"] if baselines else []
    lines += ["| checkpoint | " + " | ".join(header + extra) + " |", "|" + " --- |" * (1 + len(header) + len(extra))]
    for r in results:
        checks = threshold_checks(r["metrics"])
        cells = [_mark(checks[h]) for h in header]
        if baselines:
            if r["family"] == BASELINE_FAMILY:
                cells.append("(a baseline)")
            else:
                base = baseline_for(r, baselines)
                vs = better_than(r["metrics"], base["metrics"])
                budget = "" if base["steps"] == r["steps"] else f" (**{base['steps']} steps**, not {r['steps']})"
                cells.append(f"`{base['name']}`{budget}: " + ", ".join(f"{k} {_mark(v)}" for k, v in vs.items()))
        lines.append(f"| `{r['name']}` | " + " | ".join(cells) + " |")
    return lines


def fid_scale_table(results: list[dict[str, Any]]) -> list[str]:
    """Each checkpoint's fid beside the fids of the floor's real images degraded on purpose (`fid_scale`)."""
    scaled = [r for r in results if "fid_scale" in r["metrics"]]
    if not scaled:
        return []
    rungs = list(scaled[0]["metrics"]["fid_scale"])
    lines = ["", "### Reading fid", "",
             "The fid of the real training images that give fid_floor, degraded on purpose, against the same test "
             "images (pixel noise: Gaussian, standard deviation in the [-1, 1] range, 0.02 being about 2.5 grey "
             "levels of 255; blur: Gaussian, standard deviation in pixels):", "",
             "| checkpoint | fid | " + " | ".join(rungs) + " | where fid lies |", "|" + " --- |" * (3 + len(rungs))]
    for r in scaled:
        m = r["metrics"]
        cells = [f"{m['fid_scale'].get(rung, float('nan')):.2f}" for rung in rungs]
        lines.append(f"| `{r['name']}` | {m['fid']:.2f} | " + " | ".join(cells) +
                     f" | {nearest_rungs(m['fid'], m['fid_scale'])} |")
    first = scaled[0]["metrics"]
    target = MAX_FID_OVER_FLOOR * first["fid_floor"]
    lines += ["", f"The target, fid <= {MAX_FID_OVER_FLOOR:g} x fid_floor ({target:.2f} for `{scaled[0]['name']}`), "
              f"lies {nearest_rungs(target, first['fid_scale'])}."]
    return lines


def kid_table(results: list[dict[str, Any]]) -> list[str]:
    """Each checkpoint's kernel distance, below the fid_floor set's real images', with the spread over subsets."""
    measured = [r for r in results if "kid" in r["metrics"]]
    if not measured:
        return []
    floor = measured[0]["metrics"]["kid"]["floor"]

    def cell(kid: dict[str, Any]) -> str:
        return f"{kid['mean']:.4g} ± {kid['standard_deviation']:.4g}"

    lines = ["", "### Kernel distance (KID)", "",
             f"The unbiased squared MMD to the real test images in the judge's features under a cubic polynomial "
             f"kernel (Bińkowski et al. 2018): mean ± standard deviation over {floor['subsets']} random subsets of "
             f"{floor['subset_size']} images from each side. Unlike fid it does not grow as samples shrink: real "
             "images against real ones read about 0 (the first row), so a checkpoint's figure is its own distance, "
             "not a distance over a floor.", "",
             "| checkpoint | kid |", "| --- | --- |", f"| real training images (the fid_floor set) | {cell(floor)} |"]
    lines += [f"| `{r['name']}` | {cell(r['metrics']['kid']['generated'])} |" for r in measured]
    return lines


def prdc_table(results: list[dict[str, Any]]) -> list[str]:
    """Precision, recall, density and coverage of each checkpoint, beside the fid_floor set's real images."""
    measured = [r for r in results if "prdc" in r["metrics"]]
    if not measured:
        return []
    first = measured[0]["metrics"]["prdc"]
    names = ("precision", "recall", "density", "coverage")
    lines = ["", "### Fidelity and variety: precision, recall, density, coverage", "",
             f"In the judge's features, against the {first['test_images']} real test images, with balls reaching each "
             f"point's {first['k']}th nearest neighbour (Kynkäänniemi et al. 2019; Naeem et al. 2020). Precision and "
             "density: how much of the samples lies where real images do (density about 1 for a generator that "
             "matches real data, above 1 where samples crowd into dense real regions); recall and coverage: how "
             "much of the real images' variety the samples reach. The first row is the real training images of "
             "fid_floor, measured the same way.", "",
             "| checkpoint | " + " | ".join(names) + " |", "|" + " --- |" * (1 + len(names)),
             "| real training images (the fid_floor set) | " + " | ".join(f"{first['floor'][n]:.3f}" for n in names)
             + " |"]
    for r in measured:
        figures = r["metrics"]["prdc"]["generated"]
        lines.append(f"| `{r['name']}` | " + " | ".join(f"{figures[n]:.3f}" for n in names) + " |")
    return lines


def _se(diversity: dict[str, Any], side: str, name: str) -> str:
    errors = diversity.get(f"{side}_standard_error_per_class")
    return f" ± {errors[name]:.3f}" if errors else ""


def ms_ssim_noise_line(diversity: dict[str, Any]) -> list[str]:
    """How much of the at-or-below-real share the pairs' noise leaves undecided (figures recorded before there
    were standard errors have none to show)."""
    if "clearly_above_real" not in diversity:
        return []
    below, above = diversity["clearly_below_real"], diversity["clearly_above_real"]
    return [f"- ms_ssim: {_pct(diversity['classes_at_or_below_real'])} of classes at or below real on this draw of "
            f"{diversity['pairs_per_class']} pairs per class (± one standard error in the table); by more than "
            f"{diversity['clear_margin_standard_errors']:g} standard errors of the difference, below in "
            f"{', '.join(below) or 'none'} and above in {', '.join(above) or 'none'}, so another draw of pairs may "
            f"put the share anywhere from {_pct(diversity['classes_clearly_below_real'])} to "
            f"{_pct(1 - diversity['classes_clearly_above_real'])}."]


def checkpoint_section(r: dict[str, Any], out_dir: Path) -> list[str]:
    m = r["metrics"]
    acc, div = m["accuracy"], m["ms_ssim"]
    lines = [f"### `{r['name']}` ({r['family']}, {r['path']})", "",
             "| class | judge accuracy: samples | real test | MS-SSIM: samples | real test | "
             "fid within the class: samples | floor | precision / recall within the class: samples | floor |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    intra, within = m["fid_per_class"], m["prdc"]
    for c in acc["generated_per_class"]:
        gen_pr, floor_pr = within["generated_per_class"][c], within["floor_per_class"][c]
        lines.append(f"| {c} | {acc['generated_per_class'][c]:.3f} | {acc['real_test_per_class'][c]:.3f} | "
                     f"{div['generated_per_class'][c]:.3f}{_se(div, 'generated', c)} | "
                     f"{div['real_per_class'][c]:.3f}{_se(div, 'real', c)} | "
                     f"{intra['generated'][c]:.2f} | {intra['floor'][c]:.2f} | "
                     f"{gen_pr['precision']:.3f} / {gen_pr['recall']:.3f} | "
                     f"{floor_pr['precision']:.3f} / {floor_pr['recall']:.3f} |")
    mem, cas = m["memorisation"], m["cas"]
    lines += ["", *ms_ssim_noise_line(div),
              f"- fid {m['fid']:.3f} against a floor of {m['fid_floor']:.3f} "
              f"({_ratio(m['fid'], m['fid_floor'])}; {m['evaluation']['fid_floor_train_images']} samples and as many "
              f"real training images, each against {m['evaluation']['fid_test_images']} real test images).",
              f"- cas: trained on {cas['train_images']} samples for {cas['epochs']} epochs, {_pct(cas['cas'])} on the "
              f"real test split; the same classifier on as many real images: {_pct(cas['real'])} "
              f"(ratio {cas['ratio']:.3f}).",
              f"- memorisation: {_pct(mem['share'])} of {mem['samples_checked']} samples nearer to one of "
              f"{mem['reference_images']} training images than {mem['threshold']:.3f} (percentile "
              f"{mem['percentile']:g} of train-to-train nearest-neighbour L2 distances); median nearest distance: samples "
              f"{mem['generated_nn_median']:.3f}, real training images {mem['train_nn_median']:.3f}.", ""]
    for key, caption in (("samples", "samples, a row per class"),
                         ("per_class", "per-class judge accuracy and MS-SSIM"),
                         ("nearest", "the 10 samples nearest to a training image (top) and that image (bottom)")):
        lines.append(f"![{r['name']}: {caption}]({Path(m['figures'][key]).relative_to(out_dir)})")
        lines.append("")
    return lines


def stargan_section(r: dict[str, Any], out_dir: Path) -> list[str]:
    m = r["metrics"]
    judge = m["judge"]
    lines = [f"## StarGAN: `{r['name']}` ({r['path']}, {m['test_images']} held-out images of {m['data']})", "",
             "| figure | value |", "| --- | --- |",
             f"| attribute classifier reads the edit as the target (all edits) | {_pct(judge['judge_agreement'])} |"]
    if "judge_agreement_ceiling" in m:  # absent from figures recorded before it
        lines.append("| ... the ceiling: every edit read as the classifier reads real held-out images of its target "
                     f"| {_pct(m['judge_agreement_ceiling'])} |")
    read_as = judge.get("judge_reads_group_edits_as", {})  # absent from figures recorded before it
    for attribute, share in judge["judge_agreement_per_attribute"].items():
        misread = sorted(((n, other) for other, n in read_as.get(attribute, {}).items() if other != attribute),
                         reverse=True)
        also = f" (misread as {', '.join(f'`{other}` {n}' for n, other in misread)})" if misread else ""
        lines.append(f"| ... edits to `{attribute}` | {_pct(share)}{also}"
                     f"{real_recall_note(m.get('judge_real_test_recall', {}), attribute)} |")
    if judge.get("judge_misses_reading_the_source") is not None:  # absent from figures recorded before it
        lines.append(f"| misses where the classifier still reads the input's own value (too faint) | "
                     f"{_pct(judge['judge_misses_reading_the_source'])} |")
    lines.append(f"| identity L1 (target = source attributes) | {m['identity_l1']:.4f} |")
    lines.append(f"| reconstruction L1, G(G(x, c_trg), c_src) vs x | {m['reconstruction_l1']:.4f} |")
    if "tone" in m:
        t = m["tone"]
        lines.append(f"| light -> dark tone: L1 to the true dark variant (input's L1 to it) | "
                     f"{t['light_to_dark_l1_edit']:.4f} ({t['light_to_dark_l1_input']:.4f}) |")
        if "light_to_dark_tone_pixels_left_alone" in t:  # absent from figures recorded before it
            lines.append(f"| ... pixels where the tones differ that the edit left alone | "
                         f"{_pct(t['light_to_dark_tone_pixels_left_alone'])} |")
            lines.append(f"| ... share of the edit's L1 outside those pixels | "
                         f"{_pct(t['light_to_dark_error_outside_tone_pixels'])} |")
    lines += by_source_table(judge.get("judge_agreement_by_source", {}))  # absent from figures recorded before it
    lines += ["", f"![{r['name']}: held-out inputs, then each single-attribute edit]"
                  f"({Path(m['figures']['edits']).relative_to(out_dir)})", ""]
    return lines


def real_recall_note(recall: dict[str, float], attribute: str) -> str:
    """The classifier on real held-out images of the edit's target value: what edits as real as the data would
    score (a binary attribute's edits go both ways, so both values). Empty for figures recorded before it."""
    if attribute not in recall:
        return ""
    if f"not {attribute}" in recall:
        return (f"; real held-out images read right: `{attribute}` {_pct(recall[attribute])}, "
                f"not `{attribute}` {_pct(recall[f'not {attribute}'])}")
    return f"; real held-out `{attribute}` images read so: {_pct(recall[attribute])}"


def by_source_table(by_source: dict[str, dict[str, float]]) -> list[str]:
    """Agreement per target (rows) and the input's own value in its group (columns)."""
    if not by_source:
        return []
    seen = list(dict.fromkeys(s for shares in by_source.values() for s in shares))
    # The group's order, as the rows have it; then any value that is never a target (every input had it).
    sources = [t for t in by_source if t in seen] + [s for s in seen if s not in by_source]
    lines = ["", "Edits read as asked, by the input's own value:", "",
             "| edit to \\ from | " + " | ".join(f"`{s}`" for s in sources) + " |",
             "| --- |" + " --- |" * len(sources)]
    for target, shares in by_source.items():
        cells = [_pct(shares[s]) if s in shares else "-" for s in sources]
        lines.append(f"| `{target}` | " + " | ".join(cells) + " |")
    return lines


def write_report(results: list[dict[str, Any]], out_dir: Path, command: str) -> Path:
    lines = ["# Evaluation report", "", f"Made by `{command}`.", ""]
    conditional = [r for r in results if r["kind"] == "classes"]
    psi = conditional[0]["metrics"]["evaluation"].get("truncation") if conditional else None
    if psi is not None:
        lines += [f"**Truncated samples**: every latent drawn with |z_i| <= {psi:g}, not as the service samples by "
                  "default, so these figures show what truncation trades and are not the checkpoints' own.", ""]
    if conditional:
        lines += class_conditional_tables(conditional) + [""]
        for r in conditional:
            lines += checkpoint_section(r, out_dir)
    for r in results:
        if r["kind"] == "attributes":
            lines += stargan_section(r, out_dir)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
