"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel."""

import numpy as np
from tqdm import tqdm


def polynomial_kernel(x, y):
    """k(x, y) = (xᵀy / d + 1)³ for rows of x [N, d] and y [M, d] -> [N, M]."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x, y):
    """Unbiased MMD² of two equally sized samples: the diagonals of k(x, x) and k(y, y) are left out."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return off_diagonal - 2 * k_xy.mean()


def kernel_inception_distance(real_features, fake_features, num_subsets=100, subset_size=1000, seed=0):
    """(mean, std) of unbiased MMD² over random subsets of min(subset_size, n_real, n_fake) rows each."""
    size = min(subset_size, len(real_features), len(fake_features))
    if size < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated images, got {len(real_features)} "
                         f"and {len(fake_features)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in tqdm(range(num_subsets), desc='KID subsets', leave=False):
        real = real_features[rng.choice(len(real_features), size, replace=False)]
        fake = fake_features[rng.choice(len(fake_features), size, replace=False)]
        values.append(mmd2_unbiased(real, fake))
    return float(np.mean(values)), float(np.std(values))
