import os
import sys
from pathlib import Path

# One thread per test process: the suite runs as two xdist workers on two cores, and
# oversubscribed threads make small tensor ops hundreds of times slower.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

torch.set_num_threads(1)
