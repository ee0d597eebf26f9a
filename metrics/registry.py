"""The one table of metric names -> functions (EG3D-style).

Every metric returns a dict of named values. Metrics of image features (fid, kid, is)
take a MetricInputs; metrics that render a generator themselves (the geometry metrics
of metrics/geometry.py) take a GeneratorInputs. A new metric is one decorated function.
"""

from dataclasses import dataclass, field

import numpy as np

from settings import Settings

from .fid import feature_statistics, fid_from_statistics, warn_if_singular
from .inception_score import inception_score
from .kid import kernel_inception_distance

_metrics = {}


@dataclass
class MetricInputs:
    real_mu: np.ndarray
    real_sigma: np.ndarray
    real_features: np.ndarray
    fake_features: np.ndarray
    fake_logits: np.ndarray
    options: dict = field(default_factory=dict)  # kid_subsets, kid_subset_size, is_splits, seed


@dataclass
class GeneratorInputs:
    generator: object    # a pi-GAN generator, or a head source (metrics/heads.py)
    settings: Settings   # settings.Settings of the generator's step: its rendering, camera distribution, ...
    dataset_dir: str     # synthetic dataset folder (with poses.json)
    num_samples: int = 64
    seed: int = 0
    options: dict = field(default_factory=dict)  # img_size, psi, max_batch_size, surface_level
    cache: dict = field(default_factory=dict)    # renders shared between metrics of one evaluation


def register_metric(name, inputs=MetricInputs):
    """Decorator: fn(inputs) -> {value name: value}, where inputs is of the given type."""
    def register(fn):
        _metrics[name] = (fn, inputs)
        return fn
    return register


def list_metrics(inputs=None):
    """Metric names, all or those taking the given input type."""
    return sorted(name for name, (_, kind) in _metrics.items() if inputs is None or kind is inputs)


def is_valid_metric(name):
    return name in _metrics


def metric_inputs(name):
    """The input type (MetricInputs or GeneratorInputs) metric `name` takes."""
    return _metrics[name][1]


def unknown_metric(name):
    return ValueError(f"unknown metric {name!r}; choose from {', '.join(list_metrics())}")


def parse_metric_names(text):
    """'fid, kid,pose' -> ['fid', 'kid', 'pose']; ValueError (one line) names an unknown one and the valid ones."""
    names = [name.strip() for name in text.split(',') if name.strip()]
    for name in names:
        if not is_valid_metric(name):
            raise unknown_metric(name)
    return names


def split_metrics(names):
    """(image metrics, generator metrics): those scoring rendered image files' Inception features
    (fid, kid, is), and those that render the generator themselves (the geometry metrics)."""
    return ([name for name in names if metric_inputs(name) is MetricInputs],
            [name for name in names if metric_inputs(name) is GeneratorInputs])


def calc_metric(name, inputs):
    if not is_valid_metric(name):
        raise unknown_metric(name)
    fn, kind = _metrics[name]
    if not isinstance(inputs, kind):
        raise TypeError(f"metric {name!r} takes a {kind.__name__}, not a {type(inputs).__name__}")
    return fn(inputs)


@register_metric('fid')
def fid(inputs):
    dims = inputs.fake_features.shape[1]
    warn_if_singular(len(inputs.real_features), dims, 'real')
    warn_if_singular(len(inputs.fake_features), dims, 'generated')
    fake_mu, fake_sigma = feature_statistics(inputs.fake_features)
    return {'fid': fid_from_statistics(inputs.real_mu, inputs.real_sigma, fake_mu, fake_sigma)}


@register_metric('kid')
def kid(inputs):
    mean, std = kernel_inception_distance(inputs.real_features, inputs.fake_features,
                                          num_subsets=inputs.options.get('kid_subsets', 100),
                                          subset_size=inputs.options.get('kid_subset_size', 1000),
                                          seed=inputs.options.get('seed', 0))
    return {'kid': mean, 'kid_std': std, 'kid_x100': mean * 100, 'kid_std_x100': std * 100}


@register_metric('is')
def inception_score_metric(inputs):
    mean, std = inception_score(inputs.fake_logits, splits=inputs.options.get('is_splits', 10))
    return {'is': mean, 'is_std': std}
