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


def topk_fraction(optimisation, step):
    """max(0.99 ** (step / topk_interval), topk_v) (settings.Optimisation); 1, the whole batch, without a
    topk_interval (and with KEYS' default topk_v, 1)."""
    if optimisation.topk_interval is None:
        return 1
    return max(0.99 ** (step / optimisation.topk_interval), optimisation.topk_v)
