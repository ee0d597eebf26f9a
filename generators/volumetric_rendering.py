"""The original module path for the renderer's functions; they live in
camera_utils.py, ray_sampler.py and ray_marcher.py."""

from .camera_utils import (create_cam2world_matrix, normalize_vecs, sample_camera_positions,  # noqa: F401
                           truncated_normal_)
from .ray_marcher import fancy_integration  # noqa: F401
from .ray_sampler import get_initial_rays_trig, perturb_points, sample_pdf  # noqa: F401
