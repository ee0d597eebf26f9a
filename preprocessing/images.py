"""Reading photos as they come from phones and cameras: EXIF rotation, any mode, very large files."""

import os

from PIL import Image, ImageOps

from utils.media import flatten_to_rgb

# Pillow refuses images over ~179 MP as possible decompression bombs; our own photos may be
# panoramas, so allow up to 1 gigapixel (decoded JPEGs are reduced on reading, see open_photo).
MAX_PIXELS = 1_000_000_000


class PhotoError(Exception):
    """A file that cannot be used; `reason` is one of REASONS, the message says more."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


REASONS = ('unreadable', 'image too small', 'no face', 'several faces', 'face too small', 'mostly padding')


def open_photo(path, max_side=2048):
    """(RGB image upright as displayed, with long side at most about max_side, scale to the upright original).

    scale: original pixels per pixel of the returned image (>= 1); crop boxes are
    reported in original pixels by multiplying with it.
    """
    if os.path.getsize(path) == 0:
        raise PhotoError('unreadable', 'empty file')
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as image:
            full_size = image.size
            # JPEG can decode at 1/2, 1/4 or 1/8 size directly, much faster for 12-50 MP photos;
            # it keeps at least max_side / 2 on the long side.
            image.draft('RGB', (max_side // 2, max_side // 2))
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            image = ImageOps.exif_transpose(image)
            image = flatten_to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise PhotoError('unreadable', f'{type(error).__name__}: {error}') from None
    upright_width = full_size[1] if orientation in (5, 6, 7, 8) else full_size[0]
    if max(image.size) > max_side:
        factor = max(image.size) / max_side
        image = image.resize((round(image.width / factor), round(image.height / factor)), Image.LANCZOS,
                             reducing_gap=3.0)
    return image, upright_width / image.width
