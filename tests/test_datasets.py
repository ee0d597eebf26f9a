"""Image datasets: transforms, error messages. Small images made on the fly."""

import numpy as np
import pytest
import torch
from PIL import Image

import curriculums
import datasets
from datasets import DatasetError
from settings import Settings


def save(path, array_or_image):
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(path)
    return str(path)


def random_images(folder, count, size=(40, 40), suffix='.png', seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    return [save(folder / f'{i:03d}{suffix}', rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
            for i in range(count)]


def asymmetric_image(size=32):
    """Left half black, right half white."""
    array = np.zeros((size, size, 3), np.uint8)
    array[:, size // 2:] = 255
    return array


# --- transforms -------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['CelebA', 'Cats', 'Carla', 'ImageFolder'])
def test_shapes_ranges_and_unknown_pose(tmp_path, name):
    random_images(tmp_path / 'imgs', 2, size=(300, 340), suffix='.jpg')
    dataset = datasets.make_dataset(name, dataset_path=str(tmp_path / 'imgs' / '*.jpg'), img_size=16)
    assert len(dataset) == 2
    image, pose = dataset[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    assert image.min() < -0.5 and image.max() > 0.5  # really rescaled to [-1, 1], not [0, 1]
    assert pose.shape == (2,) and torch.isnan(pose).all()


def test_nearest_is_default_and_antialias_differs(tmp_path):
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    save(tmp_path / 'checker.png', np.stack([checker] * 3, -1))
    nearest, _ = datasets.Carla(str(tmp_path), img_size=16)[0]
    smooth, _ = datasets.Carla(str(tmp_path), img_size=16, resize_antialias=True)[0]
    assert torch.all(nearest.abs() == 1)  # nearest picks whole black or white pixels
    assert smooth.abs().max() < 0.2  # averaging a fine checkerboard gives mid grey


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P', 'LA', 'I;16'])
def test_any_image_mode_loads_as_rgb(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    image = base.convert('RGBA').convert(mode) if mode != 'I;16' else base.convert('L').convert('I;16')
    save(tmp_path / 'a.png', image)
    tensor, _ = datasets.ImageFolder(str(tmp_path), img_size=8)[0]
    assert tensor.shape == (3, 8, 8)


def test_transparent_pixels_become_white(tmp_path):
    array = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    save(tmp_path / 'clear.png', array)
    tensor, _ = datasets.ImageFolder(str(tmp_path), img_size=8)[0]
    assert torch.allclose(tensor, torch.ones_like(tensor))


def test_celeba_crop_and_resize_geometry(tmp_path):
    # 640x800 -> short side 320 (x0.5) -> centre 256 crop = original box x 64..576, y 144..656.
    array = np.zeros((800, 640, 3), np.uint8)
    array[:, :] = (255, 0, 0)                    # red outside the crop box: must disappear
    array[144:656, 64:576] = (0, 0, 0)           # black inside the crop box
    array[144 + 128:144 + 384, 64 + 128:64 + 384] = (255, 255, 255)  # white middle half of it
    save(tmp_path / 'face.png', array)
    dataset = datasets.CelebA(str(tmp_path), img_size=64)
    for _ in range(4):  # flips must not matter for this symmetric pattern
        image, _ = dataset[0]
        assert image.shape == (3, 64, 64)
        red = (image[0] > 0) & (image[1] < 0)
        assert not red.any(), 'content outside the 256 centre crop leaked in'
        white = (image > 0).all(0)
        assert white[17:47, 17:47].all()
        outside = torch.ones(64, 64, dtype=torch.bool)
        outside[15:49, 15:49] = False
        assert not white[outside].any()


def test_cats_flip_happens_and_carla_never_flips(tmp_path):
    save(tmp_path / 'half.png', asymmetric_image())
    torch.manual_seed(0)
    cats = datasets.Cats(str(tmp_path), img_size=32)
    left_bright = [bool(cats[0][0][:, :, 0].mean() > 0) for _ in range(40)]
    assert any(left_bright) and not all(left_bright)
    carla = datasets.Carla(str(tmp_path), img_size=32)
    for _ in range(40):
        image, _ = carla[0]
        assert image[:, :, 0].mean() < 0 and image[:, :, -1].mean() > 0


def test_image_folder_flip_only_when_asked(tmp_path):
    save(tmp_path / 'half.png', asymmetric_image())
    torch.manual_seed(0)
    plain = datasets.ImageFolder(str(tmp_path), img_size=32)
    assert all(plain[0][0][:, :, 0].mean() < 0 for _ in range(20))
    flipping = datasets.ImageFolder(str(tmp_path), img_size=32, random_flip=True)
    assert any(flipping[0][0][:, :, 0].mean() > 0 for _ in range(40))


def test_folder_lists_image_extensions_sorted(tmp_path):
    for name in ['b.PNG', 'a.jpg', 'c.webp', 'd.jpeg']:
        Image.new('RGB', (4, 4)).save(tmp_path / name)
    (tmp_path / 'notes.txt').write_text('not an image')
    dataset = datasets.ImageFolder(str(tmp_path), img_size=4)
    assert [f.rsplit('/', 1)[-1] for f in dataset.files] == ['a.jpg', 'b.PNG', 'c.webp', 'd.jpeg']


# --- bad input ----------------------------------------------------------------------------

def test_missing_path_says_what_to_do(monkeypatch):
    monkeypatch.delenv('PIGAN_CELEBA_PATH', raising=False)
    with pytest.raises(DatasetError, match='PIGAN_CELEBA_PATH') as info:
        datasets.CelebA(None, img_size=16)
    assert '--dataset_path' in str(info.value)


def test_empty_glob_and_folder_name_the_pattern(tmp_path):
    pattern = str(tmp_path / 'nothing' / '*.jpg')
    with pytest.raises(DatasetError, match='no images') as info:
        datasets.Cats(pattern, img_size=16)
    assert pattern in str(info.value) and '\n' not in str(info.value)
    with pytest.raises(DatasetError, match='no such file or folder'):
        datasets.Carla(str(tmp_path / 'typo'), img_size=16)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError) as info:
        datasets.ImageFolder(str(tmp_path / 'empty'), img_size=16)
    assert str(tmp_path / 'empty') in str(info.value)


def test_corrupt_image_names_the_file(tmp_path):
    random_images(tmp_path, 1)
    bad = tmp_path / 'zz_broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n definitely not a png')
    dataset = datasets.Carla(str(tmp_path), img_size=8)
    dataset[0]
    with pytest.raises(DatasetError, match='zz_broken.png'):
        dataset[1]


def test_env_var_fallback(tmp_path, monkeypatch):
    random_images(tmp_path, 3)
    monkeypatch.setenv('PIGAN_IMAGEFOLDER_PATH', str(tmp_path))
    monkeypatch.setenv('PIGAN_CARLA_PATH', str(tmp_path / '*.png'))
    assert len(datasets.make_dataset('ImageFolder', img_size=8)) == 3
    assert len(datasets.make_dataset('Carla', dataset_path=None, img_size=8)) == 3


def test_unknown_dataset_name_lists_valid_ones():
    with pytest.raises(DatasetError) as info:
        datasets.make_dataset('ImageNet', img_size=8)
    for name in ['CelebA', 'Cats', 'Carla', 'ImageFolder', 'Synthetic']:
        assert name in str(info.value)


def test_dataset_smaller_than_batch(tmp_path):
    random_images(tmp_path, 3)
    dataset = datasets.make_dataset('ImageFolder', dataset_path=str(tmp_path), img_size=8)
    datasets.check_enough_images(dataset, 'ImageFolder', 3)
    with pytest.raises(DatasetError, match='3 images'):
        datasets.check_enough_images(dataset, 'ImageFolder', 4)
    with pytest.raises(DatasetError, match='3 images'):
        datasets.check_enough_images(dataset, 'ImageFolder', 2, world_size=2)


# --- items ----------------------------------------------------------------------------------

def test_a_runs_dataset_takes_its_keys_and_make_dataset_no_others(tmp_path):
    random_images(tmp_path, 7)
    curriculum = {**curriculums.get('CelebA_CPU'), 'dataset_path': str(tmp_path)}
    dataset = datasets.dataset_from_settings(Settings.at_step(curriculum, 0))
    assert type(dataset) is datasets.ImageFolder and len(dataset) == 7 and dataset.random_flip
    image, pose = dataset[0]
    assert image.shape == (3, 16, 16) and pose.shape == (2,)  # the stage's img_size
    with pytest.raises(TypeError, match="'fov'"):
        datasets.make_dataset('ImageFolder', 16, str(tmp_path), fov=12)
