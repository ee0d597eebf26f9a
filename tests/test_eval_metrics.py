"""eval_metrics.py end to end on a tiny run, its error messages, and fid_evaluation.py's
training-time helpers. Stand-in Inception weights; no network."""

import json
import math
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import eval_metrics
import fid_evaluation
from inception_standin import use_standin_weights, write_random_pngs
from utils.media import list_images
from tiny_checkpoint import make_tiny_run

NUM_IMAGES = 10
RESULT_KEYS = {'fid', 'kid', 'kid_std', 'kid_x100', 'kid_std_x100', 'is', 'is_std'}


@pytest.fixture(scope='module')
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp('run')
    make_tiny_run(folder, step=100)
    return folder


@pytest.fixture(scope='module')
def real_dir(tmp_path_factory):
    return write_random_pngs(tmp_path_factory.mktemp('data') / 'real', NUM_IMAGES, size=16)


def eval_args(run_folder, real_dir, *extra):
    return [str(run_folder / 'generator.pth'), '--real_image_dir', str(real_dir), '--num_images', str(NUM_IMAGES),
            '--kid_subsets', '5', '--kid_subset_size', '6', '--is_splits', '2', '--inception_batch_size', '4',
            '--num_workers', '0', '--device', 'cpu', *extra]


@pytest.fixture(scope='module')
def evaluation(run_folder, real_dir):
    """eval_metrics run once: (metrics.json contents, stdout, stderr)."""
    with pytest.MonkeyPatch.context() as patch:
        use_standin_weights(patch)
        capture = CaptureStd(patch)
        eval_metrics.main(eval_args(run_folder, real_dir))
    report = json.loads((run_folder / 'evaluation' / 'metrics.json').read_text())
    return report, capture.out.getvalue(), capture.err.getvalue()


class CaptureStd:
    """stdout/stderr capture usable in a module-scoped fixture (capsys is per test)."""

    def __init__(self, patch):
        import io
        import sys
        self.out, self.err = io.StringIO(), io.StringIO()
        patch.setattr(sys, 'stdout', self.out)
        patch.setattr(sys, 'stderr', self.err)


# --- end to end -------------------------------------------------------------------------

def test_metrics_json_is_complete(evaluation, run_folder, real_dir):
    report, _, _ = evaluation
    assert report['checkpoint'] == str((run_folder / 'generator.pth').resolve())
    assert report['step'] == 100
    assert report['num_images'] == NUM_IMAGES and report['num_real_images'] == NUM_IMAGES
    assert report['real_image_dir'] == str(real_dir.resolve())
    assert set(report['results']) == RESULT_KEYS
    assert all(math.isfinite(value) for value in report['results'].values())
    assert report['results']['fid'] > 0 and report['results']['is'] >= 1 - 1e-9
    settings = report['settings']
    assert settings['img_size'] == 16 and settings['psi'] == 1 and settings['ema'] == 'ema.pth'
    assert settings['render_options']['nerf_noise'] == 0
    assert settings['render_options']['img_size'] == 16
    assert settings['metric_options'] == {'kid_subsets': 5, 'kid_subset_size': 6, 'is_splits': 2, 'seed': 0}


def test_images_are_kept_as_lossless_pngs_of_the_real_size(evaluation, run_folder):
    report, _, _ = evaluation
    files = list_images(report['generated_image_dir'])
    assert [f.name for f in files] == [f'{i:05d}.png' for i in range(NUM_IMAGES)]
    with Image.open(files[0]) as image:
        assert image.format == 'PNG' and image.size == (16, 16)


def test_prints_one_result_line_and_warns_about_few_images(evaluation):
    _, out, err = evaluation
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('FID ') and 'KID' in lines[0] and 'IS' in lines[0]
    assert 'WARNING' in err and 'covariance is singular' in err


def test_real_statistics_cached_next_to_the_output(evaluation, run_folder):
    report, _, _ = evaluation
    cache = report['real_statistics_cache']
    assert cache.startswith(str((run_folder / 'evaluation').resolve())) and cache.endswith('.npz')
    with np.load(cache) as cached:
        assert cached['features'].shape == (NUM_IMAGES, 2048) and cached['sigma'].shape == (2048, 2048)


def test_calculate_fid_matches_eval_metrics(evaluation, real_dir, monkeypatch):
    # Same folders and same cache folder as eval_metrics: the real statistics are reused.
    use_standin_weights(monkeypatch)
    report, _, _ = evaluation
    fid = fid_evaluation.calculate_fid('Synthetic', report['generated_image_dir'], real_dir=real_dir, device='cpu',
                                       batch_size=4)
    assert fid == pytest.approx(report['results']['fid'], abs=1e-9)


