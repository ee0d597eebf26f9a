"""Shapes from a generator: density volumes (.mrc) and coloured meshes (.ply/.obj).

Volumes are indexed [z, y, x] (the MRC convention: sections, rows, columns)
over a cube of side cube_size centred on the origin, in world coordinates.
"""

from pathlib import Path

import mrcfile
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from generators.camera_utils import normalize_vecs
from utils.files import atomic_path


def grid_axis(resolution, cube_size):
    """World coordinates of the grid's samples along each axis."""
    return torch.linspace(-cube_size / 2, cube_size / 2, resolution)


def grid_points(resolution, cube_size):
    """World points [resolution^3, 3] (x, y, z) of the grid, in the [z, y, x] order of the volumes."""
    axis = grid_axis(resolution, cube_size)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing='ij')
    return torch.stack([x, y, z], -1).reshape(-1, 3)


def query_siren(generator, latent, points, view_directions, max_batch_size, progress=None):
    """SIREN outputs [N, 4] (rgb in [0, 1], raw sigma) at points [N, 3] seen along view_directions [N, 3].

    Through generator.evaluate_siren, as rendering does (fast path included), max_batch_size
    points per call; the results are gathered on the CPU.
    """
    device = generator.device
    outputs = []
    with torch.no_grad():
        for start in range(0, points.shape[0], max_batch_size):
            chunk = slice(start, start + max_batch_size)
            # Each point is a ray of one sample: points [1, n, 1, 3], directions [1, n, 3].
            out = generator.evaluate_siren(points[None, chunk, None].to(device),
                                           view_directions[None, chunk].to(device),
                                           latent.frequencies, latent.phase_shifts)
            outputs.append(out[0, :, 0].cpu())
            if progress is not None:
                progress.update(outputs[-1].shape[0])
    return torch.cat(outputs)


def density_function(generator, latent, max_batch_size, progress=None):
    """points [N, 3] -> density [N] (relu of the SIREN's sigma, as rendering clamps it)."""
    def density(points):
        # Density does not depend on the view direction; any unit vector will do.
        directions = torch.tensor([0.0, 0.0, -1.0]).expand_as(points)
        return F.relu(query_siren(generator, latent, points, directions, max_batch_size, progress)[:, 3])
    return density


def density_grid(generator, latent, resolution=256, cube_size=0.3, max_batch_size=2400000, progress=True):
    """Density (relu of the SIREN's sigma, as rendering clamps it) on a resolution^3 grid, float32 [z, y, x]."""
    points = grid_points(resolution, cube_size)
    with tqdm(total=points.shape[0], desc='density', unit='pt', unit_scale=True, leave=False,
              disable=not progress) as bar:
        density = density_function(generator, latent, max_batch_size, bar)(points)
    return density.reshape(resolution, resolution, resolution).numpy().astype(np.float32)


