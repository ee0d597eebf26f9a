"""The typed settings of a step (settings.py): built from the staged curriculum, defaults from KEYS only."""

import dataclasses

import pytest

import curriculums
from settings import GROUPS, Settings, check_value, group_keys, render_settings


def test_the_groups_hold_every_key_once():
    keys = [key for group in GROUPS.values() for key in group_keys(group)]
    assert sorted(keys) == sorted(curriculums.KEYS) and len(keys) == len(set(keys))


def test_every_default_has_its_keys_type():
    for key, entry in curriculums.KEYS.items():
        if entry.default is not curriculums.REQUIRED:
            assert check_value(key, entry.default) == entry.default, key


def test_every_shipped_stage_builds_and_round_trips():
    for name in curriculums.CURRICULA:
        curriculum = curriculums.get(name)
        for step in curriculums.stage_steps(curriculum):
            settings = Settings.at_step(curriculum, step)
            assert Settings.from_metadata(settings.as_metadata()) == settings


def test_stages_inherit_and_left_out_keys_take_the_tables_default():
    carla = Settings.at_step(curriculums.get('CARLA'), 60000)
    assert (carla.rendering.img_size, carla.optimisation.batch_size, carla.rendering.white_back) == (128, 10, True)
    assert carla.rendering.last_back is curriculums.KEYS['last_back'].default
    assert carla.patches.patch_size is None and carla.losses.disc_fake_pose is True
    assert carla.optimisation.betas == (0, 0.9)


def test_settings_are_frozen():
    settings = Settings.at_step(curriculums.get('CelebA'), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.rendering.num_steps = 3
    noisy = dataclasses.replace(settings.rendering, nerf_noise=0.5)
    assert settings.rendering.nerf_noise == 0 and noisy.nerf_noise == 0.5


def test_bad_curricula_fail_when_built():
    celeba = curriculums.extract_metadata(curriculums.get('CelebA'), 0)
    with pytest.raises(curriculums.ConfigError, match="does not set 'fov'"):
        Settings.from_metadata({k: v for k, v in celeba.items() if k != 'fov'})
    with pytest.raises(curriculums.ConfigError, match="num_steps must be int, not '12'"):
        Settings.from_metadata({**celeba, 'num_steps': '12'})
    with pytest.raises(curriculums.ConfigError, match="white_back must be bool, not 1"):
        Settings.from_metadata({**celeba, 'white_back': 1})
    with pytest.raises(curriculums.ConfigError, match="did you mean 'img_size'"):
        Settings.from_metadata({**celeba, 'img_sise': 64})
    assert Settings.from_metadata({**celeba, 'betas': [0, 0.99]}).optimisation.betas == (0, 0.99)  # JSON's list


def test_the_generators_keyword_form_is_checked():
    keywords = dict(img_size=4, fov=12, ray_start=0.8, ray_end=1.2, num_steps=3)
    rendering, camera = render_settings({**keywords, 'batch_size': 2, 'nerf_noise': 0.5})  # others not read
    assert (rendering.num_steps, rendering.nerf_noise, camera.sample_dist) == (3, 0.5, None)
    with pytest.raises(TypeError, match="'hierarchical_sampling'.*did you mean 'hierarchical_sample'"):
        render_settings({**keywords, 'hierarchical_sampling': True})
