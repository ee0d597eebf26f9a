"""Speed of the generator's eager and fast paths (see generators/generators.py), and of the original
implementation's code given a checkout of it, timed side by side in one run.

    python bench/bench_speed.py                                 # CPU: train_step and render
    python bench/bench_speed.py --original_dir ../pi-GAN        # and the original's code, alternating
    python bench/bench_speed.py --device cuda --amp bf16 --peak_tflops 989

Configurations (--config, comma-separated):
    train_step  SPATIALSIRENBASELINE hidden 256, 32x32, batch 8, 12+12 samples: G forward,
                CCSEncoderDiscriminator forward at alpha 1, softplus loss, backward
    render      staged_forward, 64x64, 24+24 samples, batch 1
    celeba      CelebA stage 0: 64x64, batch 56 in 2 splits, 12+12 samples, D step (R1) + G step, Adam
    render256   staged_forward, 256x256, 48+48 samples, batch 1
The original's path (--original_dir, a checkout of github.com/marcoamonteiro/pi-GAN) runs its own
ImplicitGenerator3d, SPATIALSIRENBASELINE and CCSEncoderDiscriminator on the same work (its
staged_forward recomputes the average latent from 10 000 z on every call, as in its scripts). Each path
gets one warm-up iteration, then the paths alternate for --iters iterations; the table shows the
median (and the fastest), and every ratio printed divides two medians of this run. GFLOP/s counts the
SIREN only, analytically: 2 FLOPs per multiply-add of its layers, x3 for a
forward + backward. Peak memory: torch.cuda.max_memory_allocated on CUDA; on
the CPU the rise of the process's peak RSS over the iteration (Linux).
"""

import argparse
import ctypes
import importlib
import importlib.util
import math
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from discriminators.discriminators import CCSEncoderDiscriminator  # noqa: E402
from generators.generators import ImplicitGenerator3d  # noqa: E402
from siren import siren  # noqa: E402

# Top-level names the original's code and this repository both use.
SHARED_NAMES = ('generators', 'siren', 'discriminators', 'curriculums')
ORIGINAL_WIDTH = 256  # the original's generator always builds its SIREN at the default width
CAMERA = dict(fov=12, ray_start=0.88, ray_end=1.12, h_stddev=0.3, v_stddev=0.155, h_mean=math.pi / 2,
              v_mean=math.pi / 2, sample_dist='gaussian', clamp_mode='relu', hierarchical_sample=True,
              nerf_noise=0.0, last_back=False)
CONFIGS = {
    'train_step': dict(kind='g_step', img_size=32, batch=8, num_steps=12),
    'render': dict(kind='render', img_size=64, batch=1, num_steps=24),
    'celeba': dict(kind='d_and_g_step', img_size=64, batch=56, num_steps=12, batch_split=2),
    'render256': dict(kind='render', img_size=256, batch=1, num_steps=48),
}


def siren_flops_per_point(hidden, first_in=3):
    """Forward FLOPs of the SIREN at one point: 8 FiLM layers, colour layer on [d, x], heads."""
    multiply_adds = first_in * hidden + 7 * hidden * hidden + (hidden + 3) * hidden + hidden + 3 * hidden
    return 2 * multiply_adds


class Networks:
    """The generator and discriminator one path runs, with their Adam optimizers."""

    def __init__(self, generator, discriminator, device):
        self.generator = generator.to(device)
        self.generator.set_device(device)
        self.discriminator = discriminator.to(device)
        self.optimizers = [torch.optim.Adam(m.parameters(), lr=1e-5, betas=(0.0, 0.9))
                           for m in (self.generator, self.discriminator)]


def import_original(directory):
    """(ImplicitGenerator3d, SPATIALSIRENBASELINE, CCSEncoderDiscriminator) of the original's checkout.

    Its modules have this repository's top-level names (generators, siren, ...): ours leave
    sys.modules while its are imported, and come back after; its modules keep their own.
    """
    directory = Path(directory).resolve()
    if not (directory / 'generators' / 'generators.py').is_file():
        sys.exit(f"error: --original_dir {directory}: no generators/generators.py there; "
                 f"expected a checkout of github.com/marcoamonteiro/pi-GAN")
    ours = {name: module for name, module in sys.modules.items() if name.split('.')[0] in SHARED_NAMES}
    path = list(sys.path)
    # Its siren/ and discriminators/ have no __init__.py: our packages would win if still on the path.
    sys.path[:] = [str(directory)] + [p for p in path if Path(p or '.').resolve() != ROOT]
    stand_in = importlib.util.find_spec('matplotlib') is None
    if stand_in:  # imported at the top of its volumetric_rendering.py, never called in the timed code
        sys.modules['matplotlib'] = types.ModuleType('matplotlib')
        sys.modules['matplotlib.pyplot'] = sys.modules['matplotlib'].pyplot = types.ModuleType('matplotlib.pyplot')
    for name in ours:
        del sys.modules[name]
    try:
        classes = (importlib.import_module('generators.generators').ImplicitGenerator3d,
                   importlib.import_module('siren.siren').SPATIALSIRENBASELINE,
                   importlib.import_module('discriminators.discriminators').CCSEncoderDiscriminator)
    finally:
        sys.path[:] = path
        for name in [name for name in sys.modules if name.split('.')[0] in SHARED_NAMES]:
            del sys.modules[name]
        sys.modules.update(ours)
        if stand_in:
            del sys.modules['matplotlib'], sys.modules['matplotlib.pyplot']
    return classes


