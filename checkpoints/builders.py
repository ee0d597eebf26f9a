"""The curriculum of a run and the networks it names."""

import curriculums
from curriculums import ConfigError
from discriminators import discriminators
from generators import generators
from siren import siren

from .format import CheckpointError

SIREN_KEYS = ('hidden_dim',)  # curriculum keys passed on to the SIREN constructor


def siren_kwargs(metadata):
    return {k: metadata[k] for k in SIREN_KEYS if metadata.get(k) is not None}


def _lookup(module, name, what):
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigError(f"unknown {what} {name!r} in the curriculum") from None


def build_generator(metadata):
    generator_class = _lookup(generators, metadata.get('generator', 'ImplicitGenerator3d'), 'generator')
    siren_class = _lookup(siren, metadata['model'], 'model (SIREN class)')
    return generator_class(siren_class, metadata['latent_dim'], **siren_kwargs(metadata))


def build_discriminator(metadata):
    return _lookup(discriminators, metadata['discriminator'], 'discriminator')()


def resolve_curriculum(checkpoint_curriculum, name=None, overrides=None):
    """The curriculum to use: a named one if given, else the checkpoint's, plus overrides."""
    curriculum = curriculums.get(name) if name else dict(checkpoint_curriculum or {})
    if not curriculum:
        raise CheckpointError("this checkpoint does not record its curriculum; pass --curriculum NAME")
    return curriculums.apply_overrides(curriculum, overrides)
