"""Differentiable augmentation of D's inputs: each transform on a case whose answer is known by hand."""
import pytest
import torch

from training.diff_augment import apply_policy, cutout, parse_policy, translate


def constant(value: float):
    """A `rand` that always draws `value`: fixes where each transform lands."""
    return lambda *shape: torch.full(shape, value)


def dot_image(size: int = 32, at: tuple[int, int] = (16, 16)) -> torch.Tensor:
    x = torch.full((1, 3, size, size), -1.0)  # black
    x[:, :, at[0], at[1]] = 0.5
    return x


def test_translation_moves_the_image_and_fills_with_white():
    x = dot_image()  # 32 px: shifts of up to 4 px
    assert torch.equal(translate(x, constant(0.5)), x)  # the middle draw is no shift
    moved = translate(x, constant(0.0))  # the crop starts at the top-left of the padding: content moves down-right
    assert moved[0, 0, 20, 20] == 0.5 and moved[0, 0, 16, 16] == -1.0
    assert (moved[:, :, :4] == 1.0).all() and (moved[:, :, :, :4] == 1.0).all()  # white came in
    assert (moved[:, :, 4:, 4:] != 1.0).all()  # and nothing else is white
    up = translate(x, constant(0.999))
    assert up[0, 0, 12, 12] == 0.5 and (up[:, :, -4:] == 1.0).all()


def test_translation_draws_a_shift_per_image():
    x = dot_image().repeat(64, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    out = translate(x, lambda *s: torch.rand(*s, generator=gen))
    where = [tuple((img[0] == 0.5).nonzero()[0].tolist()) for img in out]
    assert len(set(where)) > 20  # 81 possible places
    assert all(12 <= r <= 20 and 12 <= c <= 20 for r, c in where)


def test_cutout_blanks_one_square_of_half_the_side():
    x = torch.rand(2, 3, 32, 32) + 1.0  # nothing is 0 before
    out = cutout(x, constant(0.5))  # centre (16, 16): rows and columns 8..23
    hole = out == 0.0
    assert hole[:, :, 8:24, 8:24].all() and hole.sum().item() == 2 * 3 * 16 * 16
    assert torch.equal(out[~hole], x[~hole])


def test_gradients_reach_the_pixels_that_are_still_seen():
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    translate(x, constant(0.0)).sum().backward()
    expected = torch.zeros(32, 32)
    expected[:28, :28] = 1.0  # shifted by 4 down and right: the last 4 rows and columns fall off
    assert torch.equal(x.grad[0, 0], expected)
    x.grad = None
    cutout(x, constant(0.5)).sum().backward()
    assert x.grad[0, 0, 8:24, 8:24].abs().sum() == 0 and x.grad[0, 0, 0, 0] == 1.0


def test_policy_parsing_and_order():
    assert parse_policy("translation, cutout") == ("translation", "cutout") and parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown augmentation colour"):
        parse_policy("translation,colour")
    x = dot_image()
    assert torch.equal(apply_policy(x, (), constant(0.0)), x)
    both = apply_policy(x, ("translation", "cutout"), constant(0.0))  # moved, then a hole at the top-left corner
    assert both[0, 0, 20, 20] == 0.5 and (both[:, :, :8, :8] == 0.0).all()
