"""The synthetic 3D heads: random head parameters, ray tracing, known signed distance.

Each head is a union of convex primitives centred near the origin:
    head   an ellipsoid
    hair   a slightly larger ellipsoid cut by a tilted plane (a cap over the top and back)
    eyes   two spheres sitting on the face
    nose   a small ellipsoid sticking out of the face (+z is the front)
Everything stays inside radius ~0.095, so the demo camera (distance 1, fov 12 deg,
rays from 0.88 to 1.12) always sees the whole head. Images are ray traced with
closed-form intersections and Lambertian shading under a light fixed in the world
(so colour does not depend on the view), using the generator's own camera model.
"""

import math

import numpy as np
import torch

from generators.camera_utils import look_at_origin
from generators.ray_sampler import camera_ray_directions

# Part ids in the `part` buffer; primitives are traced in this order. The left eye
# is the one on the image's left in a frontal view (at -x).
BACKGROUND, HEAD, HAIR, LEFT_EYE, RIGHT_EYE, NOSE = range(6)
PART_NAMES = ('background', 'head', 'hair', 'left_eye', 'right_eye', 'nose')

AMBIENT, DIFFUSE = 0.35, 0.65
# 'grey': each image on its own flat light grey (0.82..0.95); 'white': every image on pure
# white, which a generator with white_back draws as empty space (as π-GAN's CARLA setup).
BACKGROUNDS = ('grey', 'white')
BOUNDING_RADIUS = 0.095  # no head point is farther from the origin (checked by tests)


# --- parameters ----------------------------------------------------------------------

