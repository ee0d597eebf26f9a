"""Hostile and broken checkpoints (tests/hostile_files.py) through the command-line entry points.

Every case must end with a non-zero exit and ONE line on stderr that names the
file and says what is wrong: no traceback, no advice to load with
weights_only=False, within a memory limit (RLIMIT_AS) and a CPU-time limit (RLIMIT_CPU: a
process past it is killed, so the bound holds on a busy machine too), and the
sentinel file an attack would create never exists.

Most cases run through one entry point (the one that reads that kind of file),
in a child process forked from the test process, which has torch imported
already: the child runs the script's `__main__` block as `python script.py`
would, for a fraction of the cost of a new interpreter. A representative few
run as real `python script.py` processes through every entry point. Valid
controls still render and resume.
"""

import os
import resource
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest
from PIL import Image

import hostile_files
from reference import OFFICIAL_DIR, require
from synthetic.dataset import make_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1')
MEMORY_HEADROOM = 2 << 30    # a forked case may map at most this much beyond the test process
SUBPROCESS_MEMORY = 8 << 30  # address space of a fresh `python script.py` (torch alone maps ~3.3 GB)
CPU_SECONDS = 60             # CPU time a case may use (a refusal takes about one): the time bound
TIMEOUT = 600                # wall-clock safety net only: the machine may be shared and slow
TINY_TRAIN = ['--num_workers', '0', '--eval_freq', '0', '--sample_size', '16', '--log_every', '1', '--device', 'cpu']

# The entry point that reads each role's file, and its arguments.
SCRIPTS = {'render': 'render_multiview_images.py', 'video': 'render_video.py', 'shape': 'shape_extraction.py',
           'interpolate': 'interpolate_w.py', 'convert': 'convert_official_checkpoint.py', 'latent':
           'shape_extraction.py', 'train': 'train.py'}
ROLE_ENTRY = {'generator': 'render', 'official_generator': 'render', 'ema': 'render', 'official_ema': 'convert',
              'latent': 'latent'}
REPRESENTATIVE = ['os_system', 'huge_storage', 'hidden_dim_huge']
GENERATOR_ENTRIES = ['render', 'video', 'shape', 'interpolate', 'convert']


def arguments(entry, role, path, valid, out):
    if entry == 'train':
        return ['--load_dir', str(path.parent), '--output_dir', str(out), *TINY_TRAIN]
    if entry == 'convert':  # reads the EMA files beside the generator
        generator = path.with_name('generator.pth') if role == 'official_ema' else path
        return [str(generator), '--curriculum', 'CelebA', '--output_dir', str(out)]
    if entry == 'latent':
        return [str(valid / 'generator.pth'), '--latent', str(path), '--voxel_resolution', '4',
                '--output_dir', str(out)]
    generator = path if role in ('generator', 'official_generator') else valid / 'generator.pth'
    ema = ['--ema', str(path)] if role == 'ema' else ['--no_ema']
    if role == 'official_generator':  # an original file passes the curriculum check, on to its weights
        ema.extend(['--curriculum', 'CelebA'])
    sizes = {'render': ['--seeds', '0', '--image_size', '8'], 'video': ['--seeds', '0', '--image_size', '8'],
             'shape': ['--voxel_resolution', '4'], 'interpolate': ['--seeds', '0', '1', '--image_size', '8']}[entry]
    return [str(generator), *ema, *sizes, '--output_dir', str(out)]


def entry_for(role):
    return 'train' if role.startswith('run:') else ROLE_ENTRY[role]


# --- running an entry point ---------------------------------------------------------

class Result:
    def __init__(self, returncode, stderr, seconds):
        self.returncode, self.stderr, self.seconds = returncode, stderr, seconds


def address_space():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmSize:'))


def run_forked(script, args):
    """Runs `python script args` in a child forked from this process, as the interpreter would run it."""
    start = time.time()
    with tempfile.TemporaryFile() as stderr:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                limit = address_space() + MEMORY_HEADROOM
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
                os.dup2(stderr.fileno(), 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                sys.stdout, sys.stderr = open(1, 'w', closefd=False), open(2, 'w', closefd=False)
                sys.argv = [str(ROOT / script), *args]
                try:
                    runpy.run_path(str(ROOT / script), run_name='__main__')
                    code = 0
                except SystemExit as exit_:  # what the interpreter does with sys.exit(...)
                    if isinstance(exit_.code, str):
                        print(exit_.code, file=sys.stderr)
                    code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                except BaseException:  # noqa: BLE001 -- uncaught: the interpreter prints the traceback
                    traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.time() - start > TIMEOUT:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"{script} {' '.join(args)} ran past {TIMEOUT} s")
            time.sleep(0.02)
        stderr.seek(0)
        text = stderr.read().decode(errors='replace')
    return Result(os.waitstatus_to_exitcode(status), text, time.time() - start)


