"""Reads checkpoints of the original pi-GAN release without running its code.

The original train.py saved whole pickled modules: generator.pth is an
`ImplicitGenerator3d` (with its SIREN inside) and ema.pth a torch_ema
`ExponentialMovingAverage`. Unpickling them normally would import and run
whatever classes the file names. Instead, torch's weights_only unpickler is
given a stand-in for each expected class name: a stub that only records its
pickled state. Loading then builds stubs, tensors and plain containers, and a
file naming anything else is refused before any of it is called.
"""

import pickle
import re
from pathlib import Path

import torch

import curriculums
from .builders import build_generator, resolve_curriculum
from .format import CheckpointError, safe_load

SIREN_CLASSES = ('SPATIALSIRENBASELINE', 'TALLSIREN', 'EmbeddingPiGAN128', 'EmbeddingPiGAN256')
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

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {'state': state}

    def __repr__(self):
        return f'<pickled {self.original_name}>'


# One stub class per name, so that an object still tells which class it stood for.
STUBS = {name: type(name.rsplit('.', 1)[-1], (PickledObject,), {'original_name': name})
         for name in ORIGINAL_CLASSES}


def read_original_pickle(path, what):
    """The object tree of an original checkpoint, with stubs in place of its classes."""
    path = Path(path)
    with torch.serialization.safe_globals([(stub, name) for name, stub in STUBS.items()]):
        try:
            return safe_load(path, what)
        except pickle.UnpicklingError as error:
            raise refusal(path, error) from None


def refusal(path, error):
    """The CheckpointError for a pickle that names something outside the allowed classes."""
    named = re.search(r'GLOBAL (\S+)', str(error))
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    culprit = named.group(1) if named else f'something else ({first_line})'
    return CheckpointError(
        f"refusing to load {path}: it is neither a checkpoint of this project nor of the original pi-GAN "
        f"release: its pickle names {culprit}, which is not one of the pi-GAN/torch classes such "
        f"checkpoints hold. Nothing in it was run.")


