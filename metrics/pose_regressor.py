"""A small CNN that reads (yaw, pitch) off a synthetic-head image, trained once per dataset.

The regressor is trained on a synthetic dataset's images and true poses (all but a
held-out tail) and cached inside the dataset folder as
pose_regressor-<hash>.pt, where the hash covers poses.json, every image's bytes and the
training settings: a changed dataset or recipe trains a new one. The file holds a state
dict and plain numbers and tensors (loads with weights_only=True), written atomically.

Its penultimate activations double as features for an offline Fréchet distance (pose_fd).
"""

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from checkpoints import CheckpointError, atomic_save, safe_load
from datasets import DatasetError
from synthetic import dataset as synthetic_files

FORMAT = 'pigan/pose_regressor'
VERSION = 1


@dataclass(frozen=True)
class RegressorSettings:
    input_size: int = 32       # images are resized to this before the network
    feature_dim: int = 64      # penultimate width: the pose_fd features
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    holdout_fraction: float = 0.1  # the dataset's last images, never trained on: the floor
    seed: int = 0


class PoseNet(nn.Module):
    """images [B, 3, S, S] in [-1, 1] -> (normalised (yaw, pitch) [B, 2], features [B, feature_dim])."""

    def __init__(self, input_size=32, feature_dim=64):
        super().__init__()
        self.input_size = input_size
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64 * (input_size // 8) ** 2, feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(feature_dim, 2)

    def forward(self, images):
        if images.shape[-1] != self.input_size:
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode='bilinear',
                                   antialias=True, align_corners=False)
        features = self.trunk(images)
        return self.head(features), features


class PoseRegressor:
    """A trained PoseNet with its pose normalisation and held-out figures.

    predict(images [B, 3, S, S] in [-1, 1]) -> (yaw, pitch) [B, 2] radians, features [B, D].
    """

    def __init__(self, network, pose_mean, pose_std, training_record):
        self.network = network.eval().requires_grad_(False)
        self.pose_mean = torch.as_tensor(pose_mean, dtype=torch.float32)
        self.pose_std = torch.as_tensor(pose_std, dtype=torch.float32)
        self.training_record = training_record  # floor errors, held-out features, training time, ...

    def predict(self, images, batch_size=256):
        poses, features = [], []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                normalised, feats = self.network(images[start:start + batch_size].float().cpu())
                poses.append(normalised * self.pose_std + self.pose_mean)
                features.append(feats)
        return torch.cat(poses), torch.cat(features)


def load_dataset_images(folder, dataset_record):
    """All images of a synthetic dataset (dataset_record: its poses.json) as [N, 3, S, S] in [-1, 1] and their
    (yaw, pitch) [N, 2]."""
    entries = dataset_record['images']
    images = np.stack([np.asarray(Image.open(Path(folder) / e['file']).convert('RGB')) for e in entries])
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    poses = torch.tensor([[e['yaw'], e['pitch']] for e in entries], dtype=torch.float32)
    return images, poses


def dataset_digest(folder, settings):
    """sha256 of poses.json, every image's bytes and the regressor settings."""
    folder = Path(folder)
    digest = hashlib.sha256(f'{FORMAT}-v{VERSION}-{settings}'.encode())
    digest.update((folder / synthetic_files.METADATA_FILE).read_bytes())
    for entry in json.loads((folder / synthetic_files.METADATA_FILE).read_text())['images']:
        digest.update((folder / entry['file']).read_bytes())
    return digest.hexdigest()


def split(num_images, holdout_fraction):
    """(train indices, held-out indices): the held-out set is the dataset's tail."""
    holdout = max(1, int(round(num_images * holdout_fraction)))
    if num_images - holdout < 2:
        raise ValueError(f"a pose regressor needs at least 3 images, the dataset has {num_images}")
    return torch.arange(num_images - holdout), torch.arange(num_images - holdout, num_images)


def augment(images, generator):
    """Per-image brightness/contrast jitter and pixel noise, so generated images' colour shifts
    and speckle do not move the pose estimate."""
    b = images.shape[0]
    gain = 1 + 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    shift = 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    noise = 0.05 * torch.randn(images.shape, generator=generator)
    return (images * gain + shift + noise).clamp(-1, 1)


