"""How far the face crop of a photo moves when the photo is mirrored, turned or halved.

    python bench/crop_stability.py                 # 4 tight astronaut crops and 8 LFW faces, 6 copies each
    python bench/crop_stability.py --lfw $(seq 0 49) --turns 20 -25 30   # more faces, other turns

For each photo and each copy (mirrored; turned 20, -20, 30 and -30 degrees on an enlarged canvas, or --turns; halved),
prepare_dataset's crop of the copy is mapped back into the photo's pixels and compared with the photo's own
crop: the side's relative difference and the centre's distance as a fraction of the side. Copies the detector
rejects are listed and left out. Prints every copy, then the mean and the worst.
"""

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preprocessing.faces import FaceDetector  # noqa: E402
from preprocessing.images import PhotoError  # noqa: E402
from preprocessing.photos import Settings, prepare_photo  # noqa: E402

# Tight portraits: the astronaut's face fills the frame, forehead and chin cut; most of each crop is padding.
TIGHT_BOXES = ((190, 75, 275, 170), (180, 60, 290, 180), (195, 85, 265, 160), (170, 50, 300, 190))
LFW_FACES = (0, 2, 4, 6, 20, 40, 58, 100)
TURNS = (20, -20, 30, -30)


def test_photos(lfw_faces=LFW_FACES, tight_boxes=TIGHT_BOXES):
    """{name: RGB image}: the tight astronaut crops and LFW faces (25x25 px, padded and enlarged to 164 px)."""
    astronaut = Image.fromarray(data.astronaut())
    photos = {f'astronaut {box}': astronaut.crop(box) for box in tight_boxes}
    photos.update({f'lfw {index}': lfw_face(index) for index in lfw_faces})
    return photos


def lfw_face(index):
    """scikit-image's LFW face (25x25 px), padded by reflection and enlarged to 164 px so MTCNN finds it."""
    pixels = np.pad((data.lfw_subset()[index] * 255).round().astype(np.uint8), 8, mode='reflect')
    return Image.fromarray(pixels).resize((164, 164), Image.BICUBIC).convert('RGB')


def copies_of(photo, turns=TURNS):
    """{name: (copy, function taking a point of the copy to the photo, scale of the copy's pixels)}."""
    width, height = photo.size
    copies = {'mirrored': (ImageOps.mirror(photo), lambda c: np.array([width - c[0], c[1]]), 1),
              'halved': (photo.resize((width // 2, height // 2), Image.LANCZOS), lambda c: 2 * np.asarray(c), 2)}
    for degrees in turns:  # counter-clockwise on screen, canvas enlarged (black corners)
        turned = photo.rotate(degrees, resample=Image.BICUBIC, expand=True)
        angle = math.radians(degrees)
        back = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        copies[f'turned {degrees}'] = (turned, lambda c, t=turned, b=back: (
            np.array([width, height]) / 2 + b @ (np.asarray(c) - np.array(t.size) / 2)), 1)
    return copies


def crop_of(image, folder, detector):
    """(side, centre) of prepare_dataset's crop of an image, in its pixels."""
    path = Path(folder, 'image.png')
    image.save(path)
    _, record = prepare_photo(path, Settings(size=64, min_face_size=0, max_pad=1), detector)
    return record['crop']['side'], np.array(record['crop']['center'])


def crop_differences(photo, detector, folder, turns=TURNS):
    """{copy name: (side difference, centre distance), fractions of the photo's crop side, or None if rejected}."""
    side, centre = crop_of(photo, folder, detector)
    differences = {}
    for name, (image, to_photo, scale) in copies_of(photo, turns).items():
        try:
            copy_side, copy_centre = crop_of(image, folder, detector)
        except PhotoError:
            differences[name] = None
            continue
        differences[name] = (abs(copy_side * scale / side - 1), np.linalg.norm(to_photo(copy_centre) - centre) / side)
    return differences


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lfw', type=int, nargs='+', default=LFW_FACES, help="indices into skimage's lfw_subset "
                                                                              "(0-99 are faces)")
    parser.add_argument('--astronaut', action=argparse.BooleanOptionalAction, default=True,
                        help="include the tight astronaut crops")
    parser.add_argument('--turns', type=float, nargs='+', default=TURNS, help="degrees, counter-clockwise")
    args = parser.parse_args()
    torch.set_num_threads(1)  # MTCNN's small convolutions: threads cost more than they give (bench/RESULTS.md)
    detector = FaceDetector()
    sides, centres, rejected = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for photo_name, photo in test_photos(args.lfw, TIGHT_BOXES if args.astronaut else ()).items():
            try:
                differences = crop_differences(photo, detector, folder, args.turns)
            except PhotoError as error:
                print(f'{photo_name:28s} rejected: {error}')
                continue
            for copy_name, difference in differences.items():
                if difference is None:
                    rejected.append(f'{photo_name}, {copy_name}')
                    print(f'{photo_name:28s} {copy_name:12s} rejected')
                    continue
                sides.append((difference[0], f'{photo_name}, {copy_name}'))
                centres.append((difference[1], f'{photo_name}, {copy_name}'))
                print(f'{photo_name:28s} {copy_name:12s} side {difference[0]:6.1%}  centre {difference[1]:6.1%}')
    print(f'{len(sides)} copies ({len(rejected)} rejected by the detector)')
    for label, values in (('side', sides), ('centre', centres)):
        worst = max(values)
        print(f'{label}: mean {np.mean([v for v, _ in values]):.1%}, worst {worst[0]:.1%} ({worst[1]})')


if __name__ == '__main__':
    main()
