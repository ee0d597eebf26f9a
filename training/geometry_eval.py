"""Geometry metrics during training (--eval_freq): offline, on the synthetic heads.

Rank 0 evaluates the EMA generator and appends one JSON line per evaluation to
geometry.jsonl (step, time and every value with its _floor and _chance); the other
ranks wait at a barrier.
"""

import json
import time
from pathlib import Path

from tqdm import tqdm

from metrics.geometry import GEOMETRY_METRICS, geometry_metrics, summary_lines, synthetic_folder
from torch_utils.ema import averaged_weights
from training.distributed import barrier
from training.run_files import jsonable

EVAL_METRICS = ('fid',) + GEOMETRY_METRICS


def parse_eval_metrics(text):
    """--eval_metrics 'pose,fid' -> ['pose', 'fid']; None stays None (the default). ValueError names an unknown one."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if name not in EVAL_METRICS]
    if unknown:
        raise ValueError(f"--eval_metrics: unknown metric {unknown[0]!r}; choose from {', '.join(EVAL_METRICS)}")
    return names


def metrics_to_log(opt, metadata):
    """--eval_metrics, or by default the geometry metrics on Synthetic and FID elsewhere."""
    names = getattr(opt, 'eval_metrics', None)
    if names:
        return names
    return list(GEOMETRY_METRICS) if metadata.get('dataset') == 'Synthetic' else ['fid']


def evaluate_geometry(info, output_dir, step, generator, ema, metadata, opt, names):
    names = [name for name in names if name in GEOMETRY_METRICS]
    if not names:
        return
    if info.is_main:
        dataset_dir = synthetic_folder(metadata)
        started = time.time()
        with averaged_weights(ema, generator):
            results = geometry_metrics(generator, metadata, dataset_dir, names,
                                       num_samples=getattr(opt, 'geometry_samples', 32))
        record = {'step': step, 'time': time.time(), 'seconds': time.time() - started, **results}
        with open(Path(output_dir) / 'geometry.jsonl', 'a') as f:
            f.write(json.dumps(jsonable(record)) + '\n')
        tqdm.write(f"[Step: {step}] geometry ({record['seconds']:.0f} s):\n  " + '\n  '.join(summary_lines(results)))
    barrier(info)
