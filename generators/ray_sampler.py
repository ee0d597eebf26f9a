"""Ray generation and sampling along rays.

Shapes: B batch, R = H*W rays per image (row-major, top row first), S samples per ray.
"""

import math

import torch

from .camera_utils import look_at_origin, normalize_vecs, sample_camera_angles


def camera_ray_directions(fov, resolution, device='cpu'):
    """Unit ray directions in camera space, [R, 3]; the camera looks down -z.

    fov is the full field of view in degrees; pixel centres span [-1, 1] on the
    image plane, as in the original implementation.
    """
    width, height = resolution
    xs = torch.linspace(-1, 1, width, device=device)
    ys = torch.linspace(1, -1, height, device=device)
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    z = torch.full_like(x, -1 / math.tan(math.radians(fov) / 2))
    return normalize_vecs(torch.stack([x, y, z], -1).reshape(-1, 3))


def get_initial_rays_trig(n, num_steps, device, fov, resolution, ray_start, ray_end):
    """Camera-space samples: points [B, R, S, 3], z_vals [B, R, S, 1], directions [B, R, 3]."""
    directions = camera_ray_directions(fov, resolution, device)
    z_vals = torch.linspace(ray_start, ray_end, num_steps, device=device).reshape(1, num_steps, 1)
    points = directions.unsqueeze(1) * z_vals
    n_rays = directions.shape[0]
    return (points.expand(n, -1, -1, -1).contiguous(),
            z_vals.expand(n, n_rays, -1, -1).contiguous(),
            directions.expand(n, -1, -1).contiguous())


def perturb_points(points, z_vals, ray_directions, device=None):
    """Stratified jitter: moves each sample uniformly within its bin (+-half a step)."""
    step = z_vals[:, :, 1:2, :] - z_vals[:, :, 0:1, :]
    offset = (torch.rand(z_vals.shape, device=z_vals.device) - 0.5) * step
    return points + offset * ray_directions.unsqueeze(2), z_vals + offset


def sample_rays(batch_size, num_steps, fov, img_size, ray_start, ray_end, h_stddev, v_stddev,
                h_mean, v_mean, sample_dist, perturb=True, device='cpu'):
    """World-space samples for a batch of cameras drawn from `sample_dist`.

    Returns a dict with points [B, R, S, 3], z_vals [B, R, S, 1], ray_directions
    [B, R, 3], ray_origins [B, R, 3], pitch [B, 1], yaw [B, 1].
    """
    points, z_vals, directions = get_initial_rays_trig(
        batch_size, num_steps, device, fov, (img_size, img_size), ray_start, ray_end)
    if perturb and num_steps > 1:
        points, z_vals = perturb_points(points, z_vals, directions)

    pitch, yaw = sample_camera_angles(batch_size, h_stddev, v_stddev, h_mean, v_mean, sample_dist, device)
    cam2world = look_at_origin(pitch, yaw)
    rotation, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]

    world_points = torch.einsum('bij,brsj->brsi', rotation, points) + origin[:, None, None, :]
    world_directions = torch.einsum('bij,brj->bri', rotation, directions)
    return {
        'points': world_points,
        'z_vals': z_vals,
        'ray_directions': world_directions,
        'ray_origins': origin[:, None, :].expand_as(world_directions),
        'pitch': pitch,
        'yaw': yaw,
    }


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
