"""How a run ends and reports: final grids, Ctrl-C, TensorBoard, FID checked at start-up, two "nodes"."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

import train
from synthetic.dataset import make_synthetic_dataset
from test_training import TINY  # on the CPU, as every test here assumes

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def synthetic_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'synthetic_16'
    make_synthetic_dataset(str(folder), 16, img_size=16, seed=0, progress=False)
    return folder


def stats(out):
    return [json.loads(line) for line in (out / 'stats.jsonl').read_text().splitlines()]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_final_grids_and_tensorboard(tmp_path, synthetic_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / 'run'
    train.main(['--output_dir', str(out), '--dataset_path', str(synthetic_dir), '--max_steps', '3',
                '--sample_interval', '2', *TINY])
    # Grids at the sample interval, and the final ones with the final checkpoint.
    for step in (2, 3):
        for name in ('fixed', 'tilted', 'fixed_ema', 'tilted_ema', 'random'):
            with Image.open(out / f'{step}_{name}.png') as image:
                assert image.size == (5 * 16 + 6 * 2, 5 * 16 + 6 * 2)  # 5 x 5 grid, 2-pixel padding
    assert torch.load(out / 'training_state.pth', weights_only=True)['step'] == 3
    # TensorBoard holds the same numbers as stats.jsonl.
    events = EventAccumulator(str(out))
    events.Reload()
    logged = events.Scalars('train/d_loss')
    assert [e.step for e in logged] == [1, 2, 3]
    assert [e.value for e in logged] == pytest.approx([row['d_loss'] for row in stats(out)], rel=1e-6)
    assert {'train/g_loss', 'train/sec_per_step', 'train/img_size'} <= set(events.Tags()['scalars'])


@pytest.mark.parametrize('nproc', [1, 2])
def test_ctrl_c_saves_a_checkpoint_then_exits(tmp_path, synthetic_dir, nproc):
    # With two processes the other rank must not end the job while rank 0 still writes (mp.spawn kills it then).
    out = tmp_path / 'run'
    spawned = ['--nproc', '2', '--port', str(free_port())] if nproc == 2 else []
    process = subprocess.Popen(
        [sys.executable, 'train.py', '--output_dir', str(out), '--dataset_path', str(synthetic_dir),
         '--max_steps', '100000', '--sample_interval', '100000', *spawned, *TINY],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(1200):  # a bounded wait for the first logged step (not a speed check)
        if (out / 'stats.jsonl').exists() and (out / 'stats.jsonl').read_text().count('\n') >= 1:
            break
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("training logged no step")
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
    _, stderr = process.communicate(timeout=240)
    assert process.returncode != 0
    assert 'Traceback' not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert len(error_lines) == 1 and 'interrupted at step' in error_lines[0] and str(out) in error_lines[0]
    step = int(error_lines[0].split('interrupted at step ')[1].split(':')[0])
    assert step >= 1
    assert torch.load(out / 'training_state.pth', weights_only=True)['step'] == step
    assert torch.load(out / 'generator.pth', weights_only=True)['step'] == step
    assert not [name for name in os.listdir(out) if name.endswith('.tmp')]
    with Image.open(out / f'{step}_fixed_ema.png') as image:
        assert image.size[0] > 16


def offline(monkeypatch):
    """No network: pytorch-fid's download of the Inception weights fails as it does offline."""
    import pytorch_fid.inception

    def refuse(*args, **kwargs):
        raise urllib.error.URLError('[Errno -2] Name or service not known')
    monkeypatch.setattr(pytorch_fid.inception, 'load_state_dict_from_url', refuse)


def test_offline_fid_warns_at_start_up_and_training_goes_on(tmp_path, synthetic_dir, monkeypatch, capsys):
    offline(monkeypatch)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_torch_home'))
    out = tmp_path / 'run'
    train.main(['--output_dir', str(out), '--dataset_path', str(synthetic_dir), '--max_steps', '2',
                '--sample_interval', '2', *TINY, '--eval_freq', '1', '--eval_metrics', 'fid'])
    printed = capsys.readouterr()
    warning = [line for line in (printed.out + printed.err).splitlines() if line.startswith('warning: no FID')]
    assert len(warning) == 1
    # The whole instructions, on the one line: the URL, where to save it, and the flag.
    assert 'https://' in warning[0] and str(tmp_path / 'empty_torch_home') in warning[0]
    assert '--inception_weights PATH' in warning[0] and '--eval_freq 0' in warning[0]
    assert not (out / 'fid.txt').exists()
    assert [row['step'] for row in stats(out)] == [1, 2]


