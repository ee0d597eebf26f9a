"""FID during training: the real-image folder, the generated images, the score (the original's public names).

fid_evaluation.py is the command line of setup_evaluation; training calls evaluate_fid every --eval_freq steps.
"""

import shutil
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import datasets
from metrics import folder_metrics, load_inception
from metrics.generate import evaluation_metadata, write_generated_images
from torch_utils.cli import pick_device
from torch_utils.ema import averaged_weights
from torch_utils.media import list_images, save_image, to_uint8
from training.distributed import barrier

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
                save_image(image, Path(real_dir) / f'{count:05d}.png')
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


def evaluate_fid(info, output_dir, step, generator, generator_ddp, ema, metadata, opt):
    """FID of the EMA generator against real images, appended to fid.txt as step:fid.

    All ranks render their share of --fid_images; rank 0 computes the FID.
    """
    generated_dir = output_dir / 'evaluation' / 'generated'
    real_dir = opt.fid_real_dir
    if info.is_main:
        real_dir = setup_evaluation(metadata['dataset'], str(generated_dir), target_size=opt.fid_size,
                                    num_imgs=opt.fid_real_images, real_dir=opt.fid_real_dir,
                                    dataset_path=metadata.get('dataset_path'))
    barrier(info)
    with averaged_weights(ema, generator):
        output_images(generator_ddp, metadata, info.rank, info.world_size, str(generated_dir),
                      num_imgs=opt.fid_images, img_size=opt.fid_size)
    barrier(info)
    if info.is_main:
        fid = calculate_fid(metadata['dataset'], str(generated_dir), target_size=opt.fid_size,
                            real_dir=real_dir, device=info.device, inception_weights=opt.inception_weights)
        with open(output_dir / 'fid.txt', 'a') as f:
            f.write(f'{step}:{fid}\n')
        tqdm.write(f"[Step: {step}] FID {fid:.2f}")
