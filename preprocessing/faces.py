"""Face detection and 5 landmarks with MTCNN, whose weights ship inside the facenet-pytorch wheel.

Landmark order (MTCNN's): eye on the image's left, eye on the image's right, nose
tip, mouth corner on the image's left, mouth corner on the image's right; pixels
(x, y) with y down, in the coordinates of the image given.
"""

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from preprocessing.images import PhotoError


class Face(NamedTuple):
    box: np.ndarray        # [4] x0, y0, x1, y1
    score: float           # detector confidence in [0, 1]
    landmarks: np.ndarray  # [5, 2]

    @property
    def side(self):
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector:
    """MTCNN (Zhang et al. 2016) on CPU; faces below min_score are dropped.

    detect_side: images are searched at this long side at most (MTCNN's cost grows with
    the pixel count; faces small enough to be lost there are rejected as too small anyway).
    """

    def __init__(self, min_score=0.9, detect_side=800, device='cpu'):
        from facenet_pytorch import MTCNN  # imported here: only preparation needs it
        self.mtcnn = MTCNN(keep_all=True, device=device)
        self.min_score = min_score
        self.detect_side = detect_side
        # MTCNN's image pyramid starts at 12 / min_face_size of the image and needs 12 px: on a shorter
        # side it has no level at all and fails inside (torch.cat of an empty list).
        self.min_side = self.mtcnn.min_face_size

    def __call__(self, image):
        """Faces in an RGB PIL image, largest first."""
        factor = max(1.0, max(image.size) / self.detect_side)
        searched = image if factor == 1 else image.resize(
            (round(image.width / factor), round(image.height / factor)), Image.BILINEAR, reducing_gap=2.0)
        if min(searched.size) < self.min_side:
            reduced = f' once reduced to {self.detect_side} px on the long side' if factor > 1 else ''
            raise PhotoError('image too small', f'{image.width}x{image.height} px{reduced}, '
                                                f'{searched.width}x{searched.height} px searched; the face detector '
                                                f'needs at least {self.min_side} px on the short side')
        with torch.no_grad():
            boxes, scores, landmarks = self.mtcnn.detect(searched, landmarks=True)
        if boxes is None:
            return []
        faces = [Face(np.asarray(box, np.float64) * factor, float(score), np.asarray(points, np.float64) * factor)
                 for box, score, points in zip(boxes, scores, landmarks) if score >= self.min_score]
        return sorted(faces, key=lambda face: -face.side)
