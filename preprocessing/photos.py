"""One photo to one training image: read it, find the face, align and crop, estimate the pose."""

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import ImageOps

from preprocessing.alignment import celeba_targets, center_transform, describe_crop, face_transform, warp
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


def refine_landmarks(image, landmarks, detector, work_size=192):
    """[5, 2] landmarks found again in the face's levelled crop and its mirror image, averaged, in image pixels.

    MTCNN places landmarks inside an upright box, so on a tilted head they lag behind
    the tilt (about 10% of it); found again on the levelled face they do not. Averaging
    with the mirror image's halves MTCNN's left-right bias, so a mirrored photo gets the
    mirrored landmarks and the opposite yaw.
    """
    matrix = face_transform(landmarks, work_size)
    crop = warp(image, matrix, work_size)
    centre = celeba_targets(work_size).mean(0)
    found = []
    for mirrored in (False, True):
        faces = detector(ImageOps.mirror(crop) if mirrored else crop)
        if not faces:
            return landmarks
        points = min(faces, key=lambda face: np.linalg.norm(face.landmarks.mean(0) - centre)).landmarks
        if mirrored:  # back to the crop's frame: x flips, and left and right swap names
            points = np.column_stack([work_size - points[:, 0], points[:, 1]])[[1, 0, 2, 4, 3]]
        found.append(points)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    return np.mean(found, axis=0) @ inverse[:, :2].T + inverse[:, 2]


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
    pose = estimate_pose(landmarks)
    record = {'crop': crop, 'yaw': round(pose.yaw, 5), 'pitch': round(pose.pitch, 5),
              'roll_deg': round(math.degrees(pose.roll), 3), 'pose_residual': round(pose.residual, 5),
              'detector_score': round(face.score, 5),
              'landmarks': np.round(landmarks * scale, 2).tolist()}
    return warp(image, matrix, settings.size), record


def align_photo(path, size=256):
    """(aligned image, record) of one photo, as for training; any face size is accepted."""
    from preprocessing.faces import FaceDetector
    settings = Settings(size=size, min_face_size=0)
    return prepare_photo(path, settings, FaceDetector(settings.min_score, settings.detect_side))


def file_signature(path):
    """What tells a changed file from the one already done: size and modification time."""
    stat = os.stat(path)
    return {'bytes': stat.st_size, 'mtime': round(stat.st_mtime, 3)}
