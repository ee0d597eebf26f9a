"""The one table of metric names -> functions (EG3D-style).

Every metric takes a MetricInputs and returns a dict of named values; a new
metric is one decorated function here.
"""

from dataclasses import dataclass, field

import numpy as np

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


def register_metric(name):
    def register(fn):
        _metrics[name] = fn
        return fn
    return register


def list_metrics():
    return sorted(_metrics)


def is_valid_metric(name):
    return name in _metrics


def calc_metric(name, inputs):
    if not is_valid_metric(name):
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(list_metrics())}")
    return _metrics[name](inputs)


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
