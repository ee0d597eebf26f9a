"""The typed settings of a run at a step: one frozen object, built and checked once from a curriculum.

A curriculum (curriculums.py) stays a plain dict of run keys and stages: that is what a checkpoint
stores and what --set edits. Settings.at_step(curriculum, step) turns the keys in force at a step into
a frozen Settings, in groups that each part of the code reads:

    rendering     Rendering: what the renderer reads (ImplicitGenerator3d.render)
    camera        CameraDistribution: field of view and the training pose distribution
    evaluation    the *_eval keys: how evaluation renders differ from training's
    data          the dataset and its options
    networks      the classes, their widths, the latent
    optimisation  batch, learning rates, Adam, gradient clip, fade-in, generator top-k
    losses        R1, the identity losses, instance noise
    patches       patch training

Every field is a curriculum key (curriculums.KEYS), but Rendering.nerf_noise, which training's schedule
sets at each step. Types and defaults come from KEYS and nowhere else: a key the curriculum leaves out
takes the table's default; a required key left out, or a value of the wrong type, is a ConfigError here,
once, not a KeyError hours into a run. Nothing changes a Settings in place: dataclasses.replace makes a
changed copy. Code past the loading of a curriculum or checkpoint reads attributes (settings.camera.fov);
as_metadata() gives the plain dict of every key back only where a dict must be: a checkpoint's recorded
curriculum, JSON written beside outputs.
"""

import dataclasses
import difflib
import typing

import curriculums
from curriculums import KEYS, REQUIRED, ConfigError


def _group(name, keys, doc, extra=()):
    """A frozen dataclass with one field per curriculum key, typed as in KEYS (extra: other fields)."""
    fields = [(key, KEYS[key].type) for key in keys] + list(extra)
    cls = dataclasses.make_dataclass(name, fields, frozen=True)
    cls.__doc__, cls.__module__ = doc, __name__
    return cls


Rendering = _group('Rendering', ('img_size', 'num_steps', 'ray_start', 'ray_end', 'hierarchical_sample',
                                 'clamp_mode', 'white_back', 'last_back', 'perturb', 'lock_view_dependence',
                                 'fill_mode', 'fast_path'),
                   "What the renderer reads. nerf_noise (not a curriculum key): std of the noise on raw "
                   "density, set by training's schedule at each step, 0 elsewhere.",
                   extra=[('nerf_noise', float, dataclasses.field(default=0.0))])
CameraDistribution = _group('CameraDistribution', ('fov', 'h_mean', 'v_mean', 'h_stddev', 'v_stddev',
                                                   'sample_dist'),
                            "Field of view and the distribution training draws camera poses from.")
Evaluation = _group('Evaluation', ('h_stddev_eval', 'v_stddev_eval', 'sample_dist_eval', 'eval_last_back'),
                    "How evaluation and inference renders differ from training's (None: as in training).")
Data = _group('Data', ('dataset', 'dataset_path', 'random_flip', 'resize_antialias', 'synthetic_size',
                       'synthetic_count', 'synthetic_background'), "The dataset and its options.")
Networks = _group('Networks', ('model', 'generator', 'discriminator', 'latent_dim', 'hidden_dim', 'density_scale',
                               'z_dist'), "The networks' classes and sizes, and the latent's distribution.")
Optimisation = _group('Optimisation', ('batch_size', 'batch_split', 'gen_lr', 'disc_lr', 'betas', 'weight_decay',
                                       'unique_lr', 'grad_clip', 'fade_steps', 'topk_interval', 'topk_v'),
                      "Batches, Adam, gradient clipping, the discriminator's fade-in and generator top-k.")
Losses = _group('Losses', ('r1_lambda', 'z_lambda', 'pos_lambda', 'use_real_poses', 'disc_fake_pose',
                           'instance_noise'), "The weights and choices of the losses.")
PatchTraining = _group('PatchTraining', ('patch_size', 'patch_scale_min'), "Patch training (training/patches.py).")

