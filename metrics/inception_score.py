"""Inception Score (Salimans et al. 2016) from class logits."""

import numpy as np
from scipy.special import log_softmax


def inception_score(logits, splits=10):
    """(mean, std) over splits of exp(E_x KL(p(y|x) || p(y))), p(y) taken within each split.

    The splits are consecutive chunks, as in the reference code; fewer images than splits
    give one image per split.
    """
    logits = np.asarray(logits, dtype=np.float64)
    splits = max(1, min(splits, len(logits)))
    scores = []
    for index in range(splits):
        part = logits[index * len(logits) // splits:(index + 1) * len(logits) // splits]
        log_p_yx = log_softmax(part, axis=1)
        p_yx = np.exp(log_p_yx)
        with np.errstate(divide='ignore'):
            log_p_y = np.log(p_yx.mean(axis=0, keepdims=True))
        # p log p -> 0 as p -> 0: classes that never occur must add nothing, not nan.
        with np.errstate(invalid='ignore', divide='ignore'):
            kl = np.where(p_yx > 0, p_yx * (log_p_yx - log_p_y), 0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
