"""Number-for-number checks against outputs of the original pi-GAN code."""

import pytest
import torch

from reference import close, formula_state_dict, formula_uniform, load_reference, max_rel
from discriminators import discriminators
from generators.generators import ImplicitGenerator3d
from generators.ray_marcher import fancy_integration
from siren import siren


@pytest.fixture(scope='module')
def reference():
    return load_reference()


@pytest.fixture(scope='module')
def generator(reference):
    spec = reference['generator']
    gen = ImplicitGenerator3d(getattr(siren, spec['model']), spec['z_dim'])
    state = formula_state_dict(spec['param_names_shapes_bounds'])
    assert list(state) == list(gen.state_dict()), 'state_dict keys or order differ from the original'
    gen.load_state_dict(state)
    return gen.eval()


def test_formula_self_check():
    assert torch.allclose(torch.from_numpy(formula_uniform(0, (4,))),
                          torch.tensor([0.8833108082, 0.5665615752, 0.5911897342, 0.1134503421], dtype=torch.float64))
    assert torch.allclose(torch.from_numpy(formula_uniform(2, (2, 3))),
                          torch.tensor([[0.9050652279, 0.7676622292, 0.6571215552],
                                        [0.9300702164, 0.2393185155, 0.7787740098]], dtype=torch.float64))


def test_mapping_network(reference, generator):
    spec = reference['generator']
    with torch.no_grad():
        frequencies, phase_shifts = generator.siren.mapping_network(spec['z'])
    assert close(frequencies, spec['mapping_frequencies'], 2e-4)
    assert close(phase_shifts, spec['mapping_phase_shifts'], 2e-4)


def test_siren_output(reference, generator):
    spec = reference['generator']
    with torch.no_grad():
        out = generator.siren(spec['points'], spec['z'], spec['ray_directions'])
    assert out.shape == spec['siren_output'].shape
    assert close(out, spec['siren_output'], 1e-3), max_rel(out, spec['siren_output'])


@pytest.mark.parametrize('index', range(6))
def test_renders(reference, generator, index):
    spec = reference['generator']
    case = spec['renders'][index]
    options = dict(spec['render_options'], h_mean=case['h_mean'], v_mean=case['v_mean'], h_stddev=0, v_stddev=0,
                   sample_dist=None, lock_view_dependence=case['lock_view_dependence'], perturb=False,
                   nerf_noise=0, hierarchical_sample=False, white_back=spec['white_back'], last_back=spec['last_back'])
    pixels, depth = generator.staged_forward(spec['z'], psi=1, **options)
    assert close(pixels, case['pixels']), max_rel(pixels, case['pixels'])
    assert close(depth, case['depth']), max_rel(depth, case['depth'])
    # forward (the training path) computes the same image.
    with torch.no_grad():
        train_pixels, pitch_yaw = generator(spec['z'], **options)
    assert close(train_pixels, case['pixels'])
    assert torch.allclose(pitch_yaw, torch.tensor([[case['v_mean'], case['h_mean']]] * 2))


@pytest.mark.parametrize('index', range(2))
def test_discriminator(reference, index):
    spec = reference['discriminator']
    disc = getattr(discriminators, spec['discriminator'])()
    state = formula_state_dict(spec['param_names_shapes_bounds'])
    assert list(state) == list(disc.state_dict())
    disc.load_state_dict(state)
    case = spec['cases'][index]
    with torch.no_grad():
        prediction, latent, position = disc(case['input'], case['alpha'])
    assert close(prediction, case['prediction'])
    assert close(latent, case['latent'])
    assert close(position, case['position'])


@pytest.mark.parametrize('index', range(8))
def test_integration(reference, index):
    spec = reference['integration']
    case = spec['cases'][index]
    rgb, depth, weights = fancy_integration(spec['rgb_sigma'], spec['z_vals'], noise_std=0,
                                            clamp_mode=case['clamp_mode'], white_back=case['white_back'],
                                            last_back=case['last_back'])
    assert close(rgb, case['rgb'])
    assert close(depth, case['depth'])
    assert close(weights, case['weights'])
