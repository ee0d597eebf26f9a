"""Hostile and broken checkpoint files, written as an attacker would, for tests/test_hostile_files.py.

Each case is (name, role, builder, expected): the role says where the file goes
(a generator.pth, one of the original release read with --curriculum, an EMA
file, a latent.pt, or one file of a run folder for train.py --load_dir),
builder(path, ctx) writes it and expected is a piece of the one-line refusal,
so a test fails if a later, more generic check caught it.
"""

import copy
import os
import pickle
import shutil
import struct
import sys
import types
import zipfile
from pathlib import Path

import torch

from checkpoints.builders import build_discriminator, build_generator
from checkpoints.official import read_original_pickle
from reference import OFFICIAL_DIR as OFFICIAL
from settings import Settings
from tiny_checkpoint import make_tiny_run
from torch_utils.ema import ExponentialMovingAverage
from training import run_files
from training.training_loop import make_optimizers, rng_state

P = pickle  # opcode constants


# --- writing files ----------------------------------------------------------------

def write_archive(path, pickle_bytes, records=None, compression=zipfile.ZIP_STORED):
    """A torch.save-style zip: archive/data.pkl, archive/data/<key> and the usual small records."""
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('archive/data.pkl', pickle_bytes)
        archive.writestr('archive/byteorder', 'little')
        archive.writestr('archive/version', '3\n')
        for key, data in (records or {}).items():
            archive.writestr(f'archive/data/{key}', data, compress_type=compression)


def opcodes(*parts):
    """A protocol-2 pickle from raw opcode bytes."""
    return P.PROTO + b'\x02' + b''.join(parts) + P.STOP


def unicode(text):
    data = text.encode()
    return P.BINUNICODE + struct.pack('<I', len(data)) + data


def global_(module, name):
    return P.GLOBAL + f'{module}\n{name}\n'.encode()


def storage_id(key, numel, storage='FloatStorage'):
    """The persistent id of a storage: ('storage', torch.<storage>, key, 'cpu', numel), then BINPERSID."""
    size = P.BININT + struct.pack('<i', numel) if numel < 2**31 else P.LONG1 + bytes([8]) + numel.to_bytes(8, 'little')
    return (P.MARK + unicode('storage') + global_('torch', storage) + unicode(key) + unicode('cpu') + size
            + P.TUPLE + P.BINPERSID)


def tensor_pickle(key, numel, size):
    """_rebuild_tensor_v2(storage key, 0, size, stride, False, OrderedDict()) as the whole pickle."""
    stride = []
    running = 1
    for dim in reversed(size):
        stride.insert(0, running)
        running *= dim
    ints = lambda values: P.MARK + b''.join(P.BININT + struct.pack('<i', v) for v in values) + P.TUPLE  # noqa: E731
    return opcodes(global_('torch._utils', '_rebuild_tensor_v2'),
                   P.MARK, storage_id(key, numel),
                   P.BININT + struct.pack('<i', 0), ints(size), ints(stride), P.NEWFALSE,
                   global_('collections', 'OrderedDict'), P.EMPTY_TUPLE, P.REDUCE,
                   P.TUPLE, P.REDUCE)


class NamedPickler(pickle._Pickler):
    """Pickler that writes any class with a `pickled_name` as that GLOBAL, so files can name classes
    (the original release's, or a stranger's) that need not exist here."""

    def save_global(self, obj, name=None):
        pickled = getattr(obj, 'pickled_name', None)
        if pickled is None:
            return super().save_global(obj, name)
        module, _, qualname = pickled.rpartition('.')
        self.write(P.GLOBAL + f'{module}\n{qualname}\n'.encode())
        self.memoize(obj)


def save_named(obj, path):
    torch.save(obj, path, pickle_module=types.SimpleNamespace(Pickler=NamedPickler, __name__='pickle'))


def named_class(name, **methods):
    return type(name.rsplit('.', 1)[-1], (), {'pickled_name': name, **methods})


