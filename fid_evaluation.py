"""Real-image folders for FID, and the FID tracked during training (the original's public names).

    python fid_evaluation.py --dataset CelebA --img_size 128 --num_imgs 8000 [--dataset_path GLOB] [--real_dir DIR]

writes the dataset's images at that resolution as lossless PNGs into
EvalImages/<dataset>_real_images_<size> (or DIR), ready for eval_metrics.py
and for `python -m pytorch_fid`.
"""

import argparse
import shutil
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from datasets import DatasetError
from metrics import folder_metrics, load_inception
from metrics.generate import evaluation_metadata, write_generated_images
from metrics.image_files import list_images, save_png, to_uint8
from torch_utils.cli import pick_device

REAL_BATCH_SIZE = 16


def default_real_dir(dataset_name, target_size):
    return Path('EvalImages') / f'{dataset_name}_real_images_{target_size}'


def setup_evaluation(dataset_name, generated_dir, target_size=128, num_imgs=8000, dataset_path=None,
                     real_dir=None):
    """Returns the real-image folder, writing num_imgs dataset images into it unless it already holds images.

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
        import datasets  # only needed when writing images
        kwargs = {'img_size': target_size}
        if dataset_path is not None:
            kwargs['dataset_path'] = dataset_path
        # Shuffled (so a subset is a fair sample) but reproducible, keeping every image.
        dataset = datasets.make_dataset(dataset_name, **kwargs)
        dataloader = torch.utils.data.DataLoader(dataset, batch_size=REAL_BATCH_SIZE, shuffle=True,
                                                 generator=torch.Generator().manual_seed(0),
                                                 **datasets.loader_options(kwargs))
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
                save_png(image, Path(real_dir) / f'{count:05d}.png')
                count += 1
            bar.update(len(batch))
            if count >= num_imgs:
                break
    if count < num_imgs:
        print(f"WARNING: the dataset gave only {count} of the {num_imgs} images asked for", file=sys.stderr)
    return count


def output_images(generator, input_metadata, rank, world_size, output_dir, num_imgs=2048, img_size=128,
                  batch_size=4, seed=0):
    """This rank's share of num_imgs evaluation images in output_dir, names {index:05d}.png interleaved by rank.

    Rendering uses the evaluation settings (psi 1, *_eval camera keys, no density noise) and
    a fixed seed, so successive evaluations during training see the same latents and cameras.
    """
    options, _ = evaluation_metadata(input_metadata, img_size)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    write_generated_images(generator, options, output_dir, num_imgs, batch_size=batch_size, rank=rank,
                           world_size=world_size, seed=seed)


def calculate_fid(dataset_name, generated_dir, target_size=128, real_dir=None, device=None,
                  inception_weights=None, batch_size=50):
    """FID of the images in generated_dir against the real folder (cached statistics beside generated_dir)."""
    real_dir = real_dir or default_real_dir(dataset_name, target_size)
    device = pick_device(device)
    inception = load_inception(device, inception_weights)
    results, _ = folder_metrics(real_dir, generated_dir, Path(generated_dir).resolve().parent, inception,
                                ['fid'], batch_size=batch_size)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return results['fid']


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a dataset's real images for FID evaluation.")
    parser.add_argument('--dataset', default='CelebA', help="dataset class in datasets.py")
    parser.add_argument('--img_size', type=int, default=128)
    parser.add_argument('--num_imgs', type=int, default=8000)
    parser.add_argument('--dataset_path', default=None, help="glob or folder of the dataset's images")
    parser.add_argument('--real_dir', default=None, help="default: EvalImages/<dataset>_real_images_<img_size>")
    args = parser.parse_args(argv)
    try:
        real_dir = setup_evaluation(args.dataset, None, args.img_size, args.num_imgs, args.dataset_path,
                                    args.real_dir)
    except (DatasetError, OSError) as error:  # e.g. a missing dataset path
        sys.exit(f"fid_evaluation.py: error: {error}")
    print(real_dir)


if __name__ == '__main__':
    main()
