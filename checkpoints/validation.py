"""Checks of what a checkpoint file held, after the safe unpickling and before any of it is used.

A file that loads is not yet a good checkpoint: each function here checks the
types, shapes and values of one kind of content, returns a clean copy (plain
dicts, so a state dict's `_metadata` cannot change how weights are assigned)
and raises CheckpointError naming the file and the first thing that is wrong.
"""

import math

import torch

from curriculums import ConfigError

from . import limits
from .builders import DISCRIMINATOR_CLASSES, GENERATOR_CLASSES, SIREN_CLASSES
from .format import CheckpointError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def fail(path, message):
    raise CheckpointError(f"{path}: {message}")


def check_dict(value, path, what):
    if not isinstance(value, dict):
        fail(path, f"{what} is a {type(value).__name__}, not a dict")
    return value


def check_count(value, path, what, minimum=0):
    """A whole number >= minimum (not a bool, string or float)."""
    if type(value) is not int or value < minimum:
        fail(path, f"{what} must be a whole number >= {minimum}, not {limits.short_repr(value)}")
    return value


def check_number(value, path, what, low=-math.inf, high=math.inf):
    if type(value) not in (int, float) or not low <= value <= high:
        fail(path, f"{what} must be a number in [{low}, {high}], not {limits.short_repr(value)}")
    return float(value)