def as_original(tree, classes=None, made=None):
    """The official loader's stub tree back as objects that pickle under the original class names
    (cycles kept: a stub met again is the same object)."""
    classes = {} if classes is None else classes
    made = {} if made is None else made
    if hasattr(tree, 'original_name'):
        if id(tree) in made:
            return made[id(tree)]
        cls = classes.setdefault(tree.original_name, named_class(tree.original_name))
        obj = made[id(tree)] = cls.__new__(cls)
        obj.__dict__.update({key: as_original(value, classes, made) for key, value in tree.state.items()})
        return obj
    if isinstance(tree, dict):
        return type(tree)((key, as_original(value, classes, made)) for key, value in tree.items())
    if isinstance(tree, list):
        return [as_original(value, classes, made) for value in tree]
    return tree


class Payload:
    """Unpickling this would run a shell command creating the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f'touch {self.sentinel}',))


def save_sneaky(path, sentinel):
    """A file naming a class of a module that exists only while saving, whose __setstate__ would run."""
    module = types.ModuleType('stranger_code')

    class Sneaky:
        def __setstate__(self, state):
            Path(sentinel).touch()

    Sneaky.__module__, Sneaky.__qualname__ = module.__name__, 'Sneaky'
    module.Sneaky = Sneaky
    sys.modules[module.__name__] = module
    try:
        torch.save({'weights': torch.zeros(2), 'extra': Sneaky()}, path)
    finally:
        del sys.modules[module.__name__]


# --- the valid files the cases start from -------------------------------------------

def make_valid_run(folder):
    """A complete tiny run folder (all of train.py's files, as if saved at step 100) and a latent.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    generator_path = make_tiny_run(folder, step=100)
    checkpoint = torch.load(generator_path, weights_only=True)
    curriculum = checkpoint['curriculum']
    settings = Settings.at_step(curriculum, 100)
    torch.manual_seed(0)
    generator, discriminator = build_generator(settings.networks), build_discriminator(settings)
    generator.load_state_dict(checkpoint['state_dict'])
    optimizer_G, optimizer_D = make_optimizers(generator, discriminator, settings.optimisation)
    for optimizer, module in ((optimizer_G, generator), (optimizer_D, discriminator)):
        for p in module.parameters():  # one step of Adam, so its state holds moments
            p.grad = torch.zeros_like(p)
        optimizer.step()
    run_files.save_checkpoint(folder, dict(
        generator=generator, discriminator=discriminator, ema=ExponentialMovingAverage(generator, 0.999),
        ema2=ExponentialMovingAverage(generator, 0.9999), optimizer_G=optimizer_G, optimizer_D=optimizer_D,
        scaler=torch.amp.GradScaler('cpu', enabled=False), step=100, epoch=1, epoch_position=0,
        curriculum=curriculum, curriculum_name='SPATIALSIRENBASELINE', options={},
        rng_states=[rng_state(torch.device('cpu'))], rank_param_digests=['0']))
    frequencies, phase_shifts = generator.siren.mapping_network(torch.randn(1, settings.networks.latent_dim))
    torch.save({'frequencies': frequencies.detach(), 'phase_shifts': phase_shifts.detach()}, folder / 'latent.pt')
    return folder


class Context:
    def __init__(self, valid, sentinel):
        self.valid, self.sentinel = valid, sentinel

    def load(self, name):
        return torch.load(self.valid / name, weights_only=True)

    def modified(self, name, change):
        """The valid file's content after change(content) edited it in place."""
        value = copy.deepcopy(self.load(name))
        change(value)
        return value

    def official(self, name):
        return read_original_pickle(OFFICIAL / name, name)


# --- the cases ---------------------------------------------------------------------

def big_dict_of_tuples(path, ctx):
    """A dict of 50,000 tuple keys: crafted to collide, inserting them would take quadratic time."""
    items = b''.join(P.BININT + struct.pack('<i', i) + P.BININT + struct.pack('<i', i) + P.TUPLE2 + P.NONE
                     + P.SETITEM for i in range(50_000))
    write_archive(path, opcodes(P.EMPTY_DICT, items))


def set_of_tuples(path, ctx):
    items = b''.join(P.BININT + struct.pack('<i', i) + P.BININT1 + b'\x00' + P.TUPLE2 for i in range(50_000))
    write_archive(path, opcodes(global_('builtins', 'set'), P.EMPTY_LIST, P.MARK, items, P.APPENDS,
                                P.TUPLE1, P.REDUCE))


def zip_bomb(path, ctx):
    write_archive(path, tensor_pickle('0', 5_000_000, [5_000_000]), {'0': bytes(20_000_000)},
                  compression=zipfile.ZIP_DEFLATED)


def many_records(path, ctx):
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('archive/data.pkl', opcodes(P.NONE))
        for i in range(10_001):
            archive.writestr(f'archive/data/{i}', b'')


def bzip2_record(path, ctx):
    write_archive(path, tensor_pickle('0', 4, [4]), {'0': bytes(16)}, compression=zipfile.ZIP_BZIP2)


def state_change(change):
    return lambda path, ctx: torch.save(ctx.modified('generator.pth', change), path)


def with_metadata_assign(checkpoint):
    state = checkpoint['state_dict']
    state['siren.final_layer.weight'] = torch.zeros(7, 7)
    state._metadata = {'': {'assign_to_params_buffers': True}, 'siren.final_layer': {'assign_to_params_buffers': True}}


def curriculum_cycle(checkpoint):
    loop = []
    loop.append(loop)
    checkpoint['curriculum']['betas'] = loop


def curriculum_fan_out(checkpoint):
    """Ten levels of 1,000 references to the same list: a few kB that stand for 10**30 values."""
    level = [0]
    for _ in range(10):
        level = [level] * 1000
    checkpoint['curriculum']['betas'] = level


def first_key(mapping):
    return next(iter(mapping))


def official_change(change, name='generator.pth'):
    """A builder: the original release's `name` with change(tree) applied to its object tree."""
    def build(path, ctx):
        tree = ctx.official(name)
        change(tree)
        save_named(as_original(tree), path)
    build.reads_official = True
    return build


def copy_official(path, ctx):
    shutil.copyfile(OFFICIAL / 'generator.pth', path)


copy_official.reads_official = True


def first_layer_200000_wide(tree):
    """The SIREN's first layer 200000 wide: the width read from the weights is out of range."""
    layer = tree.state['_modules']['siren'].state['_modules']['network'].state['_modules']['0'].state['_modules']
    layer['layer'].state['_parameters']['weight'] = torch.zeros(200_000, 3)


def modules_cycle(tree):
    tree.state['_modules']['siren'].state['_modules']['loop'] = tree


def modules_deep(tree):
    node = tree.state['_modules']['siren']
    for _ in range(100):
        child = type(node)()
        child.state = {'_modules': {}, '_parameters': {}, '_buffers': {}}
        node.state['_modules']['deeper'] = child
        node = child


def optimizer_wrong_shapes(state):
    first = state['state'][0]
    first['exp_avg'] = torch.zeros(3, 3)


def rng_as_floats(state):
    state['rng_states'] = [{'cpu': torch.zeros(10)}]


CASES = [
    # name, role, builder, expected piece of the message
    # Code execution: nothing may run.
    ('os_system', 'generator', lambda p, c: torch.save({'model': Payload(c.sentinel)}, p), 'system'),
    ('foreign_setstate', 'generator', lambda p, c: save_sneaky(p, c.sentinel), 'stranger_code.Sneaky'),
    ('builtins_eval', 'generator', lambda p, c: write_archive(p, opcodes(
        global_('builtins', 'eval'), unicode(f"__import__('os').system('touch {c.sentinel}')"), P.TUPLE1,
        P.REDUCE)), 'builtins.eval'),
    ('ema_payload', 'ema', lambda p, c: torch.save([Payload(c.sentinel)], p), 'system'),
    ('latent_payload', 'latent', lambda p, c: torch.save({'frequencies': Payload(c.sentinel)}, p), 'system'),
    ('optimizer_payload', 'run:optimizer_G.pth', lambda p, c: torch.save({'state': Payload(c.sentinel)}, p),
     'system'),
    # Broken files.
    ('empty_file', 'generator', lambda p, c: p.write_bytes(b''), 'truncated or not a PyTorch checkpoint'),
    ('truncated_zip', 'generator', lambda p, c: p.write_bytes((c.valid / 'generator.pth').read_bytes()[:5000]),
     'truncated'),
    ('legacy_format', 'generator', lambda p, c: torch.save({'a': 1}, p, _use_new_zipfile_serialization=False),
     'before 1.6'),
    ('bad_memo', 'generator', lambda p, c: write_archive(p, opcodes(P.BINGET + b'\x07')), 'memo entry 7'),
    ('stack_underflow', 'generator', lambda p, c: write_archive(p, opcodes(P.TUPLE2)), 'stack underflow'),
    ('setitem_without_dict', 'generator', lambda p, c: write_archive(p, opcodes(P.NONE, P.NONE, P.SETITEM)),
     'stack underflow'),
    ('no_stop', 'generator', lambda p, c: write_archive(p, opcodes(P.NONE)[:-1]), 'malformed'),
    ('persistent_id_string', 'generator', lambda p, c: write_archive(p, opcodes(unicode('x'), P.BINPERSID)),
     'persistent id that is not a storage'),
    ('persistent_id_int_key', 'generator', lambda p, c: write_archive(p, opcodes(
        P.MARK, unicode('storage'), global_('torch', 'FloatStorage'), P.BININT1 + b'\x00', unicode('cpu'),
        P.BININT1 + b'\x04', P.TUPLE, P.BINPERSID)), 'malformed storage reference'),
    ('protocol_4_frame', 'generator', lambda p, c: write_archive(p, pickle.dumps({'a': 1}, protocol=4)),
     'opcode FRAME'),
    ('odd_global', 'generator', lambda p, c: write_archive(p, opcodes(global_('torch', 'Tensor.__class__'))),
     'torch.Tensor.__class__'),
    # Memory: declared sizes beyond the file.
    ('huge_storage', 'generator', lambda p, c: write_archive(p, tensor_pickle('0', 10**11, [10**5, 10**6]),
                                                             {'0': bytes(16)}), 'declares 100000000000 elements'),
    ('missing_storage_record', 'generator', lambda p, c: write_archive(p, tensor_pickle('0', 4, [4])),
     'lacks'),
    ('tensor_beyond_storage', 'generator', lambda p, c: write_archive(p, tensor_pickle('0', 4, [10**5, 10**5]),
                                                                      {'0': bytes(16)}), 'damaged'),
    # Well-formed opcode streams that torch's unpickler still refuses: its error becomes the one line.
    ('reduce_type_error', 'generator', lambda p, c: write_archive(p, opcodes(
        global_('collections', 'OrderedDict'), P.BININT1 + b'\x05', P.REDUCE)), 'damaged'),
    ('rebuild_tensor_no_args', 'generator', lambda p, c: write_archive(p, opcodes(
        global_('torch._utils', '_rebuild_tensor_v2'), P.EMPTY_TUPLE, P.REDUCE)), 'damaged'),
    ('zip_bomb', 'generator', zip_bomb, 'zip bomb'),
    ('bzip2_record', 'generator', bzip2_record, 'compression method'),
    ('many_records', 'generator', many_records, 'records, more than'),
    # Time: pathological opcode streams.
    ('too_many_opcodes', 'generator', lambda p, c: write_archive(p, opcodes(
        P.EMPTY_LIST, (P.MARK + P.NONE + P.APPENDS) * 100_001)), 'more than 300000 opcodes'),
    ('deep_marks', 'generator', lambda p, c: write_archive(p, opcodes(P.MARK * 5000)), 'nests deeper'),
    ('memo_flood', 'generator', lambda p, c: write_archive(p, opcodes(
        P.NONE, b''.join(P.LONG_BINPUT + struct.pack('<I', i) for i in range(200_001)))), 'memoizes more than'),
    ('dict_of_tuple_keys', 'generator', big_dict_of_tuples, 'dict keys other than names'),
    ('set_of_tuples', 'generator', set_of_tuples, 'builds a set'),
    # This project's format, wrong structures.
    ('step_as_string', 'generator', state_change(lambda c: c.update(step='100')), 'step must be a whole number'),
    ('state_dict_list', 'generator', state_change(lambda c: c.update(state_dict=[1, 2])), 'not a dict'),
    ('state_missing_key', 'generator', state_change(lambda c: c['state_dict'].pop('siren.final_layer.bias')),
     'missing siren.final_layer.bias'),
    ('state_extra_key', 'generator', state_change(lambda c: c['state_dict'].update(extra=torch.zeros(1))),
     'unexpected extra'),
    ('state_wrong_shape', 'generator', state_change(lambda c: c['state_dict'].update(
        {'siren.final_layer.weight': torch.zeros(3, 3)})), 'has shape (3, 3)'),
    ('state_not_tensor', 'generator', state_change(lambda c: c['state_dict'].update(
        {'siren.final_layer.weight': 'weights'})), 'not a dense tensor'),
    ('state_int_tensor', 'generator', state_change(lambda c: c['state_dict'].update(
        {'siren.final_layer.bias': torch.zeros(3, dtype=torch.int64)})), 'dtype torch.int64'),
    ('metadata_assign', 'generator', state_change(with_metadata_assign), 'has shape (7, 7)'),
    ('nan_weights', 'generator', state_change(lambda c: c['state_dict']['siren.final_layer.bias'].fill_(
        float('nan'))), 'NaN or Inf'),
    ('hidden_dim_huge', 'generator', state_change(lambda c: c['curriculum'].update(hidden_dim=200_000)),
     'hidden_dim=200000'),
    ('no_curriculum', 'generator', state_change(lambda c: c.update(curriculum=None)),
     'does not record its curriculum'),
    ('num_steps_huge', 'generator', state_change(lambda c: c['curriculum'][0].update(num_steps=10**9)),
     'num_steps=1000000000'),
    ('img_size_string', 'generator', state_change(lambda c: c['curriculum'][0].update(img_size='64')),
     'img_size must be a whole number'),
    ('density_scale_string', 'generator', state_change(lambda c: c['curriculum'].update(density_scale='5')),
     "density_scale must be a positive number up to 1e+06, not '5'"),
    ('density_scale_huge', 'generator', state_change(lambda c: c['curriculum'].update(density_scale=1e308)),
     'density_scale must be a positive number'),
    ('density_scale_in_a_stage', 'generator', state_change(lambda c: c['curriculum'][0].update(density_scale=2.0)),
     "stage 0 sets 'density_scale', which holds for the whole run"),
    ('unknown_model', 'generator', state_change(lambda c: c['curriculum'].update(model='__class__')),
     "unknown model '__class__'"),
    ('curriculum_cycle', 'generator', state_change(curriculum_cycle), 'contains itself'),
    ('curriculum_fan_out', 'generator', state_change(curriculum_fan_out), 'holds more than 100000 values'),
    ('ema_shadow_strings', 'ema', lambda p, c: torch.save(c.modified('ema.pth', lambda e: e.update(
        shadow={k: 'x' for k in e['shadow']})), p), 'not a dense tensor'),
    ('ema_wrong_shape', 'ema', lambda p, c: torch.save(c.modified('ema.pth', lambda e: e['shadow'].update(
        {first_key(e['shadow']): torch.zeros(2)})), p), 'has shape (2,)'),
    ('ema_decay_string', 'ema', lambda p, c: torch.save(c.modified('ema.pth', lambda e: e.update(decay='0.9')),
                                                         p), 'decay must be a number'),
    # The original release's format, wrong structures.
    ('modules_not_dict', 'generator', official_change(lambda t: t.state.update(_modules=[1])),
     "the generator's _modules is a list"),
    ('modules_cycle', 'generator', official_change(modules_cycle), 'contain themselves'),
    ('modules_deep', 'generator', official_change(modules_deep), 'nest deeper'),
    ('generator_without_state', 'generator', lambda p, c: write_archive(p, opcodes(
        global_('generators.generators', 'ImplicitGenerator3d'), P.EMPTY_TUPLE, P.NEWOBJ)),
     'SIREN is not one of'),
    ('official_without_curriculum', 'generator', copy_official,
     'does not record its curriculum'),
    ('official_hidden_dim_huge', 'official_generator', official_change(first_layer_200000_wide),
     'hidden_dim=200000'),
    ('official_step_string', 'generator', official_change(lambda t: t.state.update(step='41000')),
     'step must be a whole number'),
    ('official_ema_not_tensors', 'official_ema', official_change(lambda t: t.state.update(
        shadow_params=['x'] * len(t.state['shadow_params'])), 'ema.pth'), 'not a dense tensor'),
    ('official_ema_wrong_shape', 'official_ema', official_change(lambda t: t.state['shadow_params'].__setitem__(
        0, torch.zeros(1)), 'ema.pth'), 'has shape (1,)'),
    # latent.pt of inverse_render.py.
    ('latent_wrong_shape', 'latent', lambda p, c: torch.save({'frequencies': torch.zeros(1, 5),
                                                              'phase_shifts': torch.zeros(1, 5)}, p), 'needs (1,'),
    # The other files of a run folder (train.py --load_dir).
    ('optimizer_list', 'run:optimizer_G.pth', lambda p, c: torch.save([1, 2], p), 'not a dict'),
    ('optimizer_wrong_shapes', 'run:optimizer_G.pth', lambda p, c: torch.save(
        c.modified('optimizer_G.pth', optimizer_wrong_shapes), p), 'has shape (3, 3)'),
    ('scaler_string', 'run:scaler.pth', lambda p, c: torch.save('scale', p), 'not a dict'),
    ('rng_state_floats', 'run:training_state.pth', lambda p, c: torch.save(
        c.modified('training_state.pth', rng_as_floats), p), 'not a random generator state'),
    ('discriminator_name', 'run:discriminator.pth', lambda p, c: torch.save(c.modified(
        'discriminator.pth', lambda d: d.update(discriminator='__class__')), p), 'unknown discriminator'),
    ('training_step_string', 'run:training_state.pth', lambda p, c: torch.save(c.modified(
        'training_state.pth', lambda s: s.update(step='100')), p), 'step must be a whole number'),
    ('run_without_curriculum', 'run:generator.pth', state_change(lambda c: c.update(curriculum=None)),
     'does not record its curriculum'),
]


def needs_official(role, build):
    return role.startswith('official') or getattr(build, 'reads_official', False)


def write_cases(folder, valid, sentinel):
    """Writes every case under folder/<name>/ in its role's place; returns {name: (role, path, expected)}.

    Without the original release's files (reference.OFFICIAL_DIR), the cases built from them are left out.
    """
    ctx = Context(valid, sentinel)
    written = {}
    for name, role, build, expected in CASES:
        if needs_official(role, build) and not (OFFICIAL / 'generator.pth').exists():
            continue
        case = folder / name
        case.mkdir(parents=True)
        if role.startswith('run:'):
            path = case / role[4:]
            for item in run_files.CHECKPOINT_FILES:
                if item != path.name:
                    (case / item).symlink_to(valid / item)
        elif role == 'official_ema':
            (case / 'generator.pth').symlink_to(OFFICIAL / 'generator.pth')
            path = case / 'ema.pth'
        else:
            path = case / {'generator': 'generator.pth', 'official_generator': 'generator.pth', 'ema': 'ema.pth',
                           'latent': 'latent.pt'}[role]
        build(path, ctx)
        written[name] = (role, path, expected)
    return written
