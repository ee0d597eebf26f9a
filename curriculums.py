"""Training curricula: plain dicts, easy to read and to diff.

Schema
------
Integer keys are stages: the step at which the stage begins, mapped to the keys
that change there. A stage inherits every key of the stages before it, so an
empty stage changes nothing. String keys hold for the whole run; a stage key of
the same name overrides them from that stage on.

Stage keys (commonly):
    batch_size      images per step, per process
    num_steps       coarse samples per ray (hierarchical sampling adds as many fine ones)
    img_size        image resolution
    batch_split     chunks a batch is split into to save memory (gradients accumulate)
    gen_lr, disc_lr learning rates

Run keys:
    dataset, dataset_path   dataset class in datasets.py and a glob or folder; a
                            missing path is read from $PIGAN_<DATASET>_PATH
    fov                     full field of view, degrees
    ray_start, ray_end      near and far bounds along each ray
    fade_steps              steps to fade in the discriminator's new resolution
    h_mean, v_mean          mean camera yaw and pitch, radians
    h_stddev, v_stddev      camera yaw and pitch spread, radians
    sample_dist             gaussian | normal | uniform | hybrid | truncated_gaussian
                            | spherical_uniform | None (always the mean)
    topk_interval, topk_v   generator top-k: keep max(0.99**(step/topk_interval), topk_v)
    betas, weight_decay     Adam settings
    unique_lr               mapping network trains at gen_lr * 5e-2
    r1_lambda               R1 penalty weight on real images
    latent_dim              z dimension
    hidden_dim              SIREN width (256 in the paper)
    grad_clip               gradient norm clip
    model                   SIREN class in siren/siren.py
    generator               generator class in generators/generators.py
    discriminator           discriminator class in discriminators/discriminators.py
    clamp_mode              relu | softplus, applied to raw density
    z_dist                  gaussian | uniform
    hierarchical_sample     NeRF importance sampling (doubles the samples)
    z_lambda, pos_lambda    weights of the latent and camera identity losses
    white_back, last_back   background handling in volume integration
    perturb                 stratified jitter along rays (default on)
    fast_path               fused SIREN evaluation (default on); False uses the plain eager SIREN
"""

import math


class ConfigError(ValueError):
    """A curriculum or option that cannot work (unknown name, inconsistent keys)."""


def stage_steps(curriculum):
    return sorted(k for k in curriculum if isinstance(k, int))


def extract_metadata(curriculum, current_step):
    """The settings in force at current_step: run keys, then every stage so far in order."""
    metadata = {k: v for k, v in curriculum.items() if not isinstance(k, int)}
    for step in stage_steps(curriculum):
        if step <= current_step:
            metadata.update(curriculum[step])
    return metadata


def next_upsample_step(curriculum, current_step):
    """First stage after current_step with a larger img_size (inf if none)."""
    current_size = extract_metadata(curriculum, current_step)['img_size']
    for step in stage_steps(curriculum):
        if step > current_step and extract_metadata(curriculum, step)['img_size'] > current_size:
            return step
    return float('inf')


def last_upsample_step(curriculum, current_step):
    """The step at which the current img_size began."""
    current_size = extract_metadata(curriculum, current_step)['img_size']
    for step in stage_steps(curriculum):
        if step <= current_step and extract_metadata(curriculum, step)['img_size'] == current_size:
            return step
    return 0


def get_current_step(curriculum, epoch):
    """Number of entries of curriculum['update_epochs'] reached by epoch."""
    return sum(epoch >= update_epoch for update_epoch in curriculum['update_epochs'])


# --- the paper's curricula --------------------------------------------------------

