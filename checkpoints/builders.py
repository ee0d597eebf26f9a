"""The curriculum of a run and the networks it names."""

import dataclasses

import curriculums
from curriculums import ConfigError
from discriminators import discriminators
from generators import generators
from siren import siren

from . import limits
from .format import CheckpointError

# The only class names a curriculum (and so a checkpoint) may name: nothing else is looked up.
GENERATOR_CLASSES = ('ImplicitGenerator3d',)
SIREN_CLASSES = ('SPATIALSIRENBASELINE', 'TALLSIREN', 'EmbeddingPiGAN128', 'EmbeddingPiGAN256')
DISCRIMINATOR_CLASSES = ('ProgressiveDiscriminator', 'ProgressiveEncoderDiscriminator', 'StridedDiscriminator',
                         'CCSDiscriminator', 'CCSEncoderDiscriminator', 'NarrowCCSEncoderDiscriminator')


def _lookup(module, name, known, what):
    if not isinstance(name, str) or name not in known:
        raise ConfigError(f"unknown {what} {limits.short_repr(name)} in the curriculum; "
                          f"choose one of {', '.join(known)}")
    return getattr(module, name)


def build_generator(networks):
    """The generator that networks (settings.Networks) names."""
    limits.check_architecture(dataclasses.asdict(networks), 'the curriculum')
    generator_class = _lookup(generators, networks.generator, GENERATOR_CLASSES, 'generator')
    siren_class = _lookup(siren, networks.model, SIREN_CLASSES, 'model (SIREN class)')
    # hidden_dim None: the SIREN class's own width
    widths = {} if networks.hidden_dim is None else {'hidden_dim': networks.hidden_dim}
    return generator_class(siren_class, networks.latent_dim, density_scale=networks.density_scale, **widths)


def build_discriminator(settings):
    """The discriminator a run's settings (settings.Settings) name; with patch training (patch_size), one that
    is told the patches' scale."""
    discriminator_class = _lookup(discriminators, settings.networks.discriminator, DISCRIMINATOR_CLASSES,
                                  'discriminator')
    return discriminator_class(scale_channel=bool(settings.patches.patch_size))


def resolve_curriculum(checkpoint_curriculum, name=None, overrides=None, path='this checkpoint'):
    """The curriculum to use: a named one if given, else the checkpoint's (read from path), plus overrides."""
    curriculum = curriculums.get(name) if name else dict(checkpoint_curriculum or {})
    if not curriculum:
        raise CheckpointError(f"{path} does not record its curriculum; pass --curriculum NAME")
    return curriculums.apply_overrides(curriculum, overrides)
