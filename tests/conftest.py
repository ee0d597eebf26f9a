import os
import subprocess
import sys
from pathlib import Path

# One thread per test process: the suite runs as two xdist workers on two cores, and
# oversubscribed threads make small tensor ops hundreds of times slower.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size): a new folder on a tmpfs of that size ('4M'), to fill up; all unmounted after the test. Where
    tmpfs cannot be mounted (it needs root) the test is skipped, or fails under CI, whose machines run as root."""
    folders = []

    def mount(size):
        folder = tmp_path / f'tmpfs{len(folders)}'
        folder.mkdir()
        try:
            mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(folder)],
                                     capture_output=True, text=True)
            problem = mounted.stderr.strip() if mounted.returncode else None
        except FileNotFoundError:
            problem = 'no mount command'
        if problem:
            (pytest.fail if os.environ.get('CI') else pytest.skip)(f'cannot mount a tmpfs here: {problem}')
        folders.append(folder)
        return folder
    yield mount
    failed = [folder for folder in folders if subprocess.run(['umount', '--lazy', str(folder)]).returncode]
    assert not failed, f'could not unmount {failed}'


@pytest.fixture
def small_disk(tmpfs):
    """A folder on a 4 MiB tmpfs of its own."""
    return tmpfs('4M')