def test_missing_inception_weights_file_fails_at_once(tmp_path, synthetic_dir):
    missing = tmp_path / 'nowhere' / 'pt_inception.pth'
    result = subprocess.run([sys.executable, 'train.py', '--output_dir', str(tmp_path / 'run'),
                             '--dataset_path', str(synthetic_dir), '--max_steps', '2', *TINY,
                             '--eval_freq', '1', '--eval_metrics', 'fid', '--inception_weights', str(missing)],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert f'error: --inception_weights: Inception weights not found: {missing}' in result.stderr
    assert not (tmp_path / 'run' / 'stats.jsonl').exists()  # stopped before the first step


def test_two_nodes_on_one_machine_stay_identical_and_only_rank_0_writes(tmp_path, synthetic_dir):
    port = free_port()
    nodes = []
    for node_rank in (0, 1):
        command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '2', '--node_rank', str(node_rank),
                   '--nproc_per_node', '1', '--rdzv_backend', 'c10d', '--rdzv_endpoint', f'127.0.0.1:{port}',
                   '--rdzv_id', 'two_nodes', 'train.py', '--output_dir', str(tmp_path / f'node{node_rank}'),
                   '--dataset_path', str(synthetic_dir), '--max_steps', '2', '--sample_interval', '2', *TINY,
                   '--set', 'batch_size=2', '--set', 'batch_split=2']
        nodes.append(subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stderr[-3000:]
    state = torch.load(tmp_path / 'node0' / 'training_state.pth', weights_only=True)
    assert state['step'] == 2 and len(state['rank_param_digests']) == 2
    assert state['rank_param_digests'][0] == state['rank_param_digests'][1]
    assert not (tmp_path / 'node1').exists()  # rank 1 writes nothing


def test_a_user_error_in_spawned_workers_is_one_line(tmp_path):
    (tmp_path / 'generator.pth').write_bytes(b'not a checkpoint')
    result = subprocess.run([sys.executable, 'train.py', '--nproc', '2', '--port', str(free_port()),
                             '--load_dir', str(tmp_path), '--output_dir', str(tmp_path / 'out'), *TINY],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'incomplete checkpoint' in lines[0], lines
    assert str(tmp_path) in lines[0]


@pytest.mark.parametrize('size,when', [('4M', 'at the start'), ('100M', 'at the first save')])
def test_a_full_disk_stops_training_with_one_line(tmpfs, synthetic_dir, size, when):
    # The checkpoint files that are certain (generator, two averages, discriminator) take 54 MiB: 4 MiB stops the run
    # before its first step. 100 MiB holds them, but not the optimisers' states on top (135 MB in all).
    out = tmpfs(size) / 'run'
    result = subprocess.run([sys.executable, 'train.py', '--output_dir', str(out), '--dataset_path', str(synthetic_dir),
                             '--max_steps', '2', '--sample_interval', '2', *TINY],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f'error: no space left on the disk of {out} '), last
    if when == 'at the start':
        assert 'for a checkpoint: 4.0 MiB free, at least 54 MiB needed' in last
        assert not (out / 'stats.jsonl').exists()  # no step was taken
    else:
        assert 'optimizer_D.pth' in last and len(stats(out)) == 2  # the steps ran; the save failed
    assert not [name for name in os.listdir(out) if name.endswith('.tmp')]  # no half-written files left


def test_a_full_disk_stops_spawned_workers_with_one_line(tmpfs, synthetic_dir):
    # Rank 0 alone writes, and stops at the first save (100 MiB: room for the checks at the start, not for the whole
    # checkpoint); the other ranks then fail in a collective (gloo: "Connection closed by peer"). With four processes
    # one of those is nearly always the failure mp.spawn sees first (2 of 3 runs with two), so the rank-0 user error
    # must still be the one line reported.
    out = tmpfs('100M') / 'run'
    result = subprocess.run([sys.executable, 'train.py', '--nproc', '4', '--port', str(free_port()), '--output_dir',
                             str(out), '--dataset_path', str(synthetic_dir), '--max_steps', '2', '--sample_interval',
                             '2', *TINY], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.startswith('error')]
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f'error: no space left on the disk of {out} '), lines
    assert 'optimizer_D.pth' in lines[0] and not [name for name in os.listdir(out) if name.endswith('.tmp')]


def test_a_bug_in_a_spawned_worker_keeps_its_traceback(tmp_path):
    # The launch path of train.py (run_cli around launch) with a worker that has a real bug in
    # rank 1: unlike a user error, it must reach the terminal with the worker's own traceback.
    script = tmp_path / 'buggy_run.py'
    script.write_text(f"""
import argparse, sys
sys.path.insert(0, {str(ROOT)!r})
from utils.cli import run_cli
from training.distributed import launch


def worker(info, opt):
    if info.rank == 1:
        buggy_helper()


def buggy_helper():
    return {{}}['no such key']


if __name__ == '__main__':
    run_cli(lambda: launch(worker, argparse.Namespace(nproc=2, device='cpu', port={free_port()})))
""")
    result = subprocess.run([sys.executable, str(script)], env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 'Traceback' in result.stderr and "KeyError: 'no such key'" in result.stderr, result.stderr[-3000:]
    assert 'in buggy_helper' in result.stderr  # the worker's frames, not only the parent's
    assert 'error: ' not in result.stderr.splitlines()[-1]  # not turned into a one-line user error