def save_mrc(volume, path):
    """float32 volume [z, y, x] as an MRC2014 file (voxel size 1: one unit per grid step), written atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, mrcfile.new(temporary) as mrc:
        mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
        mrc.voxel_size = 1.0


def extract_mesh(volume, level, cube_size):
    """Marching cubes on a [z, y, x] volume: vertices [V, 3] (x, y, z world coordinates), faces [F, 3].

    Raises ValueError when the volume never crosses level.
    """
    from skimage.measure import marching_cubes

    if not volume.min() < level < volume.max():
        raise ValueError(f"the density never crosses the mesh level {level} (it spans {volume.min():.3g} to "
                         f"{volume.max():.3g}); pick a level inside that range")
    spacing = cube_size / (volume.shape[0] - 1)
    vertices, faces, _, _ = marching_cubes(volume, level, spacing=(spacing,) * 3)
    # skimage answers in (z, y, x) with faces wound inwards for a density that is high inside;
    # reversing the axes to (x, y, z) mirrors the mesh, which turns them outwards.
    vertices = vertices[:, ::-1] - cube_size / 2
    return np.ascontiguousarray(vertices, dtype=np.float32), faces


def refine_vertices(vertices, density, level, cube_size, resolution, steps=8):
    """Marching cubes' vertices [V, 3] moved to where density crosses level on their grid edge.

    Marching cubes places a vertex by interpolating linearly between the two grid samples of its
    edge. A trained generator's density rises from 0 to far above the level within one voxel, so
    every vertex lands at about the same fraction of its edge and the surface comes out terraced,
    as a true head's sharp density does. `steps` bisections of the edge with density itself
    (points [N, 3] -> [N], as density_function), then one linear step, place each vertex within
    1/2^steps of a voxel of the crossing.
    """
    spacing = cube_size / (resolution - 1)
    grid = (torch.from_numpy(np.asarray(vertices, np.float64)) + cube_size / 2) / spacing  # [V, 3] in voxels
    off_grid = (grid - grid.round()).abs()
    axis = off_grid.argmax(1)  # the edge's direction: the one coordinate between two grid samples
    on_edge = off_grid.max(1).values > 1e-6  # a vertex on a grid sample is exact already
    low = grid.round()
    low[torch.arange(len(grid)), axis] = grid[torch.arange(len(grid)), axis].floor()
    high = low.clone()
    high[torch.arange(len(grid)), axis] += 1
    ends = [(corner * spacing - cube_size / 2).float()[on_edge] for corner in (low, high)]
    values = [density(end) for end in ends]
    low_inside = values[0] >= level
    inside = torch.where(low_inside[:, None], ends[0], ends[1])
    outside = torch.where(low_inside[:, None], ends[1], ends[0])
    inside_value = torch.where(low_inside, values[0], values[1])
    outside_value = torch.where(low_inside, values[1], values[0])
    for _ in range(steps):
        middle = (inside + outside) / 2
        value = density(middle)
        is_inside = value >= level
        inside = torch.where(is_inside[:, None], middle, inside)
        outside = torch.where(is_inside[:, None], outside, middle)
        inside_value = torch.where(is_inside, value, inside_value)
        outside_value = torch.where(is_inside, outside_value, value)
    fraction = ((inside_value - level) / (inside_value - outside_value).clamp_min(1e-12)).clamp(0, 1)
    refined = np.array(vertices, dtype=np.float32, copy=True)
    refined[on_edge.numpy()] = (inside + fraction[:, None] * (outside - inside)).numpy()
    return refined


def largest_parts(vertices, faces, keep=1):
    """The `keep` largest connected pieces of a mesh, by face count: (vertices [V', 3], faces [F', 3], share of
    the faces dropped). keep 0 keeps every piece.

    A trained generator's density often holds small separate blobs, floaters in the air and pockets inside
    the head, that no camera sees; on run 9's samples they carried a third of the shape metric's accuracy.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = np.asarray(faces)
    if keep <= 0 or len(faces) == 0:
        return vertices, faces, 0.0
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2)
    _, vertex_part = connected_components(graph, directed=False)
    face_part = vertex_part[faces[:, 0]]
    kept_parts = np.argsort(-np.bincount(face_part), kind='stable')[:keep]
    kept_faces = faces[np.isin(face_part, kept_parts)]
    used = np.unique(kept_faces)
    new_index = np.full(len(vertices), -1, np.int64)
    new_index[used] = np.arange(len(used))
    return vertices[used], new_index[kept_faces], 1 - len(kept_faces) / len(faces)


def generator_mesh(generator, latent, volume, level, cube_size, max_batch_size, refine_steps=8, keep_parts=0):
    """The surface at level of a generator's density volume (density_grid's): (vertices [V, 3], faces [F, 3],
    share of the faces dropped), with each vertex refined on the generator's own density (refine_vertices; 0 steps: plain marching cubes),
    cut to its keep_parts largest pieces (largest_parts; 0: all). Raises ValueError when the volume never
    crosses level."""
    vertices, faces = extract_mesh(volume, level, cube_size)
    vertices, faces, dropped = largest_parts(vertices, faces, keep_parts)
    if refine_steps:
        vertices = refine_vertices(vertices, density_function(generator, latent, max_batch_size), level,
                                   cube_size, volume.shape[0], refine_steps)
    return vertices, faces, dropped


def vertex_colours(generator, latent, vertices, camera, max_batch_size, lock_view_dependence=False):
    """uint8 RGBA [V, 4]: the generator's colour at each vertex, seen along a ray from camera (Cameras of one)."""
    points = torch.from_numpy(np.ascontiguousarray(vertices)).float()
    if lock_view_dependence:
        directions = torch.tensor([0.0, 0.0, -1.0]).expand_as(points)
    else:
        directions = normalize_vecs(points - camera.cam2world()[:, :3, 3])
    rgb = query_siren(generator, latent, points, directions, max_batch_size)[:, :3]
    rgba = torch.cat([rgb, torch.ones_like(rgb[:, :1])], -1)
    return (rgba.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def save_mesh(vertices, faces, colours, path):
    """A vertex-coloured mesh as .ply or .obj (by the file's suffix), written atomically."""
    import trimesh

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=colours, process=False)
    with atomic_path(path) as temporary:
        mesh.export(temporary, file_type=Path(path).suffix[1:].lower())
    return mesh
