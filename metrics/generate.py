"""Rendering a generator's images for evaluation and saving them as lossless PNGs."""

import copy
import re
from pathlib import Path

import torch
from tqdm import tqdm

from torch_utils.latents import z_sampler
from torch_utils.media import list_images, save_image, to_uint8

from .image_files import ImageFolderError

EVAL_KEYS = {'h_stddev': 'h_stddev_eval', 'v_stddev': 'v_stddev_eval', 'sample_dist': 'sample_dist_eval',
             'last_back': 'eval_last_back'}
GENERATED_NAME = re.compile(r'^\d+\.png$')


def evaluation_metadata(metadata, img_size=None):
    """(render options, curriculum eval keys used): training settings with the *_eval keys applied,
    no density noise, and img_size if given. psi is not among them: callers pass psi=1."""
    options = copy.deepcopy(metadata)
    used = {}
    for key, eval_key in EVAL_KEYS.items():
        if eval_key in options:
            options[key] = options[eval_key]
            used[key] = eval_key
    options['nerf_noise'] = 0
    if img_size is not None:
        options['img_size'] = img_size
    for key in ('psi', 'max_batch_size'):  # passed to staged_forward separately
        options.pop(key, None)
    return options, used


def prepare_output_folder(folder):
    """Makes folder and removes the numbered PNGs of an earlier run; refuses folders with other images,
    because they would enter a `python -m pytorch_fid` comparison of the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for file in list_images(folder):
        if GENERATED_NAME.match(file.name):
            file.unlink()
    others = list_images(folder)
    if others:
        raise ImageFolderError(f"{folder} holds images this script did not write (e.g. {others[0].name}); "
                               f"choose an empty --output_dir")


def write_generated_images(generator, options, folder, num_images, batch_size=4, rank=0, world_size=1,
                           seed=0, max_batch_size=None):
    """Renders this rank's share of num_images (indices rank, rank + world_size, ...) as {index:05d}.png.

    Rendering runs on its own seeded RNG stream: the same images at every call, and the caller's
    random state (e.g. training's) is left untouched. The generator's train/eval mode is restored.
    """
    generator = getattr(generator, 'module', generator)  # DDP: render without the wrapper's hooks
    folder = Path(folder)
    indices = list(range(rank, num_images, world_size))
    extra = {} if max_batch_size is None else {'max_batch_size': max_batch_size}
    devices = [generator.device] if generator.device.type == 'cuda' else []
    was_training = generator.training
    generator.eval()
    try:
        with torch.random.fork_rng(devices=devices), \
                tqdm(total=len(indices), desc='generating images', unit='img', disable=rank != 0) as bar:
            torch.manual_seed(seed + rank)
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                z = z_sampler((len(chunk), generator.z_dim), 'cpu', options.get('z_dist', 'gaussian'))
                pixels, _ = generator.staged_forward(z.to(generator.device), psi=1, **extra, **options)
                for index, image in zip(chunk, to_uint8(pixels)):
                    save_image(image, folder / f'{index:05d}.png')
                bar.update(len(chunk))
    finally:
        generator.train(was_training)
