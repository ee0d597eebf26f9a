"""Shape accuracy and coverage: how close samples' surfaces are to heads of the synthetic family.

A sample's surface is its mesh (marching cubes of its surface_volume, as
shape_extraction.py does). It is compared with a true head by

    accuracy      mean distance from the sample's vertices to the true surface
                  (|head_signed_distance|, closed form)
    completeness  mean distance from points spread over the true surface (one per
                  direction from the centre) to the sample's surface (points spread
                  over its triangles)

and their mean, the two-way distance. Against a bank of true heads, the bank head with
the smallest two-way distance is a sample's match; shape_distance etc. are the medians
over samples of the match's values, in world units (the heads are about 0.13 wide).

Coverage (COV, as in 3D shape generation): against a set of reference heads as large as
the set of samples, the share of references that are the nearest (two-way, found as the
bank match is) of some sample. Other true heads cover about 0.5 to 0.7 of them (1 - 1/e
if each picked one at random); a generator that makes one head for every sample covers 1/n.
"""

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from tqdm import tqdm

from inference.meshing import extract_mesh, largest_parts
from synthetic import heads as synthetic_heads

from .heads import SphereHeads

GRID_RESOLUTION = 48     # 5 mm steps: the floor and chance move by under 10% from 64
CUBE_SIZE = 0.24         # world units: a margin around the heads' 0.095 bounding radius
MAX_FACES = 40000        # faces kept per sample mesh (a random subset beyond that)
BANK_POINTS = 1000       # surface points per bank head
KEEP_PARTS = 0           # every piece of a sample's mesh is scored; bench/shape_pieces.py sets 1 to see the floaters' share
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
    vertices, faces, _ = largest_parts(vertices, faces, KEEP_PARTS)
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
    high = torch.full((len(directions), 1), synthetic_heads.BOUNDING_RADIUS * 1.05)
    for _ in range(iterations):
        middle = (low + high) / 2
        inside = synthetic_heads.head_signed_distance(middle * directions, head)[:, None] < 0
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

    def scores(self, surface, indices):
        """(accuracy, completeness, two-way) [len(indices), 3] of a Surface against the bank heads
        at indices. Completeness measures to points spread over the triangles, so the grid's
        spacing adds little to it."""
        accuracy = [float(synthetic_heads.head_signed_distance(surface.vertices, self.params[i]).abs().mean())
                    for i in indices]
        targets = torch.cat([self.points[i] for i in indices]).numpy()
        completeness = surface.tree.query(targets)[0].reshape(len(indices), -1).mean(1)
        rows = np.stack([np.array(accuracy), completeness], 1)
        return np.concatenate([rows, rows.mean(1, keepdims=True)], 1)

    def nearest(self, surface, screen_points=1000):
        """(index, (accuracy, completeness, two-way)) of the bank head nearest to a Surface: a radial
        comparison screens the bank, and the CANDIDATES best heads are scored exactly."""
        vertices = surface.vertices
        subset = vertices[torch.linspace(0, len(vertices) - 1, min(screen_points, len(vertices))).long()]
        candidates = self.screen(subset).argsort()[:CANDIDATES].tolist()
        scores = self.scores(surface, candidates)
        best = int(scores[:, 2].argmin())
        return candidates[best], tuple(float(v) for v in scores[best])

    def match(self, surface):
        """(accuracy, completeness, two-way) of a Surface against the nearest bank head."""
        return self.nearest(surface)[1]


class Surface:
    """A mesh made ready for distances once: its vertices [V, 3] and a KD tree of points spread
    over its triangles (faces [F, 3])."""

    def __init__(self, vertices, faces):
        self.vertices = vertices
        self.tree = cKDTree(densify(vertices, faces).numpy())


def shape_distances(heads, indices, bank, references=None, compared=0):
    """Each sample meshed once (a generator's mesh and tree can be large: one at a time).

    Returns (matches [N, 3]: accuracy, completeness and two-way distance to each sample's bank
    match, inf where it has no surface; nearest [compared]: the index of the nearest head of
    references, a HeadBank, to each of the first `compared` samples, None where it has no surface).
    """
    matches, nearest = [], []
    for position, index in enumerate(tqdm(indices, desc='shape: meshes', unit='sample', leave=False)):
        mesh = sample_mesh(heads, index)
        surface = None if mesh is None else Surface(*mesh)
        matches.append((math.inf,) * 3 if surface is None else bank.match(surface))
        if position < compared:
            nearest.append(None if surface is None else references.nearest(surface)[0])
    return np.array(matches, dtype=np.float64).reshape(-1, 3), nearest


def coverage(nearest, num_references):
    """The share of num_references reference heads that are the nearest of some sample (nearest:
    their indices, None for a sample without a surface, which covers nothing)."""
    return len({index for index in nearest if index is not None}) / num_references


def median_distances(distances, suffix=''):
    """{shape_accuracy, shape_completeness, shape_distance}<suffix>: medians of distances [N, 3]."""
    medians = np.median(distances, axis=0)
    return {f'shape_{name}{suffix}': float(value)
            for name, value in zip(('accuracy', 'completeness', 'distance'), medians)}


def best_sphere(bank, radii=np.arange(0.055, 0.0801, 0.0025)):
    """(radius, (accuracy, completeness, two-way)) of the sphere around the origin that matches the bank best."""
    scored = [(float(r), bank.match(Surface(*sample_mesh(SphereHeads(float(r)), 0)))) for r in radii]
    return min(scored, key=lambda item: item[1][2])
