"""density_scale: the SIREN's raw density times a constant, the same in every path into the SIREN."""

import copy
import dataclasses
import math

import pytest
import torch

import curriculums
from checkpoints.builders import build_generator
from inference.meshing import density_grid
from inference.rendering import latent_from_seed
from settings import Settings


def networks(**changes):
    """SYNTHETIC_CPU's settings.Networks, 16 wide, with changes (not type-checked: build_generator checks)."""
    values = Settings.at_step(curriculums.get('SYNTHETIC_CPU'), 0).networks
    return dataclasses.replace(values, hidden_dim=16, **changes)


@pytest.mark.parametrize('fast_path', [True, False])
def test_scaled_density_equals_a_scaled_density_layer(fast_path):
    torch.manual_seed(0)
    scaled = build_generator(networks(density_scale=4.0))
    plain = copy.deepcopy(scaled)
    plain.density_scale = 1.0
    with torch.no_grad():  # the same network with its density layer's weights and bias times 4
        plain.siren.final_layer.weight.mul_(4)
        plain.siren.final_layer.bias.mul_(4)
    points, directions = torch.rand(2, 5, 3, 3) * 0.2 - 0.1, torch.nn.functional.normalize(torch.randn(2, 5, 3), dim=-1)
    frequencies, phase_shifts = scaled.siren.mapping_network(torch.randn(2, scaled.z_dim))
    out = scaled.evaluate_siren(points, directions, frequencies, phase_shifts, fast_path=fast_path)
    expected = plain.evaluate_siren(points, directions, frequencies, phase_shifts, fast_path=fast_path)
    assert torch.allclose(out, expected, atol=1e-5)
    unscaled = copy.deepcopy(scaled)
    unscaled.density_scale = 1.0
    reference = unscaled.evaluate_siren(points, directions, frequencies, phase_shifts, fast_path=fast_path)
    assert torch.allclose(out[..., :3], reference[..., :3])  # colour untouched
    assert torch.allclose(out[..., 3], 4 * reference[..., 3], atol=1e-5)


def test_meshing_sees_the_scaled_density():
    torch.manual_seed(0)
    generator = build_generator(networks(density_scale=2.5))
    latent = latent_from_seed(generator, 0, 1.0)
    scaled = density_grid(generator, latent, 8, 0.3, progress=False)
    generator.density_scale = 1.0
    plain = density_grid(generator, latent, 8, 0.3, progress=False)
    assert scaled.max() > 0
    assert torch.allclose(torch.from_numpy(scaled), 2.5 * torch.from_numpy(plain), atol=1e-4)


def test_default_is_the_original():
    unscaled = curriculums.extract_metadata(curriculums.get('SYNTHETIC_CPU'), 0)
    del unscaled['density_scale']
    assert build_generator(Settings.from_metadata(unscaled).networks).density_scale == 1.0


@pytest.mark.parametrize('value', [0, -1.0, math.nan, math.inf, '5', True])
def test_bad_values_are_refused(value):
    with pytest.raises(curriculums.ConfigError, match='density_scale must be a positive number'):
        build_generator(networks(density_scale=value))


def test_a_stage_cannot_change_it():
    with pytest.raises(curriculums.ConfigError, match="stage 2000 sets 'density_scale'.*whole run"):
        curriculums.apply_overrides(curriculums.get('SYNTHETIC_CPU'), {2000: {'density_scale': 5.0}})
    whole_run = curriculums.apply_overrides(curriculums.get('SYNTHETIC_CPU'), {'density_scale': 2.0})
    assert curriculums.extract_metadata(whole_run, 4000)['density_scale'] == 2.0