CelebA = {
    0: {'batch_size': 28 * 2, 'num_steps': 12, 'img_size': 64, 'batch_split': 2, 'gen_lr': 6e-5, 'disc_lr': 2e-4},
    int(200e3): {},

    'dataset_path': None,
    'fov': 12,
    'ray_start': 0.88,
    'ray_end': 1.12,
    'fade_steps': 10000,
    'h_stddev': 0.3,
    'v_stddev': 0.155,
    'h_mean': math.pi * 0.5,
    'v_mean': math.pi * 0.5,
    'sample_dist': 'gaussian',
    'topk_interval': 2000,
    'topk_v': 0.6,
    'betas': (0, 0.9),
    'unique_lr': False,
    'weight_decay': 0,
    'r1_lambda': 0.2,
    'latent_dim': 256,
    'grad_clip': 10,
    'model': 'SPATIALSIRENBASELINE',
    'generator': 'ImplicitGenerator3d',
    'discriminator': 'CCSEncoderDiscriminator',
    'dataset': 'CelebA',
    'clamp_mode': 'relu',
    'z_dist': 'gaussian',
    'hierarchical_sample': True,
    'z_lambda': 0,
    'pos_lambda': 15,
    'last_back': False,
    'eval_last_back': True,
}

CARLA = {
    0: {'batch_size': 30, 'num_steps': 48, 'img_size': 32, 'batch_split': 1, 'gen_lr': 4e-5, 'disc_lr': 4e-4},
    int(10e3): {'batch_size': 14, 'num_steps': 48, 'img_size': 64, 'batch_split': 2, 'gen_lr': 2e-5, 'disc_lr': 2e-4},
    int(55e3): {'batch_size': 10, 'num_steps': 48, 'img_size': 128, 'batch_split': 5, 'gen_lr': 10e-6, 'disc_lr': 10e-5},
    int(200e3): {},

    'dataset_path': None,
    'fov': 30,
    'ray_start': 0.7,
    'ray_end': 1.3,
    'fade_steps': 10000,
    'sample_dist': 'spherical_uniform',
    'h_stddev': math.pi,
    'v_stddev': math.pi / 4 * 85 / 90,
    'h_mean': math.pi * 0.5,
    'v_mean': math.pi / 4 * 85 / 90,
    'topk_interval': 1000,
    'topk_v': 1,
    'betas': (0, 0.9),
    'unique_lr': False,
    'weight_decay': 0,
    'r1_lambda': 10,
    'latent_dim': 256,
    'grad_clip': 1,
    'model': 'TALLSIREN',
    'generator': 'ImplicitGenerator3d',
    'discriminator': 'ProgressiveEncoderDiscriminator',
    'dataset': 'Carla',
    'white_back': True,
    'clamp_mode': 'relu',
    'z_dist': 'gaussian',
    'hierarchical_sample': True,
    'z_lambda': 0,
    'pos_lambda': 0,
    'learnable_dist': False,
}

CATS = {
    0: {'batch_size': 28, 'num_steps': 24, 'img_size': 64, 'batch_split': 4, 'gen_lr': 6e-5, 'disc_lr': 2e-4},
    int(200e3): {},

    'dataset_path': None,
    'fov': 12,
    'ray_start': 0.8,
    'ray_end': 1.2,
    'fade_steps': 10000,
    'h_stddev': 0.5,
    'v_stddev': 0.4,
    'h_mean': math.pi * 0.5,
    'v_mean': math.pi * 0.5,
    'sample_dist': 'uniform',
    'topk_interval': 2000,
    'topk_v': 0.6,
    'betas': (0, 0.9),
    'unique_lr': False,
    'weight_decay': 0,
    'r1_lambda': 0.2,
    'latent_dim': 256,
    'grad_clip': 10,
    'model': 'SPATIALSIRENBASELINE',
    'generator': 'ImplicitGenerator3d',
    'discriminator': 'StridedDiscriminator',
    'dataset': 'Cats',
    'clamp_mode': 'relu',
    'z_dist': 'gaussian',
    'hierarchical_sample': True,
    'z_lambda': 0,
    'pos_lambda': 0,
    'last_back': False,
    'eval_last_back': True,
}

