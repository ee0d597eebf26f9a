"""Cameras, the one camera type: its constructors agree with pi-GAN's look-at math, batches index
as lists do, and angles come back as they went in. (The renders at cameras are the golden tests'.)"""

import math

import pytest
import torch

from generators.camera_utils import Cameras, look_at_origin


def test_matrices_are_the_look_at_math():
    yaw, pitch = [1.2, math.pi / 2, 2.5], [1.9, math.pi / 2, 0.8]
    cameras = Cameras(yaw=yaw, pitch=pitch, fov=12)
    expected = look_at_origin(torch.tensor([[p] for p in pitch]), torch.tensor([[y] for y in yaw]))
    assert torch.equal(cameras.cam2world(), expected)
    for matrix, y, p in zip(cameras.cam2world(), yaw, pitch):
        origin = torch.tensor([math.sin(p) * math.cos(y), math.cos(p), math.sin(p) * math.sin(y)])
        torch.testing.assert_close(matrix[:3, 3], origin)
        torch.testing.assert_close(matrix[:3, 2], origin)  # the camera's back (+z) points away from the origin
    # pi-GAN's frontal camera, yaw = pitch = pi/2, sits on +z looking down -z: the identity rotation.
    front = Cameras(yaw=math.pi / 2, pitch=math.pi / 2, fov=12).cam2world()[0]
    torch.testing.assert_close(front, torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]]))


def test_angles_come_back_as_they_went_in():
    camera = Cameras(yaw=1.3, pitch=1.7, fov=12)  # numbers: float32, as the renderer computes
    assert camera.yaw.dtype == camera.pitch.dtype == torch.float32 and camera.fov.dtype == torch.float64
    assert camera.tolist() == [(torch.tensor(1.3).item(), torch.tensor(1.7).item(), 12.0)]
    # ... and from the matrix: the camera's position gives its yaw and pitch back.
    x, y, z = camera.cam2world()[0, :3, 3].tolist()
    assert (math.atan2(z, x), math.acos(y)) == pytest.approx((1.3, 1.7), abs=1e-6)
    yaw = torch.tensor([0.5, 1.5], dtype=torch.float64)  # a tensor keeps its dtype and values
    kept = Cameras(yaw=yaw, pitch=yaw, fov=12).yaw
    assert kept.dtype == torch.float64 and torch.equal(kept, yaw)


def test_keywords_only_so_the_order_cannot_be_swapped():
    with pytest.raises(TypeError):
        Cameras(1.3, 1.7, 12)


def test_a_batch_indexes_like_a_list():
    cameras = Cameras(yaw=[0.1, 0.2, 0.3], pitch=1.5, fov=[10, 11, 12])  # one pitch for all
    assert len(cameras) == 3 and cameras.pitch.tolist() == pytest.approx([1.5] * 3)
    assert [len(camera) for camera in cameras] == [1, 1, 1]  # one camera is a batch of one
    assert cameras[-1].tolist() == cameras.tolist()[2:]
    assert cameras[1:].tolist() == cameras.tolist()[1:]
    assert cameras[[2, 0]].tolist() == [cameras.tolist()[2], cameras.tolist()[0]]
    with pytest.raises(IndexError):
        cameras[3]
    assert Cameras.cat([cameras[2], cameras[:2]]).tolist() == cameras[[2, 0, 1]].tolist()
    for index, camera in enumerate(cameras):  # one view alone is the same camera as in the batch
        torch.testing.assert_close(camera.cam2world()[0], cameras.cam2world()[index], rtol=0, atol=1e-7)
    assert cameras.to('cpu').tolist() == cameras.tolist()
    with pytest.raises(RuntimeError):
        Cameras(yaw=[0.1, 0.2], pitch=[1.0, 1.1, 1.2], fov=12)


def test_turned_adds_in_float64_as_python_numbers_did():
    cameras = Cameras(yaw=[0.1, 2.9], pitch=[1.2, 1.9], fov=12)
    turned = cameras.turned(yaw=0.3, pitch=-0.1)
    expected = Cameras(yaw=[y + 0.3 for y in cameras.yaw.tolist()], pitch=[p - 0.1 for p in cameras.pitch.tolist()],
                       fov=12)
    assert turned.tolist() == expected.tolist()


def test_matrices_are_differentiable_in_the_angles():
    yaw = torch.tensor([1.4], requires_grad=True)
    pitch = torch.tensor([1.6], requires_grad=True)
    Cameras(yaw=yaw, pitch=pitch, fov=12).cam2world()[:, :3, 3].sum().backward()
    assert yaw.grad.abs().item() > 0 and pitch.grad.abs().item() > 0
    assert not Cameras(yaw=yaw, pitch=pitch, fov=12).detach().yaw.requires_grad


def test_saved_latent_poses_load():
    """inverse_render.py's latent.pt stores yaw, pitch and fov as plain numbers (older files: fov an int)."""
    saved = {'yaw': 1.5707963705062866, 'pitch': 1.6, 'fov': 12, 'cameras': [(1.57, 1.6, 12), (1.2, 1.5, 12)]}
    camera = Cameras(yaw=saved['yaw'], pitch=saved['pitch'], fov=saved['fov'])
    assert camera.tolist() == [(saved['yaw'], torch.tensor(1.6).item(), 12.0)]
    yaw, pitch, fov = zip(*saved['cameras'])
    assert len(Cameras(yaw=yaw, pitch=pitch, fov=fov)) == 2
