"""The inversion benchmark: one photo of a head the generator never saw, inverted, measured in 3D.

N true synthetic heads drawn from their own random stream (HEAD_SEED: never a training
dataset's, whose heads come from default_rng(dataset seed)) are each rendered at a pose
drawn from the curriculum's camera distribution at the training resolution, written as
a PNG and read back as inverse_render.py reads its input, then inverted by
inference.inversion.invert with inverse_render.py's options (pose unknown: the fit starts
where the script starts it). Scored against the true head:

    pose         mean |yaw| and |pitch| error of the recovered pose, degrees
    novel views  PSNR (dB) and SSIM of the inverted head turned by YAW_OFFSETS from its recovered
                 pose against the true head traced turned as much from its true pose, and the
                 silhouettes' IoU there (averaged over +offset and -offset)
    shape        two-way surface distance (world units, shape.py) of the inverted latent's mesh to
                 THAT head, median over heads
    cost         seconds per image (wall clock of the fit, pose search included)

with floors (a perfect inversion: the true pose; the true head rendered as the generator renders,
through pixel centres; the true head's own sharp mesh through the same mesh path) and baselines
(_copy: the input view copied as every novel view; _mean: the generator's average latent at the
recovered pose; _sphere: the best sphere around the origin for each head; pose _start: the
mean pose, where a fit without a search starts; _regressor: the dataset's pose regressor on
the same photos, the pose metric's floor).

Shapes: images [N, 3, S, S] in [-1, 1]; depths and silhouettes [N, S, S].
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity
from tqdm import tqdm

from generators.camera_utils import Cameras
from inference.inversion import fit_arguments, invert
from inference.rendering import Latent, front_camera
from synthetic import heads as synthetic_heads
from utils.media import load_image, save_image, to_uint8

from . import geometry, shape
from .heads import GeneratorHeads, OccupancyHeads, TrueHeads, sample_cameras
from .registry import GeneratorInputs, register_metric

HEAD_SEED = 2026_12_04          # the held-out heads' stream (synthetic datasets draw theirs from their seed)
YAW_OFFSETS = (0.3, 0.5)        # novel views: the input's camera turned by -offset and +offset, radians
DEFAULT_ARGS = '--optimize_pose --num_iterations 300'  # a photo of unknown pose (inverse_render.py's words)


def held_out_heads(num, settings, dataset_seed=0):
    """TrueHeads of num heads no synthetic dataset of dataset_seed holds, on the background and at the fov
    of a run's settings (settings.Settings)."""
    if dataset_seed == HEAD_SEED:
        raise ValueError(f"the dataset's seed is the held-out heads' own ({HEAD_SEED}): its heads would be these")
    background = settings.data.synthetic_background
    return TrueHeads(synthetic_heads.sample_head_params(num, np.random.default_rng(HEAD_SEED), background),
                     settings.camera.fov)


