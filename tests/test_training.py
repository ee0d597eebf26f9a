"""train.py end to end on CPU with tiny models and the synthetic dataset."""

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import train
from synthetic.dataset import make_synthetic_dataset
from training.distributed import LaunchError, launch, launch_plan
from training.run_files import CHECKPOINT_FILES

ROOT = Path(__file__).resolve().parents[1]

# A tiny model: 16x16 images, SIREN width 16, 6+6 samples per ray. On the CPU on any machine: the
# memory and speed checks read the CPU's figures, and two processes on one GPU would share it.
TINY = ['--set', 'hidden_dim=16', '--set', 'num_steps=6', '--set', 'img_size=16', '--set', 'batch_size=4',
        '--set', 'batch_split=1', '--set', 'fade_steps=2', '--num_workers', '0', '--eval_freq', '0',
        '--sample_size', '16', '--log_every', '1', '--device', 'cpu']


@pytest.fixture(scope='module')
def synthetic_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'synthetic_16'
    make_synthetic_dataset(str(folder), 16, img_size=16, seed=0, progress=False)
    return folder


def run_train(out, synthetic_dir, *extra, max_steps=2):
    train.main(['--output_dir', str(out), '--dataset_path', str(synthetic_dir), '--max_steps', str(max_steps),
                '--sample_interval', '2', *TINY, *extra])


def stats(out):
    return [json.loads(line) for line in (out / 'stats.jsonl').read_text().splitlines()]


def load_state(out, name):
    return torch.load(out / name, weights_only=True)


@pytest.mark.parametrize('discriminator,extra', [
    ('CCSEncoderDiscriminator', ['--set', 'pos_lambda=15', '--set', 'z_lambda=0.5', '--set', 'batch_split=2']),
    ('CCSDiscriminator', ['--set', 'pos_lambda=0', '--set', 'unique_lr=True']),
    ('StridedDiscriminator', ['--set', 'pos_lambda=0', '--precision', 'bf16']),
    ('ProgressiveDiscriminator', ['--set', 'pos_lambda=0', '--set', 'r1_lambda=10']),
    ('ProgressiveEncoderDiscriminator', ['--set', 'pos_lambda=1', '--set', 'z_lambda=1', '--precision', 'bf16',
                                         '--set', 'model=TALLSIREN', '--set', 'white_back=True']),
])
def test_training_steps(tmp_path, synthetic_dir, discriminator, extra):
    out = tmp_path / 'run'
    run_train(out, synthetic_dir, '--set', f'discriminator={discriminator}', *extra)

    # Every checkpoint file loads without running code and holds the step.
    for name in CHECKPOINT_FILES:
        torch.load(out / name, weights_only=True)
    gen = load_state(out, 'generator.pth')
    assert gen['step'] == 2 and load_state(out, 'training_state.pth')['step'] == 2
    assert load_state(out, 'discriminator.pth')['discriminator'] == discriminator

    # Training moved the weights away from their initialisation.
    torch.manual_seed(0)
    from checkpoints.builders import build_generator
    from settings import Settings
    initial = build_generator(Settings.at_step(gen['curriculum'], 0).networks).state_dict()
    moved = [name for name, value in gen['state_dict'].items() if not torch.equal(value, initial[name])]
    assert len(moved) > len(initial) // 2

    rows = stats(out)
    assert [row['step'] for row in rows] == [1, 2]
    assert all(torch.isfinite(torch.tensor([row['d_loss'], row['g_loss']])).all() for row in rows)
    # Speed and memory: seconds per step, and the peak resident set on the CPU (torch alone is > 100 MB).
    assert all(0 < row['sec_per_step'] < 600 and 0.1 < row['peak_mem_gib'] < 64 for row in rows)
    for grid in ('fixed', 'tilted', 'fixed_ema', 'tilted_ema', 'random'):
        with Image.open(out / f'2_{grid}.png') as image:
            assert image.size == (5 * 16 + 6 * 2, 5 * 16 + 6 * 2)  # 5x5 grid, 2px padding
    options = json.loads((out / 'options.json').read_text())
    assert options['curriculum']['discriminator'] == discriminator
    assert options['options']['max_steps'] == 2


def test_resume_matches_uninterrupted(tmp_path, synthetic_dir):
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    run_train(straight, synthetic_dir, max_steps=4)
    run_train(resumed, synthetic_dir, max_steps=2)
    run_train(resumed, synthetic_dir, '--load_dir', str(resumed), max_steps=4)

    a, b = load_state(straight, 'generator.pth'), load_state(resumed, 'generator.pth')
    assert a['step'] == b['step'] == 4
    for name, value in a['state_dict'].items():
        assert torch.allclose(value, b['state_dict'][name], atol=1e-5, rtol=1e-4), name
    ema_a, ema_b = load_state(straight, 'ema.pth'), load_state(resumed, 'ema.pth')
    assert ema_a['num_updates'] == ema_b['num_updates'] == 4
    assert ema_a['decay'] == 0.999 and load_state(straight, 'ema2.pth')['decay'] == 0.9999
    d_a, d_b = load_state(straight, 'discriminator.pth'), load_state(resumed, 'discriminator.pth')
    for name, value in d_a['state_dict'].items():
        assert torch.allclose(value, d_b['state_dict'][name], atol=1e-5, rtol=1e-4), name