GROUPS = {'rendering': Rendering, 'camera': CameraDistribution, 'evaluation': Evaluation, 'data': Data,
          'networks': Networks, 'optimisation': Optimisation, 'losses': Losses, 'patches': PatchTraining}


def group_keys(group):
    """The curriculum keys a group holds (its fields that are in KEYS)."""
    return [field.name for field in dataclasses.fields(group) if field.name in KEYS]


def check_value(key, value, source='the curriculum'):
    """value, checked against KEYS[key]'s type (ints pass as floats; a list of betas becomes a tuple)."""
    kind = KEYS[key].type
    allowed = typing.get_args(kind) or (kind,)
    if value is None and type(None) in allowed:
        return value
    if tuple in allowed and isinstance(value, (list, tuple)):
        return tuple(value)
    numbers = (int, float) if float in allowed else (int,) if int in allowed else ()
    if isinstance(value, bool):
        ok = bool in allowed
    else:
        ok = isinstance(value, numbers) or (str in allowed and isinstance(value, str))
    if not ok:
        raise ConfigError(f"{source}: {key} must be {curriculums.type_name(key)}, not {value!r}")
    return value


def complete(metadata, keys=KEYS, source='the curriculum'):
    """{key: value} for each of keys: metadata's value, checked, else the table's default.
    A required key left out is a ConfigError."""
    values = {}
    for key in keys:
        value = metadata[key] if key in metadata else KEYS[key].default
        if value is REQUIRED:
            raise ConfigError(f"{source} does not set {key!r}, which has no default ({KEYS[key].meaning})")
        values[key] = check_value(key, value, source)
    return values


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every curriculum key in force at one step, typed and grouped (see the module docstring)."""
    rendering: Rendering
    camera: CameraDistribution
    evaluation: Evaluation
    data: Data
    networks: Networks
    optimisation: Optimisation
    losses: Losses
    patches: PatchTraining

    @classmethod
    def from_metadata(cls, metadata, source='the curriculum'):
        """From a flat dict of curriculum keys (curriculums.extract_metadata's), defaults filled in; a key
        that is not a curriculum key is a ConfigError naming the nearest."""
        curriculums.check_keys(metadata)
        values = complete(metadata, source=source)
        return cls(**{name: group(**{key: values[key] for key in group_keys(group)})
                      for name, group in GROUPS.items()})

    @classmethod
    def at_step(cls, curriculum, step, source='the curriculum'):
        """The settings in force at step: run keys, then every stage so far in order."""
        return cls.from_metadata(curriculums.extract_metadata(curriculum, step), source)

    def as_metadata(self):
        """Every curriculum key and its value, a plain dict (JSON-able but for betas' tuple): for checkpoints
        and JSON files, which hold plain keys."""
        values = {}
        for name in GROUPS:
            group = getattr(self, name)
            values.update({key: getattr(group, key) for key in group_keys(type(group))})
        return values


# The keywords a generator's forward and staged_forward take in the original's form: the curriculum's
# keys, of which it reads the renderer's and the camera's, and nerf_noise.
GENERATOR_KEYWORDS = set(KEYS) | {'nerf_noise'}


def from_keywords(group, keywords):
    """A group (Rendering, CameraDistribution) from a dict of curriculum keys such as the original's
    `generator(z, **metadata)` passed; a keyword that is neither a curriculum key nor nerf_noise is a
    TypeError naming the nearest, the keys the group does not hold are not read."""
    unknown = sorted(set(keywords) - GENERATOR_KEYWORDS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], GENERATOR_KEYWORDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"unexpected keyword argument {unknown[0]!r} (not a curriculum key){hint}")
    values = complete(keywords, group_keys(group), 'the keyword arguments')
    others = {field.name: keywords[field.name] for field in dataclasses.fields(group)
              if field.name not in KEYS and field.name in keywords}
    return group(**values, **others)


def render_settings(keywords):
    """(Rendering, CameraDistribution) from a dict of curriculum keys (see from_keywords)."""
    return from_keywords(Rendering, keywords), from_keywords(CameraDistribution, keywords)
