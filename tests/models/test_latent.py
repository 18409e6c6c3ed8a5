import math

import pytest
import torch

from models import lerp, seeded_latents, slerp


def test_row_i_depends_only_on_seed_plus_i():
    batch = seeded_latents(7, 5, 16)
    for i in range(5):
        assert torch.equal(batch[i], seeded_latents(7 + i, 1, 16)[0])
    assert torch.equal(seeded_latents(7, 3, 16), batch[:3])
    assert not torch.equal(batch[0], batch[1])


def test_largest_seed_is_accepted():
    z = seeded_latents(2**63 - 1, 2, 4)
    assert z.shape == (2, 4) and torch.isfinite(z).all()


@pytest.mark.parametrize("psi", [0.05, 0.5, 1.0])
def test_truncation_bounds_and_keeps_a_normal_shape(psi):
    z = seeded_latents(0, 400, 64, truncation=psi)
    assert z.abs().max() <= psi
    # Truncated normal on [-psi, psi]: its variance is known in closed form.
    phi = math.exp(-psi * psi / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    expected_var = 1 - 2 * psi * phi / mass
    assert z.var().item() == pytest.approx(expected_var, rel=0.05)
    assert abs(z.mean().item()) < 0.05 * psi + 0.01


def test_truncation_is_deterministic_per_seed():
    assert torch.equal(seeded_latents(3, 2, 8, 0.7), seeded_latents(3, 2, 8, 0.7))


def test_lerp_and_slerp_endpoints():
    a, b = torch.randn(32), torch.randn(32)
    t = torch.linspace(0, 1, 5)
    for f in (lerp, slerp):
        path = f(a, b, t)
        assert path.shape == (5, 32)
        assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)


def test_slerp_follows_the_sphere():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, torch.tensor([0.5]))[0]
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]), atol=1e-6)
    assert torch.allclose(lerp(a, b, torch.tensor([0.5]))[0], torch.tensor([0.5, 0.5]))
    # Parallel vectors fall back to lerp instead of dividing by sin(0).
    assert torch.allclose(slerp(a, 2 * a, torch.tensor([0.5]))[0], torch.tensor([1.5, 0.0]))
