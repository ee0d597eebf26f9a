"""The camera distribution of a set of poses, in the curriculum's terms (h_mean, v_mean, h_stddev, v_stddev,
sample_dist), as generators/camera_utils.sample_camera_angles draws it.

gaussian: yaw ~ N(h_mean, h_stddev), pitch ~ N(v_mean, v_stddev), independent.
hybrid:   each batch is, with probability 1/2, uniform over mean +- 2 stddev on both
          axes, else the gaussian; one image's density is the 50/50 mixture.
Both have the same four numbers, so the total log-likelihood picks between them.
Gaussian stddevs are the maximum-likelihood ones; hybrid's are found numerically.
With flip (training with random horizontal flips), each yaw also counts mirrored
(pi - yaw): what the discriminator sees, so h_mean is pi/2 by construction.
"""

import math

import numpy as np
from scipy.optimize import minimize

MIN_STDDEV = 0.01  # radians; keeps a set of identical poses from giving a zero spread


def gaussian_density(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def uniform_density(x, mean, half_width):
    return (np.abs(x - mean) <= half_width) / (2 * half_width)


def density(sample_dist, yaw, pitch, fit):
    """Joint density of (yaw, pitch) arrays under a fitted distribution (a dict of the curriculum keys)."""
    gaussian = (gaussian_density(yaw, fit['h_mean'], fit['h_stddev'])
                * gaussian_density(pitch, fit['v_mean'], fit['v_stddev']))
    if sample_dist == 'gaussian':
        return gaussian
    uniform = (uniform_density(yaw, fit['h_mean'], 2 * fit['h_stddev'])
               * uniform_density(pitch, fit['v_mean'], 2 * fit['v_stddev']))
    return 0.5 * uniform + 0.5 * gaussian


def marginal_density(sample_dist, values, mean, std):
    """Density of one axis (yaw or pitch) alone, for plotting over its histogram."""
    if sample_dist == 'gaussian':
        return gaussian_density(values, mean, std)
    return 0.5 * uniform_density(values, mean, 2 * std) + 0.5 * gaussian_density(values, mean, std)


def log_likelihood(sample_dist, yaw, pitch, fit):
    return float(np.sum(np.log(np.maximum(density(sample_dist, yaw, pitch, fit), 1e-300))))


def fit_camera_distribution(yaw, pitch, flip=True):
    """{'h_mean', 'v_mean', 'h_stddev', 'v_stddev', 'sample_dist', 'log_likelihood': {...}, 'num_poses'}."""
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    if flip:
        yaw, pitch = np.concatenate([yaw, math.pi - yaw]), np.concatenate([pitch, pitch])
    means = {'h_mean': float(yaw.mean()), 'v_mean': float(pitch.mean())}
    gaussian = {**means, 'h_stddev': max(float(yaw.std()), MIN_STDDEV),
                'v_stddev': max(float(pitch.std()), MIN_STDDEV)}

    def hybrid_cost(log_stds):
        stds = np.maximum(np.exp(log_stds), MIN_STDDEV)
        return -log_likelihood('hybrid', yaw, pitch, {**means, 'h_stddev': stds[0], 'v_stddev': stds[1]})

    # The uniform half makes the likelihood piecewise: Nelder-Mead from the gaussian's spreads.
    best = minimize(hybrid_cost, np.log([gaussian['h_stddev'], gaussian['v_stddev']]), method='Nelder-Mead')
    hybrid_stds = np.maximum(np.exp(best.x), MIN_STDDEV)
    hybrid = {**means, 'h_stddev': float(hybrid_stds[0]), 'v_stddev': float(hybrid_stds[1])}
    scores = {'gaussian': log_likelihood('gaussian', yaw, pitch, gaussian),
              'hybrid': log_likelihood('hybrid', yaw, pitch, hybrid)}
    choice = max(scores, key=scores.get)
    chosen = gaussian if choice == 'gaussian' else hybrid
    return {**{key: round(value, 4) for key, value in chosen.items()}, 'sample_dist': choice,
            'log_likelihood': {name: round(value, 3) for name, value in scores.items()},
            'alternatives': {'gaussian': gaussian, 'hybrid': hybrid}, 'flip': flip, 'num_poses': int(len(yaw))}
