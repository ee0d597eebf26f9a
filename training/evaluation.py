"""Evaluation during training (--eval_freq, --eval_metrics): any metric of the registry
(metrics/registry.py), computed with the EMA weights by the same library calls as eval_metrics.py.

Image metrics (fid, kid, is): every rank renders its share of --fid_images (metrics.generate.
output_images); rank 0 scores them against the real folder, written on first use (folder_metrics).
Metrics that render the generator themselves (the synthetic heads' pose, shape, ...): rank 0,
geometry_metrics. Rank 0 appends one JSON line per evaluation to metrics.jsonl (step, time,
seconds and every value) and, as the original, the FID to fid.txt (step:fid).
"""

import json
import time
from pathlib import Path

from tqdm import tqdm

from datasets import dataset_from_settings, default_synthetic_folder, synthetic_path
from metrics import InceptionWeightsError, folder_metrics, load_inception, split_metrics
from metrics.geometry import GEOMETRY_METRICS, geometry_metrics, summary_lines, synthetic_folder
from metrics.generate import output_images
from metrics.real_images import default_real_dir, setup_evaluation
from utils.cli import one_line
from torch_utils.ema import averaged_weights
from training.distributed import barrier, gather_objects
from training.run_files import jsonable


def metrics_to_log(process, opt, settings):
    """--eval_metrics, or by default the geometry metrics on Synthetic and FID elsewhere; none
    without --eval_freq, and no image metric when the Inception weights are out of reach."""
    if opt.eval_freq <= 0:
        return []
    names = getattr(opt, 'eval_metrics', None) or (
        list(GEOMETRY_METRICS) if settings.data.dataset == 'Synthetic' else ['fid'])
    image_names, _ = split_metrics(names)
    if image_names and not inception_available(process, opt, image_names):
        return [name for name in names if name not in image_names]
    return names


def inception_available(process, opt, image_names):
    """Whether the image metrics can run, checked once before training so a run never dies hours in.

    A --inception_weights file that is missing or unreadable stops the run now. Without it,
    weights that can be neither found in torch.hub's cache nor downloaded turn the image
    metrics off for this run, after a warning that says how to fix it.
    """
    from metrics.inception import build_fid_inception
    problem = fatal = None
    if process.is_main:
        try:
            build_fid_inception(opt.inception_weights)
        except InceptionWeightsError as error:
            problem, fatal = one_line(error), bool(opt.inception_weights)
    problem, fatal = gather_objects((problem, fatal), process)[0]
    if fatal:
        raise InceptionWeightsError(f"--inception_weights: {problem}")
    if problem and process.is_main:
        tqdm.write(f"warning: no {', '.join(name.upper() for name in image_names)} during this run: {problem} "
                   f"Training goes on without them; compute them for its snapshots later with eval_metrics.py, "
                   f"or pass --eval_freq 0 to silence this warning.")
    return not problem


def evaluate(process, output_dir, step, generator, ema, settings, opt, names):
    """The named metrics of the EMA generator, logged by rank 0; every rank takes part.
    settings: the step's settings.Settings."""
    image_names, generator_names = split_metrics(names)
    started, results = time.time(), {}
    with averaged_weights(ema, generator):
        if image_names:
            results.update(image_metrics(process, Path(output_dir), generator, settings, opt, image_names))
        if generator_names and process.is_main:
            results.update(geometry_metrics(generator, settings, synthetic_folder(settings), generator_names,
                                            num_samples=opt.geometry_samples))
    if process.is_main:
        log(Path(output_dir), step, started, results)
    barrier(process)


def image_metrics(process, output_dir, generator, settings, opt, names):
    """fid, kid, is of --fid_images rendered at --fid_size against the real folder ({} on ranks > 0)."""
    generated_dir = output_dir / 'evaluation' / 'generated'
    real_dir = opt.fid_real_dir
    if process.is_main:
        real_dir = real_image_folder(settings, opt.fid_size, opt.fid_real_images, opt.fid_real_dir, generated_dir)
    barrier(process)
    output_images(generator, settings, process.rank, process.world_size, generated_dir, num_imgs=opt.fid_images,
                  img_size=opt.fid_size)
    barrier(process)
    if not process.is_main:
        return {}
    results, _ = folder_metrics(real_dir, generated_dir, generated_dir.parent,
                                load_inception(process.device, opt.inception_weights), names)
    return results


def real_image_folder(settings, size, num_imgs, real_dir=None, generated_dir=None):
    """The folder of real images FID, KID and IS compare with, written from the run's own dataset settings
    (a synthetic run's background, say) unless it holds images already. By default EvalImages/<dataset>_real_
    images_<size>, as in the original; for the default synthetic heads, named after their folder instead
    (synthetic_64_white_...), so that heads on grey and on white never share one."""
    data = settings.data
    if real_dir is None:
        default_heads = data.dataset == 'Synthetic' and not synthetic_path(data.dataset_path)
        name = Path(default_synthetic_folder(data.synthetic_size, data.synthetic_background)).name if default_heads \
            else data.dataset
        real_dir = default_real_dir(name, size)
    return setup_evaluation(data.dataset, generated_dir, size, num_imgs, real_dir=real_dir,
                            make_dataset=lambda: dataset_from_settings(settings, size))


def log(output_dir, step, started, results):
    record = {'step': step, 'time': time.time(), 'seconds': time.time() - started, **results}
    with open(output_dir / 'metrics.jsonl', 'a') as f:
        f.write(json.dumps(jsonable(record)) + '\n')
    if 'fid' in results:
        with open(output_dir / 'fid.txt', 'a') as f:
            f.write(f"{step}:{results['fid']}\n")
    images = ''.join(f" {name.upper()} {results[name]:.4g}" for name in ('fid', 'kid', 'is') if name in results)
    geometry = ''.join(f"\n  {line}" for line in summary_lines(results))
    tqdm.write(f"[Step: {step}] evaluation ({record['seconds']:.0f} s):{images}{geometry}")
