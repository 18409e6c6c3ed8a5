"""StarGAN (Choi et al. 2018): one generator that edits the attributes of the image it is given."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class StarGANArch:
    """Constructor arguments of StarGAN: what `arch` in a stargan checkpoint holds."""

    num_attributes: int
    image_size: int = 64
    channels: int = 3
    g_width: int = 64
    d_width: int = 64
    res_blocks: int = 6
    d_layers: int = 5
    # Beyond the paper (GANimation's attention, Pumarola et al. 2018): G paints a colour image and a mask
    # in [0, 1], and the edit is mask * colour + (1 - mask) * input. What an edit should leave alone is
    # copied from the input instead of being redrawn through the 4x-down-sampled bottleneck.
    mask: bool = False
    # Beyond the paper: dropout on D's last features before the attribute head only. On a few hundred
    # images the head memorises the training set, and G learns to paint what that head reads; a head
    # that must read attributes from a random part of its features asks G for edits that show everywhere.
    # (Measured on twemoji-faces: no gain at p = 0.5; checkpoints/README.md has the runs.)
    d_head_dropout: float = 0.0
    # Beyond the paper (U-Net's skip, Ronneberger et al. 2015): the first full-resolution features join the
    # output conv. Without it the output conv sees only what came back up through the 4x-down-sampled
    # bottleneck, so a mask cannot follow a region's pixel-exact border (a face's skin): edits come out as
    # blobs over the region's middle.
    skip: bool = False
    # A second U-Net skip, at half resolution: the features after G's first down-sampling join its last
    # up-sampling conv. With the full-resolution skip alone, where a region ends (a face's rim, a runner's
    # arm) is known only from the bottleneck's map, a quarter of the image's side, so masks come out
    # blurred and miss thin skin. Needs `skip`.
    half_skip: bool = False
    # The target vector scales and shifts the full-resolution skip's features before the output conv (FiLM,
    # Perez et al. 2018). The stem sees the target as constant channels, so after its InstanceNorm the target is
    # left only as a per-channel shift, the same at every pixel inside the border: the skip tells the output conv
    # what each pixel is (skin, hair) but not what it should become. Gains from the target let the same pixel
    # features map to each target's colour. Needs `skip`.
    skip_film: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.d_head_dropout < 1.0:
            raise ValueError(f"d_head_dropout must be in [0, 1), got {self.d_head_dropout}")
        if self.half_skip and not self.skip:
            raise ValueError("half_skip needs skip: the half-resolution skip joins the full-resolution one")
        if self.skip_film and not self.skip:
            raise ValueError("skip_film needs skip: it conditions the full-resolution skip's features")

    def to_dict(self) -> dict:
        return asdict(self)


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    # No running statistics: eval() must not change what the generator outputs.
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


MASK_START_LOGIT = -3.0  # a new masked G changes about 5% of each pixel: it starts near the identity edit


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), instance_norm(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StarGANGenerator(nn.Module):
    """G(x [B, C, H, W] in [-1, 1], c [B, num_attributes] float) -> edited image [B, C, H, W] in [-1, 1]."""

    def __init__(self, arch: StarGANArch):
        super().__init__()
        if arch.image_size % 4:
            raise ValueError(f"stargan image_size must be a multiple of 4, got {arch.image_size}")
        self.arch = arch
        w = arch.g_width
        stem: list[nn.Module] = [
            nn.Conv2d(arch.channels + arch.num_attributes, w, 7, 1, 3, bias=False), instance_norm(w), nn.ReLU(),
        ]
        body: list[nn.Module] = []
        for mult in (1, 2):  # two down-sampling convs
            body += [nn.Conv2d(w * mult, w * mult * 2, 4, 2, 1, bias=False), instance_norm(w * mult * 2), nn.ReLU()]
        body += [ResidualBlock(w * 4) for _ in range(arch.res_blocks)]
        for mult in (4, 2):  # two up-sampling convs; the last reads twice the width when the half skip joins it
            in_width = 2 * w * mult if mult == 2 and arch.half_skip else w * mult
            body += [nn.ConvTranspose2d(in_width, w * mult // 2, 4, 2, 1, bias=False),
                     instance_norm(w * mult // 2), nn.ReLU()]
        out_in = 2 * w if arch.skip else w
        if arch.mask:  # one more output channel: the mask's logit
            out = nn.Conv2d(out_in, arch.channels + 1, 7, 1, 3, bias=False)
            with torch.no_grad():
                out.weight[-1].zero_()  # the mask starts uniform, at sigmoid(MASK_START_LOGIT)
            self.mask_bias = nn.Parameter(torch.tensor(MASK_START_LOGIT))
            head: list[nn.Module] = [out]
        else:
            head = [nn.Conv2d(out_in, arch.channels, 7, 1, 3, bias=False), nn.Tanh()]
        if arch.half_skip:  # body split where the half-resolution features leave and where they come back
            self.stem, self.head = nn.Sequential(*stem), nn.Sequential(*head)
            self.down, self.middle = nn.Sequential(*body[:3]), nn.Sequential(*body[3:-3])
            self.up = nn.Sequential(*body[-3:])
        elif arch.skip:
            self.stem, self.body, self.head = nn.Sequential(*stem), nn.Sequential(*body), nn.Sequential(*head)
        else:  # one Sequential, as checkpoints written before the skip existed hold it
            self.main = nn.Sequential(*stem, *body, *head)
        if arch.skip_film:  # a gain and a shift per skip channel; zero: it starts as the plain skip
            self.skip_film = nn.Linear(arch.num_attributes, 2 * w)
            nn.init.zeros_(self.skip_film.weight), nn.init.zeros_(self.skip_film.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # The target attribute vector, tiled over the image, enters as extra input channels.
        tiled = c[:, :, None, None].to(x.dtype).expand(-1, -1, x.shape[2], x.shape[3])
        inputs = torch.cat([x, tiled], dim=1)
        if self.arch.skip:
            first = self.stem(inputs)
            h = self.head(torch.cat([self._back_up_from(first), self._conditioned(first, c)], dim=1))
        else:
            h = self.main(inputs)
        if not self.arch.mask:
            return h
        colour, mask = h[:, :-1].tanh(), (h[:, -1:] + self.mask_bias).sigmoid()
        # A convex combination of two images in [-1, 1]: the edit stays in range with no clamp.
        return mask * colour + (1.0 - mask) * x

    def _conditioned(self, skip: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The skip's features as the output conv reads them: with skip_film, scaled and shifted by the target."""
        if not self.arch.skip_film:
            return skip
        gain, shift = self.skip_film(c.to(skip.dtype))[:, :, None, None].chunk(2, dim=1)
        return skip * (1.0 + gain) + shift

    def _back_up_from(self, first: torch.Tensor) -> torch.Tensor:
        """The stem's features down through the bottleneck and back up to full resolution (skip mode)."""
        if not self.arch.half_skip:
            return self.body(first)
        half = self.down(first)
        return self.up(torch.cat([self.middle(half), half], dim=1))


