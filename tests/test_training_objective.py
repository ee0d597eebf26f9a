"""What one training step optimises: the GAN losses and R1 against their closed forms, the direction
a D step and a G step move the discriminator's scores, top-k, the EMA and the step schedules.

test_training.py runs whole trainings; these check the arithmetic a sign flip or a lost term breaks.
Everything runs on the CPU in fp32 with fixed seeds, on a tiny generator (16x16, width 16).
"""

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

import curriculums
from checkpoints.builders import build_discriminator, build_generator
from settings import Settings
from torch_utils.ema import ExponentialMovingAverage
from training import schedules, steps
from training.loss import discriminator_gan_loss, generator_gan_loss, r1_penalty
from training.training_loop import make_autocast, make_optimizers

CPU = torch.device('cpu')
SIZE = 16


def softplus(x):
    return math.log1p(math.exp(x))


def tiny_settings(**changes):
    """SPATIALSIRENBASELINE at 16x16, SIREN width 16, 6+6 samples; the GAN terms alone (no identity losses)."""
    curriculum = {k: v for k, v in curriculums.get('SPATIALSIRENBASELINE').items() if not isinstance(k, int)}
    curriculum[0] = {'batch_size': 4, 'num_steps': 6, 'img_size': SIZE, 'batch_split': 1,
                     'gen_lr': 1e-3, 'disc_lr': 1e-4}
    curriculum.update(hidden_dim=16, discriminator='NarrowCCSEncoderDiscriminator', pos_lambda=0, z_lambda=0)
    curriculum.update(changes)
    return Settings.at_step(curriculum, 0)  # nerf_noise 0, as settings.Rendering's default


def make_trainer(settings, discriminator=None):
    torch.manual_seed(0)
    generator = build_generator(settings.networks)
    generator.set_device(CPU)
    discriminator = discriminator or build_discriminator(settings)
    optimizer_G, optimizer_D = make_optimizers(generator, discriminator, settings.optimisation)
    return steps.Trainer(generator, discriminator, optimizer_G, optimizer_D, torch.amp.GradScaler('cpu', enabled=False),
                         autocast=make_autocast('fp32', CPU), no_sync=lambda sync: contextlib.nullcontext())


def real_images(batch=4):
    """Smooth, distinct images in [-1, 1]: ramps of different slopes and a constant channel."""
    ramp = torch.linspace(-1, 1, SIZE)
    return torch.stack([torch.stack([ramp[None, :].expand(SIZE, SIZE) * s, ramp[:, None].expand(SIZE, SIZE),
                                     torch.full((SIZE, SIZE), s)])
                        for s in torch.linspace(-0.9, 0.8, batch).tolist()])


def generated_as_in_step(trainer, settings, seed, batch=4):
    """The images a step seeded with `seed` generates: it draws z first, then G draws the cameras."""
    torch.manual_seed(seed)
    z = torch.randn(batch, settings.networks.latent_dim)
    with torch.no_grad():
        return trainer.generator_ddp(z, settings.rendering, settings.camera)[0]


def scores(discriminator, images):
    with torch.no_grad():
        return discriminator(images, 1.0)[0]


def no_poses(batch=4):
    return torch.full((batch, 2), float('nan'))


# --- the losses on fixed logits ------------------------------------------------------

def test_gan_losses_equal_their_closed_forms():
    fake, real = [-2.0, 0.5, 3.0], [1.5, -1.0]
    g_preds, r_preds = torch.tensor(fake)[:, None], torch.tensor(real)[:, None]
    # Non-saturating: D pays log(1 + e^D(fake)) and log(1 + e^-D(real)); G pays log(1 + e^-D(fake)).
    expected_d = sum(softplus(f) for f in fake) / 3 + sum(softplus(-r) for r in real) / 2
    expected_g = sum(softplus(-f) for f in fake) / 3
    assert discriminator_gan_loss(g_preds, r_preds).item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_gan_loss(g_preds).item() == pytest.approx(expected_g, rel=1e-6)


def test_r1_penalty_is_half_lambda_times_the_mean_squared_gradient_norm():
    grad = torch.zeros(2, 3, 2, 2)
    grad[0, 0, 0, 0], grad[0, 1, 1, 1] = 3.0, 4.0  # norm 5
    grad[1, 2, 0, 1] = 1.0                          # norm 1
    assert r1_penalty(grad, 10.0).item() == pytest.approx(0.5 * 10 * (25 + 1) / 2)


class QuadraticCritic(torch.nn.Module):
    """D(x) = <w, x> + |x|^2 / 2, so dD/dx = w + x is known in closed form."""

    n_outputs = 1

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-0.05, 0.05, 3 * SIZE * SIZE).reshape(3, SIZE, SIZE))

    def forward(self, images, alpha, **kwargs):
        return ((images * self.w).flatten(1).sum(1) + 0.5 * images.flatten(1).pow(2).sum(1))[:, None], None, None


def test_discriminator_step_is_the_gan_loss_plus_r1_in_closed_form():
    critic = QuadraticCritic()
    reals = real_images()
    losses = {}
    for r1_lambda in (0.0, 10.0):
        settings = tiny_settings(r1_lambda=r1_lambda)
        trainer = make_trainer(settings, critic)
        torch.manual_seed(7)
        losses[r1_lambda] = steps.discriminator_step(trainer, reals.clone(), no_poses(), 1.0, settings).item()
    fakes = generated_as_in_step(trainer, settings, seed=7)
    expected_gan = discriminator_gan_loss(scores(critic, fakes), scores(critic, reals)).item()
    gradients = critic.w.detach() + reals  # d D / d real, per image
    expected_r1 = 0.5 * 10.0 * gradients.flatten(1).pow(2).sum(1).mean().item()
    assert losses[0.0] == pytest.approx(expected_gan, rel=1e-5)
    assert losses[10.0] - losses[0.0] == pytest.approx(expected_r1, rel=1e-4)


