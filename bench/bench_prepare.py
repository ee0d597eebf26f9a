"""Speed of prepare_dataset.py: photos per second, end to end (worker start-up included), on this machine.

    python bench/bench_prepare.py                       # 24 phone-sized photos, 1 and 2 workers
    python bench/bench_prepare.py --num_photos 48 --workers 2

On a shared machine the CPU seconds per photo (this process and its workers) say more than the wall time.

The photos are made from scikit-image's astronaut: each a 4032x3024 JPEG (a 12 MP phone
photo) with the face at a random place, size, tilt and side, over a blurred coffee cup.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preprocessing.photos import Settings  # noqa: E402
from preprocessing.prepare import prepare_dataset  # noqa: E402


def make_photos(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    portrait = Image.fromarray(data.astronaut())
    background = Image.fromarray(data.coffee()).resize((4032, 3024), Image.BILINEAR).filter(ImageFilter.GaussianBlur(8))
    for index in range(count):
        side = int(rng.uniform(900, 2400))
        face = portrait.resize((side, side), Image.LANCZOS).rotate(rng.uniform(-20, 20), Image.BICUBIC)
        if rng.random() < 0.5:
            face = ImageOps.mirror(face)
        photo = background.copy()
        photo.paste(face, (int(rng.uniform(0, 4032 - side)), int(rng.uniform(0, 3024 - side))))
        photo.save(Path(folder, f'photo{index:03d}.jpg'), quality=90)


def cpu_seconds():
    """CPU time of this process and its finished children (the workers), user and system."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--num_photos', type=int, default=24)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    args = parser.parse_args()
    print(f'load average {os.getloadavg()[0]:.2f} (the cores may be shared with other jobs)')
    with tempfile.TemporaryDirectory() as folder:
        photos = Path(folder, 'photos')
        photos.mkdir()
        make_photos(photos, args.num_photos)
        for workers in args.workers:
            out = Path(folder, f'out{workers}')
            start, cpu_start = time.perf_counter(), cpu_seconds()
            content = prepare_dataset(photos, out, Settings(), workers=workers)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            print(f'workers {workers}: {args.num_photos} photos in {seconds:.1f} s = '
                  f'{args.num_photos / seconds:.2f} photos/s ({content["summary"]["accepted"]} accepted); '
                  f'CPU {cpu / args.num_photos:.2f} s per photo, so {workers / (cpu / args.num_photos):.2f} '
                  f'photos/s on {workers} free core(s)')


if __name__ == '__main__':
    main()
