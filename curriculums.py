"""Training curricula: plain dicts, easy to read and to diff.

Schema
------
Integer keys are stages: the step at which the stage begins, mapped to the keys
that change there. A stage inherits every key of the stages before it, so an
empty stage changes nothing. String keys hold for the whole run; a stage key of
the same name overrides them from that stage on.

Every key, in a stage or for the whole run, must be one of KEYS below (the table
printed at the end of this docstring, with each key's type and default): a key
that no code reads is an error that names the nearest valid key, so a typo such as `--set hierarchical_sampling=False`
fails instead of doing nothing. A checkpoint that records a key this version no
longer reads still loads: the key is dropped with a warning. A key a curriculum
leaves out takes its default from KEYS; settings.py turns the keys in force at a
step into one typed, frozen object and checks them there.
"""

import difflib
import math
import sys
from typing import NamedTuple, Optional

from utils.errors import UserError

REQUIRED = object()  # a key without a default: a curriculum must set it


class Key(NamedTuple):
    """A curriculum key: the type of its value, its default (REQUIRED: none) and what it does."""
    type: object
    default: object
    meaning: str


# The valid curriculum keys: each one's type, default and meaning. The check (check_keys), settings.py
# (the typed settings of a step, which take their defaults from here and nowhere else) and this module's
# docstring read this table; tests assert that every key of every shipped curriculum is in it and that
# every key in it is read somewhere.
KEYS = {
    # usually set per stage
    'batch_size': Key(int, REQUIRED, "images per step, per process"),
    'num_steps': Key(int, REQUIRED, "coarse samples per ray (hierarchical sampling adds as many fine ones)"),
    'img_size': Key(int, REQUIRED, "image resolution"),
    'batch_split': Key(int, 1, "chunks a batch is split into to save memory (gradients accumulate)"),
    'gen_lr': Key(float, REQUIRED, "generator learning rate"),
    'disc_lr': Key(float, REQUIRED, "discriminator learning rate"),
    # data
    'dataset': Key(str, REQUIRED, "dataset class in datasets.py"),
    'dataset_path': Key(Optional[str], None, "glob or folder of the images; None reads $PIGAN_<DATASET>_PATH"),
    'random_flip': Key(bool, False, "ImageFolder dataset: random horizontal flips"),
    'resize_antialias': Key(bool, False, "datasets: antialiased resize instead of the original's nearest-neighbour"),
    'synthetic_size': Key(int, 64, "Synthetic dataset: side of the generated images"),
    'synthetic_count': Key(int, 2000, "Synthetic dataset: number of generated images"),
    'synthetic_background': Key(str, 'grey', "Synthetic dataset: 'grey' (a light grey per image) or 'white' "
                                             "(for white_back)"),
    # camera and rays
    'fov': Key(float, REQUIRED, "full field of view, degrees"),
    'ray_start': Key(float, REQUIRED, "near bound along each ray"),
    'ray_end': Key(float, REQUIRED, "far bound along each ray"),
    'h_mean': Key(float, math.pi / 2, "mean camera yaw, radians"),
    'v_mean': Key(float, math.pi / 2, "mean camera pitch, radians"),
    'h_stddev': Key(float, 0.0, "camera yaw spread, radians"),
    'v_stddev': Key(float, 0.0, "camera pitch spread, radians"),
    'sample_dist': Key(Optional[str], None, "gaussian | normal | uniform | hybrid | truncated_gaussian | "
                                            "spherical_uniform | None (always the mean)"),
    'h_stddev_eval': Key(Optional[float], None, "h_stddev for evaluation images (FID), if different"),
    'v_stddev_eval': Key(Optional[float], None, "v_stddev for evaluation images (FID), if different"),
    'sample_dist_eval': Key(Optional[str], None, "sample_dist for evaluation images (FID), if different"),
    # rendering
    'hierarchical_sample': Key(bool, False, "NeRF importance sampling (doubles the samples)"),
    'clamp_mode': Key(str, 'relu', "relu | softplus, applied to raw density"),
    'white_back': Key(bool, False, "white background in volume integration"),
    'last_back': Key(bool, False, "the last sample of a ray takes the remaining weight"),
    'eval_last_back': Key(Optional[bool], None, "last_back for evaluation and inference renders"),
    'perturb': Key(bool, True, "stratified jitter along rays (default on)"),
    'lock_view_dependence': Key(bool, False, "colour does not depend on the view direction"),
    'fill_mode': Key(Optional[str], None, "debug renders of the integration: debug | weight"),
    'fast_path': Key(Optional[bool], None, "fused SIREN evaluation (default on); False uses the plain eager SIREN"),
    # networks
    'model': Key(str, REQUIRED, "SIREN class in siren/siren.py"),
    'generator': Key(str, 'ImplicitGenerator3d', "generator class in generators/generators.py"),
    'discriminator': Key(str, REQUIRED, "discriminator class in discriminators/discriminators.py"),
    'latent_dim': Key(int, REQUIRED, "z dimension"),
    'hidden_dim': Key(Optional[int], None, "SIREN width (256 in the paper)"),
    'density_scale': Key(float, 1.0, "the SIREN's raw density is multiplied by this (1: the original); a run key: "
                                     "a larger value lets a narrow SIREN reach opaque surfaces in fewer steps"),
    'z_dist': Key(str, 'gaussian', "gaussian | uniform"),
    # optimisation and losses
    'fade_steps': Key(int, REQUIRED, "steps to fade in the discriminator's new resolution"),
    'topk_interval': Key(Optional[float], None, "generator top-k: keep max(0.99**(step/topk_interval), topk_v) of "
                                                "the batch"),
    'topk_v': Key(float, 1.0, "generator top-k floor (see topk_interval)"),
    'betas': Key(tuple, REQUIRED, "Adam betas"),
    'weight_decay': Key(float, 0.0, "Adam weight decay"),
    'unique_lr': Key(bool, False, "mapping network trains at gen_lr * 5e-2"),
    'r1_lambda': Key(float, REQUIRED, "R1 penalty weight on real images"),
    'grad_clip': Key(float, 0.3, "gradient norm clip"),
    'z_lambda': Key(float, 0.0, "weight of the latent identity loss"),
    'pos_lambda': Key(float, 0.0, "weight of the camera (pose) identity loss"),
    'use_real_poses': Key(bool, False, "the real images' known camera poses (Synthetic data) train the "
                                       "discriminator's pose head; False (the default, as the original): training "
                                       "sees images only, as with photos"),
    'disc_fake_pose': Key(bool, True, "the discriminator learns the camera pose of generated images too (the "
                                      "original); False: only the known poses of real images train its pose head "
                                      "(needs use_real_poses)"),
    'instance_noise': Key(float, 0.0, "std of the noise added to the discriminator's input (0: none)"),
    # patch training (training/patches.py)
    'patch_size': Key(Optional[int], None, "K: at stages whose img_size is larger, G renders and D judges random "
                                           "K x K patches of the img_size image (real ones resampled from the "
                                           "full-size image) and D is told their scale; a run key; 0 or None (the "
                                           "default): whole images"),
    'patch_scale_min': Key(Optional[float], None, "smallest patch scale (patch side over image side; drawn "
                                                  "uniformly up to 1); default (patch_size - 1) / (img_size - 1), "
                                                  "a patch pixel per image pixel"),
}


