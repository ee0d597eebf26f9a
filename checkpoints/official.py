"""Reads checkpoints of the original pi-GAN release without running its code.

The original train.py saved whole pickled modules: generator.pth is an
`ImplicitGenerator3d` (with its SIREN inside) and ema.pth a torch_ema
`ExponentialMovingAverage`. Unpickling them normally would import and run
whatever classes the file names. Instead, torch's weights_only unpickler is
given a stand-in for each expected class name: a stub that only records its
pickled state. Loading then builds stubs, tensors and plain containers, and a
file naming anything else is refused before any of it is called.
"""

from pathlib import Path
from types import MappingProxyType

import torch

import curriculums
from settings import Settings
from . import limits, validation
from .builders import SIREN_CLASSES, build_generator, resolve_curriculum
from .format import CheckpointError, safe_load
ORIGINAL_CLASSES = (
    'generators.generators.ImplicitGenerator3d',
    *(f'siren.siren.{name}' for name in SIREN_CLASSES),
    'siren.siren.FiLMLayer',
    'siren.siren.CustomMappingNetwork',
    'siren.siren.UniformBoxWarp',
    'siren.siren.Sine',
    'torch.nn.modules.linear.Linear',
    'torch.nn.modules.activation.LeakyReLU',
    'torch.nn.modules.activation.Sigmoid',
    'torch.nn.modules.container.Sequential',
    'torch.nn.modules.container.ModuleList',
    'torch_ema.ema.ExponentialMovingAverage',
)


class PickledObject:
    """Stand-in for a class named in an original checkpoint: holds its state, runs nothing."""

    original_name = None
    state = MappingProxyType({})  # until a pickled state arrives (a file may never send one)

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {'state': state}

    def __repr__(self):
        return f'<pickled {self.original_name}>'


# One stub class per name, so that an object still tells which class it stood for.
STUBS = {name: type(name.rsplit('.', 1)[-1], (PickledObject,), {'original_name': name})
         for name in ORIGINAL_CLASSES}


# The globals an original pickle names, as 'module name' (the stubs above, and the set of a
# module's non-persistent buffer names).
ORIGINAL_GLOBALS = frozenset({name.rsplit('.', 1)[0] + ' ' + name.rsplit('.', 1)[1] for name in ORIGINAL_CLASSES}
                             | {'__builtin__ set', 'builtins set'})


def read_original_pickle(path, what):
    """The object tree of an original checkpoint (or of this project's: callers tell them apart), with
    stubs in place of the original's classes."""
    return safe_load(path, what, extra_globals=ORIGINAL_GLOBALS, stand_ins=STUBS)


def is_original(obj):
    return isinstance(obj, PickledObject)


def module_state_dict(root, path):
    """state_dict of a pickled nn.Module stub: its parameters and buffers, then its children's.

    The tree comes from the file, so every level is checked: dicts where dicts
    belong, tensors for weights, a bounded depth and no module met twice (cycles).
    """
    state, seen = {}, set()
    pending = [(root, '', 0)]
    while pending:
        stub, prefix, depth = pending.pop(0)
        where = prefix.rstrip('.') or 'the top level'
        if not isinstance(stub, PickledObject):
            validation.fail(path, f"expected a pickled module at {where}, found a {type(stub).__name__}")
        if id(stub) in seen or depth > limits.MAX_MODULE_DEPTH:
            validation.fail(path, f"its modules contain themselves or nest deeper than {limits.MAX_MODULE_DEPTH} "
                                  f"levels (at {where})")
        seen.add(id(stub))
        skipped = stub.state.get('_non_persistent_buffers_set') or set()
        if not isinstance(skipped, (set, frozenset)):
            validation.fail(path, f"_non_persistent_buffers_set of {where} is not a set")
        for group in ('_parameters', '_buffers'):
            entries = validation.check_dict(stub.state.get(group) or {}, path, f"{group} of {where}")
            for name, value in entries.items():
                if type(name) is not str:
                    validation.fail(path, f"{group} of {where} has a key of type {type(name).__name__}")
                if value is not None and name not in skipped:
                    state[prefix + name] = validation.check_tensor(value, path, f"weight {prefix + name}")
        children = validation.check_dict(stub.state.get('_modules') or {}, path, f"_modules of {where}")
        for name, child in children.items():
            if type(name) is not str:
                validation.fail(path, f"_modules of {where} has a key of type {type(name).__name__}")
            if child is not None:
                pending.append((child, f'{prefix}{name}.', depth + 1))
    return state


def read_official_generator(path, generator=None):
    """Architecture, weights and progress of an original generator.pth (generator: its object tree, if read)."""
    generator = read_original_pickle(path, 'generator checkpoint') if generator is None else generator
    if getattr(generator, 'original_name', None) != 'generators.generators.ImplicitGenerator3d':
        raise CheckpointError(f"{path} does not hold a pickled ImplicitGenerator3d "
                              f"(found {getattr(generator, 'original_name', type(generator).__name__)})")
    modules = validation.check_dict(generator.state.get('_modules') or {}, path, "the generator's _modules")
    siren = modules.get('siren')
    if not isinstance(siren, PickledObject) or siren.original_name.rsplit('.', 1)[-1] not in SIREN_CLASSES:
        raise CheckpointError(f"{path}: the generator's SIREN is not one of {', '.join(SIREN_CLASSES)}")
    state_dict = module_state_dict(generator, path)
    try:  # sizes from the weights themselves, whatever attributes the pickle kept
        hidden_dim = state_dict['siren.network.0.layer.weight'].shape[0]
        latent_dim = state_dict['siren.mapping_network.network.0.weight'].shape[1]
    except (KeyError, IndexError) as missing:
        raise CheckpointError(f"{path}: the pickled generator has no usable {missing} weights") from None
    # Checked here, where the file is known: the network is built from these sizes later.
    validation.check_architecture({'hidden_dim': int(hidden_dim), 'latent_dim': int(latent_dim)}, path, 'its weights')
    return {
        'state_dict': state_dict,
        'model': siren.original_name.rsplit('.', 1)[-1],
        'latent_dim': int(latent_dim),
        'hidden_dim': int(hidden_dim),
        'step': validation.check_count(generator.state.get('step', 0), path, 'step'),
        'epoch': validation.check_count(generator.state.get('epoch', 0), path, 'epoch'),
    }


