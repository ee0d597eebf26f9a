"""The training log on disk: stats.jsonl rows, and the same scalars as TensorBoard event files beside it."""

import json
import numbers
from pathlib import Path

from training.run_files import jsonable


class StatsLog:
    """Appends a record (a flat dict) to output_dir/stats.jsonl and its numbers to TensorBoard.

    View with `tensorboard --logdir OUTPUT_DIR`. The event files are written through
    torch.utils.tensorboard (needs the `tensorboard` package).
    """

    def __init__(self, output_dir):
        from torch.utils.tensorboard import SummaryWriter
        self.output_dir = Path(output_dir)
        self.writer = SummaryWriter(log_dir=str(self.output_dir))

    def append(self, record):
        with open(self.output_dir / 'stats.jsonl', 'a') as f:
            f.write(json.dumps(jsonable(record)) + '\n')
        for key, value in record.items():
            if key not in ('step', 'time') and isinstance(value, numbers.Real) and not isinstance(value, bool):
                self.writer.add_scalar(f'train/{key}', value, global_step=record['step'], walltime=record.get('time'))
        self.writer.flush()

    def close(self):
        self.writer.close()