def test_stage_change_rebuilds_loader_and_fades(tmp_path, synthetic_dir):
    out = tmp_path / 'run'
    # Stage at step 2: larger images, smaller batch; the discriminator fades the new size in.
    run_train(out, synthetic_dir, '--set', "2={'img_size': 32, 'batch_size': 2}", max_steps=4)
    rows = stats(out)
    assert [(row['img_size'], row['batch_size']) for row in rows] == [(16, 4), (16, 4), (32, 2), (32, 2)]
    assert [row['alpha'] for row in rows[2:]] == [0.0, 0.5]
    # Each row logs the step it completed, which ran at the noise of its start: 1 - step / 5000.
    assert [row['nerf_noise'] for row in rows] == [pytest.approx(1 - step / 5000) for step in range(4)]


def free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('launcher', ['spawn', 'torchrun'])
def test_two_ranks_stay_identical(tmp_path, synthetic_dir, launcher):
    out = tmp_path / 'ddp'
    if launcher == 'spawn':  # the path CUDA_VISIBLE_DEVICES=0,1 takes, on two CPU processes
        command = [sys.executable, 'train.py', '--nproc', '2', '--port', str(free_port())]
    else:
        command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                   '--master_port', str(free_port()), 'train.py']
    result = subprocess.run(
        [*command, '--output_dir', str(out), '--dataset_path', str(synthetic_dir),
         '--max_steps', '2', '--sample_interval', '2', *TINY, '--set', 'batch_size=2', '--set', 'batch_split=2'],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_state(out, 'training_state.pth')
    digests = state['rank_param_digests']
    assert len(digests) == 2 and digests[0] == digests[1]
    assert len(state['rng_states']) == 2


def run_cli(*args):
    return subprocess.run([sys.executable, 'train.py', *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_port_in_use_is_reported(tmp_path, synthetic_dir):
    with socket.socket() as busy:
        busy.bind(('localhost', 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli('--output_dir', str(tmp_path), '--dataset_path', str(synthetic_dir), '--nproc', '2',
                         '--port', str(port), '--max_steps', '1', *TINY)
    assert result.returncode != 0
    assert f'port {port} is in use' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('n_gpus,nproc,device,plan', [
    (0, None, None, (1, 'cpu')), (0, 3, None, (3, 'cpu')),         # no GPU: one process, or --nproc
    (2, None, None, (2, 'cuda')), (2, 1, None, (1, 'cuda')),       # GPUs: one per GPU, or --nproc of them
    (1, 2, 'cpu', (2, 'cpu')), (4, None, 'cpu', (1, 'cpu')),       # --device cpu on a GPU machine
])
def test_nproc_sets_the_process_count_with_and_without_gpus(n_gpus, nproc, device, plan):
    assert launch_plan(nproc, device, n_gpus) == plan


@pytest.mark.parametrize('n_gpus,nproc,device,message', [
    (1, 2, None, '--nproc 2 needs one GPU per process, but 1 is visible'),
    (0, None, 'cuda', 'no GPU is visible'),
    (0, 0, None, 'at least one process'),
])
def test_impossible_launches_are_refused(n_gpus, nproc, device, message):
    with pytest.raises(LaunchError, match=message):
        launch_plan(nproc, device, n_gpus)


@pytest.mark.parametrize('n_gpus,nproc,device', [(0, 2, None), (2, None, None), (1, 2, 'cpu')])
def test_port_is_checked_for_several_processes_with_and_without_gpus(n_gpus, nproc, device, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: n_gpus)  # as CUDA_VISIBLE_DEVICES would show them

    def worker(info, opt):
        raise AssertionError("no process may start on a busy port")
    with socket.socket() as busy:
        busy.bind(('localhost', 0))
        busy.listen()
        port = busy.getsockname()[1]
        opt = argparse.Namespace(nproc=nproc, device=device, port=port)
        with pytest.raises(LaunchError, match=f'port {port} is in use'):
            launch(worker, opt)


def test_missing_dataset_is_reported(tmp_path):
    pattern = str(tmp_path / 'nothing' / '*.jpg')
    result = run_cli('--curriculum', 'CelebA', '--output_dir', str(tmp_path / 'out'), '--dataset_path', pattern,
                     '--max_steps', '1', *TINY)
    assert result.returncode != 0
    assert pattern in result.stderr and 'Traceback' not in result.stderr


def test_real_pose_only_needs_known_poses(tmp_path):
    for index in range(4):
        Image.new('RGB', (16, 16), (index * 60, 90, 30)).save(tmp_path / f'{index}.png')
    result = run_cli('--output_dir', str(tmp_path / 'out'), '--dataset_path', str(tmp_path), '--max_steps', '1',
                     '--set', 'dataset=ImageFolder', '--set', 'use_real_poses=True', *TINY)
    assert result.returncode != 0
    assert 'no known camera poses' in result.stderr and 'Traceback' not in result.stderr


def test_load_dir_without_checkpoint_is_reported(tmp_path):
    result = run_cli('--load_dir', str(tmp_path), '--output_dir', str(tmp_path), '--max_steps', '1')
    assert result.returncode != 0
    assert 'no checkpoint' in result.stderr and 'Traceback' not in result.stderr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, synthetic_dir):
    out = tmp_path / 'run'
    run_train(out, synthetic_dir, max_steps=2)
    before = {name: (out / name).read_bytes() for name in CHECKPOINT_FILES}
    with pytest.raises(SystemExit) as stopped:
        run_train(out, synthetic_dir, '--load_dir', str(out), '--set', 'grad_clip=nan', max_steps=6)
    assert 'NaN/Inf' in str(stopped.value) and str(out) in str(stopped.value)
    assert {name: (out / name).read_bytes() for name in CHECKPOINT_FILES} == before


def test_eval_freq_logs_geometry_offline(tmp_path, synthetic_dir, monkeypatch):
    # No Inception weights anywhere: the synthetic heads' own metrics need none.
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'no_torch_home'))
    out = tmp_path / 'run'
    run_train(out, synthetic_dir, '--eval_freq', '2', '--eval_metrics', 'pose,mv_consistency',
              '--geometry_samples', '2', max_steps=2)
    records = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert len(records) == 1 and records[0]['step'] == 2
    for name in ('pose_yaw_deg', 'pose_pitch_deg', 'mv_consistency'):
        assert {name, f'{name}_floor', f'{name}_chance'} <= set(records[0])
    assert 0 < records[0]['pose_yaw_deg_floor'] and 0 < records[0]['pose_yaw_deg_chance'] < 90
    assert not (out / 'fid.txt').exists()
    assert len(list(synthetic_dir.glob('pose_regressor-*.pt'))) == 1  # trained once, kept beside the data


def test_unknown_eval_metric_is_one_line(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(['--eval_metrics', 'pose,psoe'])
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and "unknown metric 'psoe'" in error
    assert 'choose from fid, inversion, is, kid, mv_consistency, pose, pose_fd, shape' in error  # the whole registry
    assert train.parse_args(['--eval_metrics', 'pose, fid']).eval_metrics == ['pose', 'fid']
    assert train.parse_args(['--eval_metrics', 'kid,is,shape']).eval_metrics == ['kid', 'is', 'shape']


def test_eval_freq_logs_any_registered_metric(tmp_path, synthetic_dir, monkeypatch):
    # KID and IS through the Inception path, mv_consistency through the generator path, in one evaluation.
    from inception_standin import use_standin_weights
    use_standin_weights(monkeypatch)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / 'run'
    run_train(out, synthetic_dir, '--eval_freq', '2', '--eval_metrics', 'kid,is,mv_consistency',
              '--geometry_samples', '2', '--fid_images', '6', '--fid_size', '16', '--fid_real_images', '8',
              max_steps=2)
    records = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert len(records) == 1 and records[0]['step'] == 2
    assert {'kid', 'kid_std', 'is', 'is_std', 'mv_consistency', 'mv_consistency_floor'} <= set(records[0])
    assert records[0]['is'] >= 1 and 'fid' not in records[0]
    assert not (out / 'fid.txt').exists()


def test_eval_freq_appends_fid(tmp_path, synthetic_dir, monkeypatch):
    from inception_standin import use_standin_weights
    use_standin_weights(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the real images go to ./EvalImages, as in the original
    out = tmp_path / 'run'
    run_train(out, synthetic_dir, '--eval_freq', '2', '--eval_metrics', 'fid', '--fid_images', '6', '--fid_size', '16',
              '--fid_real_images', '8', max_steps=2)
    lines = (out / 'fid.txt').read_text().split()
    assert len(lines) == 1 and lines[0].startswith('2:')
    assert float(lines[0].split(':')[1]) > 0
    assert len(list((out / 'evaluation' / 'generated').glob('*.png'))) == 6
    assert len(list((tmp_path / 'EvalImages' / 'Synthetic_real_images_16').glob('*.png'))) == 8
