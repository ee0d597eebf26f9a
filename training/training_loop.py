"""The pi-GAN training loop (one function), run in every training process."""

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

import curriculums
import datasets
from checkpoints import resolve_curriculum
from settings import Settings
from torch_utils.ema import ExponentialMovingAverage
from checkpoints.builders import build_discriminator, build_generator
from training import evaluation, monitor, run_files, schedules, steps
from training.stopping import StopRequest, TrainingInterrupted
from training.stats_log import StatsLog
from training.distributed import all_finite, any_rank, barrier, gather_objects
from utils.errors import UserError

PRECISIONS = ('fp16', 'bf16', 'fp32')


class TrainingDiverged(UserError):
    pass


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch (for exact resumes)."""

    def __init__(self, dataset, num_replicas, rank, seed):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start_index = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start_index:])

    def __len__(self):
        return self.num_samples - self.start_index


def run_curriculum(opt, resumed):
    """Curriculum of the run: the resumed run's, or the named one; then --dataset_path and --set."""
    overrides = dict(opt.overrides)
    if opt.dataset_path:
        overrides['dataset_path'] = opt.dataset_path
    if resumed:
        return resolve_curriculum(resumed['generator.pth']['curriculum'], None, overrides,
                                  Path(opt.load_dir) / 'generator.pth')
    return resolve_curriculum(None, opt.curriculum, overrides)


def make_autocast(precision, device):
    if precision == 'fp32':
        return contextlib.nullcontext
    dtype = torch.float16 if precision == 'fp16' else torch.bfloat16
    return lambda: torch.autocast(device.type, dtype=dtype)


def set_learning_rates(optimizer_G, optimizer_D, optimisation):
    """The stage's learning rates, betas and weight decay (settings.Optimisation) into both optimizers."""
    for group in optimizer_G.param_groups:
        group['lr'] = optimisation.gen_lr * (5e-2 if group.get('name') == 'mapping_network' else 1)
        group['betas'], group['weight_decay'] = betas(optimisation), optimisation.weight_decay
    for group in optimizer_D.param_groups:
        group['lr'] = optimisation.disc_lr
        group['betas'], group['weight_decay'] = betas(optimisation), optimisation.weight_decay


def betas(optimisation):
    return tuple(float(beta) for beta in optimisation.betas)


def make_optimizers(generator, discriminator, optimisation):
    adam = dict(lr=optimisation.gen_lr, betas=betas(optimisation), weight_decay=optimisation.weight_decay)
    if optimisation.unique_lr:
        mapping = set(id(p) for p in generator.siren.mapping_network.parameters())
        groups = [{'params': [p for p in generator.parameters() if id(p) not in mapping], 'name': 'generator'},
                  {'params': [p for p in generator.parameters() if id(p) in mapping], 'name': 'mapping_network',
                   'lr': optimisation.gen_lr * 5e-2}]
        optimizer_G = torch.optim.Adam(groups, **adam)
    else:
        optimizer_G = torch.optim.Adam(generator.parameters(), **adam)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=optimisation.disc_lr, betas=betas(optimisation),
                                   weight_decay=optimisation.weight_decay)
    return optimizer_G, optimizer_D


def rng_state(device):
    state = {'cpu': torch.get_rng_state()}
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state, device):
    torch.set_rng_state(state['cpu'])
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


def data_settings(settings):
    """What the data loader depends on: a stage that changes either needs a new loader."""
    return settings.optimisation.batch_size, settings.rendering.img_size


def check_curriculum(settings, discriminator):
    if (settings.losses.pos_lambda > 0 or settings.losses.z_lambda > 0) and discriminator.n_outputs == 1:
        raise curriculums.ConfigError(f"pos_lambda/z_lambda > 0 need an encoder discriminator, but "
                         f"{type(discriminator).__name__} has no encoder head; use --set pos_lambda=0 --set z_lambda=0")