def sample_head_params(num, rng, background='grey'):
    """`num` random heads as JSON-friendly dicts; rng is a numpy Generator."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")

    def u(low, high, size=None):
        return rng.uniform(low, high, size)

    heads = []
    for _ in range(num):
        skin_tone = u(0, 1)
        skin = (1 - skin_tone) * np.array([0.96, 0.80, 0.69]) + skin_tone * np.array([0.42, 0.28, 0.20])
        skin = np.clip(skin + u(-0.04, 0.04, 3), 0, 1)
        hair_tone = u(0, 1)
        hair = (1 - hair_tone) * np.array([0.08, 0.06, 0.05]) + hair_tone * np.array([0.85, 0.68, 0.38])
        hair = np.clip(hair * u(0.85, 1.15, 3), 0, 1)  # slight tints for variety
        light = np.array([u(-0.5, 0.5), u(0.2, 0.7), 1.0])
        heads.append({
            'head_radii': [u(0.056, 0.066), u(0.068, 0.078), u(0.060, 0.070)],
            'hair_scale': u(1.05, 1.12),
            'hair_tilt': u(0.35, 0.85),      # plane tilt from horizontal towards the back, radians
            'hairline': u(0.45, 0.80),       # elevation of the hairline on the forehead, radians
            'eye_radius': u(0.0075, 0.011),
            'eye_azimuth': u(0.30, 0.45),    # angle of each eye from the front, radians
            'eye_elevation': u(0.05, 0.22),
            'nose_radii': [u(0.008, 0.012), u(0.010, 0.016), u(0.012, 0.020)],
            'nose_elevation': u(-0.25, -0.10),
            # poses.json stores these params: the *_color keys are its file format, spelled as written
            'skin_color': skin.tolist(),
            'hair_color': hair.tolist(),
            'eye_color': u(0.03, 0.30, 3).tolist(),
            'nose_color': np.clip(skin * np.array([1.0, 0.88, 0.86]), 0, 1).tolist(),
            'background': [u(0.82, 0.95)] * 3,
            'light_dir': (light / np.linalg.norm(light)).tolist(),
        })
        if background == 'white':  # the grey is still drawn, so the heads match the grey set's
            heads[-1]['background'] = [1.0] * 3
    return [{k: (float(v) if np.isscalar(v) else [float(x) for x in v]) for k, v in h.items()} for h in heads]


def _on_ellipsoid(radii, azimuth, elevation):
    """Surface point of an origin-centred ellipsoid; azimuth is measured from +z towards +x."""
    rx, ry, rz = radii
    return [rx * math.sin(azimuth) * math.cos(elevation), ry * math.sin(elevation),
            rz * math.cos(azimuth) * math.cos(elevation)]


def head_primitives(head):
    """Centres, radii and the hair plane of one head, all plain floats.

    Computed with Python's math per head (not batched torch) so a head's geometry is
    bit-identical however many heads are rendered together.
    """
    radii = list(head['head_radii'])
    eye_r = head['eye_radius']
    left_eye = _on_ellipsoid(radii, -head['eye_azimuth'], head['eye_elevation'])
    right_eye = _on_ellipsoid(radii, head['eye_azimuth'], head['eye_elevation'])
    nose = _on_ellipsoid(radii, 0.0, head['nose_elevation'])
    # Hair is the part of the scaled ellipsoid with dot(plane_normal, p) > plane_offset;
    # the plane passes through the hairline point on the forehead.
    tilt = head['hair_tilt']
    plane_normal = [0.0, math.cos(tilt), -math.sin(tilt)]
    hairline = _on_ellipsoid(radii, 0.0, head['hairline'])
    plane_offset = plane_normal[1] * hairline[1] + plane_normal[2] * hairline[2]
    return {
        'centers': [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], left_eye, right_eye, nose],
        'radii': [radii, [r * head['hair_scale'] for r in radii], [eye_r] * 3, [eye_r] * 3,
                  list(head['nose_radii'])],
        'plane_normal': plane_normal,
        'plane_offset': plane_offset,
        'colours': [head['background'], head['skin_color'], head['hair_color'], head['eye_color'],
                   head['eye_color'], head['nose_color']],
    }


def _as_head_list(params):
    return [params] if isinstance(params, dict) else list(params)


# --- ray tracing ----------------------------------------------------------------------

def _ellipsoid_interval(origin, direction, center, radii, need_exit=True):
    """Entry/exit distances of rays with an axis-aligned ellipsoid (inf, -inf where missed).

    origin, center, radii: per-image lists of 3 tensors [N, 1]; direction: 3 tensors [N, P].
    """
    o = [(origin[i] - center[i]) / radii[i] for i in range(3)]
    d = [direction[i] / radii[i] for i in range(3)]
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1
    disc = b * b - a * c
    root = torch.sqrt(disc.clamp_min(0))
    missed = disc <= 0
    inf = torch.full_like(a, math.inf)
    enter = torch.where(missed, inf, (-b - root) / a)
    leave = torch.where(missed, -inf, (-b + root) / a) if need_exit else None
    return enter, leave


def _camera_rotations(pitch, yaw):
    """cam2world rotation [N, 3, 3] and origin [N, 3], one camera at a time.

    look_at_origin is called per image because batched trig can differ in the last
    bit from single-element trig, and stored images must re-render exactly.
    """
    mats = torch.cat([look_at_origin(p.reshape(1, 1), y.reshape(1, 1)) for p, y in zip(pitch, yaw)])
    return mats[:, :3, :3], mats[:, :3, 3]


def _supersample_directions(fov, img_size, supersample):
    """Camera-space ray directions on a grid `supersample` times finer than the image's.

    Sub-pixel centres are spread evenly around each pixel centre of
    camera_ray_directions(fov, img_size), so box-filtering them back gives exactly the
    generator's pixel grid. That finer grid is itself a camera_ray_directions grid with
    a slightly wider fov.
    """
    if supersample == 1:
        return camera_ray_directions(fov, (img_size, img_size))
    fine = img_size * supersample
    pixel = 2 / (img_size - 1)
    half_extent = 1 + pixel / 2 - pixel / (2 * supersample)
    wide_fov = math.degrees(2 * math.atan(half_extent * math.tan(math.radians(fov) / 2)))
    return camera_ray_directions(wide_fov, (fine, fine))


def _box_downsample(x, factor):
    """Mean over factor x factor blocks of the last two dims, as explicit sums (deterministic)."""
    if factor == 1:
        return x
    total = 0
    for i in range(factor):
        for j in range(factor):
            total = total + x[..., i::factor, j::factor]
    return total / (factor * factor)


def _trace(heads, pitch, yaw, directions):
    """Nearest hits of the camera rays: part id, distance, hit point, normal, per image."""
    n = len(heads)
    prims = [head_primitives(h) for h in heads]

    def per_image(values):
        """Per-image scalars -> tensor [N, 1]."""
        return torch.tensor(values, dtype=torch.float32).reshape(n, 1)

    def vec3(getter):
        return [per_image([getter(p)[i] for p in prims]) for i in range(3)]

    rotation, origin3 = _camera_rotations(pitch.reshape(-1), yaw.reshape(-1))
    cam = [d.reshape(1, -1) for d in directions.unbind(-1)]
    # world direction = R @ camera direction, written out to keep the summation order fixed
    direction = [rotation[:, i, 0:1] * cam[0] + rotation[:, i, 1:2] * cam[1] + rotation[:, i, 2:3] * cam[2]
                 for i in range(3)]
    origin = [origin3[:, i:i + 1] for i in range(3)]

    best_t = torch.full_like(direction[0], math.inf)
    part = torch.zeros(best_t.shape, dtype=torch.long)
    on_hair_cut = torch.zeros(best_t.shape, dtype=torch.bool)
    for index, part_id in enumerate((HEAD, HAIR, LEFT_EYE, RIGHT_EYE, NOSE)):
        center = vec3(lambda p: p['centers'][index])
        radii = vec3(lambda p: p['radii'][index])
        enter, leave = _ellipsoid_interval(origin, direction, center, radii, need_exit=part_id == HAIR)
        cut = None
        if part_id == HAIR:
            # Clip the ellipsoid's interval to the half-space above the hair plane.
            normal = vec3(lambda p: p['plane_normal'])
            offset = per_image([p['plane_offset'] for p in prims])
            facing = normal[1] * direction[1] + normal[2] * direction[2]
            height = normal[0] * origin[0] + normal[1] * origin[1] + normal[2] * origin[2]
            crossing = (offset - height) / facing
            cut = (facing > 0) & (crossing > enter)
            enter = torch.where(cut, crossing, enter)
            leave = torch.where(facing < 0, torch.minimum(leave, crossing), leave)
            parallel_outside = (facing == 0) & (height <= offset)
            enter = torch.where((enter >= leave) | parallel_outside, math.inf, enter)
        closer = (enter > 0) & (enter < best_t)
        best_t = torch.where(closer, enter, best_t)
        part = torch.where(closer, part_id, part)
        on_hair_cut = torch.where(closer, cut if cut is not None else False, on_hair_cut)

    hit = part != BACKGROUND
    t = torch.where(hit, best_t, 0.0)
    point = [origin[i] + t * direction[i] for i in range(3)]

    # Ellipsoid normal at p is (p - c) / r^2; gather c and r of the part each ray hit.
    table_c = torch.tensor([[[0.0] * 3] + p['centers'] for p in prims])    # [N, 6, 3]
    table_r = torch.tensor([[[1.0] * 3] + p['radii'] for p in prims])
    normal = []
    for i in range(3):
        c = torch.gather(table_c[:, :, i], 1, part)
        r = torch.gather(table_r[:, :, i], 1, part)
        normal.append((point[i] - c) / (r * r))
    plane = vec3(lambda p: p['plane_normal'])
    normal = [torch.where(on_hair_cut, -plane[i], normal[i]) for i in range(3)]  # cut face points down
    length = torch.sqrt(normal[0] * normal[0] + normal[1] * normal[1] + normal[2] * normal[2]).clamp_min(1e-12)
    normal = [x / length for x in normal]
    return {'part': part, 'hit': hit, 'depth': torch.where(hit, best_t, math.inf),
            'point': point, 'normal': normal, 'prims': prims}


def render_heads(params, pitch, yaw, img_size, fov, supersample=2, return_buffers=False):
    """Ray traces heads seen from cameras at (pitch, yaw) looking at the origin.

    params: one head dict or a list of N of them (as from sample_head_params);
    pitch, yaw: N angles in radians (tensors of any shape with N elements, or lists).
    Returns images [N, 3, S, S] in [0, 1]. With return_buffers, also a dict of
    full-resolution (S * supersample) buffers: 'part' [N, H, W] part ids, 'depth'
    [N, H, W] distance along each ray (inf on the background), 'points' [N, H, W, 3]
    world hit points, and 'mask' [N, 1, S, S] the covered fraction of each pixel.
    """
    heads = _as_head_list(params)
    n = len(heads)
    pitch = torch.as_tensor(pitch, dtype=torch.float32).reshape(n)
    yaw = torch.as_tensor(yaw, dtype=torch.float32).reshape(n)
    fine = img_size * supersample
    directions = _supersample_directions(fov, img_size, supersample)
    traced = _trace(heads, pitch, yaw, directions)

    light = torch.tensor([h['light_dir'] for h in heads], dtype=torch.float32)
    n_dot_l = (traced['normal'][0] * light[:, 0:1] + traced['normal'][1] * light[:, 1:2]
               + traced['normal'][2] * light[:, 2:3])
    shade = torch.where(traced['hit'], AMBIENT + DIFFUSE * n_dot_l.clamp_min(0), 1.0)
    colours = torch.tensor([p['colours'] for p in traced['prims']], dtype=torch.float32)  # [N, 6, 3]
    channels = [torch.gather(colours[:, :, c], 1, traced['part']) * shade for c in range(3)]
    fine_image = torch.stack(channels, 1).reshape(n, 3, fine, fine).clamp(0, 1)
    images = _box_downsample(fine_image, supersample)
    if not return_buffers:
        return images
    hit = traced['hit'].reshape(n, 1, fine, fine).float()
    buffers = {
        'part': traced['part'].reshape(n, fine, fine),
        'depth': traced['depth'].reshape(n, fine, fine),
        'points': torch.stack(traced['point'], -1).reshape(n, fine, fine, 3),
        'mask': _box_downsample(hit, supersample),
    }
    return images, buffers


# --- known geometry -------------------------------------------------------------------

def _ellipsoid_distance(points, center, radii):
    """Approximate signed distance to an ellipsoid, with the exact sign.

    k0 (k0 - 1) / k1 (the level-set value over its gradient) is accurate near the
    surface but tends to 0 at the centre; deep inside, (k0 - 1) * min(radii) (the unit
    sphere's distance, scaled) takes over.
    """
    p = points - torch.as_tensor(center, dtype=points.dtype)
    r = torch.as_tensor(radii, dtype=points.dtype)
    k0 = torch.linalg.norm(p / r, dim=-1)
    k1 = torch.linalg.norm(p / (r * r), dim=-1).clamp_min(1e-12)
    near_surface = k0 * (k0 - 1) / k1
    deep_inside = (k0 - 1) * r.min()
    return torch.where(k0 < 1, torch.minimum(near_surface, deep_inside), near_surface)


def head_signed_distance(points, head):
    """Approximate signed distance [N] from points [N, 3] to one head's surface.

    Negative inside, positive outside, zero on the surface (the union of the
    primitives); near the surface the magnitude is close to the true distance, except
    near the creases where two parts meet.
    """
    points = torch.as_tensor(points)
    if not points.is_floating_point():
        points = points.float()
    prims = head_primitives(head)
    distances = []
    for index, part_id in enumerate((HEAD, HAIR, LEFT_EYE, RIGHT_EYE, NOSE)):
        d = _ellipsoid_distance(points, prims['centers'][index], prims['radii'][index])
        if part_id == HAIR:
            normal = torch.as_tensor(prims['plane_normal'], dtype=points.dtype)
            d = torch.maximum(d, prims['plane_offset'] - points @ normal)  # intersection with half-space
        distances.append(d)
    return torch.stack(distances).amin(0)