def as_photos(images, image_size):
    """images [N, 3, S, S] written as PNGs and read back as inverse_render.py reads its input."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f'{i}.png' for i in range(len(images))]
        for path, pixels in zip(paths, to_uint8(images)):
            save_image(pixels, path)
        return torch.cat([load_image(path, image_size) for path in paths])


def silhouettes(depth, rendering):
    """Head pixels [N, S, S] (bool) of renders' depth: nearer than midway from the head's centre (distance
    1) to the far end (rendering: settings.Rendering), where white_back puts empty rays (true heads: inf).
    Only white_back renders have such a depth (without it, empty rays lie at the camera): None for the others."""
    return depth < (1 + rendering.ray_end) / 2 if rendering.white_back else None


def psnr(images, truth):
    """[N] PSNR in dB of images against truth, colours in [0, 1]."""
    mse = (((images - truth) / 2) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def ssim(images, truth):
    """[N] SSIM of images against truth (skimage, 7x7 windows, colours in [0, 1])."""
    pairs = zip(to_uint8(images).astype(np.float64) / 255, to_uint8(truth).astype(np.float64) / 255)
    return torch.tensor([structural_similarity(a, b, channel_axis=2, data_range=1.0) for a, b in pairs])


def iou(masks, true_masks):
    """[N] intersection over union of boolean masks [N, S, S] (1 where both are empty)."""
    union = (masks | true_masks).flatten(1).sum(1)
    return torch.where(union > 0, (masks & true_masks).flatten(1).sum(1) / union.clamp_min(1), 1.0)


def view_scores(images, depth, truth, true_depth, rendering):
    """{psnr, ssim, iou}: [N] scores of renders (images, depth) against the true views (iou NaN without
    white_back: no silhouettes)."""
    masks, true_masks = silhouettes(depth, rendering), silhouettes(true_depth, rendering)
    return {'psnr': psnr(images, truth), 'ssim': ssim(images, truth),
            'iou': torch.full((len(images),), torch.nan) if masks is None else iou(masks, true_masks)}


def pixel_centre_views(heads, cameras, img_size):
    """The true heads traced through pixel centres only, as the generator's renderer samples them:
    (images, depth), what a perfect inversion renders."""
    images, buffers = synthetic_heads.render_heads(heads.heads, cameras.pitch, cameras.yaw, img_size, heads.fov,
                                                     supersample=1, return_buffers=True)
    return images * 2 - 1, buffers['depth']


def invert_photos(generator, settings, photos, args, progress=True):
    """(fits, seconds [N]): each photo [N, 3, S, S] inverted alone from the mean pose, as the script does."""
    fits, seconds = [], []
    start = front_camera(settings.camera)
    for photo in tqdm(photos, desc='inversion: heads', unit='head', disable=not progress):
        began = time.perf_counter()
        fits.append(invert(generator, settings, photo[None], start, args, progress=False))
        seconds.append(time.perf_counter() - began)
    return fits, torch.tensor(seconds)


def shape_distances(sources, heads):
    """[N] two-way distance of each source's sample i mesh to true head i (inf without a surface)."""
    distances = []
    for index, params in enumerate(heads.heads):
        mesh = shape.sample_mesh(sources, index)
        distances.append(np.inf if mesh is None else shape.HeadBank([params]).match(shape.Surface(*mesh))[2])
    return np.array(distances)


def best_spheres(heads):
    """[N] two-way distance of the best sphere around the origin for each true head."""
    return np.array([shape.best_sphere(shape.HeadBank([params]))[1][2] for params in heads.heads])


