"""Metrics of a folder of generated images against a folder of real ones."""

from .features import extract_features
from .image_files import require_images
from .real_stats import real_statistics
from .registry import MetricInputs, calc_metric


def folder_metrics(real_dir, generated_dir, cache_dir, inception, metric_names=('fid', 'kid', 'is'),
                   options=None, batch_size=50, num_workers=0):
    """{value name: value} for the named metrics; real statistics come from (and go to) cache_dir.

    inception: a LoadedInception (metrics.inception.load_inception).
    """
    def compute(files, desc):
        return extract_features(files, inception, batch_size=batch_size, num_workers=num_workers, desc=desc)

    real = real_statistics(real_dir, cache_dir, lambda files: compute(files, 'real-image features'),
                           inception.weights_digest)
    fake_features, fake_logits = compute(require_images(generated_dir, 'generated-image folder'),
                                         'generated-image features')
    inputs = MetricInputs(real.mu, real.sigma, real.features, fake_features, fake_logits, dict(options or {}))
    results = {}
    for name in metric_names:
        results.update(calc_metric(name, inputs))
    return results, real
