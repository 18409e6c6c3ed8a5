"""Each evaluation metric on cases with a known answer, or against a reference computed another way here."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import ndimage

from training.data import load_dataset
from training.metrics.accuracy import accuracy, per_class_accuracy
from training.metrics.cas import class_matched_subset, classification_accuracy_score
from training.metrics.fid import (feature_statistics, frechet_distance, frechet_distance_of_features,
                                  frechet_distance_per_class)
from training.metrics.kid import kernel_distance, polynomial_mmd2_unbiased
from training.metrics.memorisation import memorisation, memorisation_threshold, nearest_neighbours
from training.evaluate.class_conditional import ms_ssim_figures
from training.metrics.ms_ssim import K1, K2, PairMSSSIM, ms_ssim, pair_ms_ssim, scale_weights
from training.metrics.prdc import kth_neighbour_radii, prdc, prdc_per_class

# --- Fréchet distance -------------------------------------------------------------------------------


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_of_identical_inputs_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=8), random_spd(rng, 8)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    features = torch.randn(300, 6, generator=torch.Generator().manual_seed(0))
    assert frechet_distance_of_features(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_covariances_has_the_closed_form():
    # Commuting (diagonal) covariances: FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 2) ** 2 + (3 - 1) ** 2  # 5 + 5
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_the_scipy_sqrtm_form_on_non_commuting_covariances():
    rng = np.random.default_rng(1)
    for d in (2, 5, 16):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        assert not np.allclose(s1 @ s2, s2 @ s1)
        # The textbook route, independent of the implementation's eigendecomposition.
        cross = scipy.linalg.sqrtm(s1 @ s2).real
        reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_feature_statistics_are_the_sample_mean_and_unbiased_covariance():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]])
    mu, sigma = feature_statistics(x)
    assert mu == pytest.approx([3.0, 4.0])
    assert sigma == pytest.approx(np.array([[4.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError):
        feature_statistics(torch.zeros(1, 3))


def test_frechet_distance_grows_with_a_mean_shift_as_its_square():
    features = torch.randn(2000, 4, generator=torch.Generator().manual_seed(2))
    shifted = features + torch.tensor([3.0, 0.0, 0.0, 0.0])  # same covariance, mean moved by 3
    assert frechet_distance_of_features(features, shifted) == pytest.approx(9.0, rel=1e-9)


def test_intra_class_frechet_distance_finds_the_class_that_moved():
    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(900, 4, generator=g, dtype=torch.float64) for _ in range(2))
    labels = torch.arange(3).repeat(300)
    move = torch.tensor([0.0, 2.0, 0.0, 0.0], dtype=torch.float64)
    shifted = b + (labels == 1).double().unsqueeze(1) * move  # class 1 moved by 2 along one axis
    per_class = frechet_distance_per_class(a, labels, shifted, labels, ["x", "y", "z"])
    assert per_class["y"] == pytest.approx(frechet_distance_of_features(a[labels == 1], b[labels == 1]) + 4.0
                                           - 2 * 2.0 * (a[labels == 1, 1].mean() - b[labels == 1, 1].mean()).item(),
                                           rel=1e-9)  # |mu_a - mu_b - d|^2 = |mu_a - mu_b|^2 + d^2 - 2 d (mu_a - mu_b)
    assert per_class["x"] == frechet_distance_of_features(a[labels == 0], b[labels == 0]) < 0.1
    assert per_class["z"] < 0.1 and per_class["y"] > 3.5
    assert frechet_distance_per_class(a, labels, a, labels, ["x", "y", "z"]) == pytest.approx({"x": 0, "y": 0, "z": 0},
                                                                                                abs=1e-9)


# --- KID ----------------------------------------------------------------------------------------------


def test_kernel_distance_of_two_point_masses_has_the_closed_form():
    # d = 1: k(1, 1) = (1 + 1)^3 = 8, k(0, 0) = 1, k(1, 0) = 1, so the squared MMD is 8 + 1 - 2 x 1 = 7
    kid = kernel_distance(torch.ones(5, 1), torch.zeros(5, 1), subset_size=5, subsets=1)
    assert kid.mean == pytest.approx(7.0, rel=1e-12)
    assert (kid.standard_deviation, kid.subset_size, kid.subsets) == (0.0, 5, 1)
    # subsets that would each take all of both sets are one subset
    assert kernel_distance(torch.ones(5, 1), torch.zeros(5, 1), subsets=30) == kid


def test_kernel_distance_matches_a_pair_by_pair_reading_of_the_estimator():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(7, 3, generator=g, dtype=torch.float64)
    b = torch.randn(9, 3, generator=g, dtype=torch.float64) + 0.5

    def k(x, y):
        return (float(x @ y) / 3 + 1) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    within_b = sum(k(b[i], b[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    across = sum(k(x, y) for x in a for y in b) / (7 * 9)
    assert polynomial_mmd2_unbiased(a, b) == pytest.approx(within_a + within_b - 2 * across, rel=1e-9)
    # one subset as large as the smaller set takes all of it; the larger set's rows are a random 7 of its 9
    assert kernel_distance(a, a[torch.randperm(7, generator=g)], subset_size=7, subsets=1).mean == pytest.approx(
        polynomial_mmd2_unbiased(a, a), rel=1e-9)


def test_kernel_distance_is_unbiased_where_the_frechet_distance_is_not():
    """Small samples of one distribution: averaged over many independent draws the KID estimate is 0 within its
    noise, while the Fréchet distance of the same draws stays well above 0 (its bias grows as samples shrink)."""
    g = torch.Generator().manual_seed(5)
    kids, fids = [], []
    for _ in range(300):
        a, b = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)
        kids.append(kernel_distance(a, b, subset_size=20, subsets=1).mean)
        fids.append(frechet_distance_of_features(a, b))
    kid_mean, kid_error = np.mean(kids), np.std(kids, ddof=1) / np.sqrt(len(kids))
    assert abs(kid_mean) < 3 * kid_error
    assert min(kids) < 0 < max(kids)  # an unbiased estimate of 0 falls on both sides of it
    assert np.mean(fids) > 20 * np.std(fids, ddof=1) / np.sqrt(len(fids))


def test_kernel_distance_grows_with_a_mean_shift_and_its_spread_comes_from_the_subsets():
    g = torch.Generator().manual_seed(6)
    real, same = torch.randn(600, 4, generator=g), torch.randn(600, 4, generator=g)
    near, far = same + torch.tensor([0.5, 0, 0, 0]), same + torch.tensor([2.0, 0, 0, 0])
    kids = [kernel_distance(real, x, subset_size=200, subsets=20, seed=1) for x in (same, near, far)]
    assert abs(kids[0].mean) < 3 * kids[0].standard_deviation
    assert kids[0].mean < kids[1].mean < kids[2].mean
    assert kids[2].mean > 5 * kids[2].standard_deviation and kids[1].standard_deviation > 0
    assert kernel_distance(real, near, subset_size=200, subsets=20, seed=1) == kids[1]  # the seed fixes the subsets
    assert kernel_distance(real, near, subset_size=200, subsets=20, seed=2) != kids[1]


def test_kernel_distance_refuses_mismatched_or_too_few_features():
    with pytest.raises(ValueError, match="widths"):
        kernel_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="N >= 2"):
        kernel_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="at least"):
        kernel_distance(torch.zeros(5, 3), torch.zeros(5, 3), subsets=0)


# --- MS-SSIM ------------------------------------------------------------------------------------------


def images(seed: int, n: int = 4, size: int = 28) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_ms_ssim_of_identical_images_is_one():
    x = images(0)
    assert torch.allclose(ms_ssim(x, x), torch.ones(4, dtype=torch.float64))


def test_ms_ssim_of_two_flat_images_is_the_luminance_term():
    # Flat images have no contrast: every cs term is C2 / C2 = 1 and only the luminance at the coarsest
    # scale remains, raised to that scale's weight.
    x = torch.full((1, 1, 28, 28), 0.2 * 2 - 1, dtype=torch.float64)  # 0.2 on the [0, 1] scale
    y = torch.full((1, 1, 28, 28), 0.6 * 2 - 1, dtype=torch.float64)
    c1 = K1 ** 2
    luminance = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    expected = luminance ** scale_weights(3)[-1].item()
    assert ms_ssim(x, y).item() == pytest.approx(expected, rel=1e-9)


def reference_ms_ssim(x: np.ndarray, y: np.ndarray, scales: int, size: int, sigma: float) -> float:
    """A direct numpy/scipy MS-SSIM of two [H, W] images in [0, 1]: scipy.ndimage filtering, block means."""
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-coords ** 2 / (2 * sigma ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales])
    weights = weights / weights.sum()
    half = size // 2
    value = 1.0
    for level in range(scales):
        def filt(a):
            full = ndimage.correlate(a, window, mode="constant")
            return full[half:a.shape[0] - half, half:a.shape[1] - half]  # the 'valid' part
        mx, my = filt(x), filt(y)
        vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
        cs = ((2 * cxy + K2 ** 2) / (vx + vy + K2 ** 2)).mean()
        if level == scales - 1:
            lum = ((2 * mx * my + K1 ** 2) / (mx ** 2 + my ** 2 + K1 ** 2))
            term = (lum * (2 * cxy + K2 ** 2) / (vx + vy + K2 ** 2)).mean()
        else:
            term = cs
        value *= max(term, 0.0) ** weights[level]
        h, w = x.shape
        x = x[:h - h % 2, :w - w % 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y[:h - h % 2, :w - w % 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return value


@pytest.mark.parametrize("scales,window", [(3, 7), (2, 11), (1, 7)])
def test_ms_ssim_matches_a_direct_numpy_reference(scales, window):
    # Correlated pairs (a smoothed image and a noisy copy), so every term is well away from 0 and 1.
    base = ndimage.gaussian_filter(np.random.default_rng(3).random((28, 28)), 1.5)
    noisy = np.clip(base + 0.05 * np.random.default_rng(4).normal(size=(28, 28)), 0, 1)
    x = torch.from_numpy(base * 2 - 1).view(1, 1, 28, 28)
    y = torch.from_numpy(noisy * 2 - 1).view(1, 1, 28, 28)
    expected = reference_ms_ssim(base, noisy, scales, window, 1.5)
    assert 0.2 < expected < 0.99
    assert ms_ssim(x, y, scales=scales, window_size=window).item() == pytest.approx(expected, rel=1e-9)


def test_ms_ssim_falls_as_noise_grows():
    x = images(5, n=1)
    gen = torch.Generator().manual_seed(6)
    values = [ms_ssim(x, (x + s * torch.randn(x.shape, generator=gen)).clamp(-1, 1)).item() for s in (0.05, 0.2, 0.8)]
    assert values[0] > values[1] > values[2]


def test_ms_ssim_refuses_images_too_small_for_its_scales():
    with pytest.raises(ValueError, match="window"):
        ms_ssim(images(0, size=16), images(1, size=16), scales=3, window_size=7)


def test_pair_ms_ssim_never_pairs_an_image_with_itself():
    a, b = images(7, n=1), images(8, n=1)
    value = pair_ms_ssim(torch.cat([a, b]), 50, torch.Generator().manual_seed(0)).mean
    assert value == pytest.approx(ms_ssim(a, b).item(), rel=1e-9)  # every pair is (a, b) or (b, a)
    copies = a.repeat(5, 1, 1, 1)
    assert pair_ms_ssim(copies, 20, torch.Generator().manual_seed(0)).mean == pytest.approx(1.0)


def checker(size: int = 28) -> torch.Tensor:
    """A 1-px checkerboard in [-1, 1]: against its negative every contrast-structure term is negative, so
    MS-SSIM is exactly 0; against itself exactly 1."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((rows + cols) % 2) * 2.0 - 1.0)[None, None]


