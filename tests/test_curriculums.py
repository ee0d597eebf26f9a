"""Curriculum semantics, including the original's bugs that are fixed here."""

import io
import tokenize
from pathlib import Path

import pytest

import curriculums
from utils.cli import parse_overrides


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


# --- key check: a key no code reads is an error ------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_curriculum_key_is_valid():
    for name in curriculums.CURRICULA:
        assert curriculums.unknown_keys(curriculums.get(name)) == [], name


def library_names_and_strings():
    """Every identifier and string literal in the code outside curriculums.py, settings.py (which name every key
    to build the typed settings) and the tests."""
    found = set()
    for path in ROOT.rglob('*.py'):
        relative = path.relative_to(ROOT).parts
        if relative[0] in ('tests', 'bench', '.venv') or path.name in ('curriculums.py', 'settings.py'):
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.NAME:
                found.add(token.string)
            elif token.type == tokenize.STRING and token.string[0] in '\'"':
                found.add(token.string.strip('\'"'))
    return found


def test_every_valid_key_is_read_somewhere():
    # A key in the table that no code names would be accepted and do nothing: the failure the check prevents.
    assert set(curriculums.KEYS) - library_names_and_strings() == set()


def test_typo_in_override_names_the_nearest_key():
    with pytest.raises(curriculums.ConfigError,
                       match=r"unknown curriculum key 'hierarchical_sampling'; did you mean 'hierarchical_sample'\?"):
        curriculums.apply_overrides(curriculums.get('CelebA'), parse_overrides(['hierarchical_sampling=False']))
    with pytest.raises(curriculums.ConfigError, match="'img_sise'; did you mean 'img_size'"):
        curriculums.apply_overrides(curriculums.get('CARLA'), parse_overrides(["10000={'img_sise': 128}"]))
    with pytest.raises(curriculums.ConfigError, match="'zzz'; the valid keys are listed in curriculums.KEYS"):
        curriculums.apply_overrides(curriculums.get('CARLA'), {'zzz': 1})


def test_key_table_is_in_the_docstring():
    for key, entry in curriculums.KEYS.items():
        assert f'{key} ' in curriculums.__doc__ and entry.meaning in curriculums.__doc__
    assert 'betas                 tuple, required' in curriculums.__doc__
    assert "synthetic_background  str, default 'grey'" in curriculums.__doc__


def test_recorded_unknown_key_is_dropped_with_a_warning(capsys):
    recorded = {**curriculums.get('CARLA'), 'learnable_dist': False}  # the original's CARLA had it
    recorded[10000] = {**recorded[10000], 'old_stage_key': 1}
    resolved = curriculums.apply_overrides(recorded, {'fov': 18})
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == ["warning: the recorded curriculum sets 'learnable_dist', which no code of this version "
                        "reads; ignored",
                        "warning: the recorded curriculum sets 'old_stage_key', which no code of this version "
                        "reads; ignored"]
    assert 'learnable_dist' not in resolved and 'old_stage_key' not in resolved[10000]
    assert resolved[10000]['img_size'] == 64 and resolved['fov'] == 18


def test_scripts_report_a_typo_as_one_line_and_load_old_recorded_keys(tmp_path, capsys):
    import render_multiview_images
    from checkpoints import load_generator
    from tiny_checkpoint import make_tiny_run
    from utils.cli import run_cli
    run = make_tiny_run(tmp_path, learnable_dist=False)  # a key recorded by an older version
    argv = [str(run), '--set', 'hierarchical_sampling=False', '--device', 'cpu', '--output_dir', str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: render_multiview_images.main(argv))  # as the script's __main__ runs it
    assert exit_info.value.code == ("error: unknown curriculum key 'hierarchical_sampling'; "
                                    "did you mean 'hierarchical_sample'?")
    generator, settings = load_generator(run)
    assert 'learnable_dist' not in settings.as_metadata() and settings.networks.hidden_dim == 16
    assert "sets 'learnable_dist', which no code of this version reads; ignored" in capsys.readouterr().err


def test_train_reports_a_typo_before_starting_any_process(tmp_path):
    import train
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--nproc', '2', '--output_dir', str(tmp_path / 'run'), '--set', 'fade_step=100'])
    assert exit_info.value.code == "error: unknown curriculum key 'fade_step'; did you mean 'fade_steps'?"
    assert not (tmp_path / 'run').exists()


def test_cpu_face_curriculum_is_the_cpu_recipe_with_celebas_camera():
    """CelebA_CPU (prepare_dataset.py's command without a GPU): SYNTHETIC_CPU's networks, schedule and pose loss
    (none: unposed, CelebA's 15 collapsed these networks), CelebA's camera, photos from an ImageFolder with flips,
    32x32 at the end."""
    from checkpoints.builders import build_discriminator, build_generator
    from settings import Settings
    faces, recipe, celeba = (curriculums.get(name) for name in ('CelebA_CPU', 'SYNTHETIC_CPU', 'CelebA'))
    for key in ('fov', 'ray_start', 'ray_end', 'h_mean', 'v_mean', 'h_stddev', 'v_stddev', 'sample_dist'):
        assert faces[key] == celeba[key], key
    for key in ('discriminator', 'hidden_dim', 'density_scale', 'fade_steps', 'pos_lambda'):
        assert faces[key] == recipe[key], key
    assert {step: faces[step] for step in curriculums.stage_steps(faces)} == {
        step: recipe[step] for step in curriculums.stage_steps(recipe)}
    assert faces['dataset'] == 'ImageFolder' and faces['random_flip'] and not faces.get('white_back', False)
    assert not any(str(key).startswith('synthetic_') for key in faces)
    sizes = [curriculums.extract_metadata(faces, step)['img_size'] for step in curriculums.stage_steps(faces)]
    assert sizes[-1] == 32 and sizes == sorted(sizes)
    settings = Settings.at_step(faces, 0)
    build_generator(settings.networks), build_discriminator(settings)
