"""Inception statistics of a real-image folder, cached in an .npz until the folder changes."""

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.files import atomic_write

from .fid import feature_statistics
from .image_files import folder_fingerprint, require_images

CACHE_VERSION = 1


@dataclass
class RealStatistics:
    mu: np.ndarray        # [2048] float64
    sigma: np.ndarray     # [2048, 2048] float64
    features: np.ndarray  # [N, 2048] float64, for KID
    cache_file: Path
    reused: bool

    @property
    def num_images(self):
        return len(self.features)


def cache_file_for(real_dir, cache_dir):
    """One cache file per real folder: its name plus a hash of its absolute path, so two 'real/' never clash."""
    real_dir = Path(real_dir).resolve()
    name = re.sub(r'[^A-Za-z0-9_.-]', '_', real_dir.name) or 'root'
    path_hash = hashlib.sha1(str(real_dir).encode()).hexdigest()[:8]
    return Path(cache_dir) / f'real_stats_{name}_{path_hash}.npz'


def read_cache(cache_file, fingerprint):
    """The cached statistics if cache_file exists and was made from the same images and weights, else None."""
    try:
        with np.load(cache_file) as cached:
            if str(cached['fingerprint']) != fingerprint:
                return None
            return cached['mu'], cached['sigma'], cached['features'].astype(np.float64)
    except (OSError, KeyError, ValueError):  # missing, truncated or from another version: recompute
        return None


def write_cache(cache_file, fingerprint, mu, sigma, features):
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache_file) as f:
        # Features come from a float32 network, so float32 storage is lossless.
        np.savez(f, fingerprint=fingerprint, mu=mu, sigma=sigma, features=features.astype(np.float32))


def real_statistics(real_dir, cache_dir, compute_features, weights_digest):
    """Statistics of the images in real_dir, from cache_dir when neither images nor weights changed.

    compute_features(files) -> (features [N, 2048], logits); weights_digest names the Inception
    weights, so statistics from other weights are never reused.
    """
    files = require_images(real_dir, 'real-image folder')
    fingerprint = f'v{CACHE_VERSION}-{folder_fingerprint(files, real_dir)}-{weights_digest}'
    cache_file = cache_file_for(real_dir, cache_dir)
    cached = read_cache(cache_file, fingerprint)
    if cached is not None:
        print(f"reusing real-image statistics from {cache_file}", file=sys.stderr)
        return RealStatistics(*cached, cache_file=cache_file, reused=True)
    features, _ = compute_features(files)
    mu, sigma = feature_statistics(features)
    write_cache(cache_file, fingerprint, mu, sigma, features)
    return RealStatistics(mu, sigma, features, cache_file=cache_file, reused=False)
