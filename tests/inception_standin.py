"""Stand-in FID Inception weights, so tests run pytorch-fid's real loading code without the network;
and small folders of test images.

The file has exactly the keys and shapes fid_inception_v3() loads, filled with
deterministic random values scaled (He init, unit batch-norm statistics) so
activations neither vanish nor explode and features differ between images.
Only 6 pool features vary (fewer than the test folders hold images, so their covariance
is regular and the FID comparison well-conditioned); the zero rest keeps sqrtm fast.
"""

import atexit
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from metrics.inception import WEIGHTS_FILE_NAME

FEATURE_GAIN = 30
ACTIVE_CHANNELS = 1  # per Mixed_7c branch: 6 of the 2048 pool features vary, the rest are 0
# Batch-norm scales of the convolutions whose outputs Mixed_7c concatenates into the pool features.
OUTPUT_BRANCH_GAMMAS = {f'Mixed_7c.{branch}.bn.weight' for branch in (
    'branch1x1', 'branch3x3_2a', 'branch3x3_2b', 'branch3x3dbl_3a', 'branch3x3dbl_3b', 'branch_pool')}


def standin_state_dict(seed=0):
    # torchvision's Inception3 with 1008 classes and no aux head has the FID network's state-dict layout.
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.zeros_like(value)
        elif value.dim() == 4:  # conv: He-normal keeps the activation scale through ReLUs
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=rng) * math.sqrt(2 / fan_in)
        elif key == 'fc.weight':  # logits of order 1, so the class distribution is neither flat nor one-hot
            state[key] = torch.randn(value.shape, generator=rng) * 2 / math.sqrt(6 * ACTIVE_CHANNELS)
        elif key in OUTPUT_BRANCH_GAMMAS:
            # A gain spreads the pool features between images; a zero scale silences all but a few
            # channels, which keeps scipy's sqrtm in the FID fast (its Schur step isolates zero rows).
            state[key] = torch.zeros_like(value)
            state[key][:ACTIVE_CHANNELS] = FEATURE_GAIN
        elif key.endswith('running_var') or key.endswith('.bn.weight'):
            state[key] = torch.ones_like(value)
        else:  # batch-norm biases and running means, fc bias
            state[key] = torch.zeros_like(value)
    return state


def write_standin_weights(torch_home, seed=0):
    """Writes the stand-in into torch_home's hub checkpoint folder; returns the file's path."""
    path = Path(torch_home) / 'hub' / 'checkpoints' / WEIGHTS_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(standin_state_dict(seed), path)
    return path


@functools.lru_cache(maxsize=None)
def standin_torch_home():
    """A TORCH_HOME holding the stand-in weights, built once per test process."""
    home = Path(tempfile.mkdtemp(prefix='standin_torch_home_'))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    write_standin_weights(home)
    return home


def use_standin_weights(monkeypatch):
    """Points TORCH_HOME at the stand-in weights for one test; returns the weights file."""
    home = standin_torch_home()
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home / 'hub' / 'checkpoints' / WEIGHTS_FILE_NAME


def write_random_pngs(folder, count, size=32, seed=0, brightness=0.0):
    """count smooth random RGB PNGs (upsampled 4x4 noise), shifted by brightness in [-1, 1]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        coarse = np.clip(rng.random((4, 4, 3)) + brightness, 0, 1)
        image = Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        image.save(folder / f'{index:03d}.png')
    return folder