def test_evaluation_settings_use_the_eval_keys():
    import dataclasses
    from inference.rendering import eval_keys_used, evaluation_settings
    from settings import Settings
    from tiny_checkpoint import tiny_curriculum
    settings = Settings.at_step(tiny_curriculum(h_stddev=0.3, h_stddev_eval=0.1, v_stddev=0.2, sample_dist='gaussian',
                                                sample_dist_eval='uniform', last_back=False, eval_last_back=True), 0)
    settings = dataclasses.replace(settings, rendering=dataclasses.replace(settings.rendering, nerf_noise=0.5))
    evaluation, used = evaluation_settings(settings, img_size=128, cameras='eval'), eval_keys_used(settings)
    camera, rendering = evaluation.camera, evaluation.rendering
    assert camera.h_stddev == 0.1 and camera.v_stddev == 0.2 and camera.sample_dist == 'uniform'
    assert rendering.last_back is True and rendering.nerf_noise == 0 and rendering.img_size == 128
    assert evaluation.optimisation == settings.optimisation  # only the renderer's and the camera's change
    assert used == {'h_stddev': 'h_stddev_eval', 'sample_dist': 'sample_dist_eval', 'last_back': 'eval_last_back'}


@pytest.mark.parametrize('eval_last_back', [True, False])
def test_every_evaluation_path_renders_with_eval_last_back(eval_last_back, tmp_path, monkeypatch):
    """Inference views, evaluation images (eval_metrics.py and training's FID/KID/IS), the training
    sample grids and the geometry metrics' renders all reach the ray marcher with eval_last_back."""
    import contextlib
    import generators.renderer
    from checkpoints.builders import build_generator
    from generators.camera_utils import Cameras
    from inference.rendering import inference_rendering, latent_from_seed, render_view
    from metrics.generate import output_images
    from metrics.heads import GeneratorHeads
    from settings import Settings
    from tiny_checkpoint import tiny_curriculum
    from torch_utils.ema import ExponentialMovingAverage
    from training.run_files import save_sample_grids

    curriculum = tiny_curriculum(last_back=False, eval_last_back=eval_last_back, hierarchical_sample=False)
    settings = Settings.at_step(curriculum, 0)
    torch.manual_seed(0)
    generator = build_generator(settings.networks)
    seen = []
    marcher = generators.renderer.fancy_integration

    def spy(*args, last_back=False, **kwargs):
        seen.append(last_back)
        return marcher(*args, last_back=last_back, **kwargs)
    monkeypatch.setattr(generators.renderer, 'fancy_integration', spy)

    paths = {
        'inference': lambda: render_view(generator, latent_from_seed(generator, 0),
                                         Cameras(yaw=1.57, pitch=1.57, fov=12),
                                         inference_rendering(settings, 4), 10000),
        'evaluation images': lambda: output_images(generator, settings, 0, 1, tmp_path / 'images', num_imgs=1,
                                                   img_size=4),
        'sample grids': lambda: save_sample_grids(tmp_path, 0, generator, ExponentialMovingAverage(generator, 0.9),
                                                  torch.randn(1, settings.networks.latent_dim),
                                                  settings, 4, contextlib.nullcontext),
        'geometry metrics': lambda: GeneratorHeads(generator, settings).render(
            [0], Cameras(yaw=1.57, pitch=1.57, fov=12), 4),
    }
    for name, render in paths.items():
        seen.clear()
        render()
        assert seen and set(seen) == {eval_last_back}, name


# --- bad inputs -------------------------------------------------------------------------

def exit_message(argv):
    with pytest.raises(SystemExit) as exited:
        eval_metrics.main(argv)
    assert exited.value.code not in (0, None)
    return str(exited.value.code)