class StarGANDiscriminator(nn.Module):
    """D(x, c) -> (PatchGAN source map [B, 1, h, w], attribute logits [B, num_attributes]).

    `c` [B, num_attributes]: the attributes each image should have (a real image's own, an edit's target); only a
    projection discriminator reads it.
    """

    def __init__(self, arch: StarGANArch, projection: bool = False):
        super().__init__()
        self.arch = arch
        final = arch.image_size // 2 ** arch.d_layers
        if final < 1 or arch.image_size % 2 ** arch.d_layers:
            raise ValueError(f"image_size {arch.image_size} is not divisible by 2**d_layers ({2 ** arch.d_layers})")
        layers: list[nn.Module] = [nn.Conv2d(arch.channels, arch.d_width, 4, 2, 1), nn.LeakyReLU(0.01)]
        width = arch.d_width
        for _ in range(1, arch.d_layers):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            width *= 2
        self.main = nn.Sequential(*layers)
        self.source = nn.Conv2d(width, 1, 3, 1, 1, bias=False)
        # The attribute head's kernel covers the whole final map, so it follows the image size.
        self.attributes = nn.Conv2d(width, arch.num_attributes, final, 1, 0, bias=False)
        self.head_dropout = nn.Dropout(arch.d_head_dropout)
        # Beyond the paper: a projection term on the source map (Miyato & Koyama 2018; StarGAN v2's per-domain
        # outputs do the same), so D reads how real an image looks *as an image with attributes c*. The plain
        # source map reads realness alone: an edit to the light tone that pales the skin and keeps the blond hair
        # looks like a real medium-light face, so only the attribute head can object to it. Zero at the start:
        # the D it extends, which also lets a resume switch it on. Registered last, so its weight is the last
        # parameter (what extending an optimizer's saved state on such a resume relies on).
        self.projection = None
        if projection:
            self.projection = nn.Linear(arch.num_attributes, width, bias=False)
            nn.init.zeros_(self.projection.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        source = self.source(h)
        if self.projection is not None:
            if c is None:
                raise ValueError("a projection discriminator needs c, the attributes each image should have")
            # Per patch: <W c, h_ij>, the inner product of the embedded attributes with the patch's features.
            source = source + (self.projection(c.to(h.dtype))[:, :, None, None] * h).sum(1, keepdim=True)
        return source, self.attributes(self.head_dropout(h)).flatten(1)