# --- the direction of one step -------------------------------------------------------

def test_a_discriminator_step_raises_real_scores_and_lowers_generated_ones():
    # One Adam step moves each weight by about the learning rate; at 1e-4 the scores move apart.
    settings = tiny_settings(discriminator='CCSEncoderDiscriminator')
    trainer = make_trainer(settings)
    D, reals = trainer.discriminator_ddp, real_images()
    fakes = generated_as_in_step(trainer, settings, seed=3)
    real_before, fake_before = scores(D, reals).mean(), scores(D, fakes).mean()
    torch.manual_seed(3)
    d_loss = steps.discriminator_step(trainer, reals.clone(), no_poses(), 1.0, settings)
    steps.apply_discriminator_update(trainer, d_loss, settings)
    assert torch.equal(fakes, generated_as_in_step(trainer, settings, seed=3))  # the generator did not change
    real_after, fake_after = scores(D, reals).mean(), scores(D, fakes).mean()
    assert real_after > real_before + 0.1, (real_before, real_after)
    assert fake_after < fake_before - 0.01, (fake_before, fake_after)


def test_a_generator_step_raises_the_discriminator_score_of_its_images():
    settings = tiny_settings()
    trainer = make_trainer(settings)
    D = trainer.discriminator_ddp
    before = scores(D, generated_as_in_step(trainer, settings, seed=4)).mean()
    d_weights = [p.detach().clone() for p in D.parameters()]
    torch.manual_seed(4)
    steps.generator_step(trainer, 4, 1.0, settings, 0, CPU)
    steps.apply_generator_update(trainer, settings)
    assert all(torch.equal(p, q) for p, q in zip(D.parameters(), d_weights))  # only G moved
    after = scores(D, generated_as_in_step(trainer, settings, seed=4)).mean()
    assert after > before + 1e-4, (before, after)


# --- top-k ---------------------------------------------------------------------------

def test_topk_fraction_follows_its_schedule():
    optimisation = tiny_settings(topk_interval=100, topk_v=0.6).optimisation
    assert schedules.topk_fraction(optimisation, 0) == 1
    assert schedules.topk_fraction(optimisation, 300) == pytest.approx(0.99 ** 3)
    assert schedules.topk_fraction(optimisation, 150) == pytest.approx(0.99 ** 1.5)
    assert schedules.topk_fraction(optimisation, 10 ** 6) == 0.6  # floored at topk_v
    without = {k: v for k, v in curriculums.get('SPATIALSIRENBASELINE').items() if k not in ('topk_interval', 'topk_v')}
    assert schedules.topk_fraction(Settings.at_step(without, 0).optimisation, 10 ** 6) == 1  # the whole batch


def test_generator_loss_keeps_the_k_highest_scored_images():
    # 0.99 ** (3000 / 100) = 0.740: 6 of 8 images at step 3000.
    # The critic scores a fresh generator's images well apart (2.7 to 3.5), unlike a fresh discriminator.
    settings = tiny_settings(topk_interval=100, topk_v=0.5)
    critic = QuadraticCritic()
    trainer = make_trainer(settings, critic)
    torch.manual_seed(5)
    g_loss, topk_num = steps.generator_step(trainer, 8, 1.0, settings, 3000, CPU)
    assert topk_num == math.ceil(0.99 ** 30 * 8) == 6
    preds = scores(critic, generated_as_in_step(trainer, settings, seed=5, batch=8))[:, 0].sort(descending=True).values
    assert g_loss.item() == pytest.approx(F.softplus(-preds[:6]).mean().item(), rel=1e-5)
    for other in (preds, preds[-6:]):  # not the whole batch, not the worst six
        assert g_loss.item() != pytest.approx(F.softplus(-other).mean().item(), rel=1e-3)


# --- EMA -----------------------------------------------------------------------------

@pytest.mark.parametrize('decay,n', [(0.999, 5), (0.5, 20)])  # in the warm-up; past it
def test_ema_after_n_updates_equals_its_closed_form(decay, n):
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(0.0)
    ema = ExponentialMovingAverage(module, decay)
    with torch.no_grad():
        module.weight.fill_(1.0)
    for _ in range(n):
        ema.update(module)
    # Each update k keeps min(decay, (1 + k) / (10 + k)) of the average: from 0 towards a constant 1,
    # the average after n updates is 1 - the product of what was kept.
    kept = math.prod(min(decay, (1 + k) / (10 + k)) for k in range(1, n + 1))
    assert ema.shadow['weight'].item() == pytest.approx(1 - kept, rel=1e-6)
    assert ema.num_updates == n


# --- schedules -----------------------------------------------------------------------

@pytest.mark.parametrize('step,noise', [(0, 1.0), (1250, 0.75), (2500, 0.5), (5000, 0.0), (12000, 0.0)])
def test_nerf_noise_falls_linearly_to_zero_at_step_5000(step, noise):
    assert schedules.nerf_noise(step) == pytest.approx(noise)


@pytest.mark.parametrize('step,alpha', [(1000, 0.0), (1500, 0.25), (2000, 0.5), (3000, 1.0), (9000, 1.0)])
def test_fade_in_alpha_rises_linearly_from_the_stage_start(step, alpha):
    assert schedules.fade_in_alpha(step, stage_start=1000, fade_steps=2000) == pytest.approx(alpha)
