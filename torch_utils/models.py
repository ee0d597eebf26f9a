"""Builds the networks a curriculum names."""

from curriculums import ConfigError
from discriminators import discriminators
from generators import generators
from siren import siren

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
