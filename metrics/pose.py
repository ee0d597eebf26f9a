"""Pose accuracy and the pose-feature Fréchet distance of a head source (metrics/heads.py).

Samples are rendered at cameras drawn from the curriculum's pose distribution; the
dataset's pose regressor (metrics/pose_regressor.py) reads each image's pose back. The
floor is held-out true heads read the same way: the same camera draws, the same size.
"""

import numpy as np
import torch

from .fid import fid_from_statistics
from .heads import TrueHeads, sample_cameras


def render_at_random_poses(heads, camera, num_samples, img_size, seed):
    """(images [N, 3, S, S] in [-1, 1], true (yaw, pitch) [N, 2]) of samples 0..N-1 at cameras drawn from
    camera (settings.CameraDistribution)."""
    cameras = sample_cameras(num_samples, camera, seed)
    images, _ = heads.render(list(range(num_samples)), cameras, img_size)
    return images, torch.stack([cameras.yaw, cameras.pitch], -1)


def mean_abs_degrees(predicted, true):
    """Mean |error| of (yaw, pitch) [N, 2] in degrees, per angle."""
    error = np.degrees((predicted - true).abs().mean(0).numpy())
    return float(error[0]), float(error[1])


def pose_chance(true_poses):
    """Error of the best image that does not turn with the camera: it reads as one fixed pose,
    at best the poses' median, so the error is their mean absolute deviation from it."""
    return mean_abs_degrees(true_poses.median(0).values.expand_as(true_poses), true_poses)


def pose_errors(regressor, images, true_poses):
    """(yaw, pitch) mean |error| in degrees of the regressor on images [N, 3, S, S] posed at true_poses [N, 2]."""
    predicted, _ = regressor.predict(images)
    return mean_abs_degrees(predicted, true_poses)


def pose_floor(regressor, held_out, camera, num_samples, img_size, seed):
    """(yaw, pitch) error of held-out true heads (a TrueHeads the regressor never trained on)
    rendered as samples are: the cameras of render_at_random_poses(..., seed) at img_size.
    Sample i is held-out head i mod their number, so any num_samples has its floor."""
    heads = TrueHeads([held_out.heads[i % len(held_out)] for i in range(num_samples)], held_out.fov)
    return pose_errors(regressor, *render_at_random_poses(heads, camera, num_samples, img_size, seed))


def pose_accuracy(regressor, images, true_poses, floor):
    """{pose_yaw_deg, pose_pitch_deg} with their _floor (floor: (yaw, pitch) from pose_floor) and _chance values."""
    yaw, pitch = pose_errors(regressor, images, true_poses)
    chance_yaw, chance_pitch = pose_chance(true_poses)
    return {'pose_yaw_deg': yaw, 'pose_yaw_deg_floor': floor[0], 'pose_yaw_deg_chance': chance_yaw,
            'pose_pitch_deg': pitch, 'pose_pitch_deg_floor': floor[1], 'pose_pitch_deg_chance': chance_pitch}


def frechet_to_train(regressor, features):
    """Fréchet distance between features [N, D] and the regressor's training-image features."""
    features = features.double().numpy()
    mu = features.mean(0)
    sigma = np.cov(features, rowvar=False) if len(features) > 1 else np.zeros((len(mu), len(mu)))
    return fid_from_statistics(regressor.training_record['train_feature_mean'].numpy(),
                               regressor.training_record['train_feature_cov'].numpy(), mu, np.atleast_2d(sigma))


def pose_fd(regressor, images):
    """{pose_fd, _floor, _chance}: Fréchet distance on the pose regressor's penultimate features.

    Floor: as many held-out real images (at most all of them). Chance: the training images'
    mean image for every sample (one blurry head).
    """
    _, features = regressor.predict(images)
    held_out = regressor.training_record['held_out_features'][:len(images)]
    _, mean_image_features = regressor.predict(regressor.training_record['mean_image'][None])
    # One image repeated has no spread: the distance is |mu - f|^2 + tr(sigma).
    chance = (float(((regressor.training_record['train_feature_mean'] - mean_image_features[0].double()) ** 2).sum())
              + float(regressor.training_record['train_feature_cov'].trace()))
    return {'pose_fd': frechet_to_train(regressor, features),
            'pose_fd_floor': frechet_to_train(regressor, held_out),
            'pose_fd_chance': chance,
            'pose_fd_num_images': len(images), 'pose_fd_floor_num_images': len(held_out)}

