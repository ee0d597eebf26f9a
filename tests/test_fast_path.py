"""The SIREN fast path (siren/fast_path/) computes what the eager path computes.

Both paths get the same seed before each render, so camera, jitter, nerf noise
and fine samples coincide (the fast path draws no random numbers).
"""

import functools
import os

import pytest
import torch

from generators.generators import ImplicitGenerator3d
from siren import fast_path, siren
from siren.fast_path import batched, cpu, sine_kernels
from siren.fast_path.worker_pool import for_each_chunk



def siren_classes():
    """Every SIREN class of siren/siren.py, found by what it is: a new class is covered without listing it."""
    return sorted(name for name, value in vars(siren).items()
                  if isinstance(value, type) and value.__module__ == siren.__name__ and not name.startswith('_')
                  and hasattr(value, 'forward_with_frequencies_phase_shifts'))


SIRENS = siren_classes()
OPTIONS = dict(img_size=8, fov=12, ray_start=0.88, ray_end=1.12, num_steps=6, h_stddev=0.3, v_stddev=0.155,
               sample_dist='gaussian', clamp_mode='relu', nerf_noise=0.5, white_back=False, last_back=False)
OUTPUT_TOLERANCE = 1e-4
GRADIENT_TOLERANCE = 1e-3  # relative: |g_fast - g_eager| / |g_eager|


@pytest.fixture(scope='module', params=SIRENS)
def generator(request):
    torch.manual_seed(0)
    return ImplicitGenerator3d(getattr(siren, request.param), z_dim=8, hidden_dim=16)


@pytest.fixture(params=['chunked', 'batched'])
def fast_path_kind(request, monkeypatch):
    """The CPU path in chunks of 2 rays (so images span many chunks and the workers
    share them), or the whole-batch path that CUDA and autocast use."""
    if request.param == 'chunked':
        monkeypatch.setattr(cpu, 'CHUNK_ACTIVATIONS', 2 * OPTIONS['num_steps'] * 16)
    else:
        monkeypatch.setattr(fast_path, 'kernel_for', lambda features: batched)
    return request.param


def render_and_backward(generator, fast, options, seed=1):
    torch.manual_seed(seed)
    z = torch.randn(2, generator.z_dim)
    loss_weights = torch.randn(2, 3, options['img_size'], options['img_size'])
    generator.fast_path = fast
    generator.zero_grad(set_to_none=True)
    pixels, pitch_yaw = generator(z, **options)
    (pixels * loss_weights).sum().backward()
    gradients = {name: p.grad.clone() for name, p in generator.named_parameters() if p.grad is not None}
    return pixels.detach(), pitch_yaw, gradients


def assert_same_gradients(fast, eager):
    assert fast.keys() == eager.keys()
    for name, reference in eager.items():
        error = (fast[name] - reference).norm() / reference.norm().clamp_min(1e-12)
        assert error < GRADIENT_TOLERANCE, (name, error.item())


@pytest.mark.parametrize('hierarchical_sample', [False, True])
@pytest.mark.parametrize('lock_view_dependence', [False, True])
def test_forward_and_gradients_match_eager(generator, fast_path_kind, hierarchical_sample, lock_view_dependence):
    options = dict(OPTIONS, hierarchical_sample=hierarchical_sample, lock_view_dependence=lock_view_dependence)
    fast_pixels, fast_pose, fast_grads = render_and_backward(generator, True, options)
    eager_pixels, eager_pose, eager_grads = render_and_backward(generator, False, options)
    assert torch.equal(fast_pose, eager_pose)
    assert (fast_pixels - eager_pixels).abs().max() < OUTPUT_TOLERANCE
    assert_same_gradients(fast_grads, eager_grads)


def test_staged_forward_matches_eager(generator, fast_path_kind):
    options = dict(OPTIONS, hierarchical_sample=True, lock_view_dependence=False, h_stddev=0, v_stddev=0)
    z = torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(2))
    results = {}
    for fast in (True, False):
        generator.fast_path = fast
        torch.manual_seed(3)
        results[fast] = generator.staged_forward(z, psi=0.7, max_batch_size=50, **options)
    for fast_result, eager_result in zip(results[True], results[False]):
        assert (fast_result - eager_result).abs().max() < OUTPUT_TOLERANCE