# Keys that hold for the whole run (read when the networks are built, or a choice of what the
# run learns from): a stage cannot change them.
RUN_ONLY_KEYS = ('density_scale', 'use_real_poses', 'patch_size')


def default(key):
    """KEYS[key]'s default (REQUIRED: none), for signatures that take a curriculum key as a keyword."""
    return KEYS[key].default


def type_name(key):
    """A key's type as written in the table: int, Optional[str], ..."""
    kind = KEYS[key].type
    return kind.__name__ if isinstance(kind, type) else str(kind).replace('typing.', '')


def describe_default(key):
    default = KEYS[key].default
    return 'required' if default is REQUIRED else f'default {default!r}'


def describe_keys():
    """KEYS as an aligned text table: key, type and default, meaning."""
    width = max(map(len, KEYS))
    kinds = {key: f'{type_name(key)}, {describe_default(key)}' for key in KEYS}
    kind_width = max(map(len, kinds.values()))
    return '\n'.join(f'    {key:<{width}}  {kinds[key]:<{kind_width}}  {entry.meaning}' for key, entry in KEYS.items())


__doc__ += f"\nKeys\n----\n{describe_keys()}\n"


class ConfigError(UserError, ValueError):
    """A curriculum or option that cannot work (unknown name, inconsistent keys)."""


