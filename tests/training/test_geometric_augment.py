"""rotate_zoom: the real-image rotation and zoom of StarGAN training, on cases with a known answer."""
import pytest
import torch

from training.geometric_augment import rotate_zoom


def draws(*values: list[float]):
    """A rand that returns the given batches in order: angle draws, scale draws, then the p draws."""
    batches = iter(torch.tensor(v) for v in values)
    return lambda *shape: next(batches)


def test_a_quarter_turn_is_exact_and_counter_clockwise():
    x = torch.arange(32.0).reshape(2, 1, 4, 4)
    # u = 1 draws the largest angle (+90), u = 0.5 the scale 1; both chosen (u = 0 < p)
    out = rotate_zoom(x, draws([1.0, 1.0], [0.5, 0.5], [0.0, 0.0]), degrees=90, zoom=0.5, p=0.5)
    assert torch.allclose(out, torch.rot90(x, 1, (2, 3)), atol=1e-5)


def test_zooming_out_brings_in_the_fill_at_the_border():
    x = -torch.ones(1, 3, 8, 8)  # black
    # u = 0 draws the smallest scale, 1 - 0.5: the image shrinks to its middle 4 x 4, white around it
    out = rotate_zoom(x, draws([0.5], [0.0], [0.0]), degrees=10, zoom=0.5)
    assert torch.allclose(out[..., 2:6, 2:6], x[..., 2:6, 2:6], atol=1e-5)
    border = torch.ones(8, 8, dtype=torch.bool)
    border[1:7, 1:7] = False
    assert torch.allclose(out[..., border], torch.ones(1, 3, int(border.sum())), atol=1e-5)


def test_about_half_the_images_change_and_the_rest_stay_bit_exact():
    x = torch.rand(256, 3, 8, 8) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    out = rotate_zoom(x, lambda *shape: torch.rand(*shape, generator=gen), degrees=15, zoom=0.1)
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert 90 < (~same).sum().item() < 166  # Binomial(256, 1/2): mean 128, sd 8
    assert out.shape == x.shape and out.dtype == x.dtype


def test_off_returns_the_batch_itself_and_draws_nothing():
    x = torch.rand(4, 3, 8, 8)

    def no_draws(*shape):
        raise AssertionError("drew random numbers while off")

    assert rotate_zoom(x, no_draws, degrees=0, zoom=0) is x


@pytest.mark.parametrize("degrees", [0.0, 30.0])
def test_gradients_flow_to_the_input(degrees):
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    rotate_zoom(x, draws([0.9, 0.1], [0.2, 0.7], [0.0, 0.0]), degrees=degrees, zoom=0.2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