def limit_memory_and_time():
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_MEMORY, SUBPROCESS_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def run_process(script, args):
    """Runs `python script args` as a new process."""
    start = time.time()
    result = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=TIMEOUT, preexec_fn=limit_memory_and_time)
    return Result(result.returncode, result.stderr, time.time() - start)


def assert_refused(result, path, expected, sentinel):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != -signal.SIGXCPU, f"ran past {CPU_SECONDS} s of CPU time"
    assert result.returncode != 0, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith('error: ') and str(path) in lines[0], lines[0]
    assert expected in lines[0], lines[0]
    assert 'weights_only=False' not in lines[0]
    assert not sentinel.exists(), "an attack's code ran"


# --- fixtures -----------------------------------------------------------------------

def written_case(cases, name):
    """(role, path, expected) of a written case; one built from the original's files needs the fixtures."""
    if name not in cases:
        require(OFFICIAL_DIR / 'generator.pth')
    return cases[name]


@pytest.fixture(scope='session')
def valid_run(tmp_path_factory):
    return hostile_files.make_valid_run(tmp_path_factory.mktemp('valid') / 'run')


@pytest.fixture(scope='session')
def hostile(tmp_path_factory, valid_run):
    folder = tmp_path_factory.mktemp('hostile')
    sentinel = folder / 'attack_ran'
    return hostile_files.write_cases(folder / 'cases', valid_run, sentinel), sentinel


# --- the cases ----------------------------------------------------------------------

@pytest.mark.parametrize('name', [case[0] for case in hostile_files.CASES])
def test_each_hostile_file_is_refused_in_one_line(name, hostile, valid_run, tmp_path):
    cases, sentinel = hostile
    role, path, expected = written_case(cases, name)
    entry = entry_for(role)
    result = run_forked(SCRIPTS[entry], arguments(entry, role, path, valid_run, tmp_path / 'out'))
    assert_refused(result, path, expected, sentinel)


@pytest.mark.parametrize('entry', GENERATOR_ENTRIES)
@pytest.mark.parametrize('name', REPRESENTATIVE)
def test_representative_files_through_every_entry_point(name, entry, hostile, valid_run, tmp_path):
    cases, sentinel = hostile
    role, path, expected = written_case(cases, name)
    result = run_process(SCRIPTS[entry], arguments(entry, role, path, valid_run, tmp_path / 'out'))
    if entry == 'convert' and name == 'hidden_dim_huge':  # the converter reads only the original's format
        expected = 'does not hold a pickled ImplicitGenerator3d'
    assert_refused(result, path, expected, sentinel)


@pytest.mark.parametrize('name', ['ema_payload', 'latent_payload', 'optimizer_payload', 'scaler_string'])
def test_payloads_in_every_role_as_a_new_process(name, hostile, valid_run, tmp_path):
    cases, sentinel = hostile
    role, path, expected = written_case(cases, name)
    entry = entry_for(role)
    assert_refused(run_process(SCRIPTS[entry], arguments(entry, role, path, valid_run, tmp_path / 'out')),
                   path, expected, sentinel)


# --- valid controls -----------------------------------------------------------------

def test_valid_files_still_render_and_resume(valid_run, tmp_path):
    result = run_forked(SCRIPTS['render'], arguments('render', 'ema', valid_run / 'ema.pth', valid_run,
                                                     tmp_path / 'render'))
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(tmp_path / 'render' / 'seed0000.png') as image:
        assert image.size == (5 * 8, 8)
    result = run_forked(SCRIPTS['latent'], arguments('latent', 'latent', valid_run / 'latent.pt', valid_run,
                                                     tmp_path / 'shape'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'shape' / 'latent.mrc').stat().st_size > 4 ** 3 * 4

    data = tmp_path / 'synthetic_16'
    make_synthetic_dataset(str(data), 8, img_size=16, seed=0, progress=False)
    out = tmp_path / 'resumed'
    result = run_process('train.py', ['--load_dir', str(valid_run), '--output_dir', str(out), '--dataset_path',
                                      str(data), '--max_steps', '101', '--sample_interval', '1000', *TINY_TRAIN])
    assert result.returncode == 0, result.stderr[-3000:]
    import torch
    assert torch.load(out / 'training_state.pth', weights_only=True)['step'] == 101
