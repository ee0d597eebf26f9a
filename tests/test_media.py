"""utils.media: the one image listing, pixel conversion and image writer, and the one
image-file dataset (datasets.ImageFiles) read both training's way and pytorch-fid's way."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_fid.fid_score import IMAGE_EXTENSIONS as FID_EXTENSIONS, ImagePathDataset
from torchvision.transforms import ToTensor

from datasets import ImageFiles
from metrics.features import fid_images
from utils.media import IMAGE_EXTENSIONS, list_images, save_image, to_uint8


def test_list_images_lists_what_pytorch_fid_reads(tmp_path):
    assert set(IMAGE_EXTENSIONS) == FID_EXTENSIONS
    for name in ['b.png', 'a.jpg', 'C.PNG', 'd.Jpeg', 'e.ppm', 'notes.txt', 'noext', '.hidden.png']:
        (tmp_path / name).write_bytes(b'')
    (tmp_path / 'folder.png').mkdir()
    (tmp_path / 'folder.png' / 'inside.png').write_bytes(b'')
    fid_rule = sorted(file for ext in FID_EXTENSIONS for file in tmp_path.glob(f'*.{ext}') if file.is_file())
    assert list_images(tmp_path) == fid_rule
    assert [f.name for f in list_images(tmp_path)] == ['.hidden.png', 'a.jpg', 'b.png', 'e.ppm']
    assert [f.name for f in list_images(tmp_path, any_case=True)] == ['.hidden.png', 'C.PNG', 'a.jpg', 'b.png',
                                                                       'd.Jpeg', 'e.ppm']


def test_to_uint8_ranges_shapes_and_rounding():
    pixels = torch.tensor([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0]).reshape(1, 3, 1, 2)
    batch = to_uint8(pixels)
    assert batch.dtype == np.uint8 and batch.shape == (1, 1, 2, 3)
    assert batch.reshape(-1).tolist() == [0, 128, 255, 0, 191, 255]  # pixels (-1.5, 0, 1) and (-1, .5, 2)
    assert np.array_equal(to_uint8(pixels[0]), batch[0])  # one image [3, H, W] -> [H, W, 3]
    unit = torch.tensor([0.0, 0.25, 1.0]).reshape(3, 1, 1)
    assert to_uint8(unit, value_range=(0, 1)).reshape(-1).tolist() == [0, 64, 255]


def test_save_image_is_lossless_and_leaves_no_temporary_file(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save_image(array.transpose(1, 0, 2).transpose(1, 0, 2), tmp_path / 'sub' / 'x.png')  # non-contiguous is fine
    with Image.open(tmp_path / 'sub' / 'x.png') as image:
        assert image.format == 'PNG' and np.array_equal(np.asarray(image), array)
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['x.png']


def test_image_files_composite_for_training_and_drop_alpha_for_fid(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 0      # transparent red pixel
    rgba[1, 1, 3] = 255    # opaque red pixel
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'a.png')
    files = list_images(tmp_path)
    fid_image, pose = fid_images(files)[0]
    assert torch.equal(fid_image, ImagePathDataset(files, ToTensor())[0]) and torch.isnan(pose).all()
    assert (fid_image[:, 0, 0] * 255).round().tolist() == [200, 0, 0]  # alpha dropped, as pytorch-fid does
    training_image, _ = ImageFiles(files, ToTensor())[0]
    assert training_image[:, 0, 0].tolist() == [1, 1, 1]  # over white
    assert training_image[:, 1, 1].tolist() == fid_image[:, 1, 1].tolist()
