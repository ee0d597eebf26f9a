"""Image datasets for pi-GAN training, with the original transforms.

Every dataset yields (image [3, S, S] in [-1, 1], pose [2]); pose is (pitch, yaw) in
radians where the dataset knows it (Synthetic; ImageFolder with a prepared or EG3D
dataset.json) and NaN otherwise.

dataset_path is a glob ('/data/celeba/*.jpg') or a folder (its images are listed,
not recursively). When it is None, $PIGAN_<NAME>_PATH is used (e.g. PIGAN_CELEBA_PATH);
Synthetic falls back to data/synthetic_<synthetic_size>, generated on first use.

Each dataset class takes the keys it reads as explicit parameters, with KEYS' defaults, and builds
itself from a run's settings (from_settings; dataset_from_settings picks the class). make_dataset
builds one by name from explicit options.
"""

import dataclasses
import glob
import math
import os
import shutil

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from curriculums import default
from preprocessing import camera_labels
from synthetic import dataset as synthetic_files
from synthetic.heads import BACKGROUNDS as SYNTHETIC_BACKGROUNDS
from utils.media import IMAGE_EXTENSIONS, flatten_to_rgb, list_images
from utils.errors import UserError

NORMALIZE = transforms.Normalize([0.5], [0.5])  # [0, 1] -> [-1, 1]


class DatasetError(UserError):
    """A dataset cannot be used as configured; the message says what to change."""


def unknown_pose():
    return torch.full((2,), math.nan)