def test_missing_and_empty_real_dir(run_folder, tmp_path):
    assert 'real-image folder not found' in exit_message(eval_args(run_folder, tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    assert 'holds no images' in exit_message(eval_args(run_folder, tmp_path / 'empty'))


def test_file_that_is_not_a_generator(real_dir, tmp_path):
    (tmp_path / 'generator.pth').write_bytes(b'definitely not a checkpoint')
    message = exit_message(eval_args(tmp_path, real_dir))
    assert message.startswith('eval_metrics.py: error:') and 'generator.pth' in message


def test_failed_download_is_one_clear_message(run_folder, real_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    message = exit_message(eval_args(run_folder, real_dir, '--output_dir', str(tmp_path / 'out')))
    assert 'could not download the FID Inception weights' in message and '--inception_weights' in message


# --- fid_evaluation: training-time helpers ----------------------------------------------

def test_output_images_interleaves_ranks_and_keeps_the_rng(run_folder, tmp_path):
    from checkpoints import load_generator
    generator, settings = load_generator(run_folder / 'generator.pth')
    generator.train()
    wrapped = types.SimpleNamespace(module=generator)  # stands in for DistributedDataParallel
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    for rank in range(2):
        fid_evaluation.output_images(wrapped, settings, rank, 2, tmp_path, num_imgs=5, img_size=8)
    torch.testing.assert_close(torch.rand(3), expected_next)  # training's random stream is untouched
    assert generator.training
    assert [f.name for f in list_images(tmp_path)] == [f'{i:05d}.png' for i in range(5)]
    with Image.open(tmp_path / '00004.png') as image:
        assert image.size == (8, 8)


def test_setup_evaluation_writes_real_images_once(tmp_path, monkeypatch):
    from synthetic.dataset import make_synthetic_dataset
    make_synthetic_dataset(str(tmp_path / 'synthetic'), 7, img_size=16, seed=0, progress=False)
    monkeypatch.chdir(tmp_path)
    real_dir = fid_evaluation.setup_evaluation('Synthetic', 'generated', target_size=8, num_imgs=5,
                                               dataset_path=str(tmp_path / 'synthetic'))
    assert real_dir == 'EvalImages/Synthetic_real_images_8'
    assert [f.name for f in list_images(real_dir)] == [f'{i:05d}.png' for i in range(5)]
    with Image.open(Path(real_dir) / '00000.png') as image:
        assert image.size == (8, 8) and image.mode == 'RGB'
    assert (tmp_path / 'generated').is_dir()
    before = (Path(real_dir) / '00000.png').stat().st_mtime_ns
    fid_evaluation.main(['--dataset', 'Synthetic', '--img_size', '8', '--num_imgs', '5'])  # already there
    assert (Path(real_dir) / '00000.png').stat().st_mtime_ns == before
    fid_evaluation.main(['--dataset', 'Synthetic', '--img_size', '8', '--num_imgs', '3', '--real_dir', 'mine',
                         '--dataset_path', str(tmp_path / 'synthetic')])
    assert len(list_images(tmp_path / 'mine')) == 3


def test_setup_evaluation_reports_a_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='nothing'):
        fid_evaluation.main(['--dataset', 'CelebA', '--img_size', '8', '--num_imgs', '3',
                             '--dataset_path', str(tmp_path / 'nothing' / '*.jpg')])


def test_training_compares_with_real_images_of_its_own_dataset(tmp_path, monkeypatch):
    """A run on the default synthetic heads on white gets real images on white, in a folder of their own
    (the grey heads' folder has another name)."""
    import curriculums
    from settings import Settings
    from training.evaluation import real_image_folder
    monkeypatch.chdir(tmp_path)
    curriculum = {**curriculums.SYNTHETIC_CPU, 'synthetic_size': 16, 'synthetic_count': 6}
    real_dir = real_image_folder(Settings.at_step(curriculum, 0), 8, 4)
    assert Path(real_dir) == Path('EvalImages/synthetic_16_white_real_images_8')
    images = [np.asarray(Image.open(path)) for path in list_images(real_dir)]
    assert len(images) == 4 and all(image.shape == (8, 8, 3) for image in images)
    assert min(int(image[0, 0].min()) for image in images) >= 250  # the white background, not grey


def test_a_synthetic_folder_from_the_environment_does_not_borrow_the_default_folders_name(tmp_path, monkeypatch):
    """$PIGAN_SYNTHETIC_PATH names the folder a run reads, as --dataset_path does: its real images must not be filed
    under the default heads' name, where the default folder's images would be taken for them."""
    import curriculums
    from settings import Settings
    from synthetic.dataset import make_synthetic_dataset
    from training.evaluation import real_image_folder
    make_synthetic_dataset(str(tmp_path / 'heads'), 5, img_size=16, seed=0, progress=False)
    monkeypatch.setenv('PIGAN_SYNTHETIC_PATH', str(tmp_path / 'heads'))
    monkeypatch.chdir(tmp_path)
    curriculum = {**curriculums.SYNTHETIC_CPU, 'synthetic_size': 16}
    real_dir = real_image_folder(Settings.at_step(curriculum, 0), 8, 4)
    assert Path(real_dir) == Path('EvalImages/Synthetic_real_images_8')  # as with --dataset_path
    assert len(list_images(real_dir)) == 4
