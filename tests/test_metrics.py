"""The metrics package: FID against pytorch-fid's own command, KID and IS against hand-computed
values, the real-statistics cache and the Inception weights' error messages. No network:
stand-in weights sit in a temporary TORCH_HOME and downloads are made to fail."""

import math
import os
import re
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch

from inception_standin import standin_torch_home, use_standin_weights, write_random_pngs
from metrics import (ImageFolderError, InceptionWeightsError, MetricInputs, calc_metric, folder_metrics,
                     list_metrics)
from metrics.fid import fid_from_statistics
from metrics.features import fid_images
from metrics.image_files import require_images
from utils.media import list_images
from metrics.inception import load_inception
from metrics.inception_score import inception_score
from metrics.kid import kernel_inception_distance, mmd2_unbiased
from metrics.real_stats import real_statistics

NUM_IMAGES = 12
BATCH_SIZE = 4


@pytest.fixture
def standin(monkeypatch):
    return use_standin_weights(monkeypatch)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('fid_folders')
    return (write_random_pngs(root / 'a', NUM_IMAGES, seed=1),
            write_random_pngs(root / 'b', NUM_IMAGES, seed=2, brightness=0.3))


@pytest.fixture(scope='module')
def ours(folders, tmp_path_factory):
    """FID of folder a (as real) against b with this package, plus the real statistics."""
    with pytest.MonkeyPatch.context() as patch:
        use_standin_weights(patch)
        inception = load_inception('cpu')
        results, real = folder_metrics(folders[0], folders[1], tmp_path_factory.mktemp('cache'), inception,
                                       ['fid'], batch_size=BATCH_SIZE)
    return results['fid'], real


# --- Inception --------------------------------------------------------------------------

def test_features_match_pytorch_fid_network_and_are_not_degenerate(standin, folders):
    from pytorch_fid.inception import InceptionV3
    images = torch.stack([fid_images(list_images(folders[0]))[i][0] for i in range(2)])
    inception = load_inception('cpu')
    with torch.no_grad():
        features, logits = inception.network(images)
        reference = InceptionV3([3]).eval()(images)[0].flatten(1)
    torch.testing.assert_close(features, reference, rtol=1e-5, atol=1e-5)
    fc_weight = torch.load(standin, weights_only=True)['fc.weight']
    torch.testing.assert_close(logits, features @ fc_weight.t(), rtol=1e-4, atol=1e-4)  # no bias
    assert features.var(0).mean() > 1e-3
    assert logits.var(0).mean() > 1e-3


def test_fid_equals_pytorch_fid_command(folders, ours):
    env = dict(os.environ, TORCH_HOME=str(standin_torch_home()), OMP_NUM_THREADS='1')
    command = [sys.executable, '-m', 'pytorch_fid', str(folders[0]), str(folders[1]), '--device', 'cpu',
               '--batch-size', str(BATCH_SIZE), '--num-workers', '0']
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = float(re.search(r'FID:\s+(\S+)', done.stdout).group(1))
    fid, _ = ours
    assert fid > 1  # the folders differ, so equality is not trivial
    assert abs(fid - reference) < 1e-3


def test_fid_of_a_folder_against_itself_is_zero(ours):
    fid, real = ours
    active = np.flatnonzero(real.sigma.diagonal() > 0)  # the stand-in's constant features add nothing
    mu, sigma = real.mu[active], real.sigma[np.ix_(active, active)]
    assert abs(fid_from_statistics(mu, sigma, mu, sigma)) < 1e-3


def test_fid_warns_about_singular_covariance(capsys):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(12, 16)), rng.normal(size=(12, 16)) + 1
    calc_metric('fid', make_inputs(real, fake, np.zeros((12, 5))))  # 12 images, 16 dimensions
    assert 'WARNING: 12 real images are fewer than the 16 feature dimensions' in capsys.readouterr().err
    calc_metric('fid', make_inputs(real[:, :4], fake[:, :4], np.zeros((12, 5))))
    assert 'WARNING' not in capsys.readouterr().err


def make_inputs(real, fake, logits, **options):
    from metrics.registry import MetricInputs
    return MetricInputs(real.mean(0), np.cov(real, rowvar=False), real, fake, logits, options)


# --- KID --------------------------------------------------------------------------------

def hand_mmd2(x, y):
    """Unbiased MMD² with (xᵀy/d + 1)³, written out as loops."""
    m, d = len(x), len(x[0])
    k = lambda a, b: (sum(ai * bi for ai, bi in zip(a, b)) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_hand_computation():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    expected = hand_mmd2(x.tolist(), y.tolist())
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # subsets of the full size are permutations of the sets: every subset gives the same value
    mean, std = kernel_inception_distance(x, y, num_subsets=4, subset_size=10)
    assert mean == pytest.approx(expected, rel=1e-12) and std == pytest.approx(0, abs=1e-12)


def test_kid_of_identical_constant_features_is_zero():
    x = np.full((5, 3), 0.7)
    assert kernel_inception_distance(x, x.copy(), num_subsets=3) == pytest.approx((0, 0), abs=1e-12)


def test_kid_separates_distributions():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 16))
    same = kernel_inception_distance(real, rng.normal(size=(200, 16)), num_subsets=10, subset_size=100)[0]
    shifted = kernel_inception_distance(real, rng.normal(size=(200, 16)) + 1, num_subsets=10, subset_size=100)[0]
    assert abs(same) < 0.05 * shifted


