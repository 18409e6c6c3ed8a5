"""Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017).

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2). The cross term is computed from the
symmetric matrix S1^1/2 S2 S1^1/2 by eigendecomposition: its eigenvalues are those of S1 S2 but it is
symmetric positive semi-definite, so no complex round-off appears (scipy.linalg.sqrtm(S1 @ S2) is the
usual route; the tests check the two agree).
"""
from __future__ import annotations

import numpy as np
import torch


def feature_matrix(features: torch.Tensor | np.ndarray) -> np.ndarray:
    """[N, D] features (a tensor or an array) as a float64 array; at least two rows, as any spread needs."""
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got shape {x.shape}")
    return x


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of [N, D] features, in float64."""
    x = feature_matrix(features)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    cross = _psd_sqrt(root1 @ sigma2 @ root1)
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(cross))
    return max(value, 0.0)  # round-off can leave a tiny negative for identical inputs


def frechet_distance_of_features(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def frechet_distance_per_class(a: torch.Tensor, a_labels: torch.Tensor, b: torch.Tensor, b_labels: torch.Tensor,
                               classes: list[str]) -> dict[str, float]:
    """Intra-class Fréchet distance (intra-FID, Miyato & Koyama 2018): for each class k, the distance between
    a's and b's features of class k. Says which classes a set-wide FID comes from."""
    return {name: frechet_distance_of_features(a[a_labels == k], b[b_labels == k]) for k, name in enumerate(classes)}