# CPU demo: a narrow SIREN trained on the built-in synthetic heads (created on
# first use), 32x32 then 64x64. Same camera model and losses as CelebA.
SPATIALSIRENBASELINE = {
    0: {'batch_size': 8, 'num_steps': 12, 'img_size': 32, 'batch_split': 1, 'gen_lr': 1e-4, 'disc_lr': 4e-4},
    int(5e3): {'img_size': 64, 'batch_split': 2, 'gen_lr': 6e-5, 'disc_lr': 2e-4},

    'dataset': 'Synthetic',
    'dataset_path': None,
    'synthetic_size': 64,
    'synthetic_count': 2000,
    'fov': 12,
    'ray_start': 0.88,
    'ray_end': 1.12,
    'fade_steps': 2000,
    'h_stddev': 0.3,
    'v_stddev': 0.155,
    'h_mean': math.pi * 0.5,
    'v_mean': math.pi * 0.5,
    'sample_dist': 'gaussian',
    'topk_interval': 2000,
    'topk_v': 0.6,
    'betas': (0, 0.9),
    'unique_lr': False,
    'weight_decay': 0,
    'r1_lambda': 0.2,
    'latent_dim': 256,
    'hidden_dim': 64,
    'grad_clip': 10,
    'model': 'SPATIALSIRENBASELINE',
    'generator': 'ImplicitGenerator3d',
    'discriminator': 'CCSEncoderDiscriminator',
    'clamp_mode': 'relu',
    'z_dist': 'gaussian',
    'hierarchical_sample': True,
    'z_lambda': 0,
    'pos_lambda': 15,
    'last_back': False,
    'eval_last_back': True,
}

# Fast CPU recipe: learns 3D synthetic heads on 2 CPU cores. pi-GAN's method (SIREN+FiLM
# generator, volume rendering, progressive encoder discriminator, pose loss on the known
# real poses), made cheap: a narrow discriminator, 16x16 images first, then 32x32, and
# hierarchical sampling only once the coarse shape is there. bench/convergence.py measures it.
SYNTHETIC_CPU = {
    0: {'batch_size': 8, 'num_steps': 12, 'img_size': 16, 'batch_split': 1, 'gen_lr': 2e-4, 'disc_lr': 4e-4,
        'hierarchical_sample': False},
    2000: {'img_size': 32},
    4000: {'hierarchical_sample': True, 'gen_lr': 1e-4, 'disc_lr': 3e-4},

    'dataset': 'Synthetic',
    'dataset_path': None,
    'synthetic_size': 64,
    'synthetic_count': 2000,
    'fov': 12,
    'ray_start': 0.88,
    'ray_end': 1.12,
    'fade_steps': 200,
    'h_stddev': 0.3,
    'v_stddev': 0.155,
    'h_mean': math.pi * 0.5,
    'v_mean': math.pi * 0.5,
    'sample_dist': 'gaussian',
    'topk_interval': 2000,
    'topk_v': 0.6,
    'betas': (0, 0.9),
    'unique_lr': False,
    'weight_decay': 0,
    'r1_lambda': 0.2,
    'latent_dim': 256,
    'hidden_dim': 64,
    'grad_clip': 10,
    'model': 'SPATIALSIRENBASELINE',
    'generator': 'ImplicitGenerator3d',
    'discriminator': 'NarrowCCSEncoderDiscriminator',
    'clamp_mode': 'relu',
    'z_dist': 'gaussian',
    'z_lambda': 0,
    'pos_lambda': 15,
    'last_back': False,
    'eval_last_back': True,
}

CURRICULA = ('CelebA', 'CARLA', 'CATS', 'SPATIALSIRENBASELINE', 'SYNTHETIC_CPU')


def apply_overrides(curriculum, overrides):
    """Sets keys for the whole run: each override replaces that key in every stage too.

    An int key is a stage: its dict is merged into that stage.
    """
    curriculum = {k: (dict(v) if isinstance(v, dict) else v) for k, v in curriculum.items()}
    for key, value in (overrides or {}).items():
        if isinstance(key, int):  # a stage override merges into (or adds) that stage
            curriculum[key] = {**curriculum.get(key, {}), **value}
            continue
        for step in stage_steps(curriculum):
            curriculum[step].pop(key, None)
        curriculum[key] = value
    return curriculum


def get(name):
    """The curriculum named `name` (a copy), with a clear error for unknown names."""
    if name not in CURRICULA:
        raise ConfigError(f"unknown curriculum {name!r}; choose one of {', '.join(CURRICULA)}")
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in globals()[name].items()}