def benchmark(generator, settings, heads, cameras, args, regressor=None, progress=True, max_batch_size=2400000):
    """Inverts heads' photos at cameras; returns (values: {name: float}, details) where details holds the
    per-head scores, the fits, the photos and the renders the picture of bench/inversion.py shows.

    heads: TrueHeads (everything scored) or any head source of metrics/heads.py (the generator's own
    samples: the ceiling; no shape). args: inference.inversion.fit_arguments' options.
    """
    size = settings.rendering.img_size
    indices = list(range(len(cameras)))
    inputs, input_depth = heads.render(indices, cameras, size)
    photos = as_photos(inputs, args.image_size)
    fits, seconds = invert_photos(generator, settings, photos, args, progress)
    recovered = Cameras.cat(fit.camera for fit in fits)
    true_pose = torch.stack([cameras.yaw, cameras.pitch], -1)
    found = torch.stack([recovered.yaw, recovered.pitch], -1)
    start = torch.tensor([[settings.camera.h_mean, settings.camera.v_mean]])
    values = {'inversion_num': len(cameras), 'inversion_seconds': float(seconds.mean()),
              'inversion_seconds_max': float(seconds.max())}
    for column, angle in enumerate(('yaw', 'pitch')):
        values[f'inversion_{angle}_deg'] = float(np.degrees((found - true_pose)[:, column].abs().mean()))
        values[f'inversion_{angle}_deg_floor'] = 0.0
        values[f'inversion_{angle}_deg_start'] = float(np.degrees((start - true_pose)[:, column].abs().mean()))
    if regressor is not None:
        predicted, _ = regressor.predict(photos)
        for column, angle in enumerate(('yaw', 'pitch')):
            values[f'inversion_{angle}_deg_regressor'] = float(
                np.degrees((predicted - true_pose)[:, column].abs().mean()))

    fitted = GeneratorHeads(generator, settings, max_batch_size=max_batch_size, latents=[f.latent for f in fits])
    average = Latent(*generator.generate_avg_frequencies())
    mean = GeneratorHeads(generator, settings, max_batch_size=max_batch_size, latents=[average] * len(fits))
    details = {'photos': photos, 'fits': fits, 'seconds': seconds, 'cameras': cameras, 'views': {}}
    own, _ = fitted.render(indices, recovered, size)
    values['inversion_psnr_input'] = float(psnr(own, photos).mean())
    for offset in YAW_OFFSETS:
        scores = {}
        for sign in (-1, 1):
            true_cameras, fit_cameras = cameras.turned(yaw=sign * offset), recovered.turned(yaw=sign * offset)
            truth, true_depth = heads.render(indices, true_cameras, size)
            renders = {'': fitted.render(indices, fit_cameras, size), '_mean': mean.render(indices, fit_cameras, size),
                       '_copy': (photos, input_depth)}
            if isinstance(heads, TrueHeads):
                renders['_floor'] = pixel_centre_views(heads, true_cameras, size)
            for suffix, (images, depth) in renders.items():
                for name, value in view_scores(images, depth, truth, true_depth, settings.rendering).items():
                    scores.setdefault(f'{name}{suffix}', []).append(value)
            details['views'][sign * offset] = {'truth': truth, 'inverted': renders[''][0]}
        tag = f'{offset:.1f}'.replace('.', '')
        for key, parts in scores.items():
            name, _, suffix = key.partition('_')
            values[f'inversion_{name}_{tag}' + (f'_{suffix}' if suffix else '')] = float(torch.cat(parts).mean())
    if isinstance(heads, TrueHeads):
        distances = shape_distances(fitted, heads)
        details['shape'] = distances
        values.update({'inversion_shape': float(np.median(distances)),
                       'inversion_shape_mean_latent': float(np.median(shape_distances(mean, heads))),
                       'inversion_shape_floor': float(np.median(shape_distances(heads, heads))),
                       'inversion_shape_floor_mesh': float(np.median(shape_distances(
                           OccupancyHeads(heads.heads, heads.fov), heads))),
                       'inversion_shape_sphere': float(np.median(best_spheres(heads)))})
    details['values'] = values
    return values, details


def inversion(generator, settings, dataset_dir, num_samples=8, seed=0, inversion_args=DEFAULT_ARGS, progress=True,
              max_batch_size=2400000, **unused):
    """(values, details) of benchmark on num_samples held-out heads at cameras drawn with seed; the fit's
    options are inversion_args, inverse_render.py's words (default: DEFAULT_ARGS; the rest its defaults)."""
    ref = geometry.reference(dataset_dir)
    # The photos are at the training resolution; a user fits at it too unless inversion_args says otherwise.
    args = fit_arguments(['--image_size', str(settings.rendering.img_size)] + inversion_args.split())
    heads = held_out_heads(num_samples, settings, ref.dataset_record.get('seed', 0))
    module = getattr(generator, 'module', generator)
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            cameras = sample_cameras(num_samples, settings.camera, HEAD_SEED + seed)
            return benchmark(module, settings, heads, cameras, args, ref.regressor, progress, max_batch_size)
    finally:
        module.train(was_training)


@register_metric('inversion', inputs=GeneratorInputs)
def inversion_metric(inputs):
    """The inversion benchmark's values (options['inversion_args']: the fit's options, as inverse_render.py's)."""
    options = {key: value for key, value in inputs.options.items() if key in ('inversion_args', 'max_batch_size')}
    return inversion(inputs.generator, inputs.settings, inputs.dataset_dir, inputs.num_samples, inputs.seed,
                     **options)[0]
