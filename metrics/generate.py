"""Rendering a generator's images for evaluation and saving them as lossless PNGs."""

import re
from pathlib import Path

import torch
from tqdm import tqdm

from generators.generators import STAGED_MAX_BATCH_SIZE
from inference.rendering import evaluation_settings
from torch_utils.latents import z_sampler
from utils.media import list_images, save_image, to_uint8

from .image_files import ImageFolderError

GENERATED_NAME = re.compile(r'^\d+\.png$')


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


def write_generated_images(generator, settings, folder, num_images, batch_size=4, rank=0, world_size=1,
                           seed=0, max_batch_size=None):
    """Renders this rank's share of num_images (indices rank, rank + world_size, ...) as {index:05d}.png.

    settings: the evaluation's settings.Settings (evaluation_settings): its rendering, camera distribution
    and latent distribution. max_batch_size: points per SIREN call (None: staged_forward's default).

    Rendering runs on its own seeded RNG stream: the same images at every call, and the caller's
    random state (e.g. training's) is left untouched. The generator's train/eval mode is restored.
    """
    generator = getattr(generator, 'module', generator)  # DDP: render without the wrapper's hooks
    folder = Path(folder)
    indices = list(range(rank, num_images, world_size))
    rendering, camera = settings.rendering, settings.camera
    devices = [generator.device] if generator.device.type == 'cuda' else []
    was_training = generator.training
    generator.eval()
    try:
        with torch.random.fork_rng(devices=devices), \
                tqdm(total=len(indices), desc='generating images', unit='img', disable=rank != 0) as bar:
            torch.manual_seed(seed + rank)
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                z = z_sampler((len(chunk), generator.z_dim), 'cpu', settings.networks.z_dist)
                pixels, _ = generator.staged_forward(z.to(generator.device), psi=1, rendering=rendering, camera=camera,
                                                     max_batch_size=max_batch_size or STAGED_MAX_BATCH_SIZE)
                for index, image in zip(chunk, to_uint8(pixels)):
                    save_image(image, folder / f'{index:05d}.png')
                bar.update(len(chunk))
    finally:
        generator.train(was_training)


def output_images(generator, settings, rank, world_size, output_dir, num_imgs=2048, img_size=128,
                  batch_size=4, seed=0, max_batch_size=None):
    """This rank's share of num_imgs evaluation images in output_dir (the original's name), as
    write_generated_images, from a step's settings.Settings; returns the evaluation's (evaluation_settings,
    *_eval cameras).

    A fixed seed: successive evaluations during training see the same latents and cameras.
    """
    evaluation = evaluation_settings(settings, img_size, cameras='eval')
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    write_generated_images(generator, evaluation, output_dir, num_imgs, batch_size=batch_size, rank=rank,
                           world_size=world_size, seed=seed, max_batch_size=max_batch_size)
    return evaluation
