"""Real-image folders for FID, KID and IS: a dataset's images written once as lossless PNGs
(the original's public names; fid_evaluation.py is their command line, training uses them too)."""

import shutil
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import datasets
from utils.media import list_images, save_image, to_uint8

REAL_BATCH_SIZE = 16


def default_real_dir(dataset_name, target_size):
    return Path('EvalImages') / f'{dataset_name}_real_images_{target_size}'


def setup_evaluation(dataset_name, generated_dir, target_size=128, num_imgs=8000, dataset_path=None,
                     real_dir=None, make_dataset=None):
    """Returns the real-image folder, writing num_imgs dataset images into it unless it already holds images.

    make_dataset: returns the images to write, at target_size, called only when they must be written (default:
    datasets.make_dataset(dataset_name, target_size, dataset_path), the class's defaults; training passes its
    run's, e.g. the synthetic heads on white).
    The images go to a '.partial' folder first and are renamed when complete, so an
    interrupted run never leaves a folder that looks finished.
    """
    real_dir = Path(real_dir) if real_dir else default_real_dir(dataset_name, target_size)
    existing = list_images(real_dir) if real_dir.is_dir() else []
    if existing:
        if len(existing) < num_imgs:
            print(f"WARNING: {real_dir} holds {len(existing)} images, fewer than {num_imgs}; "
                  f"delete it to write them anew", file=sys.stderr)
    else:
        dataset = make_dataset() if make_dataset else datasets.make_dataset(dataset_name, target_size, dataset_path)
        # Shuffled (so a subset is a fair sample) but reproducible, keeping every image.
        dataloader = torch.utils.data.DataLoader(dataset, batch_size=REAL_BATCH_SIZE, shuffle=True,
                                                 generator=torch.Generator().manual_seed(0),
                                                 **datasets.loader_options())
        partial = real_dir.with_name(real_dir.name + '.partial')
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        output_real_images(dataloader, num_imgs, partial)
        if real_dir.is_dir():
            real_dir.rmdir()  # empty, as checked above
        partial.rename(real_dir)
    if generated_dir is not None:
        Path(generated_dir).mkdir(parents=True, exist_ok=True)
    return str(real_dir)


def output_real_images(dataloader, num_imgs, real_dir):
    """Writes the first num_imgs images of dataloader as {index:05d}.png; returns how many were written."""
    count = 0
    with tqdm(total=num_imgs, desc='writing real images', unit='img') as bar:
        for images, _ in dataloader:
            batch = to_uint8(images[:num_imgs - count])
            for image in batch:
                save_image(image, Path(real_dir) / f'{count:05d}.png')
                count += 1
            bar.update(len(batch))
            if count >= num_imgs:
                break
    if count < num_imgs:
        print(f"WARNING: the dataset gave only {count} of the {num_imgs} images asked for", file=sys.stderr)
    return count