def test_pair_ms_ssim_standard_error_on_pairs_of_zeros_and_ones():
    a = checker()
    assert ms_ssim(a, -a).item() == 0.0 and ms_ssim(a, a).item() == pytest.approx(1.0)
    # Two copies of each: a random pair of distinct images is alike (1) one time in three, else opposite (0),
    # so the pairs' values are 0/1 draws whose sample standard error is sqrt(p (1 - p) / (pairs - 1)).
    pairs = 600
    figure = pair_ms_ssim(torch.cat([a, a, -a, -a]), pairs, torch.Generator().manual_seed(0))
    assert figure.mean == pytest.approx(1 / 3, abs=0.06)
    p = figure.mean
    assert figure.standard_error == pytest.approx(math.sqrt(p * (1 - p) / (pairs - 1)), rel=1e-6)
    alike = pair_ms_ssim(a.repeat(6, 1, 1, 1), 50, torch.Generator().manual_seed(0))
    assert alike == PairMSSSIM(pytest.approx(1.0), pytest.approx(0.0, abs=1e-12))
    with pytest.raises(ValueError, match="2 pairs"):
        pair_ms_ssim(torch.cat([a, -a]), 1, torch.Generator().manual_seed(0))


def test_ms_ssim_figures_tell_clear_differences_from_the_pairs_noise():
    a = checker()
    # Every class's samples: two alike and two opposite images, so their pairs mean about 1/3 with a known
    # standard error; the real side is given, each class placed against them at a known number of errors.
    samples = torch.cat([a, a, -a, -a] * 4)
    labels = torch.arange(4).repeat_interleave(4)
    classes = ["far_below", "just_below", "just_above", "far_above"]
    pairs, seed = 400, 3
    own = [pair_ms_ssim(samples[labels == k], pairs, torch.Generator().manual_seed(seed + k)) for k in range(4)]
    real_error = 0.01
    offsets = {"far_below": 5, "just_below": 0.5, "just_above": -0.5, "far_above": -5}  # real = own + offset x error
    real = {}
    for k, name in enumerate(classes):
        spread = math.hypot(own[k].standard_error, real_error)
        real[name] = PairMSSSIM(own[k].mean + offsets[name] * spread, real_error)
    figures = ms_ssim_figures(samples, labels, classes, real, pairs, seed)
    assert figures["generated_per_class"] == {name: round(own[k].mean, 4) for k, name in enumerate(classes)}
    assert figures["generated_standard_error_per_class"]["far_below"] == round(own[0].standard_error, 4)
    assert figures["real_standard_error_per_class"] == dict.fromkeys(classes, real_error)
    assert figures["classes_at_or_below_real"] == 0.5  # far_below and just_below: the share, as before
    assert figures["clearly_below_real"] == ["far_below"] and figures["clearly_above_real"] == ["far_above"]
    assert figures["classes_clearly_below_real"] == 0.25 and figures["classes_clearly_above_real"] == 0.25