def unknown_key_message(key):
    """'unknown curriculum key ...; did you mean ...?' for a key not in KEYS."""
    close = difflib.get_close_matches(str(key), KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "the valid keys are listed in curriculums.KEYS"
    return f"unknown curriculum key {key!r}; {hint}"


def unknown_keys(curriculum):
    """The string keys of a curriculum (run keys and every stage's keys) that are not in KEYS."""
    keys = [key for key in curriculum if not isinstance(key, int)]
    for step in stage_steps(curriculum):
        keys.extend(curriculum[step])
    return sorted({key for key in keys if key not in KEYS}, key=str)


def check_keys(curriculum):
    """Raises ConfigError naming the nearest valid key for the first key no code reads."""
    unknown = unknown_keys(curriculum)
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0]))


def drop_unknown_keys(curriculum, source='this curriculum'):
    """The curriculum without keys this version does not read, each reported as a warning on stderr.

    For curricula recorded in checkpoints: a key an older version wrote should not stop them loading.
    """
    unknown = unknown_keys(curriculum)
    for key in unknown:
        print(f"warning: {source} sets {key!r}, which no code of this version reads; ignored", file=sys.stderr)
    return {k: ({s: x for s, x in v.items() if s not in unknown} if isinstance(k, int) else v)
            for k, v in curriculum.items() if k not in unknown}


def stage_steps(curriculum):
    return sorted(k for k in curriculum if isinstance(k, int))


def extract_metadata(curriculum, current_step):
    """The settings in force at current_step: run keys, then every stage so far in order."""
    metadata = {k: v for k, v in curriculum.items() if not isinstance(k, int)}
    for step in stage_steps(curriculum):
        if step <= current_step:
            metadata.update(curriculum[step])
    return metadata


def discriminator_size(img_size, patch_size):
    """Side of the images the discriminator sees: patch_size at a stage that trains on patches of larger
    images (training/patches.py), else img_size."""
    return patch_size if patch_size and patch_size < img_size else img_size


def stage_discriminator_size(curriculum, step):
    metadata = extract_metadata(curriculum, step)
    return discriminator_size(metadata['img_size'], metadata.get('patch_size', KEYS['patch_size'].default))


def next_upsample_step(curriculum, current_step):
    """First stage after current_step where the discriminator sees larger images (inf if none)."""
    current_size = stage_discriminator_size(curriculum, current_step)
    for step in stage_steps(curriculum):
        if step > current_step and stage_discriminator_size(curriculum, step) > current_size:
            return step
    return float('inf')


def last_upsample_step(curriculum, current_step):
    """The step at which the discriminator's current input size (img_size, or patch_size) began: the fade-in's start."""
    current_size = stage_discriminator_size(curriculum, current_step)
    for step in stage_steps(curriculum):
        if step <= current_step and stage_discriminator_size(curriculum, step) == current_size:
            return step
    return 0


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
    # The original's 'learnable_dist': False is left out: no code read it.
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

# Fast CPU recipe for the synthetic heads on 2 CPU cores: pi-GAN's method (SIREN+FiLM
# generator, volume rendering, progressive encoder discriminator, pose loss on the generated
# images' cameras), learning from the images alone as it must on photos, made cheap: a narrow discriminator, 16x16 images first, then 32x32, and
# hierarchical sampling from step 4000, with the density scaled up so that heads become
# opaque within minutes. The rest is the demo's. bench/convergence.py measures it.
SYNTHETIC_CPU = {
    **{key: value for key, value in SPATIALSIRENBASELINE.items()
       if not isinstance(key, int) and key not in ('hierarchical_sample', 'eval_last_back')},
    0: {'batch_size': 8, 'num_steps': 12, 'img_size': 16, 'batch_split': 1, 'gen_lr': 2e-4, 'disc_lr': 4e-4,
        'hierarchical_sample': False},
    2000: {'img_size': 32},
    4000: {'hierarchical_sample': True, 'gen_lr': 1e-4, 'disc_lr': 3e-4},

    'discriminator': 'NarrowCCSEncoderDiscriminator',
    'fade_steps': 200,
    # A SIREN 64 wide cannot output a density above |w|_1 + |b| of its density layer, and Adam
    # typically grows that by about 65 x lr a step. Unscaled, the densest point sat at that bound
    # all run long (12 at 12 minutes, 38 at 60) and the heads had see-through edges; x5 gives
    # opaque heads (bench/RESULTS.md, runs 2 and 5).
    'density_scale': 5.0,
    # Heads on pure white, drawn by white_back (as the original's CARLA): empty space renders
    # as the background. eval_last_back is left out: it would hide the white background.
    'synthetic_background': 'white',
    'white_back': True,
    # No pose loss. From images alone (use_real_poses off), the original's 15 let the discriminator's
    # pose head, taught by generated images only, dominate: at 12 minutes the samples were speckle
    # with no density above 1.4; at 1 the heads formed but turned worse than at 0 (bench/RESULTS.md, run 8).
    'pos_lambda': 0,
}