def test_curriculum_key_overrides_the_attribute(monkeypatch):
    generator = ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, z_dim=8, hidden_dim=16)
    calls = []
    monkeypatch.setattr('generators.generators.film_siren_forward',
                        lambda *args: calls.append(1) or fast_path.film_siren_forward(*args))
    z = torch.randn(1, 8)
    generator(z, **OPTIONS)
    assert calls and generator.fast_path
    calls.clear()
    generator(z, **OPTIONS, fast_path=False)
    generator.fast_path = False
    generator(z, **OPTIONS)
    assert not calls


def siren_inputs(net, seed, batch=2, rays=5, steps=7):
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(batch, rays, steps, 3, generator=generator) * 0.2 - 0.1
    directions = torch.nn.functional.normalize(torch.randn(batch, rays, 3, generator=generator), dim=-1)
    frequencies, phase_shifts = net.mapping_network(torch.randn(batch, net.z_dim, generator=generator))
    return points, directions, frequencies, phase_shifts


def eager_forward(net, points, directions, frequencies, phase_shifts):
    """forward_with_frequencies_phase_shifts on rays: points [B, R, S, 3], directions [B, R, 3] -> [B, R, S, 4]."""
    batch, rays, steps, _ = points.shape
    out = net.forward_with_frequencies_phase_shifts(
        points.reshape(batch, rays * steps, 3), frequencies, phase_shifts,
        ray_directions=directions.unsqueeze(2).expand(-1, -1, steps, -1).reshape(batch, rays * steps, 3))
    return out.reshape(batch, rays, steps, 4)


def output_and_all_gradients(function, net, inputs, loss_weights):
    """function's output and the gradients of a weighted sum of it w.r.t. every parameter and every input."""
    net.zero_grad(set_to_none=True)
    inputs = [x.detach().requires_grad_(True) for x in inputs]
    out = function(net, *inputs)
    (out * loss_weights).sum().backward()
    gradients = {name: p.grad for name, p in net.named_parameters() if p.grad is not None}
    gradients.update({f'input {index}': x.grad for index, x in enumerate(inputs)})
    return out.detach(), gradients


@pytest.mark.parametrize('kernel', ['cpu', 'batched'])
@pytest.mark.parametrize('name', SIRENS)
def test_every_siren_class_is_one_function_on_both_paths(name, kernel, monkeypatch):
    """The fast path folds FiLM from the SIREN's own layers: if the eager definition changes and the
    fast path does not follow, this fails, for every SIREN class and both kernels."""
    monkeypatch.setattr(fast_path, 'kernel_for', lambda features: {'cpu': cpu, 'batched': batched}[kernel])
    monkeypatch.setattr(cpu, 'CHUNK_ACTIVATIONS', 2 * 7 * 16)  # several chunks per image
    torch.manual_seed(9)
    net = getattr(siren, name)(z_dim=8, hidden_dim=16)
    inputs = siren_inputs(net, seed=9)
    loss_weights = torch.randn(2, 5, 7, 4)
    fast_out, fast_grads = output_and_all_gradients(fast_path.film_siren_forward, net, inputs, loss_weights)
    eager_out, eager_grads = output_and_all_gradients(eager_forward, net, inputs, loss_weights)
    assert (fast_out - eager_out).abs().max() < OUTPUT_TOLERANCE
    assert len(eager_grads) == len(list(net.parameters())) - len(list(net.mapping_network.parameters())) + 4
    assert_same_gradients(fast_grads, eager_grads)


def test_batched_path_matches_chunked(monkeypatch):
    """The path used on CUDA and under autocast, checked here on the CPU."""
    torch.manual_seed(4)
    net = siren.EmbeddingPiGAN256(z_dim=8, hidden_dim=16)
    inputs = siren_inputs(net, seed=4)
    outputs = []
    for kernel in (cpu, batched):
        monkeypatch.setattr(fast_path, 'kernel_for', lambda features: kernel)
        outputs.append(fast_path.film_siren_forward(net, *inputs))
    assert (outputs[0] - outputs[1]).abs().max() < 1e-5


