"""Metrics of a folder of generated images against a folder of real ones."""

from pathlib import Path

import torch

from utils.cli import pick_device

from .features import extract_features
from .image_files import require_images
from .inception import load_inception
from .real_images import default_real_dir
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


def calculate_fid(dataset_name, generated_dir, target_size=128, real_dir=None, device=None,
                  inception_weights=None, batch_size=50):
    """FID of the images in generated_dir against the real folder (the original's name); real
    statistics are cached beside generated_dir, where training and eval_metrics.py keep them."""
    real_dir = real_dir or default_real_dir(dataset_name, target_size)
    device = pick_device(device)
    inception = load_inception(device, inception_weights)
    results, _ = folder_metrics(real_dir, generated_dir, Path(generated_dir).resolve().parent, inception,
                                ['fid'], batch_size=batch_size)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return results['fid']
