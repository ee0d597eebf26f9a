"""SIREN networks conditioned by FiLM, as used by the pi-GAN generator.

Shapes used throughout:
    points / ray_directions  [batch, points, 3]
    frequencies / phase_shifts  [batch, (n_film_layers + 1) * hidden_dim]
    output  [batch, points, 4]   (rgb after sigmoid, then raw sigma)

forward_with_frequencies_phase_shifts is the eager definition. The fast path
(siren/fast_path/) evaluates the same network from the same pieces: features()
for the input, film() for the per-layer frequencies and phase shifts (the one
place they are mapped), FiLMLayer.folded() for FiLM folded into the weights,
and the density_head and colour_head layers. tests/test_fast_path.py checks
every SIREN class of this file on both paths.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- initialisers (names kept from the original release) ---------------------

def frequency_init(freq):
    """SIREN init for a layer whose output is multiplied by `freq`."""
    def init(m):
        if isinstance(m, nn.Linear):
            bound = math.sqrt(6 / m.weight.size(-1)) / freq
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
    return init


def first_layer_film_sine_init(m):
    if isinstance(m, nn.Linear):
        bound = 1 / m.weight.size(-1)
        with torch.no_grad():
            m.weight.uniform_(-bound, bound)


def modified_first_sine_init(m):
    """First-layer init of the embedding models: bound from the 3 coordinates only."""
    if isinstance(m, nn.Linear):
        with torch.no_grad():
            m.weight.uniform_(-1 / 3, 1 / 3)


def kaiming_leaky_init(m):
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0.2, mode='fan_in', nonlinearity='leaky_relu')


# --- building blocks -----------------------------------------------------------

class FiLMLayer(nn.Module):
    """Linear layer followed by sin(freq * x + phase_shift)."""

    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.layer = nn.Linear(input_dim, hidden_dim)

    def forward(self, x, freq, phase_shift):
        # x [B, N, in]; freq, phase_shift [B, hidden] are shared by all N points.
        x = self.layer(x)
        return torch.sin(freq.unsqueeze(1) * x + phase_shift.unsqueeze(1))

    def folded(self, freq, phase_shift):
        """This layer with FiLM folded into one weight and bias per image:
        sin(f (W x + b) + p) = sin((f W) x + (f b + p)).

        freq, phase_shift [B, hidden] -> weight [B, hidden, in], bias [B, hidden].
        """
        return freq.unsqueeze(2) * self.layer.weight, torch.addcmul(phase_shift, freq, self.layer.bias)


class CustomMappingNetwork(nn.Module):
    """z -> (frequencies, phase_shifts): an MLP of 3 LeakyReLU hidden layers."""

    def __init__(self, z_dim, map_hidden_dim, map_output_dim):
        super().__init__()
        self.film_width = map_output_dim // 2  # values in each of frequencies and phase_shifts
        self.network = nn.Sequential(
            nn.Linear(z_dim, map_hidden_dim), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(map_hidden_dim, map_hidden_dim), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(map_hidden_dim, map_hidden_dim), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(map_hidden_dim, map_output_dim))
        self.network.apply(kaiming_leaky_init)
        with torch.no_grad():
            self.network[-1].weight *= 0.25

    def forward(self, z):
        out = self.network(z)
        return out[..., :self.film_width], out[..., self.film_width:]


class UniformBoxWarp(nn.Module):
    """Scales a cube of side `sidelength` onto [-1, 1]^3."""

    def __init__(self, sidelength):
        super().__init__()
        self.scale_factor = 2 / sidelength

    def forward(self, coordinates):
        return coordinates * self.scale_factor


def sample_from_3dgrid(coordinates, grid):
    """Trilinear lookup. coordinates [B, N, 3] in [-1, 1]; grid [1 or B, C, D, H, W] -> [B, N, C]."""
    batch_size, n_points, _ = coordinates.shape
    features = F.grid_sample(grid.float().expand(batch_size, -1, -1, -1, -1),
                             coordinates.float().reshape(batch_size, 1, 1, n_points, 3),
                             mode='bilinear', padding_mode='zeros', align_corners=True)
    return features.reshape(batch_size, features.shape[1], n_points).transpose(1, 2)


# --- SIRENs ----------------------------------------------------------------------

N_FILM_LAYERS = 8


class _FiLMSiren(nn.Module):
    """Shared body of every pi-GAN SIREN.

    Attribute names and registration order match the original release, so its
    state_dict keys and parameters() order are the same.
    """

    first_layer_in = 3
    first_layer_init = staticmethod(first_layer_film_sine_init)

    # input_dim and device: the original's arguments, kept for its callers; neither is used (points are 3-D).
    def __init__(self, input_dim=2, z_dim=100, hidden_dim=256, output_dim=1, device=None):
        super().__init__()
        self.z_dim = z_dim
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim

        self.network = nn.ModuleList(
            [FiLMLayer(self.first_layer_in, hidden_dim)]
            + [FiLMLayer(hidden_dim, hidden_dim) for _ in range(N_FILM_LAYERS - 1)])
        self.final_layer = nn.Linear(hidden_dim, 1)
        self.color_layer_sine = FiLMLayer(hidden_dim + 3, hidden_dim)
        self.color_layer_linear = nn.Sequential(nn.Linear(hidden_dim, 3))
        self.mapping_network = CustomMappingNetwork(z_dim, 256, (N_FILM_LAYERS + 1) * hidden_dim * 2)

        for module in (self.network, self.final_layer, self.color_layer_sine, self.color_layer_linear):
            module.apply(frequency_init(25))
        self.network[0].apply(self.first_layer_init)

    def forward(self, input, z, ray_directions, **kwargs):
        frequencies, phase_shifts = self.mapping_network(z)
        return self.forward_with_frequencies_phase_shifts(input, frequencies, phase_shifts, ray_directions)

    def features(self, input):
        """Input of the first FiLM layer for world-space points [B, N, 3]."""
        return input

    def film(self, frequencies, phase_shifts):
        """The FiLM (frequency, phase shift) of each FiLM layer: the 8 of self.network, then the colour layer.

        frequencies, phase_shifts [B, 9 * hidden] (the mapping network's outputs) -> 9 pairs of [B, hidden].
        The mapping network's frequencies are centred on 30 (SIREN's w0) here, and nowhere else.
        """
        frequencies = frequencies * 15 + 30
        h = self.hidden_dim
        return [(frequencies[..., i * h:(i + 1) * h], phase_shifts[..., i * h:(i + 1) * h])
                for i in range(len(self.network) + 1)]

    @property
    def density_head(self):
        """Linear hidden -> 1: raw sigma from the last FiLM layer's output."""
        return self.final_layer

    @property
    def colour_head(self):
        """Linear hidden -> 3: rgb (before the sigmoid) from the colour layer's output."""
        return self.color_layer_linear[0]

    def forward_with_frequencies_phase_shifts(self, input, frequencies, phase_shifts, ray_directions, **kwargs):
        film = self.film(frequencies, phase_shifts)
        x = self.features(input)
        for layer, (freq, phase_shift) in zip(self.network, film):
            x = layer(x, freq, phase_shift)
        sigma = self.density_head(x)
        rgb = self.color_layer_sine(torch.cat([ray_directions, x], dim=-1), *film[-1])  # fold.py relies on this order
        rgb = torch.sigmoid(self.colour_head(rgb))
        return torch.cat([rgb, sigma], dim=-1)


