"""Why a generator's pose and shape errors are what they are, on the synthetic heads.

    python bench/geometry_diagnosis.py RUN/generator.pth --dataset_dir data/synthetic_64_white

Pose: samples rendered at the `pose` metric's cameras, their (yaw, pitch) read back by the
dataset's pose regressor, and each angle fitted as read = slope * camera + bias. Prints the
mean |error|, the slope (1: the head turns exactly with the camera), the bias (a constant
offset: the heads face off the world's front), and the error left after removing the bias
alone and after removing the best line.

Discriminator (with --discriminator, e.g. RUN/discriminator.pth): mean |error| of its pose
head on real training images against their true poses and on the same generated images
against their cameras, beside the pose regressor's on those images. A pose head that reads
generated images' cameras far better than the regressor does has learned cues of its own
for them, and the generator's pose loss no longer asks for heads that turn like real ones.

Density: the largest density the SIREN can output at all (its density layer reads sines in
[-1, 1], so that is |w|_1 + |b| of the layer, times density_scale), beside the densest point
of each sample's volume below. When the two agree, the density is held at that bound, and the
bound grows only as fast as the optimiser moves the layer's weights.

Surface: the `shape` metric's meshes of the first --num_meshes samples (psi 1), each against
the true head of the metric's bank it sits closest to (median |signed distance|): the share of
vertices more than 1 cm inside that head and more than 1 cm outside it, how far from the
centre the inside ones lie, and the median signed distance (positive: the surface lies
outside the true one, the head is too big), and the mean |signed distance| on the half of the
mesh facing the mean camera and on the back half, which the training cameras (yaw within a
few h_stddev of the front) see at most in silhouette. Vertices deep inside and the back half
are surfaces no camera sees, which the metric's accuracy counts all the same.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
from checkpoints import load_generator  # noqa: E402
from checkpoints.builders import build_discriminator  # noqa: E402
from generators.camera_utils import camera_origins  # noqa: E402
from inference.meshing import extract_mesh  # noqa: E402
from metrics import pose, shape  # noqa: E402
from metrics.geometry import as_heads, reference  # noqa: E402
from synthetic import heads as synthetic_heads  # noqa: E402


def pose_fit(generator, settings, dataset_dir, num_samples):
    """Per angle: mean |error|, slope, bias, error without the bias, error off the best line (degrees)."""
    regressor = reference(dataset_dir).regressor
    with torch.no_grad():
        images, true = pose.render_at_random_poses(as_heads(generator, settings), settings.camera, num_samples,
                                                   regressor.network.input_size, seed=0)
        read, _ = regressor.predict(images)
    fits = {}
    for index, name in enumerate(('yaw', 'pitch')):
        camera, seen = np.degrees(true[:, index].numpy()), np.degrees(read[:, index].numpy())
        slope, intercept = np.polyfit(camera, seen, 1)
        error = seen - camera
        fits[name] = {'mean_abs_error': np.abs(error).mean(), 'slope': slope, 'bias': error.mean(),
                      'error_without_bias': np.abs(error - error.mean()).mean(),
                      'error_off_best_line': np.abs(seen - (slope * camera + intercept)).mean()}
    return fits


def discriminator_pose(generator, settings, discriminator_path, dataset_dir, num_samples):
    """{'real': D on real images, 'generated': D on generated ones at the pose fit's cameras}: each
    the mean |error| (yaw, pitch) in degrees against the true poses or cameras."""
    discriminator = build_discriminator(settings)
    discriminator.load_state_dict(torch.load(discriminator_path, map_location='cpu', weights_only=True)['state_dict'])
    discriminator.eval()
    size = settings.rendering.img_size
    real = datasets.make_dataset('Synthetic', size, dataset_dir)
    picked = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:num_samples].tolist()
    real_images = torch.stack([real[i][0] for i in picked])
    real_poses = torch.stack([real[i][1] for i in picked])[:, [1, 0]]  # datasets give (pitch, yaw)
    with torch.no_grad():  # the pose fit's samples and cameras, at D's image size
        images, cameras = pose.render_at_random_poses(as_heads(generator, settings), settings.camera, num_samples, size,
                                                      seed=0)
        read_real = discriminator(real_images, 1)[2][:, [1, 0]]  # its pose head reads (pitch, yaw)
        read_generated = discriminator(images, 1)[2][:, [1, 0]]
    return {'real': pose.mean_abs_degrees(read_real, real_poses),
            'generated': pose.mean_abs_degrees(read_generated, cameras)}


def density_bound(generator):
    layer = generator.siren.density_head
    return float(layer.weight.detach().abs().sum() + layer.bias.detach().abs().sum()) * generator.density_scale


def front_direction(camera):
    """Unit vector [3] from the origin towards the mean camera of a settings.CameraDistribution."""
    return camera_origins(torch.tensor([[float(camera.v_mean)]]), torch.tensor([[float(camera.h_mean)]]))[0]


def surfaces(generator, settings, dataset_dir, count):
    """Per sample, its `shape` mesh against the nearest bank head: (share of vertices > 1 cm inside
    it, share > 1 cm outside, median signed distance, median distance from the centre of the
    inside ones, densest point of its volume, mean |signed distance| of the vertices on the half
    facing the mean camera and on the back half), or None where it has no surface."""
    bank = reference(dataset_dir).bank
    heads = as_heads(generator, settings)
    front = front_direction(settings.camera)
    rows = []
    for index in range(count):
        volume, level = heads.surface_volume(index, shape.GRID_RESOLUTION, shape.CUBE_SIZE)
        try:
            vertices = torch.from_numpy(extract_mesh(volume, level, shape.CUBE_SIZE)[0].copy())
        except ValueError:  # the density never reaches the level: no surface (an early snapshot)
            rows.append(None)
            continue
        distances = [synthetic_heads.head_signed_distance(vertices, params) for params in bank.params]
        signed = min(distances, key=lambda d: float(d.abs().median())).numpy()
        inside = signed < -0.01
        radius = float(np.median(vertices.norm(dim=-1).numpy()[inside])) if inside.any() else float('nan')
        facing = (vertices @ front > 0).numpy()
        halves = [float(np.abs(signed[half]).mean()) if half.any() else float('nan') for half in (facing, ~facing)]
        rows.append((inside.mean(), (signed > 0.01).mean(), float(np.median(signed)), radius, float(volume.max()),
                     *halves))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help="generator.pth (a run's, or a convergence.py snapshot's)")
    parser.add_argument('--dataset_dir', required=True, help="the synthetic dataset the run trained on")
    parser.add_argument('--num_samples', type=int, default=64, help="samples for the pose fit")
    parser.add_argument('--discriminator', default=None,
                        help="the run's discriminator.pth, to check its pose head (needs the run's checkpoint)")
    parser.add_argument('--num_meshes', type=int, default=4, help="samples whose surfaces are examined")
    args = parser.parse_args(argv)
    generator, settings = load_generator(args.checkpoint)
    torch.manual_seed(0)
    fits = pose_fit(generator, settings, args.dataset_dir, args.num_samples)
    for name, fit in fits.items():
        print(f"{name:5s}  mean |error| {fit['mean_abs_error']:5.2f}   slope {fit['slope']:4.2f}   "
              f"bias {fit['bias']:+5.2f}   without the bias {fit['error_without_bias']:5.2f}   "
              f"off the best line {fit['error_off_best_line']:5.2f}   (degrees)")
    if args.discriminator:
        errors = discriminator_pose(generator, settings, args.discriminator, args.dataset_dir, args.num_samples)
        errors['regressor'] = (fits['yaw']['mean_abs_error'], fits['pitch']['mean_abs_error'])
        names = {'real': 'D on real images', 'generated': 'D on generated images',
                 'regressor': 'regressor on generated images'}
        for name, (yaw, pitch) in errors.items():
            print(f"pose head  {names[name]:30s} |error| yaw {yaw:5.2f}  pitch {pitch:5.2f}  (degrees)")
    print(f"density bound {density_bound(generator):.1f}")
    for index, row in enumerate(surfaces(generator, settings, args.dataset_dir, args.num_meshes)):
        if row is None:
            print(f"surface of sample {index}: none (its density never reaches the mesh level)")
            continue
        inside, outside, median, radius, densest, front, back = row
        print(f"surface of sample {index}: {inside:.0%} of vertices > 1 cm inside the nearest true head "
              f"(median {radius:.3f} from the centre), {outside:.0%} > 1 cm outside, median signed distance "
              f"{median:+.4f}; mean |distance| {front:.4f} on the half facing the mean camera, {back:.4f} on "
              f"the back half; densest point {densest:.1f}")


if __name__ == '__main__':
    main()
