"""Fréchet Inception Distance from features, computed as pytorch-fid computes it."""

import contextlib
import sys

import numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance


def feature_statistics(features):
    """Mean and covariance of [N, D] float64 features (pytorch-fid's np.mean / np.cov)."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def warn_if_singular(num_images, dims, what):
    if num_images < dims:
        print(f"WARNING: {num_images} {what} images are fewer than the {dims} feature dimensions, so their "
              f"covariance is singular and the FID is unreliable; use at least {dims}, ideally many more",
              file=sys.stderr)


def fid_from_statistics(mu1, sigma1, mu2, sigma2):
    # pytorch-fid's own function, so the value is the one `python -m pytorch_fid` prints;
    # its notes go to stderr, keeping stdout for results.
    with contextlib.redirect_stdout(sys.stderr):
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
