"""Crops that frame a face the way the CelebA curriculum sees aligned CelebA, with the roll removed.

Aligned CelebA images are 178x218 with the face landmarks near fixed positions
(the means below, from the dataset's list_landmarks_align_celeba.txt, rounded).
datasets.CelebA resizes them to 320 on the short side (320x391) and takes the
centre 256x256, so in that crop, as fractions of its side:
eyes at y 0.516 and x 0.36 / 0.63 (eye distance 0.27 of the side), nose tip at y 0.68,
mouth corners at y 0.80. celeba_targets() derives these from the dataset's
numbers; an aligned crop puts the detected landmarks there by a similarity
transform whose rotation makes the eye line horizontal.
"""

import math

import numpy as np
from PIL import Image, ImageFilter

CELEBA_ALIGNED_SIZE = (178, 218)  # width, height of img_align_celeba images
CELEBA_LANDMARKS = np.array([      # x, y in those images; MTCNN's order (image-left eye first)
    [68.9, 111.6], [107.7, 111.6], [88.3, 134.9], [71.7, 152.1], [105.3, 152.1]])
CELEBA_RESIZE, CELEBA_CROP = 320, 256  # datasets.CelebA: Resize(320), CenterCrop(256)


def celeba_targets(size):
    """[5, 2] landmark positions in a size x size crop framed as datasets.CelebA frames aligned CelebA."""
    width, height = CELEBA_ALIGNED_SIZE
    resized = np.array([CELEBA_RESIZE, int(CELEBA_RESIZE * height / width)])   # torchvision's Resize(int)
    offset = np.array([int(round((side - CELEBA_CROP) / 2)) for side in resized])  # its CenterCrop
    in_crop = CELEBA_LANDMARKS * resized / np.array([width, height]) - offset
    return in_crop * (size / CELEBA_CROP)


def eye_roll(landmarks):
    """In-plane angle of the eye line, radians, clockwise on screen (image y points down)."""
    dx, dy = landmarks[1] - landmarks[0]
    return math.atan2(dy, dx)


def face_transform(landmarks, size):
    """2x3 similarity matrix from image to crop pixels: eye line level, landmarks on celeba_targets.

    The rotation comes from the eyes alone, so the roll is removed exactly; scale and
    shift are the least-squares fit of all five points.
    """
    roll = eye_roll(landmarks)
    rotation = np.array([[math.cos(roll), math.sin(roll)], [-math.sin(roll), math.cos(roll)]])
    targets = celeba_targets(size)
    rotated = landmarks @ rotation.T
    centred_source, centred_target = rotated - rotated.mean(0), targets - targets.mean(0)
    scale = (centred_source * centred_target).sum() / (centred_source ** 2).sum()
    shift = targets.mean(0) - scale * rotated.mean(0)
    return np.hstack([scale * rotation, shift[:, None]])


def center_transform(image_size, size):
    """2x3 matrix from image to crop pixels for the centred square of an image (width, height)."""
    side = min(image_size)
    scale = size / side
    shift = -scale * (np.array(image_size) - side) / 2
    return np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])


def crop_corners(matrix, size):
    """[4, 2] the crop's corners in image pixels (top-left, top-right, bottom-right, bottom-left)."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    return corners @ inverse[:, :2].T + inverse[:, 2]


def describe_crop(matrix, size, scale=1.0):
    """The crop box as plain numbers, in pixels of an image `scale` times larger than the one matrix maps."""
    corners = crop_corners(matrix, size) * scale
    side = float(np.linalg.norm(corners[1] - corners[0]))
    angle = math.degrees(math.atan2(*(corners[1] - corners[0])[::-1]))
    return {'corners': np.round(corners, 2).tolist(), 'center': np.round(corners.mean(0), 2).tolist(),
            'side': round(side, 2), 'angle_deg': round(angle, 3)}


def padded_fraction(matrix, size, image_size, samples=64):
    """The fraction of a crop's area (2x3 image-to-crop matrix) that lies outside an image of image_size (w, h)."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    steps = (np.arange(samples) + 0.5) * size / samples
    points = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2) @ inverse[:, :2].T + inverse[:, 2]
    inside = (points >= 0).all(1) & (points[:, 0] <= image_size[0]) & (points[:, 1] <= image_size[1])
    return 1 - float(inside.mean())


def fill_outside(pixels, before, after, radius):
    """uint8 pixels [H, W, 3] padded by before (x, y) and after (x, y) with a fill that shows nothing of the photo
    but its edge.

    Each edge pixel is repeated outwards, then blended, more the farther from the photo, into a copy blurred by
    `radius` that smooths the streaks (FFHQ's aligner blurs its padding too). Not a mirror image: mirrored in, the
    border put a second eye or half a face beside a face near the edge, where the landmark pass could take it
    for part of the face.
    """
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, ((before[1], after[1]), (before[0], after[0]), (0, 0)), mode='edge')
    blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(radius)), np.float32)
    rows, columns = np.arange(padded.shape[0]), np.arange(padded.shape[1])
    down = np.maximum(before[1] - rows, rows - (before[1] + height - 1)).clip(0)
    across = np.maximum(before[0] - columns, columns - (before[0] + width - 1)).clip(0)
    weight = np.clip(np.hypot(down[:, None], across[None, :]) / (2 * radius), 0, 1)[..., None]
    return (padded * (1 - weight) + blurred * weight).round().astype(np.uint8)


def warp(image, matrix, size):
    """The size x size crop of an RGB PIL image under a 2x3 image-to-crop matrix.

    A shrinking crop is cut at the photo's own resolution (bicubic, rotation only) and
    then resized with Lanczos, which filters as it shrinks; an enlarging one is one
    bicubic warp. A crop reaching past the image is filled by fill_outside, with a blur
    radius a sixteenth of the photo's short side.
    """
    matrix = np.array(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    cut = max(size, int(math.ceil(size / scale)))
    matrix *= cut / size  # to the cut's pixels
    corners = crop_corners(matrix, cut)
    photo_size = np.array(image.size)
    need_low = np.floor(corners.min(0)).astype(int) - 2  # bicubic reads 2 pixels beyond
    need_high = np.ceil(corners.max(0)).astype(int) + 2
    if (need_low < 0).any() or (need_high > photo_size).any():
        # Filled around the part the crop needs (and the blur's reach), not the whole photo: 8 of these per photo
        # on a 3 MP photo would take seconds each.
        radius = max(2.0, min(image.size) / 16)
        reach = int(math.ceil(3 * radius))
        keep_low = np.clip(need_low - reach, 0, photo_size - 1)
        keep_high = np.maximum(np.clip(need_high + reach, 0, photo_size), keep_low + 1)
        before, after = np.maximum(0, keep_low - need_low), np.maximum(0, need_high - keep_high)
        kept = np.asarray(image.crop((*keep_low, *keep_high)))
        image = Image.fromarray(fill_outside(kept, before, after, radius))
        matrix[:, 2] += matrix[:, :2] @ (keep_low - before)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    cropped = image.transform((cut, cut), Image.AFFINE, data=tuple(inverse.ravel()), resample=Image.BICUBIC)
    return cropped if cut == size else cropped.resize((size, size), Image.LANCZOS)
