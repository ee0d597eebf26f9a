"""Image-quality metrics: FID, KID and Inception Score on pytorch-fid's Inception network.

    inception.py        the network (pool features + logits in one pass) and its weights
    image_files.py      image folders checked (missing, empty), measured and fingerprinted
    features.py         batched feature extraction, images read the way pytorch-fid reads them
    fid.py, kid.py, inception_score.py   the metrics, from features or logits
    real_stats.py       cached statistics of a real-image folder
    registry.py         metric names -> functions
    geometry.py         3D-quality metrics on the synthetic heads (pose, pose_fd, shape,
                        mv_consistency), over heads.py, pose_regressor.py, pose.py,
                        shape.py and multiview.py
    inversion.py        the inversion benchmark: held-out heads' photos inverted, scored in 3D
    generate.py         rendering a generator's evaluation images
    real_images.py      a dataset's real-image folder, written once
    folder_metrics.py   all of it for a generated folder against a real one

eval_metrics.py and training (training/evaluation.py) evaluate any registered metric by name
through the same calls: generate.output_images and folder_metrics for the image metrics,
geometry.geometry_metrics for those that render the generator themselves.
"""

from .folder_metrics import calculate_fid, folder_metrics
from .image_files import ImageFolderError
from .inception import InceptionWeightsError, load_inception
from .registry import (GeneratorInputs, MetricInputs, calc_metric, is_valid_metric, list_metrics, metric_inputs,
                       parse_metric_names, split_metrics)
from . import geometry, inversion  # noqa: E402,F401  registers the geometry metrics and the inversion benchmark

__all__ = ['calculate_fid', 'folder_metrics', 'ImageFolderError', 'InceptionWeightsError', 'load_inception',
           'calc_metric', 'is_valid_metric', 'list_metrics', 'metric_inputs', 'parse_metric_names', 'split_metrics',
           'MetricInputs', 'GeneratorInputs']