def check_plain(value, path, what, depth=0, budget=None):
    """Plain data (curricula, options): None, numbers, strings, lists/tuples and dicts with str/int keys.

    At most limits.MAX_NESTING levels and limits.MAX_PLAIN_ITEMS values in all, counting a
    shared list each time it is met (a few references can otherwise stand for billions of values).
    """
    budget = [limits.MAX_PLAIN_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        fail(path, f"{what} holds more than {limits.MAX_PLAIN_ITEMS} values")
    if depth > limits.MAX_NESTING:
        fail(path, f"{what} nests deeper than {limits.MAX_NESTING} levels (or contains itself)")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return type(value)(check_plain(item, path, what, depth + 1, budget) for item in value)
    if isinstance(value, dict):
        clean = {}
        for key, item in value.items():
            if type(key) not in (str, int):
                fail(path, f"{what} has a key of type {type(key).__name__}")
            clean[key] = check_plain(item, path, f"{what}[{key!r}]" if depth < 3 else what, depth + 1, budget)
        return clean
    fail(path, f"{what} holds a {type(value).__name__}, where only plain values belong")


def check_tensor(value, path, what, finite=True):
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
        fail(path, f"{what} is a {type(value).__name__}, not a dense tensor")
    if value.dtype not in FLOAT_DTYPES:
        fail(path, f"{what} has dtype {value.dtype}, not a floating-point type")
    if finite and not bool(torch.isfinite(value).all()):
        fail(path, f"{what} contains NaN or Inf values")
    return value.detach()


def check_tensor_dict(value, path, what):
    """{name: float tensor} with finite values, as a plain dict."""
    check_dict(value, path, what)
    clean = {}
    for name, tensor in value.items():
        if type(name) is not str:
            fail(path, f"{what} has a key of type {type(name).__name__}")
        clean[name] = check_tensor(tensor, path, f"{what} entry {name!r}")
    return clean


def check_matches(state, expected, path, what):
    """Same names and shapes as expected {name: tensor}."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}"] if extra else [])
        fail(path, f"{what} does not match the network ({'; '.join(parts)})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            fail(path, f"{what} entry {name!r} has shape {tuple(tensor.shape)}, the network's is "
                       f"{tuple(expected[name].shape)}")


def load_module_state(module, state, path, what='state_dict'):
    """module.load_state_dict(state) after checking names and shapes, so nothing half-loads."""
    state = check_tensor_dict(state, path, what)
    check_matches(state, module.state_dict(), path, what)
    module.load_state_dict(state)


def check_header(value, path, fmt):
    if not isinstance(value, dict) or value.get('format') != fmt:
        fail(path, f"not a '{fmt}' file of this project")
    return value


def check_generator_file(value, path, fmt):
    """The generator.pth of this project: its header, step/epoch, weights and curriculum."""
    check_header(value, path, fmt)
    return {
        'state_dict': check_tensor_dict(value.get('state_dict'), path, 'state_dict'),
        'step': check_count(value.get('step'), path, 'step'),
        'epoch': check_count(value.get('epoch', 0), path, 'epoch'),
        'curriculum_name': check_plain(value.get('curriculum_name'), path, 'curriculum_name'),
        'curriculum': check_curriculum(value.get('curriculum'), path),
        'options': check_plain(value.get('options') or {}, path, 'options'),
    }


def check_curriculum(value, path):
    if value is None:
        return None
    curriculum = check_plain(check_dict(value, path, 'curriculum'), path, 'curriculum')
    for key, known in (('model', SIREN_CLASSES), ('generator', GENERATOR_CLASSES),
                       ('discriminator', DISCRIMINATOR_CLASSES)):
        if key in curriculum and curriculum[key] not in known:
            fail(path, f"its curriculum names an unknown {key} {limits.short_repr(curriculum[key])}; "
                       f"known: {', '.join(known)}")
    check_architecture(curriculum, path, 'curriculum')
    return curriculum


def check_architecture(values, path, what):
    """limits.check_architecture on values read from the file at path, refused as that file's problem."""
    try:
        limits.check_architecture(values, f"{path}: {what}")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None


def check_ema_file(value, path, fmt, parameters=None):
    """An EMA file of this project: decay, num_updates and shadow tensors (matching parameters if given)."""
    check_header(value, path, fmt)
    state = {'decay': check_number(value.get('decay'), path, 'decay', 0.0, 1.0),
             'num_updates': check_count(value.get('num_updates'), path, 'num_updates'),
             'shadow': check_tensor_dict(value.get('shadow'), path, 'EMA shadow')}
    if 'step' in value:
        state['step'] = check_count(value['step'], path, 'step')
    if parameters is not None:
        check_matches(state['shadow'], parameters, path, 'EMA shadow')
    return state


def check_discriminator_file(value, path, fmt, known_names):
    check_header(value, path, fmt)
    name = value['discriminator'] if 'discriminator' in value else None  # the file's field
    if name not in known_names:
        fail(path, f"names an unknown discriminator {limits.short_repr(name)}")
    return {'state_dict': check_tensor_dict(value.get('state_dict'), path, 'state_dict'), 'discriminator': name,
            'step': check_count(value.get('step'), path, 'step'),
            'epoch': check_count(value.get('epoch', 0), path, 'epoch')}


def check_optimizer_file(value, path, optimizer):
    """An Adam state_dict() that fits optimizer: its groups, parameter indices and moment shapes."""
    check_dict(value, path, 'optimizer state')
    groups, state = value.get('param_groups'), check_dict(value.get('state'), path, "optimizer 'state'")
    ours = optimizer.state_dict()['param_groups']
    if type(groups) is not list or len(groups) != len(ours):
        fail(path, f"has {limits.short_repr(groups) if type(groups) is not list else len(groups)} parameter "
                   f"groups, the optimizer has {len(ours)}")
    shapes = {}
    for group, our_group, params in zip(groups, ours, optimizer.param_groups):
        check_dict(group, path, 'a parameter group')
        indices = group.get('params')
        if type(indices) is not list or [type(i) for i in indices] != [int] * len(indices) \
                or len(indices) != len(our_group['params']):
            fail(path, f"a parameter group lists {limits.short_repr(indices)} instead of "
                       f"{len(our_group['params'])} parameter indices")
        shapes.update(zip(indices, (p.shape for p in params['params'])))
        for key, setting in group.items():
            if key != 'params':
                check_plain(setting, path, f"optimizer setting {key!r}")
    for index, entry in state.items():
        if index not in shapes:
            fail(path, f"holds optimizer state for parameter {limits.short_repr(index)}, which no group lists")
        for key, tensor in check_dict(entry, path, f"optimizer state {index}").items():
            if key == 'step':
                step = tensor.item() if isinstance(tensor, torch.Tensor) and tensor.numel() == 1 else tensor
                check_number(step, path, f"optimizer step of parameter {index}", 0)
                continue
            check_tensor(tensor, path, f"optimizer {key} of parameter {index}")
            if tensor.shape != shapes[index]:
                fail(path, f"optimizer {key} of parameter {index} has shape {tuple(tensor.shape)}, "
                           f"the parameter's is {tuple(shapes[index])}")
    return value


SCALER_KEYS = {'scale': (0.0, math.inf), 'growth_factor': (1.0, math.inf), 'backoff_factor': (0.0, 1.0),
               'growth_interval': (1, math.inf), '_growth_tracker': (0, math.inf)}


def check_scaler_file(value, path):
    check_dict(value, path, 'GradScaler state')
    for key, setting in value.items():
        if key not in SCALER_KEYS:
            fail(path, f"GradScaler state has an unknown key {limits.short_repr(key)}")
        check_number(setting, path, f"GradScaler {key}", *SCALER_KEYS[key])
    return value


def check_training_state_file(value, path):
    check_dict(value, path, 'training state')
    clean = {key: check_count(value.get(key), path, key) for key in ('step', 'epoch', 'epoch_position')}
    states = value.get('rng_states')
    if type(states) is not list or not states:
        fail(path, "rng_states is not a list of per-rank random states")
    cpu_size = torch.get_rng_state().numel()
    for rank, state in enumerate(states):
        check_dict(state, path, f"rng_states[{rank}]")
        for device, tensor in state.items():
            if device not in ('cpu', 'cuda') or not isinstance(tensor, torch.Tensor) \
                    or tensor.dtype != torch.uint8 or tensor.dim() != 1 \
                    or (device == 'cpu' and tensor.numel() != cpu_size):
                fail(path, f"rng_states[{rank}] entry {limits.short_repr(device)} is not a random generator state")
    clean['rng_states'] = states
    digests = value.get('rank_param_digests', [])
    if type(digests) is not list or not all(type(d) is str for d in digests):
        fail(path, "rank_param_digests is not a list of digests")
    clean['rank_param_digests'] = digests
    return clean


def check_latent_file(value, path, generator):
    """A latent.pt of inverse_render.py: finite frequencies and phase shifts [1, F] that fit generator."""
    check_dict(value, path, 'latent file')
    width = generator.siren.mapping_network.film_width
    tensors = []
    for key in ('frequencies', 'phase_shifts'):
        tensor = check_tensor(value.get(key), path, key)
        if tensor.dim() != 2 or tensor.shape[0] != 1 or tensor.shape[1] != width:
            fail(path, f"{key} has shape {tuple(tensor.shape)}; this generator needs (1, {width})")
        tensors.append(tensor.float())
    return tensors
