"""Seconds per training step of curricula at a given step, timed side by side in one run.

    python bench/bench_step.py                     # SYNTHETIC_CPU vs SYNTHETIC_CPU_PATCH at steps 2000 and 4000
    python bench/bench_step.py --curricula SYNTHETIC_CPU,SYNTHETIC_CPU_PATCH --steps 4000 --iters 20 --threads 2

One iteration is what the training loop does per step (training/steps.py): the D step (generated images
without grad, R1 on the reals, fp32) and its Adam update, then the G step and its update, at the
curriculum's settings at that step (batch, image or patch size, samples per ray, hierarchical sampling,
networks). Real images are random tensors of the curriculum's img_size (data loading is not timed).
After one warm-up iteration each, the configurations alternate; the table shows the median and the
fastest wall-clock seconds of --iters iterations, and the median CPU seconds of the process (which hold
better than wall-clock time on a machine shared with other jobs).
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses  # noqa: E402

import curriculums  # noqa: E402
from settings import Settings  # noqa: E402
from checkpoints.builders import build_discriminator, build_generator  # noqa: E402
from training import schedules, steps  # noqa: E402
from training.training_loop import make_autocast, make_optimizers  # noqa: E402


def make_step(name, step):
    """A function running one training step of curriculum `name` at `step`, and its settings."""
    settings = Settings.at_step(curriculums.get(name), step)
    settings = dataclasses.replace(settings, rendering=dataclasses.replace(settings.rendering,
                                                                           nerf_noise=schedules.nerf_noise(step)))
    torch.manual_seed(0)
    generator, discriminator = build_generator(settings.networks), build_discriminator(settings)
    generator.set_device(torch.device('cpu'))
    optimizer_G, optimizer_D = make_optimizers(generator, discriminator, settings.optimisation)
    trainer = steps.Trainer(generator, discriminator, optimizer_G, optimizer_D,
                            torch.amp.GradScaler('cpu', enabled=False), autocast=make_autocast('fp32', None),
                            no_sync=lambda sync: contextlib.nullcontext())
    batch, size = settings.optimisation.batch_size, settings.rendering.img_size

    def run():
        reals = torch.rand(batch, 3, size, size) * 2 - 1
        d_loss = steps.discriminator_step(trainer, reals, torch.full((batch, 2), float('nan')), 1.0, settings)
        steps.apply_discriminator_update(trainer, d_loss, settings)
        steps.generator_step(trainer, batch, 1.0, settings, step, torch.device('cpu'))
        steps.apply_generator_update(trainer, settings)
    return run, settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--curricula', default='SYNTHETIC_CPU,SYNTHETIC_CPU_PATCH')
    parser.add_argument('--steps', default='2000,4000', help='training steps whose stage settings are timed')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    opt = parser.parse_args(argv)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    configs = {(name, int(step)): make_step(name, int(step))
               for step in opt.steps.split(',') for name in opt.curricula.split(',')}
    times = {key: [] for key in configs}
    for iteration in range(opt.iters + 1):
        for key, (run, _) in configs.items():
            start = time.perf_counter(), time.process_time()
            run()
            if iteration:  # the first is a warm-up
                times[key].append((time.perf_counter() - start[0], time.process_time() - start[1]))
    print(f"{'curriculum':<22}{'step':>6}  {'img':>4}  {'seen':>4}  {'hier':>5}  {'median s':>9}  {'fastest s':>9}"
          f"  {'cpu s':>6}   ({opt.iters} iterations, {torch.get_num_threads()} threads)")
    for (name, step), (_, settings) in configs.items():
        wall, cpu = zip(*times[name, step])
        rendering = settings.rendering
        seen = curriculums.discriminator_size(rendering.img_size, settings.patches.patch_size)
        print(f"{name:<22}{step:>6}  {rendering.img_size:>4}  {seen:>4}  "
              f"{str(rendering.hierarchical_sample):>5}  {statistics.median(wall):>9.3f}  {min(wall):>9.3f}"
              f"  {statistics.median(cpu):>6.3f}")


if __name__ == '__main__':
    main()
