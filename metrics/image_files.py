"""Image folders read exactly as pytorch-fid reads them, and written losslessly."""

import hashlib
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as TF
from PIL import Image
from pytorch_fid.fid_score import IMAGE_EXTENSIONS
from tqdm import tqdm


class ImageFolderError(ValueError):
    """An image folder is missing, empty or unusable."""


def list_images(folder):
    """pytorch-fid's file list: top-level files with a lower-case image extension, sorted."""
    folder = Path(folder)
    return sorted(file for ext in IMAGE_EXTENSIONS for file in folder.glob(f'*.{ext}'))


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


class ImageFiles(torch.utils.data.Dataset):
    """PIL -> RGB -> ToTensor, pytorch-fid's way, so the features are the same."""

    def __init__(self, files):
        self.files = list(files)
        self.to_tensor = TF.ToTensor()

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        with Image.open(self.files[index]) as image:
            return self.to_tensor(image.convert('RGB'))


def to_uint8(images):
    """[B, 3, H, W] in [-1, 1] -> [B, H, W, 3] uint8, rounding like torchvision's save_image."""
    scaled = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1) * 255 + 0.5
    return scaled.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_png(pixels, path):
    """One [H, W, 3] uint8 image as a lossless PNG, written atomically so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp')
    Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format='PNG')
    tmp.replace(path)
