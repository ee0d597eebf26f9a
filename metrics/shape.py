"""Shape accuracy: how far a sample's surface is from the nearest head of the synthetic family.

A sample's surface is its mesh (marching cubes of its surface_volume, as
shape_extraction.py does). It is compared with every head of a bank of true heads:

    accuracy      mean distance from the sample's vertices to the true surface
                  (|head_signed_distance|, closed form)
    completeness  mean distance from points spread over the true surface (one per
                  direction from the centre) to the sample's vertices

and the bank head with the smallest two-way distance (their mean) is its match. The
metric is the median over samples of the match's accuracy, completeness and two-way
distance, in world units (the heads are about 0.13 wide).
"""

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

import synthetic_dataset
from inference.meshing import extract_mesh

from .heads import SphereHeads

GRID_RESOLUTION = 64
CUBE_SIZE = 0.24          # world units: a margin around the heads' 0.095 bounding radius
MAX_FACES = 40000          # faces kept per sample mesh (a random subset beyond that)
BANK_POINTS = 1000         # surface points per bank head
CANDIDATES = 8             # bank heads, nearest by accuracy, whose completeness is computed


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


def densify(vertices, faces):
    """The vertices, edge midpoints and face centres [P, 3] of a triangle mesh (with repeats)."""
    corners = vertices[faces]                        # [F, 3, 3]
    midpoints = (corners + corners.roll(1, dims=1)) / 2
    return torch.cat([vertices, midpoints.reshape(-1, 3), corners.mean(1)])


def fibonacci_directions(count):
    """count unit vectors [count, 3] spread evenly over the sphere."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    polar = torch.arccos(1 - 2 * i / count)
    azimuth = math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([polar.sin() * azimuth.cos(), polar.cos(), polar.sin() * azimuth.sin()], -1).float()


def radial_surface_points(head, directions, iterations=16):
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
    """True heads to match samples against, with points on each one's surface (found when first needed)."""

    def __init__(self, heads, num_points=BANK_POINTS):
        self.params = list(heads)
        self.directions = fibonacci_directions(num_points)
        self._points = {}

    def points(self, index):
        if index not in self._points:
            self._points[index] = radial_surface_points(self.params[index], self.directions)
        return self._points[index]

    def match(self, mesh, screen_points=1000):
        """(accuracy, completeness, two-way) of a mesh (vertices [V, 3], faces [F, 3]) against the
        nearest bank head.

        Accuracy on a subset of the vertices screens the bank; the CANDIDATES best heads
        are then scored on all vertices. Completeness measures to the vertices, the edge
        midpoints and the face centres, so the grid's spacing adds less to it.
        """
        vertices, faces = mesh
        tree = cKDTree(densify(vertices, faces).numpy())
        subset = vertices[torch.linspace(0, len(vertices) - 1, min(screen_points, len(vertices))).long()]
        screen = torch.stack([synthetic_dataset.head_signed_distance(subset, head).abs().mean()
                              for head in self.params])
        best = None
        for index in screen.argsort()[:CANDIDATES].tolist():
            accuracy = float(synthetic_dataset.head_signed_distance(vertices, self.params[index]).abs().mean())
            completeness = float(tree.query(self.points(index).numpy())[0].mean())
            scores = (accuracy, completeness, (accuracy + completeness) / 2)
            if best is None or scores[2] < best[2]:
                best = scores
        return best


def shape_distances(heads, indices, bank):
    """Per-sample (accuracy, completeness, two-way) [N, 3]; inf for samples without a surface."""
    rows = []
    for index in indices:
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
