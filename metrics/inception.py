"""pytorch-fid's Inception network: pool features and class logits in one pass.

The network and its weights are pytorch-fid's own (`fid_inception_v3()`, the
TF-ported FID weights), so features match `python -m pytorch_fid` exactly.
"""

import functools
import hashlib
import os
from pathlib import Path
from unittest import mock

import torch
import torch.nn as nn
import torch.nn.functional as F
from pytorch_fid import inception as fid_inception

from utils.errors import UserError

FEATURE_DIM = 2048
NUM_CLASSES = 1008
WEIGHTS_URL = fid_inception.FID_WEIGHTS_URL
WEIGHTS_FILE_NAME = os.path.basename(WEIGHTS_URL)

# Layers of torchvision's Inception3 from the input to the last mixed block, in
# the order pytorch-fid's InceptionV3 wrapper runs them.
TRUNK_LAYERS = ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'maxpool1',
                'Conv2d_3b_1x1', 'Conv2d_4a_3x3', 'maxpool2',
                'Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e',
                'Mixed_7a', 'Mixed_7b', 'Mixed_7c')


class InceptionWeightsError(UserError, RuntimeError):
    """The FID Inception weights could not be found, downloaded or read."""


def hub_weights_path():
    """Where torch.hub (and so pytorch-fid) keeps the FID weights for the current TORCH_HOME."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / WEIGHTS_FILE_NAME


def download_help(reason):
    return (f"could not download the FID Inception weights ({reason}).\n"
            f"Fetch {WEIGHTS_URL}\n"
            f"and save it as {hub_weights_path()}\n"
            f"or pass --inception_weights PATH to a local copy.")


class InceptionFeatures(nn.Module):
    """images [B, 3, H, W] in [0, 1] -> (pool features [B, 2048], logits [B, 1008]).

    Preprocessing is pytorch-fid's: bilinear resize to 299 x 299, then scale to [-1, 1].
    The logits leave out the fc bias, as the reference Inception Score code
    (Salimans et al.) multiplies the pool features by the softmax weights only.
    """

    def __init__(self, inception):
        super().__init__()
        self.trunk = nn.Sequential(*[getattr(inception, name) for name in TRUNK_LAYERS])
        self.register_buffer('class_weights', inception.fc.weight.detach().clone())

    def forward(self, images):
        x = F.interpolate(images, size=(299, 299), mode='bilinear', align_corners=False)
        x = self.trunk(2 * x - 1)
        features = F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)
        return features, features @ self.class_weights.t()


def build_fid_inception(weights_path=None):
    """pytorch-fid's fid_inception_v3(), with its weights from weights_path or torch.hub's cache/download."""
    if weights_path is None:
        cached = hub_weights_path()
        had_file = cached.is_file()
        try:
            return fid_inception_v3_or_error(), cached
        except InceptionWeightsError:
            raise
        except Exception as error:  # torch.hub raises URLError, HTTPError, OSError, ... on a failed download
            if had_file:
                raise InceptionWeightsError(f"{cached} is not a usable copy of the FID Inception weights "
                                            f"({error}); delete it and fetch {WEIGHTS_URL} again") from None
            raise InceptionWeightsError(download_help(error)) from None
    state_dict = load_weights_file(weights_path)
    # pytorch-fid has no parameter for a local file: hand it our state dict instead of downloading.
    with mock.patch.object(fid_inception, 'load_state_dict_from_url', lambda *args, **kwargs: state_dict):
        return fid_inception_v3_or_error(weights_path), Path(weights_path)


def fid_inception_v3_or_error(weights_path=None):
    try:
        return fid_inception.fid_inception_v3()
    except RuntimeError as error:
        if 'state_dict' in str(error) or 'size mismatch' in str(error):
            where = weights_path or hub_weights_path()
            raise InceptionWeightsError(f"{where} does not hold the FID Inception weights ({str(error)[:200]})")
        raise


def load_weights_file(path):
    path = Path(path)
    if not path.is_file():
        raise InceptionWeightsError(f"Inception weights not found: {path}")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 -- whatever torch.load raises, the file is unusable
        from checkpoints.format import load_error_summary
        raise InceptionWeightsError(f"{path} is not a readable PyTorch weights file ({load_error_summary(error)}); "
                                    f"fetch {WEIGHTS_URL} again") from None


@functools.lru_cache(maxsize=4)
def file_digest(path, size, mtime_ns):
    """sha256 of a file; size and mtime are part of the cache key so a replaced file is hashed anew."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


class LoadedInception:
    """The feature network on a device, and a digest of the weights it was built from."""

    def __init__(self, network, device, weights_file):
        self.network = network
        self.device = device
        self.weights_file = weights_file
        stat = Path(weights_file).stat()
        self.weights_digest = file_digest(str(Path(weights_file).resolve()), stat.st_size, stat.st_mtime_ns)


_loaded = {}


def load_inception(device='cpu', weights_path=None):
    """The InceptionFeatures network in eval mode on device, loaded once per process per weights file."""
    device = torch.device(device)
    key = (str(device), str(Path(weights_path).resolve()) if weights_path else str(hub_weights_path()))
    if key not in _loaded:
        inception, weights_file = build_fid_inception(weights_path)
        network = InceptionFeatures(inception).to(device).eval().requires_grad_(False)
        _loaded.clear()  # keep at most one copy in (GPU) memory
        _loaded[key] = LoadedInception(network, device, weights_file)
    return _loaded[key]