# SYNTHETIC_CPU with the synthetic heads' true poses training the discriminator's pose head, with the
# original's pose loss weight: the recipe of runs 5 and 6, what known poses buy (bench/RESULTS.md).
SYNTHETIC_CPU_POSED = {**SYNTHETIC_CPU, 'use_real_poses': True, 'pos_lambda': 15}

# Faces on a CPU (what prepare_dataset.py prints on a machine without a GPU): SYNTHETIC_CPU's cheap networks and
# schedule (16x16, then 32x32) on an ImageFolder of aligned faces with random flips, with CelebA's camera,
# pose loss and last_back, and no white background (photos have their own). Its image quality is not measured.
CelebA_CPU = {
    **{key: value for key, value in SYNTHETIC_CPU.items()
       if not str(key).startswith('synthetic_') and key != 'white_back'},
    **{key: CelebA[key] for key in ('fov', 'ray_start', 'ray_end', 'h_mean', 'v_mean', 'h_stddev', 'v_stddev',
                                    'sample_dist', 'z_lambda', 'last_back', 'eval_last_back')},
    # SYNTHETIC_CPU's pos_lambda 0, not CelebA's 15: with these narrow networks and no known poses, 15
    # gave speckle and no density at all (bench/RESULTS.md, run 8).
    'dataset': 'ImageFolder',
    'random_flip': True,
    'resize_antialias': True,  # the prepared 256 px crops shrink to 16 and 32 px: nearest-neighbour would alias
}

# SYNTHETIC_CPU with patch training (GRAF, EpiGRAF): after the 16x16 stage, 64x64 images seen through random
# 32x32 patches (scales 31/63 to 1, a patch pixel per image pixel at the smallest, the whole image at 32x32 at
# the largest), so a step costs about a 32x32 step while the surface is supervised at 64x64 detail.
SYNTHETIC_CPU_PATCH = {**SYNTHETIC_CPU, 2000: {'img_size': 64}, 'patch_size': 32}

CURRICULA = ('CelebA', 'CARLA', 'CATS', 'SPATIALSIRENBASELINE', 'SYNTHETIC_CPU', 'SYNTHETIC_CPU_POSED', 'CelebA_CPU',
             'SYNTHETIC_CPU_PATCH')


def apply_overrides(curriculum, overrides):
    """Sets keys for the whole run: each override replaces that key in every stage too.

    An int key is a stage: its dict is merged into that stage. An override key that
    no code reads is a ConfigError; such a key already in `curriculum` (one recorded
    by an older version) is dropped with a warning.
    """
    check_keys(overrides or {})
    curriculum = drop_unknown_keys(curriculum, 'the recorded curriculum')
    curriculum = {k: (dict(v) if isinstance(v, dict) else v) for k, v in curriculum.items()}
    for key, value in (overrides or {}).items():
        if isinstance(key, int):  # a stage override merges into (or adds) that stage
            curriculum[key] = {**curriculum.get(key, {}), **value}
            continue
        for step in stage_steps(curriculum):
            curriculum[step].pop(key, None)
        curriculum[key] = value
    check_run_only_keys(curriculum)
    return curriculum


def check_run_only_keys(curriculum, source='the curriculum'):
    """ConfigError if a stage sets one of RUN_ONLY_KEYS (read once, when the generator is built)."""
    for step in stage_steps(curriculum):
        fixed = sorted(set(RUN_ONLY_KEYS) & set(curriculum[step])) if isinstance(curriculum[step], dict) else []
        if fixed:
            raise ConfigError(f"{source}: stage {step} sets {fixed[0]!r}, which holds for the whole run; set it "
                              f"there, not in a stage")


def get(name):
    """The curriculum named `name` (a copy), with a clear error for unknown names."""
    if name not in CURRICULA:
        raise ConfigError(f"unknown curriculum {name!r}; choose one of {', '.join(CURRICULA)}")
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in globals()[name].items()}