def train_regressor(images, poses, settings, progress=True):
    """(PoseNet, pose mean [2], pose std [2]) trained on images [N, 3, S, S] and poses [N, 2]."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    network = PoseNet(settings.input_size, settings.feature_dim)
    # Resize once up front; the network then sees its input size directly.
    small = F.interpolate(images, size=(settings.input_size,) * 2, mode='bilinear', antialias=True,
                          align_corners=False)
    mean, std = poses.mean(0), poses.std(0).clamp_min(1e-6)
    targets = (poses - mean) / std
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    steps_per_epoch = max(1, len(small) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate,
                                                   total_steps=settings.epochs * steps_per_epoch)
    network.train()
    for _ in tqdm(range(settings.epochs), desc='training pose regressor', unit='epoch', disable=not progress):
        order = torch.randperm(len(small), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * settings.batch_size:(step + 1) * settings.batch_size]
            predicted, _ = network(augment(small[batch], generator))
            loss = F.smooth_l1_loss(predicted, targets[batch], beta=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return network.eval(), mean, std


def cache_path(folder, digest):
    return Path(folder) / f'pose_regressor-{digest[:16]}.pt'


def load_or_train(folder, settings=RegressorSettings(), progress=True):
    """The PoseRegressor of the synthetic dataset in folder, from its cache or trained now (and cached)."""
    folder = Path(folder)
    dataset_record = synthetic_files.load_metadata(folder)
    if dataset_record is None:
        raise DatasetError(f"{folder} is not a complete synthetic dataset (no {synthetic_files.METADATA_FILE}); "
                           f"create it with: python synthetic_dataset.py --output_dir {folder}")
    digest = dataset_digest(folder, settings)
    path = cache_path(folder, digest)
    if path.is_file():
        try:
            saved = safe_load(path, 'pose regressor')
            if saved.get('format') == FORMAT and saved.get('digest') == digest:
                return from_saved(saved)
        except CheckpointError:
            pass  # truncated or foreign: train again
        print(f"note: {path} is unusable; training the pose regressor again", file=sys.stderr)

    images, poses = load_dataset_images(folder, dataset_record)
    train, held_out = split(len(images), settings.holdout_fraction)
    started, cpu_started = time.perf_counter(), time.process_time()
    network, mean, std = train_regressor(images[train], poses[train], settings, progress)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    regressor = PoseRegressor(network, mean, std, {})
    predicted, held_out_features = regressor.predict(images[held_out])
    _, train_features = regressor.predict(images[train])
    error = (predicted - poses[held_out]).abs().mean(0)
    training_record = {
        'floor_yaw_deg': float(np.degrees(error[0])), 'floor_pitch_deg': float(np.degrees(error[1])),
        'train_seconds': seconds, 'train_cpu_seconds': cpu_seconds, 'num_train': len(train),
        'num_held_out': len(held_out),
        'threads': torch.get_num_threads(), 'settings': asdict(settings),
        'train_feature_mean': train_features.double().mean(0),
        'train_feature_cov': torch.from_numpy(np.cov(train_features.double().numpy(), rowvar=False)),
        'held_out_features': held_out_features,
        'mean_image': images[train].mean(0),
    }
    regressor.training_record = training_record
    atomic_save({'format': FORMAT, 'version': VERSION, 'digest': digest, 'state_dict': network.state_dict(),
                 'pose_mean': mean, 'pose_std': std, 'input_size': settings.input_size,
                 'feature_dim': settings.feature_dim, 'info': training_record}, path)  # 'info': the cache file's key
    print(f"trained the pose regressor in {seconds:.0f} s ({cpu_seconds:.0f} s of CPU) on {len(train)} images; "
          f"held-out error yaw {training_record['floor_yaw_deg']:.2f} deg, "
          f"pitch {training_record['floor_pitch_deg']:.2f} deg; "
          f"cached in {path}", file=sys.stderr)
    return regressor


def from_saved(saved):
    network = PoseNet(saved['input_size'], saved['feature_dim'])
    network.load_state_dict(saved['state_dict'])
    return PoseRegressor(network, saved['pose_mean'], saved['pose_std'], saved['info'])
