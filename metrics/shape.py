"""Shape accuracy: how far a sample's surface is from the nearest head of the synthetic family.

A sample's surface is its mesh (marching cubes of its surface_volume, as
shape_extraction.py does). It is compared with every head of a bank of true heads:

    accuracy      mean distance from the sample's vertices to the true surface
                  (|head_signed_distance|, closed form)
    completeness  mean distance from points spread over the true surface (one per
                  direction from the centre) to the sample's surface (points spread
                  over its triangles)

and the bank head with the smallest two-way distance (their mean) is its match. The
metric is the median over samples of the match's accuracy, completeness and two-way
distance, in world units (the heads are about 0.13 wide).
"""

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from tqdm import tqdm

import synthetic_dataset
from inference.meshing import extract_mesh

from .heads import SphereHeads

GRID_RESOLUTION = 48     # 5 mm steps: the floor and chance move by under 10% from 64
CUBE_SIZE = 0.24         # world units: a margin around the heads' 0.095 bounding radius
MAX_FACES = 40000        # faces kept per sample mesh (a random subset beyond that)
BANK_POINTS = 1000       # surface points per bank head
CANDIDATES = 8           # bank heads, best by the radial screen, that are scored exactly


def sample_mesh(heads, index, resolution=GRID_RESOLUTION, cube_size=CUBE_SIZE):
    """(vertices [V, 3], faces [F, 3]) of sample index's surface, or None where its field never
    crosses the surface level. Meshes with more than MAX_FACES faces (noise, floaters) keep a
    seeded random subset of faces."""
    volume, level = heads.surface_volume(index, resolution, cube_size)
    try:
        vertices, faces = extract_mesh(volume, level, cube_size)
    except ValueError:
        return None
    faces = torch.from_numpy(faces.astype(np.int64))
    if len(faces) > MAX_FACES:
        faces = faces[torch.randperm(len(faces), generator=torch.Generator().manual_seed(index))[:MAX_FACES]]
    return torch.from_numpy(vertices.copy()), faces


def densify(vertices, faces, order=4):
    """Points [F * (order + 1) * (order + 2) / 2, 3] on a barycentric lattice over every triangle,
    so nearest-point distances to them are close to distances to the surface itself."""
    weights = torch.tensor([(i, j, order - i - j) for i in range(order + 1) for j in range(order + 1 - i)],
                           dtype=vertices.dtype) / order                     # [K, 3]
    corners = vertices[faces]                                                 # [F, 3, 3]
    return torch.einsum('kc,fcd->fkd', weights, corners).reshape(-1, 3)


def fibonacci_directions(count):
    """count unit vectors [count, 3] spread evenly over the sphere."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    polar = torch.arccos(1 - 2 * i / count)
    azimuth = math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([polar.sin() * azimuth.cos(), polar.cos(), polar.sin() * azimuth.sin()], -1).float()


def radial_surface_points(head, directions, iterations=14):
    """Points [P, 3] on a head's surface, one along each direction from the origin (by bisection
    of head_signed_distance between the origin, inside, and the bounding radius, outside)."""
    low = torch.zeros(len(directions), 1)
    high = torch.full((len(directions), 1), synthetic_dataset.BOUNDING_RADIUS * 1.05)
    for _ in range(iterations):
        middle = (low + high) / 2
        inside = synthetic_dataset.head_signed_distance(middle * directions, head)[:, None] < 0
        low, high = torch.where(inside, middle, low), torch.where(inside, high, middle)
    return (low + high) / 2 * directions


class HeadBank:
    """True heads to match samples against, with points on each one's surface along fixed directions."""

    def __init__(self, heads, num_points=BANK_POINTS):
        self.params = list(heads)
        directions = fibonacci_directions(num_points)
        self.direction_tree = cKDTree(directions.numpy())
        self.points = [radial_surface_points(head, directions)
                       for head in tqdm(self.params, desc='true-head bank', unit='head', leave=False)]
        self.radii = torch.stack([points.norm(dim=-1) for points in self.points])  # [H, P]

    def screen(self, vertices):
        """[H] mean |radius difference| along the vertices' directions: a cheap stand-in for accuracy."""
        _, nearest = self.direction_tree.query(vertices.numpy())
        return (self.radii[:, torch.from_numpy(nearest)] - vertices.norm(dim=-1)).abs().mean(1)

    def match(self, mesh, screen_points=1000):
        """(accuracy, completeness, two-way) of a mesh (vertices [V, 3], faces [F, 3]) against the
        nearest bank head.

        A radial comparison screens the bank; the CANDIDATES best heads are then scored
        exactly. Completeness measures to points spread over the triangles, so the grid's
        spacing adds little to it.
        """
        vertices, faces = mesh
        tree = cKDTree(densify(vertices, faces).numpy())
        subset = vertices[torch.linspace(0, len(vertices) - 1, min(screen_points, len(vertices))).long()]
        best = None
        for index in self.screen(subset).argsort()[:CANDIDATES].tolist():
            accuracy = float(synthetic_dataset.head_signed_distance(vertices, self.params[index]).abs().mean())
            completeness = float(tree.query(self.points[index].numpy())[0].mean())
            scores = (accuracy, completeness, (accuracy + completeness) / 2)
            if best is None or scores[2] < best[2]:
                best = scores
        return best


def shape_distances(heads, indices, bank):
    """Per-sample (accuracy, completeness, two-way) [N, 3]; inf for samples without a surface."""
    rows = []
    for index in tqdm(indices, desc='shape: meshes', unit='sample', leave=False):
        mesh = sample_mesh(heads, index)
        rows.append((math.inf,) * 3 if mesh is None else bank.match(mesh))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def median_distances(distances, prefix='shape'):
    medians = np.median(distances, axis=0)
    return {f'{prefix}_accuracy': float(medians[0]), f'{prefix}_completeness': float(medians[1]),
            f'{prefix}_distance': float(medians[2])}


def best_sphere(bank, radii=np.arange(0.055, 0.0801, 0.0025)):
    """(radius, (accuracy, completeness, two-way)) of the sphere around the origin that matches the bank best."""
    scored = [(float(r), bank.match(sample_mesh(SphereHeads(float(r)), 0))) for r in radii]
    return min(scored, key=lambda item: item[1][2])
