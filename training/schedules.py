"""Quantities that change with the training step, as in the original pi-GAN.

    fade_in_alpha   the progressive discriminator's blend of a newly added resolution
    nerf_noise      the std of the noise added to raw density (NeRF's regulariser)
    topk_fraction   the share of the generated batch the generator's loss keeps
"""


def fade_in_alpha(step, stage_start, fade_steps):
    """0 at the step the image size grew (stage_start), rising linearly to 1 after fade_steps."""
    return min(1, (step - stage_start) / fade_steps)


def nerf_noise(step):
    """1 at step 0, falling linearly to 0 at step 5000 and staying there."""
    return max(0, 1.0 - step / 5000.0)


def topk_fraction(metadata, step):
    """max(0.99 ** (step / topk_interval), topk_v) when the curriculum sets both, else 1 (the whole batch)."""
    if 'topk_interval' in metadata and 'topk_v' in metadata:
        return max(0.99 ** (step / metadata['topk_interval']), metadata['topk_v'])
    return 1
