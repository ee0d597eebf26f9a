"""Progressive-growing discriminators of pi-GAN.

Every discriminator is called as d(images [B, 3, S, S], alpha, instance_noise=0, scale=None), explicit
arguments only (no curriculum keys: the training step passes what a discriminator reads), and returns
(prediction [B, 1], latent [B, 256] or None, position [B, 2] or None).
`alpha` in [0, 1] fades in the newest resolution: the first block's output is
blended with the next adapter applied to the half-size image.

Patch training (training/patches.py) shows it patches of the images: built with
`scale_channel=True`, d(patches, alpha, scale=[B]) sees each patch's scale (its side
over the image's; None: 1, whole images) as a fourth, constant input channel of every
fromRGB adapter, i.e. a learnt per-channel offset w * scale added before its activation
(EpiGRAF conditions its discriminator on the scale too).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT_DIM = 256
POSITION_DIM = 2


def kaiming_leaky_init(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight, a=0.2, mode='fan_in', nonlinearity='leaky_relu')


class AdapterBlock(nn.Module):
    """fromRGB: 1x1 conv from 3 channels (4 with a scale channel), then LeakyReLU."""

    def __init__(self, output_channels, input_channels=3):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(input_channels, output_channels, 1, padding=0), nn.LeakyReLU(0.2))

    def forward(self, input):
        return self.model(input)


class AddCoords(nn.Module):
    """Appends two channels holding the row and column coordinate, each in [-1, 1]."""

    def __init__(self, with_r=False):
        super().__init__()
        self.with_r = with_r

    def forward(self, input_tensor):
        batch, _, height, width = input_tensor.shape
        rows = torch.linspace(-1, 1, height, device=input_tensor.device, dtype=input_tensor.dtype)
        cols = torch.linspace(-1, 1, width, device=input_tensor.device, dtype=input_tensor.dtype)
        row_channel = rows.view(1, 1, height, 1).expand(batch, 1, height, width)
        col_channel = cols.view(1, 1, 1, width).expand(batch, 1, height, width)
        channels = [input_tensor, row_channel, col_channel]
        if self.with_r:
            channels.append(torch.sqrt((row_channel - 0.5) ** 2 + (col_channel - 0.5) ** 2))
        return torch.cat(channels, dim=1)


class CoordConv(nn.Module):
    def __init__(self, in_channels, out_channels, with_r=False, **kwargs):
        super().__init__()
        self.addcoords = AddCoords(with_r=with_r)
        self.conv = nn.Conv2d(in_channels + 2 + int(with_r), out_channels, **kwargs)

    def forward(self, x):
        return self.conv(self.addcoords(x))


def _residual(y, identity):
    return (y + identity) / math.sqrt(2)


class ResidualCoordConvBlock(nn.Module):
    """Two CoordConvs, then (optionally) 2x average-pool downsampling, with a skip."""

    def __init__(self, inplanes, planes, kernel_size=3, stride=1, downsample=False, groups=1):
        super().__init__()
        p = kernel_size // 2
        self.network = nn.Sequential(
            CoordConv(inplanes, planes, kernel_size=kernel_size, stride=stride, padding=p),
            nn.LeakyReLU(0.2, inplace=True),
            CoordConv(planes, planes, kernel_size=kernel_size, padding=p),
            nn.LeakyReLU(0.2, inplace=True))
        self.proj = nn.Conv2d(inplanes, planes, 1) if inplanes != planes else None
        self.downsample = downsample

    def forward(self, identity):
        y = self.network(identity)
        if self.downsample:
            y = F.avg_pool2d(y, 2)
            identity = F.avg_pool2d(identity, 2)
        if self.proj is not None:
            identity = self.proj(identity)
        return _residual(y, identity)


class StridedResidualConvBlock(nn.Module):
    """Conv, then a stride-2 conv, with a stride-2 1x1 projection as the skip."""

    conv = nn.Conv2d

    def __init__(self, inplanes, planes, kernel_size=3):
        super().__init__()
        p = kernel_size // 2
        self.network = nn.Sequential(
            self.conv(inplanes, planes, kernel_size=kernel_size, padding=p),
            nn.LeakyReLU(0.2, inplace=True),
            self.conv(planes, planes, kernel_size=kernel_size, stride=2, padding=p),
            nn.LeakyReLU(0.2, inplace=True))
        self.network.apply(kaiming_leaky_init)
        self.proj = nn.Conv2d(inplanes, planes, 1, stride=2)

    def forward(self, input):
        return _residual(self.network(input), self.proj(input))


class ResidualCCBlock(StridedResidualConvBlock):
    """StridedResidualConvBlock built from CoordConvs."""

    conv = CoordConv


class _ProgressiveBase(nn.Module):
    """A stack of downsampling blocks, entered at the block matching the input size.

    channels[i] is the width entering block i; fromRGB[i] maps RGB to it.
    """

    channels = ()
    n_outputs = 1
    noise_on_input = False  # where instance noise is added: on the RGB input or after fromRGB

    def __init__(self, scale_channel=False):
        super().__init__()
        self.epoch = 0
        self.step = 0
        self.scale_channel = scale_channel
        self.layers = nn.ModuleList([self.make_block(c_in, c_out)
                                     for c_in, c_out in zip(self.channels[:-1], self.channels[1:])])
        self.fromRGB = nn.ModuleList([AdapterBlock(c, 3 + scale_channel) for c in self.channels])
        self.final_layer = nn.Conv2d(self.channels[-1], self.n_outputs, 2)
        n = len(self.layers)
        self.img_size_to_layer = {2 ** (n + 1 - i): i for i in range(n + 1)}

    def make_block(self, inplanes, planes):
        raise NotImplementedError

    def forward(self, input, alpha, instance_noise=0, scale=None):
        size = input.shape[-1]
        if size not in self.img_size_to_layer or input.shape[-2] != size:
            raise ValueError(f"{type(self).__name__} takes square images of size "
                             f"{sorted(self.img_size_to_layer)}, got {tuple(input.shape[-2:])}")
        if instance_noise > 0 and self.noise_on_input:
            input = input + torch.randn_like(input) * instance_noise
        start = self.img_size_to_layer[size]
        x = self.from_rgb(start, input, scale)
        if instance_noise > 0 and not self.noise_on_input:
            x = x + torch.randn_like(x) * instance_noise
        for i, layer in enumerate(self.layers[start:]):
            if i == 1 and alpha < 1:
                half = F.interpolate(input, scale_factor=0.5, mode='nearest')
                x = alpha * x + (1 - alpha) * self.from_rgb(start + 1, half, scale)
            x = layer(x)
        x = self.final_layer(x).reshape(x.shape[0], -1)
        if self.n_outputs == 1:
            return x, None, None
        return x[..., :1], x[..., 1:1 + LATENT_DIM], x[..., 1 + LATENT_DIM:1 + LATENT_DIM + POSITION_DIM]

    def from_rgb(self, index, images, scale):
        """fromRGB[index] of images [B, 3, S, S]; with a scale channel, scale [B] (None: 1) is a fourth channel."""
        if self.scale_channel:
            scale = images.new_ones(images.shape[0]) if scale is None else scale.to(images.dtype)
            images = torch.cat([images, scale.view(-1, 1, 1, 1).expand(-1, 1, *images.shape[-2:])], 1)
        return self.fromRGB[index](images)


class ProgressiveDiscriminator(_ProgressiveBase):
    """ResidualCoordConv blocks with average-pool downsampling; images of 2 to 512."""

    channels = (16, 32, 64, 128, 256, 400, 400, 400, 400)

    def __init__(self, scale_channel=False):
        super().__init__(scale_channel)

    def make_block(self, inplanes, planes):
        return ResidualCoordConvBlock(inplanes, planes, downsample=True)

    def forward(self, input, alpha, instance_noise=0, scale=None):
        # The original ignores instance noise here.
        return super().forward(input, alpha, 0, scale)


class ProgressiveEncoderDiscriminator(ProgressiveDiscriminator):
    """ProgressiveDiscriminator that also predicts the latent z and the camera (pitch, yaw)."""

    n_outputs = 1 + LATENT_DIM + POSITION_DIM
    noise_on_input = True

    def forward(self, input, alpha, instance_noise=0, scale=None):
        return _ProgressiveBase.forward(self, input, alpha, instance_noise, scale)


class StridedDiscriminator(_ProgressiveBase):
    """Strided residual conv blocks; images of 2 to 256."""

    channels = (32, 64, 128, 256, 400, 400, 400, 400)

    def __init__(self, scale_channel=False):
        super().__init__(scale_channel)
        self.pose_layer = nn.Linear(2, 400)  # unused; kept so original checkpoints load

    def make_block(self, inplanes, planes):
        return StridedResidualConvBlock(inplanes, planes)


class CCSDiscriminator(StridedDiscriminator):
    """StridedDiscriminator with CoordConv blocks."""

    def make_block(self, inplanes, planes):
        return ResidualCCBlock(inplanes, planes)


class CCSEncoderDiscriminator(_ProgressiveBase):
    """CCSDiscriminator that also predicts the latent z and the camera (pitch, yaw)."""

    channels = StridedDiscriminator.channels
    n_outputs = 1 + LATENT_DIM + POSITION_DIM

    def __init__(self, scale_channel=False):
        super().__init__(scale_channel)

    def make_block(self, inplanes, planes):
        return ResidualCCBlock(inplanes, planes)


class NarrowCCSEncoderDiscriminator(CCSEncoderDiscriminator):
    """CCSEncoderDiscriminator with far fewer channels at high resolution, for CPU training.

    The original's 256-400 channels at 16x16 to 32x32 (with R1's double backward) took several
    times the generator's time per step on a CPU; these widths keep the same blocks, outputs
    and sizes (2 to 256) at a fraction of the cost.
    """

    channels = (16, 32, 32, 32, 64, 128, 256, 256)
