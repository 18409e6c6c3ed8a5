"""Precision, recall, density and coverage of generated features against real ones, from k-nearest-neighbour
balls: precision and recall as Kynkäänniemi et al. 2019 define them, density and coverage as Naeem et al. 2020.

FID folds fidelity and variety into one number; these four tell them apart. Every real feature gets a ball
reaching to its k-th nearest real neighbour (together: an estimate of where real data lies), every generated
feature a ball reaching to its k-th nearest generated neighbour:
- precision: share of generated features inside at least one real ball (samples that look like real data);
- recall: share of real features inside at least one generated ball (how much of real variety is reached);
- density: real balls holding a generated feature, on average, over k: precision without its saturation at
  one ball, so a few outlying real images do not make every sample near them count; about 1 when generated
  and real features follow one distribution, above 1 where samples crowd into dense real regions;
- coverage: share of real features whose own ball holds a generated feature (recall measured with the real
  balls, which outlying samples cannot inflate the way they inflate generated balls).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float

    def rounded(self, digits: int = 4) -> dict[str, float]:
        return {name: round(value, digits) for name, value in asdict(self).items()}


def _distance_chunks(queries: torch.Tensor, reference: torch.Tensor, chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, L2 distances [rows, len(reference)]) for each chunk of query rows, in float64. Computed directly,
    not by the matrix-product expansion cdist otherwise uses for speed: that one rounds d(a, b) and d(b, a)
    differently, and a ball's radius is the distance to one of the points it must then hold."""
    for start in range(0, len(queries), chunk):
        yield start, torch.cdist(queries[start:start + chunk], reference, compute_mode="donot_use_mm_for_euclid_dist")


def _as_rows(features: torch.Tensor, k: int, what: str) -> torch.Tensor:
    if features.ndim != 2:
        raise ValueError(f"{what} features must be [N, D], got shape {tuple(features.shape)}")
    if len(features) <= k:
        raise ValueError(f"{what} features: {len(features)} rows, k = {k} needs at least {k + 1}")
    return features.detach().to(torch.float64)


def kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """[N] distance from each row to its k-th nearest other row (the row itself, at distance 0, not counted)."""
    rows = _as_rows(features, k, "the")
    radii = [d.kthvalue(k + 1, dim=1).values for _, d in _distance_chunks(rows, rows, chunk)]
    return torch.cat(radii)


def prdc(real: torch.Tensor, generated: torch.Tensor, k: int = 5, real_radii: torch.Tensor | None = None,
         chunk: int = 1024) -> PRDC:
    """The four figures of `generated` [M, D] against `real` [N, D]. real_radii: kth_neighbour_radii(real, k),
    when the caller measures several generated sets against one real set."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real_rows, gen_rows = _as_rows(real, k, "real"), _as_rows(generated, k, "generated")
    if real_rows.shape[1] != gen_rows.shape[1]:
        raise ValueError(f"feature sizes differ: real {real_rows.shape[1]}, generated {gen_rows.shape[1]}")
    if real_radii is None:
        real_radii = kth_neighbour_radii(real_rows, k, chunk)
    real_radii = real_radii.to(torch.float64)
    gen_radii = kth_neighbour_radii(gen_rows, k, chunk)

    inside_real_balls = 0  # generated rows in at least one real ball
    real_balls_held = 0  # (generated row, real ball) pairs, the row inside the ball
    for _, d in _distance_chunks(gen_rows, real_rows, chunk):
        inside = d <= real_radii[None]
        inside_real_balls += int(inside.any(dim=1).sum())
        real_balls_held += int(inside.sum())
    inside_gen_balls = 0  # real rows in at least one generated ball
    covered = 0  # real rows whose own ball holds a generated row
    for start, d in _distance_chunks(real_rows, gen_rows, chunk):
        inside_gen_balls += int((d <= gen_radii[None]).any(dim=1).sum())
        covered += int((d.min(dim=1).values <= real_radii[start:start + len(d)]).sum())
    m, n = len(gen_rows), len(real_rows)
    return PRDC(inside_real_balls / m, inside_gen_balls / n, real_balls_held / (k * m), covered / n)


def prdc_per_class(real: torch.Tensor, real_labels: torch.Tensor, generated: torch.Tensor,
                   generated_labels: torch.Tensor, classes: list[str], k: int = 5) -> dict[str, PRDC]:
    """The four figures within each class k: class k's generated features against class k's real ones."""
    figures = {}
    for index, name in enumerate(classes):
        try:
            figures[name] = prdc(real[real_labels == index], generated[generated_labels == index], k)
        except ValueError as exc:
            raise ValueError(f"class {name!r}: {exc}") from None
    return figures