def checkout_commit(directory):
    result = subprocess.run(['git', '-C', str(directory), 'rev-parse', '--short', 'HEAD'], capture_output=True,
                            text=True)
    return result.stdout.strip() if result.returncode == 0 else 'not a git checkout'


class Workload:
    def __init__(self, name, spec, device, amp, hidden, original=None):
        """original: the original's classes (import_original), to run its path too."""
        self.name, self.spec, self.device, self.amp = name, spec, device, amp
        self.batch = spec['batch']
        self.split = spec.get('batch_split', 1)  # chunks of the batch, gradients accumulated
        self.options = dict(CAMERA, img_size=spec['img_size'], num_steps=spec['num_steps'])
        dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(amp)
        self.autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
        torch.manual_seed(0)
        ours = Networks(ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, 256, hidden_dim=hidden),
                        CCSEncoderDiscriminator(), device)
        self.networks = {'eager': ours, 'fast': ours}
        if original is not None:
            generator_class, siren_class, discriminator_class = original
            torch.manual_seed(0)
            self.networks['original'] = Networks(generator_class(siren_class, 256), discriminator_class(), device)
        self.hidden = hidden
        points = self.batch * spec['img_size'] ** 2 * 2 * spec['num_steps']  # coarse + fine
        passes = {'g_step': 3, 'render': 1, 'd_and_g_step': 1 + 3}[spec['kind']]
        self.flops = passes * points * siren_flops_per_point(hidden)

    def z(self, batch=None):
        return torch.randn(batch or self.batch, 256, device=self.device)

    def run(self, path):
        nets = self.networks[path]
        if path != 'original':
            nets.generator.fast_path = path == 'fast'
        kind = self.spec['kind']
        if kind == 'render':
            with self.autocast:
                nets.generator.staged_forward(self.z(), **dict(self.options, h_stddev=0, v_stddev=0))
            return
        if kind == 'd_and_g_step':
            self.d_step(nets)
        for _ in range(self.split):
            with self.autocast:
                images, positions = nets.generator(self.z(self.batch // self.split), **self.options)
                prediction, _, predicted_position = nets.discriminator(images, 1.0)
                loss = F.softplus(-prediction).mean()
                if kind == 'd_and_g_step':
                    loss = loss + 15 * F.mse_loss(predicted_position, positions)
            loss.backward()
        if kind == 'd_and_g_step':
            nets.optimizers[0].step()
        nets.generator.zero_grad(set_to_none=True)
        nets.discriminator.zero_grad(set_to_none=True)

    def d_step(self, nets):
        """As training/steps.py: fakes without grad, reals with the R1 penalty."""
        size = self.spec['img_size']
        real = torch.rand(self.batch, 3, size, size, device=self.device).mul_(2).sub_(1).requires_grad_(True)
        with self.autocast:
            with torch.no_grad():
                fakes = torch.cat([nets.generator(self.z(self.batch // self.split), **self.options)[0]
                                   for _ in range(self.split)])
            real_prediction, _, _ = nets.discriminator(real, 1.0)
        (grad_real,) = torch.autograd.grad(real_prediction.float().sum(), real, create_graph=True)
        with self.autocast:
            fake_prediction, _, _ = nets.discriminator(fakes, 1.0)
            loss = (F.softplus(fake_prediction).mean() + F.softplus(-real_prediction).mean()
                    + 0.1 * grad_real.flatten(1).norm(2, dim=1).pow(2).mean())
        loss.backward()
        nets.optimizers[1].step()
        nets.discriminator.zero_grad(set_to_none=True)


class PeakMemory:
    """Peak memory of one iteration, in bytes above the level it started from."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            _trim_heap()  # freed memory the C library kept would hide this iteration's growth
            try:  # resets the peak RSS (VmHWM) to the current RSS (Linux)
                Path('/proc/self/clear_refs').write_text('5')
            except OSError:
                pass
            self.start = _rss_kb('VmRSS') * 1024
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.peak = _rss_kb('VmHWM') * 1024 - self.start


def _trim_heap():
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_kb(field):
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(field + ':'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_iteration(workload, path):
    with PeakMemory(workload.device) as memory:
        start = time.perf_counter()
        workload.run(path)
        if workload.device.type == 'cuda':
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds, memory.peak


def device_description(device):
    if device.type == 'cuda':
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = platform.processor() or 'unknown CPU'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--config', default=None, help=f"comma-separated from {sorted(CONFIGS)} "
                        "(default: train_step,render on the CPU, celeba,render256 on CUDA)")
    parser.add_argument('--amp', default='none', choices=['none', 'bf16', 'fp16'], help='autocast; on the CPU this runs the fast path CUDA uses (siren/fast_path/batched.py)')
    parser.add_argument('--iters', type=int, default=3, help='timed iterations per path, after a warm-up')
    parser.add_argument('--paths', default=None,
                        help='comma-separated from eager, fast, original (default: eager,fast, and original '
                             'with --original_dir)')
    parser.add_argument('--original_dir', default=None,
                        help='a checkout of github.com/marcoamonteiro/pi-GAN: its code runs as the path "original"')
    parser.add_argument('--hidden', type=int, default=256, help='SIREN width')
    parser.add_argument('--batch', type=int, default=None,
                        help="images per iteration instead of the configuration's (e.g. to fit a CPU run)")
    parser.add_argument('--img_size', type=int, default=None, help="image size instead of the configuration's")
    parser.add_argument('--num_steps', type=int, default=None,
                        help="samples per ray (coarse, and as many fine) instead of the configuration's")
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--peak_tflops', type=float, default=None, help='device peak, to report the fraction reached')
    args = parser.parse_args(argv)

    paths = (args.paths or ('eager,fast,original' if args.original_dir else 'eager,fast')).split(',')
    unknown = sorted(set(paths) - {'eager', 'fast', 'original'})
    if unknown:
        parser.error(f"--paths: unknown {', '.join(unknown)}; choose from eager, fast, original")
    if 'original' in paths and not args.original_dir:
        parser.error("--paths original needs --original_dir (a checkout of the original)")
    if 'original' in paths and args.hidden != ORIGINAL_WIDTH:
        parser.error(f"--hidden {args.hidden}: the original's SIREN is {ORIGINAL_WIDTH} wide, so the comparison "
                     f"needs --hidden {ORIGINAL_WIDTH}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = (args.config or ('celeba,render256' if device.type == 'cuda' else 'train_step,render')).split(',')
    original = import_original(args.original_dir) if 'original' in paths else None
    print(f"device: {device_description(device)}; amp: {args.amp}")
    if original:
        print(f"original: {Path(args.original_dir).resolve()} ({checkout_commit(args.original_dir)})")
    for name in names:
        changes = {key: getattr(args, key) for key in ('batch', 'img_size', 'num_steps') if getattr(args, key)}
        spec = dict(CONFIGS[name], **changes)
        workload = Workload(name, spec, device, args.amp, args.hidden, original)
        results = {path: [] for path in paths}
        for path in paths:  # warm-up
            time_iteration(workload, path)
        for _ in range(args.iters):
            for path in paths:
                results[path].append(time_iteration(workload, path))
        report(name, workload, results, args.peak_tflops)


def report(name, workload, results, peak_tflops):
    print(f"\n{name}: {workload.spec}")
    medians, peaks = {}, {}
    for path, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        medians[path] = seconds
        peaks[path] = peak = max(m for _, m in runs)
        points = workload.flops / siren_flops_per_point(workload.hidden)
        line = (f"  {path:8s} {seconds:8.3f} s/iter (fastest {min(s for s, _ in runs):.3f})"
                f"  {points / seconds / 1e6:7.2f} M SIREN points/s  {workload.flops / seconds / 1e9:8.1f} GFLOP/s")
        if peak_tflops:
            line += f" ({workload.flops / seconds / 1e12 / peak_tflops:.1%} of peak)"
        per_image = peak / (workload.batch // workload.split)  # images in flight
        line += f"  peak mem {peak / 2**20:8.0f} MiB ({per_image / 2**20:.0f} MiB/image)"
        print(line)
    # Every ratio from this run's medians: speed-up (the other's time / this one's) and memory share.
    for path, other in (('fast', 'eager'), ('fast', 'original'), ('eager', 'original')):
        if path in medians and other in medians:
            memory = f"{peaks[path] / peaks[other]:.2f}x the memory" if peaks[other] > 0 else "memory not measured"
            print(f"  {path} vs {other}: {medians[other] / medians[path]:.2f}x the speed, {memory}")


if __name__ == '__main__':
    main()
