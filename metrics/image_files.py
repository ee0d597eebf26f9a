"""Image folders for the metrics: checked, measured and fingerprinted (listed by utils.media.list_images,
the files pytorch-fid reads)."""

import hashlib
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from utils.media import IMAGE_EXTENSIONS, list_images
from utils.errors import UserError


class ImageFolderError(UserError, ValueError):
    """An image folder is missing, empty or unusable."""


def require_images(folder, what='image folder'):
    """list_images(folder), or one clear error if the folder is missing or holds no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFolderError(f"{what} not found: {folder}")
    files = list_images(folder)
    if not files:
        raise ImageFolderError(f"{what} {folder} holds no images (pytorch-fid reads only its top level, "
                               f"files ending in .{', .'.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def image_size(file):
    """(width, height) of an image file."""
    with Image.open(file) as image:
        return image.size


def folder_fingerprint(files, root):
    """sha256 over every file's name and bytes: changes whenever any image, or the set of images, does."""
    digest = hashlib.sha256()
    for file in tqdm(files, desc='hashing real images', unit='img', leave=False):
        digest.update(str(Path(file).relative_to(root)).encode() + b'\0')
        digest.update(Path(file).read_bytes())
        digest.update(b'\0')
    return digest.hexdigest()