def read_official_ema(path, parameters, ema=None):
    """{parameter name: averaged tensor} from an original torch_ema ema.pth (ema: its object, if read).

    torch_ema keeps the averages as a list in the generator's parameters()
    order, which is the order of parameters ({name: tensor}); their shapes must match.
    """
    ema = read_original_pickle(path, 'EMA checkpoint') if ema is None else ema
    if getattr(ema, 'original_name', None) != 'torch_ema.ema.ExponentialMovingAverage':
        raise CheckpointError(f"{path} is not an EMA checkpoint (this project's or the original's)")
    shadow = ema.state.get('shadow_params')
    if type(shadow) is not list:
        validation.fail(path, f"shadow_params is a {type(shadow).__name__}, not a list of tensors")
    if len(shadow) != len(parameters):
        raise CheckpointError(f"{path} holds {len(shadow)} averaged parameters but the generator has "
                              f"{len(parameters)}; is it the EMA of this generator?")
    averages = {}
    for (name, param), value in zip(parameters.items(), shadow):
        averages[name] = validation.check_tensor(value, path, f"averaged {name}")
        if value.shape != param.shape:
            validation.fail(path, f"averaged {name} has shape {tuple(value.shape)}, expected {tuple(param.shape)}")
    num_updates = ema.state.get('num_updates')
    return {
        'decay': validation.check_number(ema.state.get('decay', 0.999), path, 'decay', 0.0, 1.0),
        'num_updates': 0 if num_updates is None else validation.check_count(num_updates, path, 'num_updates'),
        'shadow': averages,
    }


def official_settings(original, curriculum, overrides, path):
    """(curriculum, settings.Settings at the checkpoint's step) for the original generator read from path
    (original: read_official_generator's)."""
    if not curriculum:
        raise CheckpointError(f"{path} is a checkpoint of the original pi-GAN release, which does not record "
                              "its curriculum: pass --curriculum CelebA|CATS|CARLA (the one it was trained with)")
    if curriculum not in curriculums.CURRICULA:
        raise CheckpointError(f"unknown curriculum {curriculum!r}; choose one of {', '.join(curriculums.CURRICULA)}")
    # The pickled architecture wins over the named curriculum's.
    architecture = {'model': original['model'], 'latent_dim': original['latent_dim'],
                    'hidden_dim': original['hidden_dim'],
                    'density_scale': 1.0}  # the original's density is unscaled, whatever the named curriculum
    full = resolve_curriculum(None, curriculum, {**architecture, **(overrides or {})})
    return full, Settings.at_step(full, original['step'])


def build_official_generator(path, ema_path, networks, original=None):
    """Our generator (networks: settings.Networks) holding the original's weights (EMA averages if ema_path
    is given), on the CPU."""
    original = original or read_official_generator(path)
    generator = build_generator(networks)
    validation.load_module_state(generator, original['state_dict'], path, f"the {networks.model} weights")
    if ema_path is not None:
        ema_path = Path(ema_path)
        if not ema_path.is_file():
            raise CheckpointError(f"EMA weights not found: {ema_path}; use --no_ema for the raw weights "
                                  f"or --ema PATH to name the EMA file")
        params = dict(generator.named_parameters())
        with torch.no_grad():
            for name, value in read_official_ema(ema_path, params)['shadow'].items():
                params[name].copy_(value)
    generator.step, generator.epoch = original['step'], original['epoch']
    return generator


def load_official_generator(path, ema_path=None, curriculum=None, overrides=None, device='cpu', tree=None):
    """load_generator for the original release's files: (generator in eval mode on device, settings)."""
    original = read_official_generator(path, tree)
    _, settings = official_settings(original, curriculum, overrides, path)
    generator = build_official_generator(path, ema_path, settings.networks, original)
    generator.to(device).eval()
    generator.set_device(device)
    return generator, settings


def convert_official_run(generator_path, curriculum, output_dir, overrides=None):
    """Rewrites an original run (generator.pth, ema.pth, ema2.pth beside it) in this project's format.

    The EMA files are optional; returns the paths written.
    """
    from .format import ema_checkpoint, generator_checkpoint, save_all
    from torch_utils.ema import ExponentialMovingAverage

    generator_path = Path(generator_path)
    original = read_official_generator(generator_path)
    full_curriculum, settings = official_settings(original, curriculum, overrides, generator_path)
    generator = build_official_generator(generator_path, None, settings.networks, original)
    files = {'generator.pth': generator_checkpoint(generator, original['step'], original['epoch'], curriculum,
                                                   full_curriculum,
                                                   {'converted_from': str(generator_path.resolve())})}
    params = dict(generator.named_parameters())
    for ema_name in ('ema.pth', 'ema2.pth'):
        ema_path = generator_path.with_name(ema_name)
        if ema_path.is_file():
            ema = ExponentialMovingAverage(generator, 0.999)
            ema.load_state_dict(read_official_ema(ema_path, params))
            files[ema_name] = ema_checkpoint(ema, original['step'])
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_all(output_dir, files)
    return [output_dir / name for name in files]