def resize(size, antialias=False):
    """Nearest-neighbour resize as in the original, or an antialiased (area-like) one."""
    if antialias:
        return transforms.Resize(size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return transforms.Resize(size, interpolation=InterpolationMode.NEAREST)


def synthetic_path(dataset_path):
    """The synthetic folder a run reads when one is named (dataset_path, else $PIGAN_SYNTHETIC_PATH); None for the
    default folder, which default_synthetic_folder names."""
    return dataset_path if dataset_path is not None else os.environ.get(env_var('Synthetic'))


def env_var(name):
    return f'PIGAN_{name.upper()}_PATH'


def resolve_path(name, dataset_path):
    """dataset_path, or the environment variable that stands in for it."""
    if dataset_path is None:
        dataset_path = os.environ.get(env_var(name))
    if not dataset_path:
        raise DatasetError(f'no dataset path for {name}: pass --dataset_path (a glob or folder) '
                           f'or set the environment variable {env_var(name)}')
    return os.path.expanduser(str(dataset_path))


def dataset_files(pattern, name):
    """Sorted image files of a folder (any-case extensions) or a glob; an error naming the pattern if there are none."""
    if os.path.isdir(pattern):
        shown = os.path.join(pattern, '*.{' + ','.join(IMAGE_EXTENSIONS) + '}')
        files = [str(file) for file in list_images(pattern, any_case=True)]
    else:
        shown = pattern
        files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    if not files:
        missing = '' if glob.has_magic(pattern) or os.path.exists(pattern) else ' (no such file or folder)'
        raise DatasetError(f'{name}: no images found at {shown!r}{missing}; check --dataset_path '
                           f'or the environment variable {env_var(name)}')
    return files


def load_rgb(path, composite_alpha=True):
    """An image file as RGB. composite_alpha: flatten_to_rgb (transparency over white, 16-bit scaled);
    else PIL's plain convert('RGB'), as pytorch-fid reads images, so FID sees what `python -m pytorch_fid` sees."""
    try:
        with Image.open(path) as image:
            image.load()
            return flatten_to_rgb(image) if composite_alpha else image.convert('RGB')
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DatasetError(f'cannot read image file {path}: {error}') from None


class ImageFiles(Dataset):
    """Image files, each read as RGB (load_rgb) and transformed: (image, pose) pairs, pose unknown (NaN).

    The one image-folder dataset: training's datasets below and the FID features (metrics/features.py) use it.
    """

    def __init__(self, files, transform, composite_alpha=True):
        super().__init__()
        self.files = list(files)
        self.transform = transform
        self.composite_alpha = composite_alpha

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        return self.transform(load_rgb(self.files[index], self.composite_alpha)), unknown_pose()


class DatasetFolder(ImageFiles):
    """A named dataset's images, listed from dataset_path (or $PIGAN_<NAME>_PATH), with its transform."""

    env_name = None  # the NAME in PIGAN_<NAME>_PATH; the class name when None

    def __init__(self, dataset_path, img_size, resize_antialias=default('resize_antialias')):
        name = self.env_name or type(self).__name__
        super().__init__(dataset_files(resolve_path(name, dataset_path), name),
                         self.build_transform(img_size, bool(resize_antialias)))

    @classmethod
    def from_settings(cls, settings, img_size):
        return cls(settings.data.dataset_path, img_size, settings.data.resize_antialias)

    def build_transform(self, img_size, antialias):
        raise NotImplementedError


class CelebA(DatasetFolder):
    """CelebA faces: 320 px short side, centre 256 crop, random flip, then img_size."""

    def build_transform(self, img_size, antialias):
        return transforms.Compose([
            transforms.Resize(320), transforms.CenterCrop(256), transforms.ToTensor(), NORMALIZE,
            transforms.RandomHorizontalFlip(p=0.5), resize((img_size, img_size), antialias)])


class Cats(DatasetFolder):
    """Cat faces (already cropped): resize to img_size, random flip."""

    def build_transform(self, img_size, antialias):
        return transforms.Compose([
            resize((img_size, img_size), antialias), transforms.ToTensor(), NORMALIZE,
            transforms.RandomHorizontalFlip(p=0.5)])


class Carla(DatasetFolder):
    """CARLA cars: resize to img_size; never flipped."""

    def build_transform(self, img_size, antialias):
        return transforms.Compose([resize((img_size, img_size), antialias), transforms.ToTensor(), NORMALIZE])


class ImageFolder(DatasetFolder):
    """Any images: short side to img_size, centre square crop, flip if random_flip.

    A folder that prepare_dataset.py wrote (dataset.json beside it), or one with EG3D camera labels (its own
    dataset.json), knows each image's (pitch, yaw): `poses` [N, 2] holds them (NaN for an image without one)
    and items carry them; a flipped image's yaw is mirrored (pi - yaw; pi/2 is frontal).
    """

    def __init__(self, dataset_path, img_size, resize_antialias=default('resize_antialias'),
                 random_flip=default('random_flip')):
        super().__init__(dataset_path, img_size, resize_antialias)
        self.random_flip = bool(random_flip)
        folder = os.path.dirname(self.files[0])
        if all(os.path.dirname(file) == folder for file in self.files):  # a glob over several folders: no labels
            try:
                known = camera_labels.read_known_poses(folder)
            except ValueError as error:
                raise DatasetError(f'ImageFolder: {error}') from None
            names = [os.path.basename(file) for file in self.files]
            if known and any(name in known for name in names):  # labels of other files know nothing here
                self.poses = torch.tensor([known.get(name, (math.nan, math.nan)) for name in names],
                                          dtype=torch.float32)

    @classmethod
    def from_settings(cls, settings, img_size):
        data = settings.data
        return cls(data.dataset_path, img_size, data.resize_antialias, data.random_flip)

    def build_transform(self, img_size, antialias):
        return transforms.Compose([resize(img_size, antialias), transforms.CenterCrop(img_size),
                                   transforms.ToTensor(), NORMALIZE])

    def __getitem__(self, index):
        image, pose = super().__getitem__(index)
        if hasattr(self, 'poses'):
            pose = self.poses[index].clone()
        if self.random_flip and torch.rand(()) < 0.5:  # as RandomHorizontalFlip(0.5), with the pose
            image, pose = image.flip(-1), torch.stack([pose[0], math.pi - pose[1]])
        return image, pose


class Synthetic(ImageFiles):
    """Synthetic heads written by synthetic_dataset.py, with their true (pitch, yaw).

    With no dataset_path (and no $PIGAN_SYNTHETIC_PATH) the folder is
    data/synthetic_<synthetic_size> (data/synthetic_<synthetic_size>_white for
    synthetic_background 'white') under the current directory, generated when
    missing or incomplete from synthetic_count images, seed 0 and camera (a settings.CameraDistribution;
    None: synthetic.dataset.default_camera()).
    """

    def __init__(self, dataset_path, img_size, resize_antialias=default('resize_antialias'),
                 synthetic_size=default('synthetic_size'), synthetic_count=default('synthetic_count'),
                 synthetic_background=default('synthetic_background'), camera=None):
        dataset_path = synthetic_path(dataset_path)
        if dataset_path:
            folder = os.path.expanduser(str(dataset_path))
            dataset_record = synthetic_files.load_metadata(folder) if os.path.isdir(folder) else None
            if dataset_record is None:
                raise DatasetError(
                    f'Synthetic: {folder!r} is not a complete synthetic dataset (no '
                    f'{synthetic_files.METADATA_FILE}); create it with "python synthetic_dataset.py '
                    f'--output_dir {folder}" or leave dataset_path unset to use the default folder')
        else:
            folder, dataset_record = ensure_default_synthetic(synthetic_size, synthetic_count, synthetic_background,
                                                              camera)
        if not dataset_record['images']:
            raise DatasetError(f'Synthetic: {folder!r} holds no images')
        steps = [transforms.ToTensor(), NORMALIZE]
        if img_size != dataset_record['img_size']:
            steps.insert(0, resize((img_size, img_size), bool(resize_antialias)))
        super().__init__([os.path.join(folder, entry['file']) for entry in dataset_record['images']],
                         transforms.Compose(steps))
        self.folder = folder
        poses = [[entry['pitch'], entry['yaw']] for entry in dataset_record['images']]
        self.poses = torch.tensor(poses, dtype=torch.float32).reshape(-1, 2)

    @classmethod
    def from_settings(cls, settings, img_size):
        data = settings.data
        return cls(data.dataset_path, img_size, data.resize_antialias, data.synthetic_size, data.synthetic_count,
                   data.synthetic_background, settings.camera)

    def __getitem__(self, index):
        image, _ = super().__getitem__(index)
        return image, self.poses[index].clone()


def default_synthetic_folder(synthetic_size=default('synthetic_size'),
                             synthetic_background=default('synthetic_background')):
    """data/synthetic_<size>[_white]: where a curriculum's synthetic heads live when no path is set."""
    if synthetic_background not in SYNTHETIC_BACKGROUNDS:
        raise DatasetError(f"Synthetic: synthetic_background must be one of "
                           f"{', '.join(SYNTHETIC_BACKGROUNDS)}, got {synthetic_background!r}")
    suffix = '' if synthetic_background == 'grey' else f'_{synthetic_background}'
    return os.path.join('data', f"synthetic_{int(synthetic_size)}{suffix}")


def ensure_default_synthetic(synthetic_size=default('synthetic_size'), synthetic_count=default('synthetic_count'),
                             synthetic_background=default('synthetic_background'), camera=None):
    """(folder, poses.json's record) of data/synthetic_<size>, generating it when it is not complete, with
    poses drawn from camera (None: synthetic.dataset.default_camera())."""
    size, count = int(synthetic_size), int(synthetic_count)
    camera = synthetic_files.default_camera() if camera is None else camera
    folder = default_synthetic_folder(size, synthetic_background)
    dataset_record = synthetic_files.load_metadata(folder)
    if dataset_record is not None:
        wanted = dataclasses.asdict(camera)
        if dataset_record['num_images'] != count or dataset_record['camera'] != wanted:
            print(f'note: using existing {folder} ({dataset_record["num_images"]} images, '
                  f'camera {dataset_record["camera"]}); delete it to regenerate with {count} images and camera {wanted}')
        return folder, dataset_record

    state = 'incomplete' if os.path.exists(folder) else 'missing'
    print(f'note: synthetic dataset {folder} is {state}; generating {count} images of {size}x{size} (seed 0)')
    # Build beside the target and rename, so a crash or a parallel process never
    # leaves a half-written folder under the final name.
    partial = f'{folder}.partial-{os.getpid()}'
    shutil.rmtree(partial, ignore_errors=True)
    synthetic_files.make_synthetic_dataset(partial, count, img_size=size, seed=0, camera=camera,
                                           background=synthetic_background)
    if os.path.exists(folder) and synthetic_files.load_metadata(folder) is None:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        os.rename(partial, folder)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # another process finished first; use its copy
    dataset_record = synthetic_files.load_metadata(folder)
    if dataset_record is None:
        raise DatasetError(f'Synthetic: could not create {folder}; run "python synthetic_dataset.py '
                           f'--output_dir {folder} --img_size {size}"')
    return folder, dataset_record


DATASETS = {'CelebA': CelebA, 'Cats': Cats, 'Carla': Carla, 'ImageFolder': ImageFolder, 'Synthetic': Synthetic}


def dataset_class(name):
    """The dataset class called `name` (a curriculum's 'dataset')."""
    if name not in DATASETS:
        raise DatasetError(f'unknown dataset {name!r}; choose one of {", ".join(DATASETS)}')
    return DATASETS[name]


def make_dataset(name, img_size, dataset_path=None, **options):
    """The dataset called `name`; options: its class's other parameters (another is a TypeError)."""
    return dataset_class(name)(dataset_path, img_size, **options)


def dataset_from_settings(settings, img_size=None):
    """The dataset of a run's settings (settings.Settings) at img_size (None: the stage's)."""
    return dataset_class(settings.data.dataset).from_settings(
        settings, settings.rendering.img_size if img_size is None else img_size)


def check_enough_images(dataset, name, batch_size, world_size=1):
    needed = batch_size * world_size
    if len(dataset) < needed:
        raise DatasetError(f'{name} dataset has {len(dataset)} images, fewer than batch_size {batch_size} x '
                           f'{world_size} process(es) = {needed}, so no full batch could be drawn; '
                           f'use more images or a smaller batch_size')


def check_known_poses(dataset, name, settings):
    """use_real_poses trains the discriminator's pose head on the real images' known poses: the data must
    know them; disc_fake_pose False leaves those poses its only teacher, so it needs use_real_poses.
    settings: the settings.Settings of every stage the dataset will serve."""
    for losses in (stage.losses for stage in settings):
        if losses.pos_lambda <= 0:
            continue
        if not losses.disc_fake_pose and not losses.use_real_poses:
            raise DatasetError("disc_fake_pose=False with use_real_poses=False would leave the discriminator's pose "
                               "head untrained; set use_real_poses=True (data with known poses) or leave "
                               "disc_fake_pose on")
        if losses.use_real_poses and not hasattr(dataset, 'poses'):
            raise DatasetError(f"{name} dataset has no known camera poses for use_real_poses=True; use the "
                               f"Synthetic dataset, a folder prepared by prepare_dataset.py or one with EG3D "
                               f"camera labels, or set use_real_poses=False")


def loader_options():
    """DataLoader options: up to 4 worker processes, one a core."""
    workers = min(4, os.cpu_count() or 1)
    return {'num_workers': workers, 'pin_memory': torch.cuda.is_available(), 'persistent_workers': workers > 0}
