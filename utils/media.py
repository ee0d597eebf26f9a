"""Images and videos on disk: listing image folders, pixels to uint8, PNGs, grids, depth maps, H.264 mp4s."""

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image

from utils.files import atomic_write

# pytorch-fid's list (pytorch_fid.fid_score.IMAGE_EXTENSIONS): FID reads the files it reads.
IMAGE_EXTENSIONS = ('bmp', 'jpg', 'jpeg', 'pgm', 'png', 'ppm', 'tif', 'tiff', 'webp')


def list_images(folder, any_case=False):
    """The image files at the top level of folder, sorted: names ending in .<one of IMAGE_EXTENSIONS>.

    The extension must be lower case, as for pytorch-fid, unless any_case.
    """
    def extension(file):
        ext = file.name.rpartition('.')[2] if '.' in file.name else ''
        return ext.lower() if any_case else ext
    return sorted(file for file in Path(folder).iterdir() if file.is_file() and extension(file) in IMAGE_EXTENSIONS)


def to_uint8(images, value_range=(-1, 1)):
    """Pixels [..., 3, H, W] in value_range -> uint8 numpy [..., H, W, 3], clamped and rounded to nearest."""
    low, high = value_range
    scaled = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1) * 255
    return scaled.round().to(torch.uint8).movedim(-3, -1).numpy()


def depth_to_uint8(depth, near, far):
    """Depth [H, W] -> uint8 [H, W, 3] grey, near white and far black, over a fixed range
    so frames of a video share one scale."""
    scaled = ((far - depth.detach().float().cpu()) / (far - near)).clamp(0, 1)
    grey = (scaled * 255).round().to(torch.uint8).numpy()
    return np.repeat(grey[..., None], 3, axis=-1)


def image_grid(images, columns=None):
    """Same-sized [H, W, C] arrays tiled row by row."""
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    height, width, channels = images[0].shape
    grid = np.zeros((rows * height, columns * width, channels), dtype=images[0].dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return grid


def flatten_to_rgb(image):
    """A PIL image of any mode as 8-bit RGB: transparency over white, 16-bit and float scaled, CMYK converted."""
    if image.mode == 'P' and 'transparency' in image.info:
        image = image.convert('RGBA')
    if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
        rgba = image.convert('RGBA')
        image = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        image.alpha_composite(rgba)
    elif image.mode in ('I', 'F') or image.mode.startswith('I;16'):
        # convert('L') would clip 16-bit values at 255; scale to the full range instead.
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == 'F' and values.max() <= 1 else (255.0 if values.max() <= 255 else 65535.0)
        image = Image.fromarray(np.clip(values / top * 255, 0, 255).round().astype(np.uint8), 'L')
    return image.convert('RGB')


def save_image(array, path):
    """A uint8 [H, W, 3] array as an image file (format from the suffix), written atomically:
    readers never see half a file. Creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = Image.registered_extensions()[path.suffix.lower()]
    with atomic_write(path) as file:
        Image.fromarray(np.ascontiguousarray(array)).save(file, format=image_format)


def load_image(path, size):
    """An image file as pixels [1, 3, size, size] in [-1, 1]: centre-cropped square, resized."""
    image = Image.open(path).convert('RGB')
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    array = torch.from_numpy(np.asarray(image, dtype=np.float32).copy())
    return (array.permute(2, 0, 1).unsqueeze(0) / 127.5 - 1)


def pad_to_even(frame):
    """yuv420p stores colour at half resolution, so H.264 needs even sides: repeat the last row/column."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode='edge')


class VideoWriter:
    """H.264/yuv420p mp4 through imageio's ffmpeg plugin (imageio-ffmpeg's bundled binary).

        with VideoWriter(path, fps=30) as video:
            video.append(frame)        # uint8 [H, W, 3]
    """

    def __init__(self, path, fps=30, quality=8):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # macro_block_size=1: we pad to even sides ourselves instead of letting ffmpeg rescale.
        self.writer = imageio.get_writer(path, format='FFMPEG', mode='I', fps=fps, codec='libx264',
                                         pixelformat='yuv420p', quality=quality, macro_block_size=1,
                                         ffmpeg_log_level='error',
                                         output_params=['-movflags', '+faststart'])

    def append(self, frame):
        self.writer.append_data(pad_to_even(frame))

    def close(self):
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_video(frames, path, fps=30):
    with VideoWriter(path, fps) as video:
        for frame in frames:
            video.append(frame)
