import pytest
import torch

from models import build, build_discriminator, make_arch

SIZES = [(28, 1), (32, 3), (64, 1), (128, 3)]


@pytest.mark.parametrize("family", ["acgan", "cgan"])
@pytest.mark.parametrize("size,channels", SIZES)
def test_class_conditional_shapes(family, size, channels):
    arch = dict(num_classes=5, image_size=size, channels=channels, latent_dim=16, g_width=8, d_width=8)
    G, D = build(family, **arch), build_discriminator(family, **arch)
    z, y = torch.randn(3, 16), torch.eye(5)[:3]
    x = G(z, y)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    if family == "acgan":
        source, classes = D(x)
        assert source.shape == (3,) and classes.shape == (3, 5)
    else:
        assert D(x, y).shape == (3,)


def test_acgan_discriminator_gives_raw_logits_not_probabilities():
    arch = dict(num_classes=4, image_size=28, channels=1, g_width=8, d_width=8)
    D = build_discriminator("acgan", **arch)
    with torch.no_grad():
        D.classes.weight.mul_(100.0)
        _, logits = D(torch.randn(8, 1, 28, 28))
    # A softmax output would sum to one per row and sit in [0, 1].
    assert not torch.allclose(logits.sum(1), torch.ones(8))
    assert (logits < 0).any() or (logits > 1).any()


@pytest.mark.parametrize("size", [32, 64])
def test_stargan_shapes_and_eval_does_not_change_output(size):
    arch = dict(num_attributes=4, image_size=size, channels=3, g_width=8, d_width=8, res_blocks=1, d_layers=3)
    G, D = build("stargan", **arch), build_discriminator("stargan", **arch)
    x, c = torch.rand(2, 3, size, size) * 2 - 1, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    G.train()
    out_train = G(x, c)
    G.eval()
    out_eval = G(x, c)
    assert out_train.shape == x.shape
    assert torch.allclose(out_train, out_eval)  # InstanceNorm without running statistics
    source, attrs = D(out_eval)
    assert source.shape == (2, 1, size // 8, size // 8) and attrs.shape == (2, 4)


def test_generator_accepts_blended_conditions():
    G = build("cgan", num_classes=3, image_size=28, channels=1, latent_dim=8, g_width=8).eval()
    z = torch.randn(1, 8)
    a, b = G(z, torch.tensor([[1.0, 0, 0]])), G(z, torch.tensor([[0.0, 1, 0]]))
    mid = G(z, torch.tensor([[0.5, 0.5, 0]]))
    assert mid.shape == a.shape and not torch.equal(mid, a) and not torch.equal(mid, b)


def test_unknown_arch_field_and_family_are_refused():
    with pytest.raises(ValueError, match="unknown acgan arch fields"):
        make_arch("acgan", num_classes=2, widht=3)
    with pytest.raises(ValueError, match="unknown family"):
        build("biggan", num_classes=2)
    with pytest.raises(ValueError, match="image_size"):
        build("acgan", num_classes=2, image_size=7)



def test_masked_stargan_blends_its_input_and_stays_in_range():
    G = build("stargan", num_attributes=3, image_size=16, g_width=8, res_blocks=1, mask=True)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    c = torch.eye(3)[:2]
    start = G(x, c)
    # A new masked G leaves most of each pixel to its input: sigmoid(-3) ~ 0.047 of the colour.
    assert (start - x).abs().max() <= 2 * torch.sigmoid(torch.tensor(-3.0)) + 1e-6
    with torch.no_grad():
        G.main[-1].weight.normal_(0.0, 1.0)  # large colour and mask logits
        G.mask_bias.fill_(-100.0)  # mask closed: the input exactly
    assert torch.allclose(G(x, c), x)
    with torch.no_grad():
        G.mask_bias.fill_(100.0)  # mask open: the colour image alone, whatever the input
    out = G(x, c)
    assert out.abs().max() <= 1.0 and not torch.allclose(out, x)
    assert "mask" in build("stargan", num_attributes=1).arch.to_dict()  # saved with the arch