class TALLSIREN(_FiLMSiren):
    """Primary SIREN architecture of pi-GAN (used for CARLA)."""


class SPATIALSIRENBASELINE(_FiLMSiren):
    """TALLSIREN with the input points first scaled by UniformBoxWarp(0.24)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gridwarper = UniformBoxWarp(0.24)

    def features(self, input):
        return self.gridwarper(input)


class EmbeddingPiGAN128(_FiLMSiren):
    """SIREN that also reads a learned 3D feature volume (32 channels)."""

    first_layer_in = 32 + 3
    first_layer_init = staticmethod(modified_first_sine_init)
    embedding_size = 96
    embedding_scale = 0.01

    def __init__(self, input_dim=2, z_dim=100, hidden_dim=128, output_dim=1, device=None):
        super().__init__(input_dim, z_dim, hidden_dim, output_dim, device)
        size = self.embedding_size
        self.spatial_embeddings = nn.Parameter(torch.randn(1, 32, size, size, size) * self.embedding_scale)
        self.gridwarper = UniformBoxWarp(0.24)

    def features(self, input):
        warped = self.gridwarper(input)
        return torch.cat([sample_from_3dgrid(warped, self.spatial_embeddings), warped], -1)


class EmbeddingPiGAN256(EmbeddingPiGAN128):
    embedding_size = 64
    embedding_scale = 0.1

    def __init__(self, input_dim=2, z_dim=100, hidden_dim=256, output_dim=1, device=None):
        super().__init__(input_dim, z_dim, hidden_dim, output_dim, device)
