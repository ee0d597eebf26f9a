"""One photo to one training image: read it, find the face, align and crop, estimate the pose."""

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import ImageOps

from preprocessing.alignment import (celeba_targets, center_transform, describe_crop, face_transform, padded_fraction,
                                     warp)
from preprocessing.images import PhotoError, open_photo
from preprocessing.pose import estimate_pose

MODES = ('faces', 'center')


@dataclass(frozen=True)
class Settings:
    mode: str = 'faces'         # faces: align on the detected face; center: centred square, no pose
    size: int = 256             # side of the written images
    min_face_size: int = 128    # smallest accepted crop side, in original pixels
    min_score: float = 0.9      # detector confidence needed to count a face
    second_face: float = 0.5    # a second face at least this fraction of the largest's size rejects the photo
    max_pad: float = 0.5        # a face crop with more of its area outside the photo than this is rejected
    max_side: int = 2048        # photos are read at this long side at most
    detect_side: int = 800      # and searched for faces at this long side at most


def choose_face(faces, settings):
    """The one face of a photo, or PhotoError(no face | several faces)."""
    if not faces:
        raise PhotoError('no face', f'no face with detector confidence >= {settings.min_score}')
    others = [face for face in faces[1:] if face.side >= settings.second_face * faces[0].side]
    if others:
        raise PhotoError('several faces', f'{1 + len(others)} faces of similar size; crop the photo to one face')
    return faces[0]


# Seven passes (each also mirrored): turned 6 degrees either way, and shifted 4 px (about a tenth of the eye
# distance) up, down, left and right. Chosen on 4 tight crops of the astronaut and 8 LFW faces, each mirrored,
# turned 20-30 degrees and halved (58 copies): their crop sides differ from the photo's by 0.9% on average and
# 3.2% at most, against 1.4% and 6.4% with one pass; turns of 12 degrees moved a turned photo's crop.
REFINE_JITTERS = ((-6.0, 0, 0), (0.0, 0, 0), (6.0, 0, 0), (0.0, 4, 0), (0.0, -4, 0), (0.0, 0, 4), (0.0, 0, -4))


def refine_landmarks(image, landmarks, detector, work_size=192, jitters=REFINE_JITTERS):
    """[5, 2] landmarks found again in the face's levelled crop, turned and shifted a little and mirrored,
    averaged, in image pixels.

    MTCNN places landmarks inside an upright box, so on a tilted head they lag behind
    the tilt (about 10% of it); found again on the levelled face they do not. Averaging
    with the mirror image's halves MTCNN's left-right bias, so a mirrored photo gets the
    mirrored landmarks and the opposite yaw. Each pass's landmarks scatter by a few percent of
    the eye distance on a small or blurred face; the mean of many passes scatters less, which keeps the
    crops of a photo, its mirror image, a turned and a reduced copy the same.
    jitters: (degrees, dx, dy) of each pass's crop, turned about the face and shifted in crop pixels.
    """
    centre = celeba_targets(work_size).mean(0)
    found = []
    for degrees, dx, dy in jitters:
        jitter = np.vstack([cv_rotation(degrees, centre), [0, 0, 1]])
        jitter[:2, 2] += (dx, dy)
        matrix = (jitter @ np.vstack([face_transform(landmarks, work_size), [0, 0, 1]]))[:2]
        crop = warp(image, matrix, work_size)
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        for mirrored in (False, True):
            faces = detector(ImageOps.mirror(crop) if mirrored else crop)
            if not faces:
                continue
            points = min(faces, key=lambda face: np.linalg.norm(face.landmarks.mean(0) - centre)).landmarks
            if mirrored:  # back to the crop's frame: x flips, and left and right swap names
                points = np.column_stack([work_size - points[:, 0], points[:, 1]])[[1, 0, 2, 4, 3]]
            found.append(points @ inverse[:, :2].T + inverse[:, 2])
    return np.mean(found, axis=0) if found else landmarks


def cv_rotation(degrees, centre):
    """2x3 matrix turning points by `degrees` about centre (counter-clockwise on screen, y down)."""
    angle = math.radians(degrees)
    turn = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    return np.hstack([turn, (centre - turn @ centre)[:, None]])


def prepare_photo(path, settings, detector=None):
    """(aligned RGB PIL image of settings.size, record of plain numbers); PhotoError if it cannot be used.

    The record has the crop box in pixels of the upright original photo and, in faces
    mode, the pose in pi-GAN's convention (preprocessing/pose.py) and the landmarks.
    """
    image, scale = open_photo(path, settings.max_side)
    if settings.mode == 'center':
        matrix = center_transform(image.size, settings.size)
        return warp(image, matrix, settings.size), {'crop': describe_crop(matrix, settings.size, scale)}
    face = choose_face(detector(image), settings)
    landmarks = refine_landmarks(image, face.landmarks, detector)
    matrix = face_transform(landmarks, settings.size)
    crop = describe_crop(matrix, settings.size, scale)
    if crop['side'] < settings.min_face_size:
        raise PhotoError('face too small', f"face crop {crop['side']:.0f} px < --min_face_size "
                                           f"{settings.min_face_size} px")
    crop['padded'] = round(padded_fraction(matrix, settings.size, image.size), 3)
    if crop['padded'] > settings.max_pad:
        raise PhotoError('mostly padding', f"{crop['padded']:.0%} of the face crop lies outside the photo "
                                           f"(--max_pad {settings.max_pad:g})")
    pose = estimate_pose(landmarks)
    record = {'crop': crop, 'yaw': round(pose.yaw, 5), 'pitch': round(pose.pitch, 5),
              'roll_deg': round(math.degrees(pose.roll), 3), 'pose_residual': round(pose.residual, 5),
              'detector_score': round(face.score, 5),
              'landmarks': np.round(landmarks * scale, 2).tolist()}
    return warp(image, matrix, settings.size), record


def align_photo(path, size=256):
    """(aligned image, record) of one photo, as for training; any face size and padding are accepted."""
    from preprocessing.faces import FaceDetector
    settings = Settings(size=size, min_face_size=0, max_pad=1)
    return prepare_photo(path, settings, FaceDetector(settings.min_score, settings.detect_side))


def file_signature(path):
    """What tells a changed file from the one already done: size and modification time."""
    stat = os.stat(path)
    return {'bytes': stat.st_size, 'mtime': round(stat.st_mtime, 3)}
