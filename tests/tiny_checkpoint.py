"""Tiny runs saved in this project's checkpoint format, for script tests."""

import torch

import curriculums
from checkpoints import atomic_save, ema_checkpoint, generator_checkpoint, save_all
from torch_utils.ema import ExponentialMovingAverage
from checkpoints.builders import build_generator
from settings import Settings

TINY_OVERRIDES = {
    0: {'batch_size': 4, 'num_steps': 6, 'img_size': 16, 'batch_split': 1, 'gen_lr': 1e-4, 'disc_lr': 4e-4},
    'hidden_dim': 16,
    'dataset': 'Synthetic',
}


def tiny_curriculum(**overrides):
    curriculum = curriculums.get('SPATIALSIRENBASELINE')
    curriculum = {k: v for k, v in curriculum.items() if not isinstance(k, int)}
    curriculum.update(TINY_OVERRIDES)
    curriculum.update(overrides)
    return curriculum


def make_tiny_run(folder, step=100, seed=0, ema_shift=0.01, colour_gain=1, smooth=False, **overrides):
    """Writes generator.pth, ema.pth and ema2.pth for a freshly initialised tiny model.

    The EMA weights differ from the raw ones by ema_shift, so tests can tell them apart.
    colour_gain scales the colour layer: a fresh model is almost uniformly grey, and
    30 spreads its pixels over most of 0..255 (for tests that compare pictures).
    smooth: FiLM frequencies of 30 (the mapping network's frequency outputs zeroed), where a fresh
    model's reach 200 and a camera moved by 1e-7 sees a different picture; views then change
    smoothly with the camera (for tests that compare views at nearby or equivalent poses).
    Returns the path of generator.pth.
    """
    torch.manual_seed(seed)
    curriculum = tiny_curriculum(**overrides)
    known = {k: v for k, v in curriculum.items() if isinstance(k, int) or k in curriculums.KEYS}  # as loading drops
    generator = build_generator(Settings.at_step(known, step).networks)
    with torch.no_grad():
        generator.siren.color_layer_linear[0].weight.mul_(colour_gain)
        if smooth:
            last = generator.siren.mapping_network.network[-1]
            width = generator.siren.mapping_network.film_width
            last.weight[:width] = 0
            last.bias[:width] = 0
    ema = ExponentialMovingAverage(generator, 0.999)
    ema2 = ExponentialMovingAverage(generator, 0.9999)
    with torch.no_grad():
        for shadow in ema.shadow.values():
            shadow.add_(ema_shift)
    save_all(folder, {
        'generator.pth': generator_checkpoint(generator, step, 1, 'SPATIALSIRENBASELINE', curriculum),
        'ema.pth': ema_checkpoint(ema, step),
        'ema2.pth': ema_checkpoint(ema2, step),
    })
    return folder / 'generator.pth'


def make_smooth_run(folder, **overrides):
    """A tiny run (raw weights only) whose fresh weights are rescaled into a smooth, opaque scene.

    A fresh mapping network asks the SIREN for frequencies far above pi-GAN's
    base of 30, so renders are per-pixel noise that no fit can follow; near the
    base, images change smoothly with the latent and the pose, as a trained
    model's do. Returns the path of generator.pth.
    """
    path = make_tiny_run(folder, **overrides)
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint['state_dict']
    state['siren.mapping_network.network.6.weight'] *= 0.02  # latents close to the average frequencies
    state['siren.mapping_network.network.6.bias'].zero_()
    state['siren.final_layer.weight'] *= 300                 # real densities, so surfaces form
    state['siren.color_layer_linear.0.weight'] *= 10         # visible colour contrast
    atomic_save(checkpoint, path)
    for name in ('ema.pth', 'ema2.pth'):
        (folder / name).unlink()
    return path
