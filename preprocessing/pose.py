"""Head pose from 5 landmarks: the pi-GAN camera (yaw, pitch) that sees a 3D mean face that way.

Convention (generators/camera_utils.py): the face sits at the origin looking
along +z with y up, so the person's left eye is at +x; a camera at yaw theta and
pitch phi sits at (sin phi cos theta, cos phi, sin phi sin theta) and looks at the
origin. theta = phi = pi/2 is the frontal, level view. Larger yaw moves the camera
towards -x, the person's right, so more of their right cheek shows; smaller pitch
moves it up, looking down on the face.

The template's x, y are the mean landmarks of aligned CelebA (alignment.CELEBA_LANDMARKS)
scaled to a 63 mm eye distance, so the average CelebA face is exactly frontal and
level, as the CelebA curriculum assumes (h_mean = v_mean = pi/2). Its depths are
approximate anthropometric values: eye centres 20 mm and mouth corners 22 mm behind
the nose tip. The fit is a scaled orthographic (weak perspective) projection of the
template with an in-plane roll, by least squares over the 10 coordinates; yaw and
pitch magnitudes scale with the template's depths, so read them as +-15%.
"""

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import least_squares

from preprocessing.alignment import CELEBA_LANDMARKS, eye_roll

EYE_DISTANCE_MM = 63.0
DEPTHS_MM = np.array([-20.0, -20.0, 0.0, -22.0, -22.0])  # eyes, nose tip, mouth corners (MTCNN order)


def mean_face_template():
    """[5, 3] the 3D template in mm: x to the person's left, y up, z out of the face."""
    scale = EYE_DISTANCE_MM / (CELEBA_LANDMARKS[1, 0] - CELEBA_LANDMARKS[0, 0])
    centred = CELEBA_LANDMARKS - CELEBA_LANDMARKS.mean(0)
    return np.column_stack([centred[:, 0] * scale, -centred[:, 1] * scale, DEPTHS_MM])


TEMPLATE = mean_face_template()


class Pose(NamedTuple):
    yaw: float       # pi-GAN's theta, radians (pi/2 frontal)
    pitch: float     # pi-GAN's phi, radians from +y (pi/2 level)
    roll: float      # in-plane angle of the head on screen, radians, clockwise
    residual: float  # RMS landmark misfit as a fraction of the eye distance


def camera_axes(yaw, pitch):
    """The camera's right and up unit vectors [3] in world space, as look_at_origin builds them."""
    origin = np.array([math.sin(pitch) * math.cos(yaw), math.cos(pitch), math.sin(pitch) * math.sin(yaw)])
    forward = -origin
    left = np.cross([0.0, 1.0, 0.0], forward)
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    return -left, up / np.linalg.norm(up)


def project(points, yaw, pitch, roll, scale, shift):
    """Screen pixels [N, 2] (y down) of world points [N, 3] under a weak perspective camera."""
    right, up = camera_axes(yaw, pitch)
    screen = np.stack([points @ right, -(points @ up)], axis=-1)
    turn = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    return scale * screen @ turn.T + shift


def estimate_pose(landmarks):
    """Pose of a face from its [5, 2] landmarks (pixels, y down, MTCNN's order)."""
    landmarks = np.asarray(landmarks, np.float64)
    eye_distance = np.linalg.norm(landmarks[1] - landmarks[0])
    start_scale = eye_distance / EYE_DISTANCE_MM

    def residuals(params):
        return (project(TEMPLATE, *params[:4], params[4:]) - landmarks).ravel() / eye_distance

    best = None
    # Weak perspective has a near-mirror ambiguity in depth: start on both sides as well as frontal.
    for yaw_start in (0.0, -0.5, 0.5):
        start = [math.pi / 2 + yaw_start, math.pi / 2, eye_roll(landmarks), start_scale, *landmarks.mean(0)]
        fit = least_squares(residuals, start, bounds=(
            [math.pi / 2 - 1.5, 0.1, -math.pi, start_scale / 10, -np.inf, -np.inf],
            [math.pi / 2 + 1.5, math.pi - 0.1, math.pi, start_scale * 10, np.inf, np.inf]))
        if best is None or fit.cost < best.cost:
            best = fit
    yaw, pitch, roll = best.x[:3]
    return Pose(float(yaw), float(pitch), float(roll), float(np.sqrt(np.mean(best.fun ** 2))))
