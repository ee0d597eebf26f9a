"""Inception features and logits of a list of image files, batched, with a progress bar."""

import numpy as np
import torch
from torchvision.transforms import ToTensor
from tqdm import tqdm

from datasets import ImageFiles

from .inception import FEATURE_DIM, NUM_CLASSES


def fid_images(files):
    """The files as a dataset of (image [3, H, W] in [0, 1], pose), each read as pytorch-fid reads it
    (PIL, alpha dropped, ToTensor), so the features are the same."""
    return ImageFiles(files, ToTensor(), composite_alpha=False)


def extract_features(files, inception, batch_size=50, num_workers=0, desc='inception features'):
    """(features [N, 2048], logits [N, 1008]) as float64 arrays, in the order of files.

    inception: a LoadedInception. float64 like pytorch-fid, so mean and covariance match it exactly.
    """
    loader = torch.utils.data.DataLoader(fid_images(files), batch_size=min(batch_size, len(files)),
                                         shuffle=False, drop_last=False, num_workers=num_workers)
    features = np.empty((len(files), FEATURE_DIM))
    logits = np.empty((len(files), NUM_CLASSES))
    start = 0
    with torch.no_grad(), tqdm(total=len(files), desc=desc, unit='img') as bar:
        for batch, _ in loader:
            batch_features, batch_logits = inception.network(batch.to(inception.device))
            end = start + len(batch)
            features[start:end] = batch_features.cpu().numpy()
            logits[start:end] = batch_logits.cpu().numpy()
            start = end
            bar.update(len(batch))
    return features, logits