def test_kid_metric_reports_raw_and_x100():
    rng = np.random.default_rng(1)
    values = calc_metric('kid', make_inputs(rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 1,
                                            np.zeros((6, 4)), kid_subsets=3, kid_subset_size=4))
    assert values['kid_x100'] == pytest.approx(100 * values['kid'])
    assert values['kid_std_x100'] == pytest.approx(100 * values['kid_std'])


# --- Inception Score --------------------------------------------------------------------

def test_inception_score_of_uniform_predictions_is_one():
    assert inception_score(np.zeros((30, 1008))) == pytest.approx((1, 0), abs=1e-12)


def test_inception_score_of_confident_distinct_classes_is_their_number():
    classes = 4
    logits = np.zeros((40, 1008))
    logits[np.arange(40), np.arange(40) % classes] = 60  # every split of 4 holds each class once
    assert inception_score(logits, splits=10) == pytest.approx((classes, 0), abs=1e-9)


def test_inception_score_matches_hand_computation():
    p = [[0.9, 0.1], [0.2, 0.8]]
    p_y = [(p[0][k] + p[1][k]) / 2 for k in range(2)]
    kl = [sum(row[k] * math.log(row[k] / p_y[k]) for k in range(2)) for row in p]
    expected = math.exp(sum(kl) / 2)
    assert inception_score(np.log(p), splits=1) == pytest.approx((expected, 0), rel=1e-12)


def test_inception_score_ignores_classes_that_never_occur():
    logits = np.full((4, 5), -1e4)
    logits[[0, 1, 2, 3], [0, 1, 0, 1]] = 0
    mean, _ = inception_score(logits, splits=1)
    assert mean == pytest.approx(2)


# --- registry ---------------------------------------------------------------------------

def test_registry_names_and_unknown_metric():
    assert list_metrics(MetricInputs) == ['fid', 'is', 'kid']
    assert set(list_metrics()) == {'fid', 'is', 'kid', 'pose', 'pose_fd', 'shape', 'mv_consistency', 'inversion'}
    with pytest.raises(ValueError, match='unknown metric'):
        calc_metric('ppl', None)


# --- real-statistics cache --------------------------------------------------------------

class CountingFeatures:
    """Stands in for the Inception pass: features from pixel means, and a call count."""

    def __init__(self):
        self.calls = 0

    def __call__(self, files):
        self.calls += 1
        features = np.stack([np.resize(fid_images([f])[0][0].numpy().mean((1, 2)), 2048) for f in files])
        return features.astype(np.float64), None


def test_real_statistics_cache_reused_until_the_images_change(tmp_path):
    real_dir = write_random_pngs(tmp_path / 'real', 3, size=8)
    compute = CountingFeatures()
    first = real_statistics(real_dir, tmp_path / 'out', compute, 'weights-1')
    assert compute.calls == 1 and not first.reused and first.cache_file.is_file()

    os.utime(real_dir / '000.png', ns=(1, 1))  # a new mtime alone does not invalidate
    second = real_statistics(real_dir, tmp_path / 'out', compute, 'weights-1')
    assert compute.calls == 1 and second.reused
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.sigma, first.sigma)

    write_random_pngs(tmp_path / 'other', 1, size=8, seed=5)
    os.replace(tmp_path / 'other' / '000.png', real_dir / '001.png')  # one image's contents change
    real_statistics(real_dir, tmp_path / 'out', compute, 'weights-1')
    assert compute.calls == 2

    real_statistics(real_dir, tmp_path / 'out', compute, 'weights-2')  # other Inception weights
    assert compute.calls == 3

    (real_dir / '001.png').rename(real_dir / '009.png')  # same bytes, another name
    real_statistics(real_dir, tmp_path / 'out', compute, 'weights-2')
    assert compute.calls == 4


# --- bad inputs -------------------------------------------------------------------------

def test_missing_or_empty_image_folder(tmp_path):
    with pytest.raises(ImageFolderError, match='not found'):
        require_images(tmp_path / 'nowhere')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('no images')
    with pytest.raises(ImageFolderError, match='holds no images'):
        require_images(tmp_path / 'empty')


def test_failed_download_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    with pytest.raises(InceptionWeightsError) as error:
        load_inception('cpu')
    message = str(error.value)
    assert 'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/' in message
    assert str(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'pt_inception-2015-12-05-6726825d.pth') in message
    assert '--inception_weights' in message


def test_local_weights_file_and_bad_weights_files(tmp_path, monkeypatch):
    weights = standin_torch_home() / 'hub' / 'checkpoints' / 'pt_inception-2015-12-05-6726825d.pth'
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_home'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: pytest.fail('tried to download'))
    loaded = load_inception('cpu', weights_path=weights)
    assert loaded.weights_file == weights
    with pytest.raises(InceptionWeightsError, match='not found'):
        load_inception('cpu', weights_path=tmp_path / 'missing.pth')
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(InceptionWeightsError, match='not a readable'):
        load_inception('cpu', weights_path=tmp_path / 'junk.pth')