def training_loop(process, opt, stop=None):
    """stop: a StopRequest that Ctrl-C sets (the run then saves and ends)."""
    stop = stop or StopRequest()
    output_dir = Path(opt.output_dir)
    resumed = run_files.load_checkpoint(opt.load_dir) if opt.load_dir else None
    curriculum = run_curriculum(opt, resumed)
    curriculum_name = resumed['generator.pth']['curriculum_name'] if resumed else opt.curriculum
    precision = opt.precision or ('fp16' if process.device.type == 'cuda' else 'fp32')

    # Same initial weights on every rank; then a distinct random stream per rank.
    torch.manual_seed(opt.seed)
    step = resumed['training_state.pth']['step'] if resumed else 0
    epoch = resumed['training_state.pth']['epoch'] if resumed else 0
    epoch_position = resumed['training_state.pth']['epoch_position'] if resumed else 0
    if opt.set_step is not None:
        step, epoch_position = opt.set_step, 0
    settings = Settings.at_step(curriculum, step)  # every stage is checked now, not when training reaches it
    stage_settings = {s: Settings.at_step(curriculum, s) for s in curriculums.stage_steps(curriculum)}

    generator = build_generator(settings.networks).to(process.device)
    discriminator = build_discriminator(settings).to(process.device)
    check_curriculum(settings, discriminator)
    ema = ExponentialMovingAverage(generator, decay=0.999)
    ema2 = ExponentialMovingAverage(generator, decay=0.9999)
    optimizer_G, optimizer_D = make_optimizers(generator, discriminator, settings.optimisation)
    scaler = torch.amp.GradScaler(process.device.type, enabled=precision == 'fp16')
    if resumed:
        run_files.restore_checkpoint(resumed, opt.load_dir, generator, discriminator, ema, ema2,
                                     optimizer_G, optimizer_D, scaler)
    generator.set_device(process.device)

    if process.distributed:
        # Every generator parameter is used; the discriminator skips blocks above the current size.
        device_ids = [process.local_rank] if process.device.type == 'cuda' else None
        generator_ddp = DDP(generator, device_ids=device_ids)
        discriminator_ddp = DDP(discriminator, device_ids=device_ids, find_unused_parameters=True)
    else:
        generator_ddp, discriminator_ddp = generator, discriminator

    def no_sync(sync):
        if sync or not process.distributed:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(generator_ddp.no_sync())
        stack.enter_context(discriminator_ddp.no_sync())
        return stack

    trainer = steps.Trainer(generator_ddp, discriminator_ddp, optimizer_G, optimizer_D, scaler,
                            autocast=make_autocast(precision, process.device), no_sync=no_sync)

    torch.manual_seed(opt.seed + process.rank)
    if resumed and opt.set_step is None:
        states = resumed['training_state.pth']['rng_states']
        if len(states) == process.world_size:
            set_rng_state(states[process.rank], process.device)
    fixed_z = torch.randn((25, settings.networks.latent_dim), generator=torch.Generator().manual_seed(opt.seed))
    on_gpu = process.device.type == 'cuda'
    sample_size = opt.sample_size or (128 if on_gpu else min(64, settings.rendering.img_size * 2))

    if process.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        run_files.write_options(output_dir, sys.argv, opt, curriculum, process)
        run_files.require_checkpoint_space(output_dir, generator, discriminator)
    stats_log = StatsLog(output_dir) if process.is_main else None
    eval_names = evaluation.metrics_to_log(process, opt, settings)  # Inception checked now, never hours in

    def checkpoint_state():
        return dict(generator=generator, discriminator=discriminator, ema=ema, ema2=ema2,
                    optimizer_G=optimizer_G, optimizer_D=optimizer_D, scaler=scaler, step=step, epoch=epoch,
                    epoch_position=epoch_position, curriculum=curriculum, curriculum_name=curriculum_name,
                    options=run_files.jsonable(vars(opt)),
                    rng_states=gather_objects(rng_state(process.device), process),
                    rank_param_digests=gather_objects(run_files.param_digest(generator, discriminator), process))

    def save(folder):
        state = checkpoint_state()  # every rank takes part in gathering the RNG states
        if process.is_main:
            run_files.save_checkpoint(folder, state)
        barrier(process)  # no rank ends the run (Ctrl-C) while rank 0 is still writing: mp.spawn would kill it

    max_steps = opt.max_steps if opt.max_steps is not None else float('inf')
    deadline = monitor.Deadline(getattr(opt, 'started', None) or time.time(), getattr(opt, 'max_minutes', None))
    total_bar = tqdm(total=opt.n_epochs, initial=epoch, desc='Total progress', dynamic_ncols=True,
                     disable=not process.is_main)
    stage_bar = tqdm(desc='Progress to next stage', dynamic_ncols=True, disable=not process.is_main)
    dataloader = sampler = loader_settings = None
    finished = step >= max_steps
    interrupted = False
    loader_generator = torch.Generator().manual_seed(opt.seed + process.rank)
    timer = monitor.StepTimer(step)

    while epoch < opt.n_epochs and not finished:
        settings = Settings.at_step(curriculum, step)
        set_learning_rates(optimizer_G, optimizer_D, settings.optimisation)
        if dataloader is None or loader_settings != data_settings(settings):
            if not process.is_main:
                barrier(process)  # rank 0 first, so a missing synthetic dataset is generated once
            dataset = datasets.dataset_from_settings(settings)
            if process.is_main:
                barrier(process)
            batch_size = settings.optimisation.batch_size
            datasets.check_enough_images(dataset, settings.data.dataset, batch_size, process.world_size)
            datasets.check_known_poses(dataset, settings.data.dataset,
                                       [settings] + [stage for s, stage in stage_settings.items() if s > step])
            sampler = ResumableDistributedSampler(dataset, process.world_size, process.rank, seed=opt.seed)
            dataloader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                                    num_workers=opt.num_workers, pin_memory=process.device.type == 'cuda',
                                    generator=loader_generator, persistent_workers=False)
            loader_settings = data_settings(settings)
            step_next_upsample = curriculums.next_upsample_step(curriculum, step)
            step_last_upsample = curriculums.last_upsample_step(curriculum, step)
            stage_bar.reset(total=None if step_next_upsample == float('inf')
                            else step_next_upsample - step_last_upsample)
            stage_bar.update(step - step_last_upsample)
        sampler.set_epoch(epoch)
        sampler.start_index = epoch_position * settings.optimisation.batch_size

        stage_changed = False
        for imgs, poses in dataloader:
            settings = Settings.at_step(curriculum, step)
            if loader_settings != data_settings(settings):
                stage_changed = True
                break
            generator_ddp.train()
            discriminator_ddp.train()
            if scaler.is_enabled() and scaler.get_scale() < 1:
                scaler.update(1.0)

            alpha = schedules.fade_in_alpha(step, step_last_upsample, settings.optimisation.fade_steps)
            nerf_noise = schedules.nerf_noise(step)
            step_settings = dataclasses.replace(
                settings, rendering=dataclasses.replace(settings.rendering, nerf_noise=nerf_noise))
            real_imgs = imgs.to(process.device, non_blocking=True)
            real_poses = poses.to(process.device).float().reshape(real_imgs.shape[0], -1)

            d_loss = steps.discriminator_step(trainer, real_imgs, real_poses, alpha, step_settings)
            if not all_finite(d_loss.detach(), process):
                raise TrainingDiverged(_diverged_message('discriminator', step, output_dir))
            steps.apply_discriminator_update(trainer, d_loss, step_settings)
            g_loss, topk_num = steps.generator_step(trainer, imgs.shape[0], alpha, step_settings, step, process.device)
            if not all_finite(g_loss, process):
                raise TrainingDiverged(_diverged_message('generator', step, output_dir))
            steps.apply_generator_update(trainer, step_settings)
            ema.update(generator)
            ema2.update(generator)

            step += 1
            epoch_position += 1
            generator.step = discriminator.step = step
            stage_bar.update(1)
            if process.is_main and (step % opt.log_every == 0 or step == 1):
                record = {'step': step, 'epoch': epoch, 'd_loss': d_loss.item(), 'g_loss': g_loss.item(),
                          'alpha': alpha, 'nerf_noise': nerf_noise, 'img_size': settings.rendering.img_size,
                          'batch_size': settings.optimisation.batch_size,
                          'topk': topk_num, 'scale': scaler.get_scale(), 'time': time.time(),
                          'sec_per_step': timer.lap(step), 'peak_mem_gib': monitor.peak_memory_gib(process.device)}
                stats_log.append(record)
                tqdm.write(f"[Experiment: {output_dir}] [Epoch: {epoch}/{opt.n_epochs}] [D loss: {record['d_loss']:.4f}] "
                           f"[G loss: {record['g_loss']:.4f}] [Step: {step}] [Alpha: {alpha:.2f}] "
                           f"[Img Size: {record['img_size']}] [Batch Size: {record['batch_size']}] "
                           f"[TopK: {topk_num}] [Scale: {record['scale']}] "
                           f"[s/step: {record['sec_per_step']:.3f}] [Peak mem: {record['peak_mem_gib']:.2f} GiB]")
            with timer.paused():  # sampling, saving and evaluation are not training speed
                if step % opt.sample_interval == 0:
                    with deadline.timing_save():
                        if process.is_main:
                            generator_ddp.eval()
                            run_files.save_sample_grids(output_dir, step, generator, ema, fixed_z, settings,
                                                        sample_size, trainer.autocast)
                        save(output_dir)
                if step % opt.model_save_interval == 0:
                    save(run_files.snapshot_folder(output_dir, step))
                if eval_names and step % opt.eval_freq == 0:
                    evaluation.evaluate(process, output_dir, step, generator, ema, settings, opt, eval_names)
            near_end = deadline.reached()
            out_of_time = deadline.end < float('inf') and any_rank(near_end, process)  # no collective without one
            stop_requested = stop.agreed(process)  # every rank asks, every step (it is collective)
            if step >= max_steps or out_of_time or stop_requested:
                finished = True
                interrupted = stop_requested and step < max_steps and not out_of_time
                break
        else:
            epoch += 1
            epoch_position = 0
            generator.epoch = discriminator.epoch = epoch
            total_bar.update(1)
        if stage_changed:
            epoch_position = 0  # the new stage's loader starts a fresh pass over the data

    if process.is_main:  # the final grids go with the final checkpoint
        generator_ddp.eval()
        run_files.save_final_grids(output_dir, step, generator, ema, fixed_z, settings, sample_size, trainer.autocast)
    save(output_dir)
    total_bar.close()
    stage_bar.close()
    if process.is_main:
        stats_log.close()
    if interrupted:
        raise TrainingInterrupted(f"interrupted at step {step}: checkpoint and sample grids saved in "
                                  f"{output_dir}; continue with --load_dir {output_dir}")
    if process.is_main:
        tqdm.write(f"done: step {step}, epoch {epoch}; checkpoint and samples in {output_dir}")


def _diverged_message(network, step, output_dir):
    return (f"{network} loss is NaN/Inf at step {step}: training stopped. The last good checkpoint in "
            f"{output_dir} is kept; resume it with --load_dir {output_dir} and a lower learning rate "
            f"(--set gen_lr=... --set disc_lr=...) or a larger batch")
