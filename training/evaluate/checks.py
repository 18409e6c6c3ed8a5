"""The targets issue 5 sets for class-conditional checkpoints, and the comparison with the baseline recipe."""
from __future__ import annotations

from typing import Any

BASELINE_FAMILY = "acgan-pytorchgan"
MIN_ACCURACY = 0.95  # judge accuracy on samples
MAX_FID_OVER_FLOOR = 2.0  # fid <= 2 x fid_floor
MIN_MS_SSIM_CLASSES = 0.90  # share of classes whose samples are at least as diverse as real images
MIN_CAS_RATIO = 0.80  # CAS >= 80% of the real-data classifier's accuracy


def threshold_checks(m: dict[str, Any]) -> dict[str, bool]:
    return {
        f"accuracy >= {MIN_ACCURACY:.0%}": m["accuracy"]["generated"] >= MIN_ACCURACY,
        f"fid <= {MAX_FID_OVER_FLOOR:g} x fid_floor": m["fid"] <= MAX_FID_OVER_FLOOR * m["fid_floor"],
        f"ms_ssim at or below real in >= {MIN_MS_SSIM_CLASSES:.0%} of classes":
            m["ms_ssim"]["classes_at_or_below_real"] >= MIN_MS_SSIM_CLASSES,
        f"cas >= {MIN_CAS_RATIO:.0%} of real": m["cas"]["ratio"] >= MIN_CAS_RATIO,
    }


def baseline_for(result: dict[str, Any], baselines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline a checkpoint is compared with: the one trained for as many steps (the issue's "same budget"),
    else the nearest in steps; None when there is none."""
    if not baselines:
        return None
    return min(baselines, key=lambda b: abs((b["steps"] or 0) - (result["steps"] or 0)))


def better_than(m: dict[str, Any], base: dict[str, Any]) -> dict[str, bool]:
    """Each metric strictly better than the baseline's; MS-SSIM: more classes at or below real, or as many
    and a lower mean (more diverse)."""
    ours, theirs = m["ms_ssim"], base["ms_ssim"]
    diversity = (ours["classes_at_or_below_real"] > theirs["classes_at_or_below_real"]
                 or (ours["classes_at_or_below_real"] == theirs["classes_at_or_below_real"]
                     and ours["generated"] < theirs["generated"]))
    return {"accuracy": m["accuracy"]["generated"] > base["accuracy"]["generated"], "fid": m["fid"] < base["fid"],
            "ms_ssim": diversity, "cas": m["cas"]["cas"] > base["cas"]["cas"]}