def module_state_dict(stub, prefix=''):
    """state_dict of a pickled nn.Module stub: its parameters and buffers, then its children's."""
    if not isinstance(stub, PickledObject):
        raise CheckpointError(f"expected a pickled module at {prefix or 'the top level'}, found {type(stub)}")
    state = {}
    for group in ('_parameters', '_buffers'):
        for name, value in (stub.state.get(group) or {}).items():
            if value is not None and name not in stub.state.get('_non_persistent_buffers_set', ()):
                state[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else value
    for name, child in (stub.state.get('_modules') or {}).items():
        if child is not None:
            state.update(module_state_dict(child, f'{prefix}{name}.'))
    return state


def read_official_generator(path):
    """Architecture, weights and progress of an original generator.pth."""
    generator = read_original_pickle(path, 'generator checkpoint')
    if getattr(generator, 'original_name', None) != 'generators.generators.ImplicitGenerator3d':
        raise CheckpointError(f"{path} does not hold a pickled ImplicitGenerator3d "
                              f"(found {getattr(generator, 'original_name', type(generator).__name__)})")
    siren = (generator.state.get('_modules') or {}).get('siren')
    if not isinstance(siren, PickledObject) or siren.original_name.rsplit('.', 1)[-1] not in SIREN_CLASSES:
        raise CheckpointError(f"{path}: the generator's SIREN is not one of {', '.join(SIREN_CLASSES)}")
    state_dict = module_state_dict(generator)
    try:  # sizes from the weights themselves, whatever attributes the pickle kept
        hidden_dim = state_dict['siren.network.0.layer.weight'].shape[0]
        latent_dim = state_dict['siren.mapping_network.network.0.weight'].shape[1]
    except KeyError as missing:
        raise CheckpointError(f"{path}: the pickled generator has no {missing} weights") from None
    return {
        'state_dict': state_dict,
        'model': siren.original_name.rsplit('.', 1)[-1],
        'latent_dim': int(latent_dim),
        'hidden_dim': int(hidden_dim),
        'step': int(generator.state.get('step', 0)),
        'epoch': int(generator.state.get('epoch', 0)),
    }


def read_official_ema(path, parameter_names):
    """{parameter name: averaged tensor} from an original torch_ema ema.pth.

    torch_ema keeps the averages as a list in the generator's parameters()
    order, which is the order of parameter_names.
    """
    ema = read_original_pickle(path, 'EMA checkpoint')
    if getattr(ema, 'original_name', None) != 'torch_ema.ema.ExponentialMovingAverage':
        raise CheckpointError(f"{path} is not an EMA checkpoint (this project's or the original's)")
    shadow = list(ema.state.get('shadow_params') or [])
    if len(shadow) != len(parameter_names):
        raise CheckpointError(f"{path} holds {len(shadow)} averaged parameters but the generator has "
                              f"{len(parameter_names)}; is it the EMA of this generator?")
    return {
        'decay': float(ema.state.get('decay', 0.999)),
        'num_updates': int(ema.state.get('num_updates') or 0),
        'shadow': dict(zip(parameter_names, (tensor.detach() for tensor in shadow))),
    }


def official_metadata(info, curriculum, overrides=None):
    """(curriculum, metadata at the checkpoint's step) for an original generator."""
    if not curriculum:
        raise CheckpointError("this is a checkpoint of the original pi-GAN release, which does not record "
                              "its curriculum: pass --curriculum CelebA|CATS|CARLA (the one it was trained with)")
    if curriculum not in curriculums.CURRICULA:
        raise CheckpointError(f"unknown curriculum {curriculum!r}; choose one of {', '.join(curriculums.CURRICULA)}")
    # The pickled architecture wins over the named curriculum's.
    architecture = {'model': info['model'], 'latent_dim': info['latent_dim'], 'hidden_dim': info['hidden_dim']}
    full = resolve_curriculum(None, curriculum, {**architecture, **(overrides or {})})
    return full, curriculums.extract_metadata(full, info['step'])


def build_official_generator(path, ema_path, metadata, info=None):
    """Our generator holding the original's weights (EMA averages if ema_path is given), on the CPU."""
    info = info or read_official_generator(path)
    generator = build_generator(metadata)
    try:
        generator.load_state_dict(info['state_dict'])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not match the {metadata['model']} architecture: {error}") from None
    if ema_path is not None:
        ema_path = Path(ema_path)
        if not ema_path.is_file():
            raise CheckpointError(f"EMA weights not found: {ema_path}; use --no_ema for the raw weights "
                                  f"or --ema PATH to name the EMA file")
        names = [name for name, _ in generator.named_parameters()]
        params = dict(generator.named_parameters())
        with torch.no_grad():
            for name, value in read_official_ema(ema_path, names)['shadow'].items():
                if value.shape != params[name].shape:
                    raise CheckpointError(f"{ema_path}: averaged {name} has shape {tuple(value.shape)}, "
                                          f"expected {tuple(params[name].shape)}")
                params[name].copy_(value)
    generator.step, generator.epoch = info['step'], info['epoch']
    return generator


def load_official_generator(path, ema_path=None, curriculum=None, overrides=None, device='cpu'):
    """load_generator for the original release's files: (generator in eval mode on device, metadata)."""
    info = read_official_generator(path)
    _, metadata = official_metadata(info, curriculum, overrides)
    generator = build_official_generator(path, ema_path, metadata, info)
    generator.to(device).eval()
    generator.set_device(device)
    return generator, metadata


def convert_official_run(generator_path, curriculum, output_dir, overrides=None):
    """Rewrites an original run (generator.pth, ema.pth, ema2.pth beside it) in this project's format.

    The EMA files are optional; returns the paths written.
    """
    from .format import ema_checkpoint, generator_checkpoint, save_all
    from torch_utils.ema import ExponentialMovingAverage

    generator_path = Path(generator_path)
    info = read_official_generator(generator_path)
    full_curriculum, metadata = official_metadata(info, curriculum, overrides)
    generator = build_official_generator(generator_path, None, metadata, info)
    files = {'generator.pth': generator_checkpoint(generator, info['step'], info['epoch'], curriculum,
                                                   full_curriculum,
                                                   {'converted_from': str(generator_path.resolve())})}
    names = [name for name, _ in generator.named_parameters()]
    for ema_name in ('ema.pth', 'ema2.pth'):
        ema_path = generator_path.with_name(ema_name)
        if ema_path.is_file():
            ema = ExponentialMovingAverage(generator, 0.999)
            ema.load_state_dict(read_official_ema(ema_path, names))
            files[ema_name] = ema_checkpoint(ema, info['step'])
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_all(output_dir, files)
    return [output_dir / name for name in files]