# --- accuracy, memorisation, CAS -----------------------------------------------------------------------


def test_accuracy_overall_and_per_class():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    assert accuracy(predicted, labels) == pytest.approx(4 / 6, abs=1e-4)
    assert per_class_accuracy(predicted, labels, ["a", "b", "c", "d"]) == {"a": 0.5, "b": 0.6667, "c": 1.0}


def test_nearest_neighbours_by_l2():
    reference = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 5.0]])
    queries = torch.tensor([[9.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
    distance, index = nearest_neighbours(queries, reference, chunk=2)
    assert index.tolist() == [1, 2, 0]
    assert distance.tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_memorisation_counts_copies_of_training_images_and_nothing_else():
    gen = torch.Generator().manual_seed(0)
    reference = torch.rand(200, 1, 8, 8, generator=gen) * 2 - 1
    # Real training images are about 0.3 * sqrt(64) = 2.4 from their neighbours here; copies are at 0.
    held_apart = (reference[:100] + 0.3 * torch.randn(100, 1, 8, 8, generator=gen))
    copies = reference[100:130]
    novel = reference[130:200] + 0.5 * torch.randn(70, 1, 8, 8, generator=gen)
    threshold = memorisation_threshold(reference, held_apart, percentile=1.0)
    result = memorisation(torch.cat([copies, novel]), reference, threshold)
    assert result.share == pytest.approx(30 / 100)
    assert result.generated_nn_index[:30].tolist() == list(range(100, 130))
    assert threshold.threshold == pytest.approx(torch.quantile(threshold.train_nn.double(), 0.01).item())


# --- precision, recall, density, coverage -------------------------------------------------------------


def test_prdc_on_a_case_worked_by_hand():
    # Real points 0, 1, 2, 3 on a line; k = 1, so every real ball has radius 1. Samples at 0.5 and 10: the
    # outlier's own ball (radius 9.5, to the other sample) holds every real point.
    real, generated = torch.tensor([[0.0], [1.0], [2.0], [3.0]]), torch.tensor([[0.5], [10.0]])
    assert kth_neighbour_radii(real, 1).tolist() == [1.0, 1.0, 1.0, 1.0]
    figures = prdc(real, generated, k=1)
    assert figures.precision == 0.5  # 0.5 lies in the balls of 0 and 1; 10 in none
    assert figures.recall == 1.0  # inflated by the outlier's ball
    assert figures.density == 1.0  # 2 real balls hold a sample, over k * 2 samples
    assert figures.coverage == 0.5  # only 0 and 1 have a sample inside their own ball


def test_prdc_of_a_set_against_itself_and_against_a_distant_set():
    features = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    same = prdc(features, features.clone(), k=5)
    # Each row lies in its own ball and in those of the k rows it is nearest to
    assert (same.precision, same.recall, same.coverage) == (1.0, 1.0, 1.0)
    assert same.density == pytest.approx(6 / 5)
    far = prdc(features, features + 100.0, k=5)
    assert far == type(far)(0.0, 0.0, 0.0, 0.0)


def brute_force_prdc(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """The four definitions read off directly, a pair of points at a time."""
    def dist(a, b):
        return float(np.sqrt(((a - b) ** 2).sum()))

    def radii(points):
        return [sorted(dist(p, q) for j, q in enumerate(points) if j != i)[k - 1] for i, p in enumerate(points)]

    r_real, r_gen = radii(real), radii(gen)
    held = [[dist(g, x) <= r for x, r in zip(real, r_real)] for g in gen]
    precision = np.mean([any(row) for row in held])
    density = sum(map(sum, held)) / (k * len(gen))
    recall = np.mean([any(dist(x, g) <= r for g, r in zip(gen, r_gen)) for x in real])
    coverage = np.mean([min(dist(x, g) for g in gen) <= r for x, r in zip(real, r_real)])
    return precision, recall, density, coverage


def test_prdc_matches_a_brute_force_reading_of_the_definitions():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    generated = 1.3 * torch.randn(45, 5, generator=gen, dtype=torch.float64) + 0.8
    expected = brute_force_prdc(real.numpy(), generated.numpy(), k=3)
    figures = prdc(real, generated, k=3, chunk=7)  # chunks that do not divide either set
    assert (figures.precision, figures.recall, figures.density, figures.coverage) == pytest.approx(expected)
    assert 0 < figures.precision < 1 and 0 < figures.recall < 1  # a case that tells the figures apart
    assert prdc(real, generated, k=3, real_radii=kth_neighbour_radii(real, 3)) == figures


def test_prdc_refuses_too_few_rows_and_mismatched_features():
    with pytest.raises(ValueError, match="at least 6"):
        prdc(torch.randn(5, 2), torch.randn(10, 2), k=5)
    with pytest.raises(ValueError, match="feature sizes differ"):
        prdc(torch.randn(10, 2), torch.randn(10, 3), k=2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        prdc(torch.randn(10, 2), torch.randn(10, 2), k=0)


def test_prdc_per_class_finds_the_class_whose_samples_moved():
    gen = torch.Generator().manual_seed(2)
    real = torch.randn(80, 4, generator=gen)
    labels = torch.arange(80) % 2
    generated = real.clone()
    generated[labels == 1] += 50.0  # class "b" drawn far from its real images, class "a" exactly on them
    per_class = prdc_per_class(real, labels, generated, labels, ["a", "b"], k=3)
    assert per_class["a"].precision == 1.0 and per_class["a"].coverage == 1.0
    assert per_class["b"].precision == 0.0 and per_class["b"].coverage == 0.0
    with pytest.raises(ValueError, match="class 'b': generated features: 2 rows, k = 3 needs at least 4"):
        prdc_per_class(real, labels, generated[:6], torch.tensor([0, 0, 0, 0, 1, 1]), ["a", "b"], k=3)


@pytest.fixture
def tiny_splits(tiny_fashion):
    """The tiny set at 14 px: a quarter of the classifier's cost, and the class bands stay visible."""
    spec = f"fashion-mnist:{tiny_fashion}"
    return load_dataset(spec, "train", image_size=14), load_dataset(spec, "test", image_size=14)


def test_class_matched_subset_draws_as_many_real_images_of_each_class(tiny_splits):
    train, _ = tiny_splits
    labels = torch.tensor([0, 0, 3, 7, 7, 7])
    subset = class_matched_subset(train, labels, seed=0)
    assert sorted(subset.labels.tolist()) == sorted(labels.tolist())
    with pytest.raises(ValueError, match="real images"):
        class_matched_subset(train, torch.zeros(50, dtype=torch.int64), seed=0)


def real_images_of_each_class(data, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first per_class real images of each class, in [-1, 1] as a generator gives them, with their labels."""
    keep = torch.cat([torch.nonzero(data.labels == k).flatten()[:per_class] for k in range(len(data.classes))])
    return data.images[keep].float() / 127.5 - 1, data.labels[keep]


def test_cas_is_high_for_samples_of_the_asked_class_and_near_zero_for_a_shifted_mapping(tiny_splits):
    train, test = tiny_splits
    # A 'generator' that draws real images of the asked class, and one that draws class k + 1 when asked for k.
    right, labels = real_images_of_each_class(train, 9)
    good = classification_accuracy_score(right, labels, train, test, epochs=8, seed=0, batch_size=15)
    shifted = classification_accuracy_score(right, (labels + 1) % 10, train, test, epochs=8, seed=0, batch_size=15)
    assert good.real >= 0.9 and good.cas >= 0.9 and good.ratio >= 0.9
    assert shifted.cas <= 0.1 and shifted.ratio < 0.2
    assert math.isclose(shifted.real, good.real)  # the real-data side does not depend on the samples


def test_cas_is_the_same_whatever_the_thread_count_and_puts_the_count_back(tiny_splits):
    train, test = tiny_splits
    images, labels = real_images_of_each_class(train, 9)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(classification_accuracy_score(images, labels, train, test, epochs=2, seed=0, batch_size=15))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert results[0] == results[1]
