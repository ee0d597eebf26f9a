"""How far the SIREN's outputs and gradients under bf16 / fp16 autocast lie from float32.

    python bench/precision_error.py                       # CelebA's SIREN: hidden 256, 32x32 rays, 12 samples
    python bench/precision_error.py --hidden 64 --img_size 16

The SIREN (SPATIALSIRENBASELINE) is evaluated at the samples along the rays of --batch images
seen from the curriculum's mean camera, a fixed random weighting of its outputs is summed and
backpropagated to every weight of the generator (mapping network included). Printed per
precision and path (eager, fast): the largest output error and the relative error of the whole
gradient, |g - g_fp32| / |g_fp32|, both against the same path in float32. Runs on the CPU
(autocast there rounds as on a GPU; the speed says nothing about one).
"""

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.camera_utils import look_at_origin  # noqa: E402
from generators.generators import ImplicitGenerator3d  # noqa: E402
from generators.ray_sampler import rays_from_cameras, sample_depths  # noqa: E402
from siren import siren  # noqa: E402

DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def siren_inputs(generator, batch, img_size, num_steps, seed):
    """Points [B, R, S, 3] along the rays of the mean camera (fov 12, depths 0.88 to 1.12, jittered),
    their ray directions [B, R, 3] and z [B, 256]."""
    torch.manual_seed(seed)
    half_pi = torch.full((batch, 1), math.pi / 2)
    origins, directions = rays_from_cameras(look_at_origin(half_pi, half_pi), 12, img_size)
    depths = sample_depths(batch, img_size ** 2, num_steps, 0.88, 1.12)
    points = origins.unsqueeze(2) + directions.unsqueeze(2) * depths
    return points, directions, torch.randn(batch, generator.z_dim)


def outputs_and_gradient(generator, inputs, weights, fast_path, dtype):
    points, directions, z = inputs
    generator.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        frequencies, phase_shifts = generator.siren.mapping_network(z)
        out = generator.evaluate_siren(points, directions, frequencies, phase_shifts, fast_path=fast_path)
    (out.float() * weights).sum().backward()
    return out.detach().float(), torch.cat([p.grad.flatten() for p in generator.parameters()])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hidden', type=int, default=256, help='SIREN width (CelebA: 256)')
    parser.add_argument('--img_size', type=int, default=32)
    parser.add_argument('--num_steps', type=int, default=12, help='samples per ray')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    generator = ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, 256, hidden_dim=args.hidden)
    inputs = siren_inputs(generator, args.batch, args.img_size, args.num_steps, args.seed)
    weights = torch.randn(*inputs[0].shape[:3], 4, generator=torch.Generator().manual_seed(args.seed))
    print(f"SIREN hidden {args.hidden}, {args.batch} images of {args.img_size}x{args.img_size} rays, "
          f"{args.num_steps} samples per ray, seed {args.seed}; errors against float32")
    for path, fast_path in (('eager', False), ('fast', True)):
        reference_out, reference_grad = outputs_and_gradient(generator, inputs, weights, fast_path, None)
        for name, dtype in DTYPES.items():
            out, grad = outputs_and_gradient(generator, inputs, weights, fast_path, dtype)
            relative = ((grad - reference_grad).norm() / reference_grad.norm()).item()
            print(f"  {path:5s} {name}: outputs within {(out - reference_out).abs().max().item():.4f}, "
                  f"gradient {relative:.1%} away (relative norm)")


if __name__ == '__main__':
    main()
