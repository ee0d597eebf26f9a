"""Rays of given cameras, and samples along them.

Shapes: B cameras, R = H*W rays per image (row-major, top row first), S samples per ray.
"""

import torch

from .camera_utils import normalize_vecs


def camera_ray_directions(fov, resolution, device='cpu'):
    """Unit ray directions in camera space: [R, 3] for a number fov, [B, R, 3] for a tensor fov [B].

    fov: the full field of view in degrees (one per camera if a tensor); the camera
    looks down -z. Pixel centres span [-1, 1] on the image plane, as in the original.
    """
    width, height = resolution
    xs = torch.linspace(-1, 1, width, device=device)
    ys = torch.linspace(1, -1, height, device=device)
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    directions = directions_through(torch.stack([x, y], -1).reshape(1, -1, 2), fov)
    return directions if torch.is_tensor(fov) and fov.dim() > 0 else directions[0]


def directions_through(xy, fov):
    """Unit camera-space directions [B, R, 3] through image-plane points xy [B or 1, R, 2] (x right, y up,
    [-1, 1] from the centre of the first pixel to that of the last); fov in degrees, a number or a tensor [B]."""
    # The focal length in float64, as the original's math.tan, then float32.
    half_angle = torch.deg2rad(torch.as_tensor(fov, dtype=torch.float64, device=xy.device).reshape(-1, 1)) / 2
    batch = max(xy.shape[0], half_angle.shape[0])
    z = (-1 / torch.tan(half_angle)).float().expand(batch, xy.shape[1])
    return normalize_vecs(torch.cat([xy.expand(batch, -1, -1), z.unsqueeze(-1)], -1))


def rays_from_cameras(cam2world, fov, img_size, patch_grid=None):
    """The ray of every pixel of B cameras: origins and unit directions [B, R, 3], world space.

    cam2world [B, 4, 4] (differentiable); fov in degrees, a number or a tensor [B];
    rays in row-major pixel order, top row first. patch_grid [B, K, K, 2]: instead, the rays
    through these points of the img_size image (R = K * K), in F.grid_sample's convention
    (x right, y down; -1 and 1 are the centres of the corner pixels, where the rays above pass).
    """
    if patch_grid is None:
        directions = camera_ray_directions(fov, (img_size, img_size), cam2world.device)
    else:
        xy = patch_grid.flatten(1, 2) * patch_grid.new_tensor([1, -1])  # [B, K * K, 2], y up
        directions = directions_through(xy, fov)
    directions = directions.to(cam2world.dtype)
    rotation, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]
    directions = directions.expand(cam2world.shape[0], -1, -1)  # [R, 3] or [B, R, 3] -> [B, R, 3]
    world_directions = torch.einsum('bij,brj->bri', rotation, directions)
    return origin.unsqueeze(1).expand_as(world_directions), world_directions


def sample_depths(batch_size, n_rays, num_steps, ray_start, ray_end, perturb=True, device='cpu'):
    """Depths [B, R, S, 1] of num_steps samples per ray from ray_start to ray_end.

    perturb: stratified jitter, each sample moved uniformly within its bin (+-half a step).
    """
    z_vals = torch.linspace(ray_start, ray_end, num_steps, device=device).reshape(1, 1, num_steps, 1)
    z_vals = z_vals.expand(batch_size, n_rays, -1, -1).contiguous()
    if perturb and num_steps > 1:
        z_vals = z_vals + jitter(z_vals)
    return z_vals


def jitter(z_vals):
    """Offsets [B, R, S, 1], uniform within +-half the step between evenly spaced z_vals [B, R, S, 1]."""
    step = z_vals[:, :, 1:2, :] - z_vals[:, :, 0:1, :]
    return (torch.rand(z_vals.shape, device=z_vals.device) - 0.5) * step


def points_along_rays(ray_origins, ray_directions, z_vals):
    """Sample positions [B, R, S, 3] at depths z_vals [B, R, S, 1] along rays [B, R, 3]."""
    return ray_origins.unsqueeze(2) + ray_directions.unsqueeze(2) * z_vals


def get_initial_rays_trig(n, num_steps, device, fov, resolution, ray_start, ray_end):
    """The original's camera-space samples: points [B, R, S, 3], z_vals [B, R, S, 1], directions [B, R, 3]."""
    directions = camera_ray_directions(fov, resolution, device).expand(n, -1, -1).contiguous()
    z_vals = sample_depths(n, directions.shape[1], num_steps, ray_start, ray_end, perturb=False, device=device)
    return points_along_rays(torch.zeros_like(directions), directions, z_vals), z_vals, directions


def perturb_points(points, z_vals, ray_directions, device=None):
    """The original's stratified jitter of the samples of get_initial_rays_trig."""
    offset = jitter(z_vals)
    return points + offset * ray_directions.unsqueeze(2), z_vals + offset


def sample_pdf(bins, weights, N_importance, det=False, eps=1e-5):
    """Inverse-transform sampling of a piecewise-constant pdf.

    bins [N, K+1] are bin edges, weights [N, K] the unnormalised bin masses;
    returns N_importance samples per row, [N, N_importance].
    """
    n_rows, n_bins = weights.shape
    pdf = (weights + eps) / torch.sum(weights + eps, -1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)

    if det:
        u = torch.linspace(0, 1, N_importance, device=bins.device).expand(n_rows, N_importance)
    else:
        u = torch.rand(n_rows, N_importance, device=bins.device)
    u = u.contiguous()

    upper = torch.searchsorted(cdf, u)
    below = (upper - 1).clamp_min(0)
    above = upper.clamp_max(n_bins)
    edges = torch.stack([below, above], -1).view(n_rows, 2 * N_importance)
    cdf_pair = torch.gather(cdf, 1, edges).view(n_rows, N_importance, 2)
    bin_pair = torch.gather(bins, 1, edges).view(n_rows, N_importance, 2)

    denom = cdf_pair[..., 1] - cdf_pair[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)  # empty bins are never drawn
    t = (u - cdf_pair[..., 0]) / denom
    return bin_pair[..., 0] + t * (bin_pair[..., 1] - bin_pair[..., 0])


def importance_sample(z_vals, weights, num_samples):
    """Fine sample depths [B, R, num_samples, 1] drawn from coarse weights [B, R, S, 1].

    As in pi-GAN/NeRF: bins are the midpoints between coarse samples and the first
    and last weights are dropped.
    """
    batch, rays, steps, _ = z_vals.shape
    z = z_vals.reshape(batch * rays, steps)
    w = weights.reshape(batch * rays, steps) + 1e-5
    mids = 0.5 * (z[:, :-1] + z[:, 1:])
    fine = sample_pdf(mids, w[:, 1:-1], num_samples, det=False)
    return fine.reshape(batch, rays, num_samples, 1)
