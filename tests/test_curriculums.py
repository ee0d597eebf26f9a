"""Curriculum semantics, including the original's bugs that are fixed here."""

import pytest

import curriculums
from torch_utils.cli import parse_overrides


def test_stages_inherit_earlier_keys():
    celeba = curriculums.get('CelebA')
    late = curriculums.extract_metadata(celeba, 200000)  # the original lost these at the empty stage
    assert late['batch_size'] == 56 and late['img_size'] == 64 and late['num_steps'] == 12
    carla = curriculums.get('CARLA')
    assert curriculums.extract_metadata(carla, 9999)['img_size'] == 32
    assert curriculums.extract_metadata(carla, 10000)['img_size'] == 64
    assert curriculums.extract_metadata(carla, 250000)['batch_size'] == 10


def test_original_values_are_kept():
    celeba = curriculums.extract_metadata(curriculums.get('CelebA'), 0)
    assert (celeba['gen_lr'], celeba['disc_lr'], celeba['batch_split']) == (6e-5, 2e-4, 2)
    assert (celeba['h_stddev'], celeba['v_stddev'], celeba['pos_lambda']) == (0.3, 0.155, 15)
    assert celeba['discriminator'] == 'CCSEncoderDiscriminator'
    cats = curriculums.extract_metadata(curriculums.get('CATS'), 0)
    assert (cats['num_steps'], cats['sample_dist'], cats['discriminator']) == (24, 'uniform', 'StridedDiscriminator')
    carla = curriculums.extract_metadata(curriculums.get('CARLA'), 0)
    assert (carla['model'], carla['white_back'], carla['sample_dist']) == ('TALLSIREN', True, 'spherical_uniform')


def test_no_hard_coded_dataset_paths():
    # The original pointed CARLA at the cats folder and CATS at the CARLA one, both in home folders.
    for name in curriculums.CURRICULA:
        assert curriculums.get(name)['dataset_path'] is None


def test_upsample_steps():
    carla = curriculums.get('CARLA')
    assert curriculums.next_upsample_step(carla, 0) == 10000
    assert curriculums.next_upsample_step(carla, 10000) == 55000
    assert curriculums.next_upsample_step(carla, 60000) == float('inf')  # the empty stage is no upsample
    assert curriculums.last_upsample_step(carla, 9999) == 0
    assert curriculums.last_upsample_step(carla, 56000) == 55000
    # A stage without img_size used to raise KeyError here.
    assert curriculums.last_upsample_step(carla, 210000) == 55000
    assert curriculums.next_upsample_step(curriculums.get('CelebA'), 0) == float('inf')


def test_get_current_step():
    assert curriculums.get_current_step({'update_epochs': [2, 5]}, 0) == 0
    assert curriculums.get_current_step({'update_epochs': [2, 5]}, 3) == 1
    assert curriculums.get_current_step({'update_epochs': [2, 5]}, 5) == 2


def test_overrides_win_in_every_stage_and_stage_overrides_merge():
    carla = curriculums.apply_overrides(curriculums.get('CARLA'),
                                        parse_overrides(['batch_size=4', 'fov=18', "10000={'num_steps': 8}"]))
    assert curriculums.extract_metadata(carla, 0)['batch_size'] == 4
    assert curriculums.extract_metadata(carla, 60000)['batch_size'] == 4
    assert curriculums.extract_metadata(carla, 60000)['fov'] == 18
    stage = curriculums.extract_metadata(carla, 10000)
    assert stage['num_steps'] == 8 and stage['img_size'] == 64
    assert curriculums.get('CARLA')[0]['batch_size'] == 30  # the module's dict is untouched


def test_parse_overrides_values():
    parsed = parse_overrides(['sample_dist=None', 'betas=(0, 0.99)', 'dataset=Cats', 'r1_lambda=nan', 'x=1e-4'])
    assert parsed['sample_dist'] is None and parsed['betas'] == (0, 0.99) and parsed['dataset'] == 'Cats'
    assert parsed['r1_lambda'] != parsed['r1_lambda'] and parsed['x'] == 1e-4
    with pytest.raises(Exception, match='KEY=VALUE'):
        parse_overrides(['fov'])


def test_unknown_curriculum_is_a_clear_error():
    with pytest.raises(curriculums.ConfigError, match='CelebA'):
        curriculums.get('celeba_typo')
