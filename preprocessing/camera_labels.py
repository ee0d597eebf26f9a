"""Per-image camera poses on disk: the prepared dataset.json's, and EG3D's camera labels (written and read).

EG3D (Chan et al. 2022) reads <image folder>/dataset.json, {"labels": [[file name, [25 numbers]], ...]}:
the 4x4 cam2world matrix row by row, then the 3x3 intrinsics row by row, normalised by the image side
(focal length in image widths, principal point at 0.5, 0.5).

Axes, EG3D's against ours (generators/camera_utils.py):
- World: the same. Both put the face at the origin looking along +z, y up, the person's left at +x
  (EG3D's camera_utils: "y-up, z-forward, x-left", x-left as the face sees it).
- Camera: ours is OpenGL's (x right, y up, looking along -z; cam2world columns right, up, back); EG3D's is
  OpenCV's (x right, y down, looking along +z; columns right, down, forward). Its rotation is ours times
  diag(1, -1, -1); the position is the same point.
- Angles: our camera at (yaw, pitch) sits at r (sin pitch cos yaw, cos pitch, sin pitch sin yaw). EG3D's
  samplers reach that point with horizontal angle pi - yaw and vertical v with arccos(1 - 2 v / pi) = pitch;
  labels hold matrices, so their parametrisation does not enter them.
- Distance: EG3D's FFHQ cameras sit 2.7 from the origin (rays 2.25 to 3.3), ours 1 (0.88 to 1.12). Labels are
  written at 2.7, so EG3D's FFHQ rendering settings apply; any distance reads back.
- Focal: written as 0.5 / tan(fov / 2) for the crop's true field of view (CelebA's 12 degrees: 4.757).
  EG3D's FOV_to_intrinsics divides by a further 1.414, so its "fov" is not the image's: its FFHQ focal
  4.2647 is a 13.4 degree field of view.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch

from generators.camera_utils import look_at_origin

PREPARED_FORMAT = 'pigan-prepared-dataset'  # dataset.json of prepare_dataset.py, beside the images folder
METADATA_FILE = 'dataset.json'
EG3D_LABELS_FILE = 'dataset.json'  # inside the image folder, where EG3D's dataset_tool.py and training look
EG3D_RADIUS = 2.7
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def eg3d_label(yaw, pitch, fov_degrees, radius=EG3D_RADIUS):
    """The 25 numbers of EG3D's label for our camera at (yaw, pitch) looking at the origin."""
    cam2world = look_at_origin(torch.tensor([[pitch]], dtype=torch.float64),
                               torch.tensor([[yaw]], dtype=torch.float64), radius)[0].numpy()
    cam2world[:3, :3] = cam2world[:3, :3] @ OPENGL_TO_OPENCV
    focal = 0.5 / math.tan(math.radians(fov_degrees) / 2)
    intrinsics = np.array([[focal, 0, 0.5], [0, focal, 0.5], [0, 0, 1]])
    return [round(float(value), 7) for value in (*cam2world.ravel(), *intrinsics.ravel())]


def pose_from_eg3d_label(label):
    """(pitch, yaw) in our convention of an EG3D label, from the direction the camera looks along.

    The viewing direction, not the position: EG3D's FFHQ cameras look at (0, 0, 0.2), not the origin, and the
    direction does not depend on the distance. ValueError when the label is not a camera.
    """
    values = np.asarray(label, np.float64).ravel()
    if values.size != 25 or not np.isfinite(values).all():
        raise ValueError(f'an EG3D label has 25 finite numbers (cam2world, intrinsics), not {values.size}')
    rotation = values[:16].reshape(4, 4)[:3, :3]
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-3):
        raise ValueError('an EG3D label\'s first 16 numbers must be a cam2world matrix (its rotation is not one)')
    towards_camera = -rotation[:, 2]  # EG3D's third column points from the camera into the scene
    pitch = math.acos(float(np.clip(towards_camera[1], -1, 1)))
    return pitch, math.atan2(towards_camera[2], towards_camera[0])


def eg3d_labels(poses, fov_degrees):
    """The content of EG3D's dataset.json; poses: {file name in the image folder: (yaw, pitch)}."""
    return {'labels': [[name, eg3d_label(yaw, pitch, fov_degrees)] for name, (yaw, pitch) in sorted(poses.items())]}


def read_known_poses(folder):
    """{file name: (pitch, yaw)} that an image folder knows, or None when it knows none.

    From the dataset.json beside it that prepare_dataset.py wrote for it (its estimated poses), else from EG3D
    labels inside it (EG3D's FFHQ, or what prepare_dataset.py wrote there). ValueError for a broken file.
    """
    folder = Path(folder)
    prepared = read_json(folder.parent / METADATA_FILE)
    if (isinstance(prepared, dict) and prepared.get('format') == PREPARED_FORMAT
            and prepared.get('images_dir') == folder.resolve().name):
        poses = {entry['file']: (entry['pitch'], entry['yaw']) for entry in prepared.get('images', [])
                 if 'yaw' in entry}
        return poses or None
    labelled = read_json(folder / EG3D_LABELS_FILE)
    if not isinstance(labelled, dict) or not labelled.get('labels'):
        return None
    try:
        return {str(name): pose_from_eg3d_label(label) for name, label in labelled['labels']}
    except (TypeError, ValueError) as error:
        raise ValueError(f'{folder / EG3D_LABELS_FILE}: {error}') from None


def read_json(path):
    """The content of a JSON file, None if there is none; ValueError naming the file if it is broken."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'cannot read {path}: {error}') from None
