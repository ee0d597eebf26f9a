"""Known poses of image folders: EG3D's camera labels (written, read, and made by hand as EG3D makes them), the
prepared dataset.json, and ImageFolder handing them to training with flips that mirror the yaw."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import curriculums
import datasets
from preprocessing.camera_labels import eg3d_label, eg3d_labels, pose_from_eg3d_label, read_known_poses
from settings import Settings

FFHQ_FOCAL = 4.2647  # EG3D's FFHQ labels and rendering settings


def hand_made_label(yaw_offset, height=0.0, radius=2.7):
    """An EG3D label built as EG3D's create_cam2world_matrix builds one (OpenCV columns: right, down, forward),
    for a camera turned yaw_offset towards the person's right (-x) and raised `height` (y), looking at the origin."""
    position = np.array([-math.sin(yaw_offset), 0.0, math.cos(yaw_offset)]) * radius + [0, height, 0]
    forward = -position / np.linalg.norm(position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam2world = np.eye(4)
    cam2world[:3, :3] = np.column_stack([right, down, forward])
    cam2world[:3, 3] = position
    return [*cam2world.ravel(), FFHQ_FOCAL, 0, 0.5, 0, FFHQ_FOCAL, 0.5, 0, 0, 1]


def project(label, point):
    """Pixel (u, v) in [0, 1] image coordinates, and depth, of a world point through an EG3D label (OpenCV)."""
    cam2world, intrinsics = np.reshape(label[:16], (4, 4)), np.reshape(label[16:], (3, 3))
    in_camera = cam2world[:3, :3].T @ (np.asarray(point) - cam2world[:3, 3])
    pixel = intrinsics @ (in_camera / in_camera[2])
    return pixel[0], pixel[1], in_camera[2]


def test_hand_made_eg3d_labels_read_as_our_poses():
    frontal = [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 2.7, 0, 0, 0, 1, FFHQ_FOCAL, 0, 0.5, 0, FFHQ_FOCAL, 0.5, 0, 0, 1]
    assert np.allclose(hand_made_label(0), frontal)
    assert pose_from_eg3d_label(frontal) == pytest.approx((math.pi / 2, math.pi / 2))
    # Turned towards the person's right: a larger yaw (more of their right cheek), as in our convention.
    assert pose_from_eg3d_label(hand_made_label(0.3)) == pytest.approx((math.pi / 2, math.pi / 2 + 0.3))
    # Raised: a smaller pitch (looking down on the face).
    pitch, yaw = pose_from_eg3d_label(hand_made_label(0, height=2.7 * math.tan(0.2)))
    assert (pitch, yaw) == pytest.approx((math.pi / 2 - 0.2, math.pi / 2))
    for broken in (frontal[:16], [2.0] * 25, [*frontal[:24], math.nan]):
        with pytest.raises(ValueError, match='EG3D label'):
            pose_from_eg3d_label(broken)


def test_our_labels_round_trip_and_see_the_face_as_eg3d_does():
    for yaw in (math.pi / 2 - 0.6, math.pi / 2, math.pi / 2 + 0.35):
        for pitch in (math.pi / 2 - 0.3, math.pi / 2, math.pi / 2 + 0.2):
            label = eg3d_label(yaw, pitch, 12)
            assert len(label) == 25 and pose_from_eg3d_label(label) == pytest.approx((pitch, yaw), abs=1e-5)
            assert np.linalg.norm(label[3:12:4]) == pytest.approx(2.7, abs=1e-5)  # EG3D's FFHQ distance
    frontal = eg3d_label(math.pi / 2, math.pi / 2, 12)
    assert np.allclose(frontal[:16], hand_made_label(0)[:16], atol=1e-6)
    assert frontal[16] == pytest.approx(0.5 / math.tan(math.radians(6)), abs=1e-5)  # 4.757: a 12 degree view
    # The person's left eye (+x, a little up, in front) lands right of and above the image centre, in front of
    # the camera: OpenCV's image axes, x right and y down.
    u, v, depth = project(frontal, [0.03, 0.02, 0.05])
    assert u > 0.5 and v < 0.5 and depth > 0
    # Moved to the person's right (a larger yaw: their right cheek shows), the nose tip points to the image's
    # right, as in a photo of a face turned that way.
    u, _, _ = project(eg3d_label(math.pi / 2 + 0.4, math.pi / 2, 12), [0, 0, 0.1])
    assert u > 0.5


def write_images(folder, count, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:, : size // 2] = 255  # white on the left: shows a flip
        pixels[0, 0] = index
        Image.fromarray(pixels).save(folder / f'{index}.png')


def test_image_folder_reads_eg3d_labels_and_flips_mirror_the_yaw(tmp_path):
    folder = tmp_path / 'eg3d'
    write_images(folder, 3)
    labels = {'0.png': hand_made_label(0.3), '1.png': hand_made_label(-0.2, height=0.5)}  # 2.png has none
    (folder / 'dataset.json').write_text(json.dumps({'labels': [[name, label] for name, label in labels.items()]}))
    dataset = datasets.ImageFolder(str(folder), img_size=8)
    assert len(dataset) == 3  # the labels file is not an image
    expected = [pose_from_eg3d_label(labels['0.png']), pose_from_eg3d_label(labels['1.png'])]
    assert torch.allclose(dataset.poses[:2], torch.tensor(expected, dtype=torch.float32))
    assert torch.isnan(dataset.poses[2]).all() and torch.isnan(dataset[2][1]).all()
    posed = {**curriculums.extract_metadata(curriculums.get('SYNTHETIC_CPU_POSED'), 0), 'dataset': 'ImageFolder'}
    datasets.check_known_poses(dataset, 'ImageFolder', [Settings.from_metadata(posed)])

    flipping = datasets.ImageFolder(str(folder), img_size=8, random_flip=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        image, pose = flipping[0]
        flipped = bool(image[0, 4, 0] < 0)  # the white half moved to the right
        seen.add(flipped)
        assert pose[0] == pytest.approx(expected[0][0])
        assert pose[1] == pytest.approx(math.pi - expected[0][1] if flipped else expected[0][1])
    assert seen == {False, True}

    (folder / 'dataset.json').write_text('{"labels": [["0.png", [1, 2, 3]]]}')
    with pytest.raises(datasets.DatasetError, match=r'^ImageFolder: .*dataset.json: an EG3D label has 25'):
        datasets.ImageFolder(str(folder), img_size=8)
    (folder / 'dataset.json').write_text('{"labels": ')
    with pytest.raises(datasets.DatasetError, match=r'cannot read .*dataset.json'):
        datasets.ImageFolder(str(folder), img_size=8)


def test_image_folder_reads_the_prepared_poses_beside_it(tmp_path):
    write_images(tmp_path / 'prepared' / 'images', 2)
    metadata = {'format': 'pigan-prepared-dataset', 'images_dir': 'images', 'images': [
        {'source': 'a.jpg', 'file': '0.png', 'yaw': 1.9, 'pitch': 1.4},
        {'source': 'b.jpg', 'file': '1.png', 'yaw': 1.2, 'pitch': 1.7}]}
    (tmp_path / 'prepared' / 'dataset.json').write_text(json.dumps(metadata))
    dataset = datasets.ImageFolder(str(tmp_path / 'prepared' / 'images'), img_size=8)
    assert torch.allclose(dataset.poses, torch.tensor([[1.4, 1.9], [1.7, 1.2]]))
    assert dataset[1][1].tolist() == pytest.approx([1.7, 1.2])
    # The EG3D labels written from them read back the same.
    labels = eg3d_labels({'0.png': (1.9, 1.4), '1.png': (1.2, 1.7)}, fov_degrees=12)
    (tmp_path / 'prepared' / 'images' / 'dataset.json').write_text(json.dumps(labels))
    (tmp_path / 'prepared' / 'dataset.json').unlink()
    assert read_known_poses(tmp_path / 'prepared' / 'images') == {
        '0.png': pytest.approx((1.4, 1.9)), '1.png': pytest.approx((1.7, 1.2))}
    # A plain folder knows no poses, and use_real_poses refuses it.
    write_images(tmp_path / 'plain', 2)
    plain = datasets.ImageFolder(str(tmp_path / 'plain'), img_size=8)
    assert not hasattr(plain, 'poses') and torch.isnan(plain[0][1]).all()
    (tmp_path / 'plain' / 'dataset.json').write_text(json.dumps(eg3d_labels({'other.png': (1.9, 1.4)}, 12)))
    assert not hasattr(datasets.ImageFolder(str(tmp_path / 'plain'), img_size=8), 'poses')
