"""The curriculum of a run and the networks it names."""

import curriculums
from curriculums import ConfigError
from settings import complete
from discriminators import discriminators
from generators import generators
from siren import siren

from . import limits
from .format import CheckpointError

SIREN_KEYS = ('hidden_dim',)  # curriculum keys passed on to the SIREN constructor
GENERATOR_KEYS = ('generator', 'model', 'latent_dim', 'density_scale') + SIREN_KEYS

# The only class names a curriculum (and so a checkpoint) may name: nothing else is looked up.
GENERATOR_CLASSES = ('ImplicitGenerator3d',)
SIREN_CLASSES = ('SPATIALSIRENBASELINE', 'TALLSIREN', 'EmbeddingPiGAN128', 'EmbeddingPiGAN256')
DISCRIMINATOR_CLASSES = ('ProgressiveDiscriminator', 'ProgressiveEncoderDiscriminator', 'StridedDiscriminator',
                         'CCSDiscriminator', 'CCSEncoderDiscriminator', 'NarrowCCSEncoderDiscriminator')


def siren_kwargs(metadata):
    """The SIREN_KEYS a curriculum sets (None: the SIREN class's own default)."""
    return {k: metadata[k] for k in SIREN_KEYS if metadata[k] is not None}


def _lookup(module, name, known, what):
    if not isinstance(name, str) or name not in known:
        raise ConfigError(f"unknown {what} {limits.short_repr(name)} in the curriculum; "
                          f"choose one of {', '.join(known)}")
    return getattr(module, name)


def build_generator(metadata):
    """The generator a curriculum's keys (a dict; those it leaves out take KEYS' defaults) name."""
    limits.check_architecture(metadata, 'the curriculum')
    metadata = complete(metadata, GENERATOR_KEYS)
    generator_class = _lookup(generators, metadata['generator'], GENERATOR_CLASSES, 'generator')
    siren_class = _lookup(siren, metadata['model'], SIREN_CLASSES, 'model (SIREN class)')
    return generator_class(siren_class, metadata['latent_dim'], density_scale=metadata['density_scale'],
                           **siren_kwargs(metadata))


def build_discriminator(metadata):
    """The curriculum's discriminator; with patch training (patch_size), one that is told the patches' scale."""
    metadata = complete(metadata, ('discriminator', 'patch_size'))
    discriminator_class = _lookup(discriminators, metadata['discriminator'], DISCRIMINATOR_CLASSES, 'discriminator')
    return discriminator_class(scale_channel=bool(metadata['patch_size']))


def resolve_curriculum(checkpoint_curriculum, name=None, overrides=None, path='this checkpoint'):
    """The curriculum to use: a named one if given, else the checkpoint's (read from path), plus overrides."""
    curriculum = curriculums.get(name) if name else dict(checkpoint_curriculum or {})
    if not curriculum:
        raise CheckpointError(f"{path} does not record its curriculum; pass --curriculum NAME")
    return curriculums.apply_overrides(curriculum, overrides)