def output_and_gradients(generator, fast_path, loss_weights, dtype):
    generator.zero_grad(set_to_none=True)
    inputs = siren_inputs(generator.siren, seed=7, rays=16)  # the mapping network runs in the graph each time
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = generator.evaluate_siren(*inputs, fast_path=fast_path)
    (out.float() * loss_weights).sum().backward()
    return out.detach().float(), torch.cat([p.grad.flatten() for p in generator.parameters()])


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_fast_path_is_as_accurate_as_autocast_eager(dtype):
    """Under autocast both paths drift from float32; the fast path no more than eager."""
    torch.manual_seed(7)
    generator = ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, z_dim=8, hidden_dim=32)
    loss_weights = torch.randn(2, 16, 7, 4)
    reference_out, reference_grad = output_and_gradients(generator, False, loss_weights, None)
    errors = {}
    for name, fast_path in (('eager', False), ('fast', True)):
        out, grad = output_and_gradients(generator, fast_path, loss_weights, dtype)
        errors[name] = ((out - reference_out).abs().max().item(),
                        ((grad - reference_grad).norm() / reference_grad.norm()).item())
    for fast_error, eager_error in zip(errors['fast'], errors['eager']):
        assert fast_error <= 1.5 * eager_error + 1e-3, errors


def saved_bytes(function, *args):
    """Bytes of the tensors autograd keeps for backward while function(*args) runs."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel() * tensor.element_size())
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(*args)
    return sum(sizes)


@pytest.mark.parametrize('autocast', [False, True])
def test_batched_path_keeps_less_than_half_the_activations(autocast, monkeypatch):
    """What sets training memory: the tensors saved for backward (CUDA keeps the same ones)."""
    monkeypatch.setattr(fast_path, 'kernel_for', lambda features: batched)
    torch.manual_seed(8)
    generator = ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, z_dim=8, hidden_dim=64)
    inputs = siren_inputs(generator.siren, seed=8, rays=64, steps=12)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        eager = saved_bytes(functools.partial(generator.evaluate_siren, fast_path=False), *inputs)
        fast = saved_bytes(functools.partial(fast_path.film_siren_forward, generator.siren), *inputs)
    activation = 2 * 64 * 12 * 64 * (2 if autocast else 4)  # one [B, N, hidden] tensor
    assert eager > 8 * activation  # at least one per layer
    # fast: the 9 pre-activations, plus the folded weights and inputs (small at real sizes)
    assert fast < 12 * activation and fast < 0.5 * eager, (fast / activation, eager / activation)


def test_backward_twice_with_retain_graph():
    torch.manual_seed(5)
    net = siren.TALLSIREN(z_dim=8, hidden_dim=16)
    points = torch.rand(1, 4, 3, 3) * 0.2
    directions = torch.nn.functional.normalize(torch.randn(1, 4, 3), dim=-1)
    frequencies, phase_shifts = net.mapping_network(torch.randn(1, 8))
    loss = fast_path.film_siren_forward(net, points, directions, frequencies, phase_shifts).square().sum()
    first = torch.autograd.grad(loss, net.network[3].layer.weight, retain_graph=True)[0]
    second = torch.autograd.grad(loss, net.network[3].layer.weight)[0]
    assert torch.equal(first, second)


@pytest.mark.parametrize('use_library', [True, False])
def test_sine_kernels_match_torch(use_library):
    if use_library and sine_kernels.library() is None:
        if os.environ.get('CI'):  # CI machines have a compiler: the kernels must be tested there
            pytest.fail('siren/fast_path/sine_kernels.c did not build')
        pytest.skip('no C compiler')
    add_bias_sin_ = sine_kernels.add_bias_sin_ if use_library else sine_kernels.add_bias_sin_torch_
    sin_and_mul_cos_ = sine_kernels.sin_and_mul_cos_ if use_library else sine_kernels.sin_and_mul_cos_torch_
    torch.manual_seed(6)
    z = torch.randn(12, 40) * 300  # pre-activations reach hundreds
    bias = torch.randn(3, 40) * 30
    expected_z = z + bias.repeat_interleave(4, 0)
    out = torch.empty_like(z)
    add_bias_sin_(z, bias, out, rows_per_bias=4)
    assert torch.allclose(z, expected_z)
    assert (out - torch.sin(expected_z.double())).abs().max() < 1e-6

    grad = torch.randn_like(z)
    expected_grad = grad.double() * torch.cos(z.double())
    sines = sin_and_mul_cos_(z, torch.empty_like(z), grad)
    assert (sines - torch.sin(z.double())).abs().max() < 1e-6
    assert (grad - expected_grad).abs().max() < 1e-5


def test_worker_errors_reach_the_caller():
    def body(chunk, state):
        if chunk == 3:
            raise ValueError('chunk 3')
    with pytest.raises(ValueError, match='chunk 3'):
        for_each_chunk(list(range(8)), body)
