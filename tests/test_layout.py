"""The architecture's import rules, read from the source with ast: library code never imports a
top-level script, and neither packages nor modules import each other in a cycle. Imports inside
functions count too (a lazy import is still a dependency)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('checkpoints', 'generators', 'siren', 'discriminators', 'training', 'metrics', 'inference', 'torch_utils',
            'preprocessing', 'synthetic', 'utils')
LIBRARY_TOP_LEVEL = ('curriculums', 'settings', 'datasets')
SCRIPTS = {'train', 'eval_metrics', 'fid_evaluation', 'interpolate_w', 'shape_extraction', 'inverse_render',
           'convert_official_checkpoint', 'viewer', 'prepare_dataset', 'synthetic_dataset'}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def project_modules():
    """{dotted name: path} of every project module: the packages' and the top-level files."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob('*.py')}
    modules.update({path.stem: path for path in ROOT.glob('*.py')})
    return modules


def imported_names(name, path):
    """Dotted names a module imports, relative imports resolved; `from a import b` gives a.b (a module or a name in a)."""
    package = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            yield from (f'{base}.{alias.name}' for alias in node.names)


def import_graph():
    """{module: set of project modules it imports}, each import mapped to the longest project module it names."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(name, path):
            while imported and imported not in modules:
                imported = imported.rpartition('.')[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def is_script(name):
    return name in SCRIPTS or name.startswith('render_')


def is_library(name):
    return name.split('.')[0] in PACKAGES or name in LIBRARY_TOP_LEVEL


def find_cycle(graph):
    """One cycle as a list of nodes [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def package_graph(graph):
    """The import graph between top-level names (packages and top-level modules)."""
    packages = {}
    for name, targets in graph.items():
        source = name.split('.')[0]
        packages.setdefault(source, set()).update(t.split('.')[0] for t in targets if t.split('.')[0] != source)
    return packages


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert 'checkpoints.builders' in graph['checkpoints.loading']  # from .builders import ...
    assert 'training.stopping' in graph['training.distributed']  # inside a function
    assert 'train' in graph and is_script('render_video') and not is_script('datasets')


def test_no_library_module_imports_a_script():
    graph = import_graph()
    offenders = {name: sorted(filter(is_script, targets)) for name, targets in graph.items() if is_library(name)}
    assert {name: scripts for name, scripts in offenders.items() if scripts} == {}


def test_only_train_py_uses_the_training_package():
    """What other scripts share with training (fid_evaluation.py's real-image folders, the metrics
    and their render settings) lives in the library, not in training/."""
    graph = import_graph()
    users = {name for name, targets in graph.items()
             if is_script(name) and any(target.split('.')[0] == 'training' for target in targets)}
    assert users == {'train'}


def test_no_import_cycle_between_modules():
    assert find_cycle(import_graph()) is None


def test_no_import_cycle_between_packages():
    assert find_cycle(package_graph(import_graph())) is None


def test_cycle_finder_finds_cycles():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None
    assert find_cycle(package_graph({'x.one': {'y.two'}, 'y.two': {'x.three'}, 'x.three': set()})) == ['x', 'y', 'x']


# --- the README's layout table ----------------------------------------------------------

PATH_TOKEN = r'[\w.]+(?:/[\w.]*)*(?:\.py|/)'


def readme_layout_paths():
    """Paths the README's Layout block names: first-column entries, with '  file.py' lines inside the
    folder named on the line above them. Description text (after the names) is not read."""
    import re
    text = (ROOT / 'README.md').read_text()
    block = text.split('## Layout', 1)[1].split('```', 2)[1]
    paths, folder = [], ''
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent > 2:
            continue  # a blank line or a description's continuation
        names = re.match(rf'\s*((?:{PATH_TOKEN}(?:,?\s+|$))+)', line)
        if not names:
            continue
        found = re.findall(PATH_TOKEN, names.group(1))
        if indent == 0:
            folder = found[0] if found[0].endswith('/') else ''
            paths += found
        else:
            paths += [folder + name for name in found]
    return paths


def test_readme_layout_matches_the_tree():
    paths = readme_layout_paths()
    assert 'training/schedules.py' in paths and 'generators/' in paths  # the parser reads both kinds of line
    assert [path for path in paths if not (ROOT / path).exists()] == []
    top_level = {path.name for path in ROOT.glob('*.py')}
    top_level |= {f'{path.name}/' for path in ROOT.iterdir()
                  if path.is_dir() and not path.name.startswith(('.', '_')) and any(path.rglob('*.py'))}
    assert top_level - set(paths) == set()
    listed_folders = {path.split('/')[0] for path in paths if path.count('/') == 1 and not path.endswith('/')}
    for folder in listed_folders:  # a folder whose files are listed one by one lists all of them
        files = {f'{folder}/{path.name}' for path in (ROOT / folder).glob('*.py') if path.name != '__init__.py'}
        assert files - set(paths) == set(), folder


# --- one camera type ------------------------------------------------------------------

# The classes that hold a yaw and a pitch: the one camera type, and what preprocessing measures in a
# photo (a head's pose with its roll and the landmark fit's residual, which no renderer takes).
YAW_PITCH_TYPES = [('generators.camera_utils', 'Cameras'), ('preprocessing.pose', 'Pose')]


def assigned(node):
    """Every Name and Attribute an assignment binds, tuples unpacked."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [part for target in targets for part in ast.walk(target) if isinstance(part, (ast.Name, ast.Attribute))]


def fields(class_node):
    """A class's fields: the names its body assigns and the attributes its methods set on self."""
    assignments = [part for part in ast.walk(class_node) if isinstance(part, (ast.Assign, ast.AnnAssign))]
    names = {target.id for part in class_node.body if part in assignments for target in assigned(part)
             if isinstance(target, ast.Name)}
    return names | {target.attr for part in assignments for target in assigned(part)
                    if isinstance(target, ast.Attribute) and getattr(target.value, 'id', None) == 'self'}


def camera_types(tree):
    """(name, line) of each class with yaw and pitch fields, and of each namedtuple, NamedTuple or
    make_dataclass call that names both."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and {'yaw', 'pitch'} <= fields(node):
            yield node.name, node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) in (
                'namedtuple', 'NamedTuple', 'make_dataclass'):
            words = ' '.join(str(part.value) for part in ast.walk(node) if isinstance(part, ast.Constant))
            if 'yaw' in words and 'pitch' in words:
                yield words.split()[0], node.lineno


def python_files():
    """{dotted name: path} of the project's modules, its tests and its benchmarks."""
    files = project_modules()
    files.update({f'{folder}.{path.stem}': path for folder in ('tests', 'bench')
                  for path in (ROOT / folder).glob('*.py')})
    return files


def test_one_camera_type_and_one_front_camera():
    """Cameras (generators/camera_utils.py) is the only camera type with a yaw and a pitch, and
    front_camera (inference/rendering.py) is defined once: no Camera NamedTuple beside it, no
    viewer-only placed camera, no method of that name."""
    types, fronts = [], []
    for name, path in python_files().items():
        tree = ast.parse(path.read_text(), str(path))
        types += [(name, kind) for kind, _ in camera_types(tree)]
        fronts += [name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   and node.name == 'front_camera']
    assert sorted(types) == YAW_PITCH_TYPES
    assert fronts == ['inference.rendering']


def test_the_camera_rule_sees_classes_named_tuples_and_attributes():
    source = '''
class Pose(NamedTuple):
    yaw: float
    pitch: float

class Placed:
    def __init__(self, yaw, pitch):
        self.yaw, self.pitch = yaw, pitch

class Settings:
    def angles(self):
        yaw, pitch = 1, 2  # locals are no fields
        return yaw, pitch

View = namedtuple('View', 'yaw pitch fov')
'''
    assert [kind for kind, _ in camera_types(ast.parse(source))] == ['Pose', 'Placed', 'View']


# --- settings: explicit arguments into the networks, defaults from the key table only ------------------

# Calls into a generator or a discriminator: by these names, or through these methods of the generator.
NETWORK_NAMES = {'G', 'D', 'generator', 'discriminator', 'generator_ddp', 'discriminator_ddp'}
GENERATOR_METHODS = {'forward', 'staged_forward', 'staged_forward_with_frequencies', 'forward_with_frequencies',
                     'render', 'render_rays', 'render_sampled_poses'}
# The module that holds the key table and the one that builds the settings from it: where defaults live.
SETTINGS_MODULES = {'curriculums', 'settings'}
# (module, receiver): dicts whose .get reads an option that shares a curriculum key's name, not a setting.
NOT_SETTINGS = {('metrics.geometry', 'options')}  # mv_consistency's own img_size option


def library_and_scripts():
    """{module name: parsed tree} of the library and the scripts (not the tests, nor bench/, whose speed
    benchmark calls the original's generator in its keyword form)."""
    return {name: ast.parse(path.read_text(), str(path)) for name, path in project_modules().items()}


def called_name(call):
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def splatted_network_calls(tree):
    """Lines of calls into G or D that spread a dict (**metadata, **curriculum, **settings, ...)."""
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (called_name(node) in NETWORK_NAMES | GENERATOR_METHODS)
            and any(keyword.arg is None for keyword in node.keywords)]


def defaulted_key_reads(name, tree):
    """Lines of x.get('<a curriculum key>', ...): a default that is not the key table's."""
    import curriculums
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'get'
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in curriculums.KEYS):
            receiver = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if (name, receiver) not in NOT_SETTINGS:
                lines.append(node.lineno)
    return lines


def test_no_dict_is_spread_into_a_generator_or_discriminator_call():
    offenders = {name: lines for name, tree in library_and_scripts().items()
                 if (lines := splatted_network_calls(tree))}
    assert offenders == {}


def test_no_curriculum_key_is_read_with_a_default_outside_the_settings_modules():
    offenders = {name: lines for name, tree in library_and_scripts().items()
                 if name not in SETTINGS_MODULES and (lines := defaulted_key_reads(name, tree))}
    assert offenders == {}


def test_the_settings_rules_see_violations():
    bad = ast.parse("G(z, patch_grid=grid, **metadata)\nD(imgs, alpha, **curriculum)\n"
                    "generator.staged_forward(z, psi=1, **settings)\nG(z, rendering, camera)\n"
                    "metadata.get('sample_dist', 'gaussian')\nkwargs.get('num_workers', 4)\n"
                    "options['h_mean'] + 0.5\nfront_camera(settings.camera)\nself.metadata['fov']\n"
                    "extract_metadata(curriculum, 0)['img_size']\nref.dataset_record['camera']['fov']\n")
    assert splatted_network_calls(bad) == [1, 2, 3]
    assert defaulted_key_reads('anywhere', bad) == [5]
    assert key_reads('anywhere', bad) == [5, 7, 9, 10, 11]
    assert key_reads('metrics.geometry', bad) == [5, 9, 10]  # poses.json's record and its own options there


# --- no untyped settings bag: past the loading of a curriculum or checkpoint, settings are attributes -----

# Where plain dicts of curriculum keys are the point: the modules that build Settings from curricula and from
# checkpoints' files, and preprocessing, which writes the camera keys it fits into dataset.json and a command line.
PLAIN_KEY_PACKAGES = {'curriculums', 'settings', 'checkpoints', 'preprocessing'}
# (module, receiver): dicts read by a key that shares a curriculum key's name, but no settings.
NOT_SETTINGS_BAGS = {
    ('datasets', 'dataset_record'), ('metrics.geometry', 'dataset_record'),  # poses.json (img_size, camera fov)
    ('metrics.geometry', 'options'), ('eval_metrics', 'options'),  # mv_consistency's own img_size option
    ('training.run_files', 'state'),  # the modules a checkpoint saves: its generator and discriminator
    ('training.training_loop', 'overrides'),  # --dataset_path, a --set override of the curriculum
    ('training.training_loop', 'group'),  # the optimisers' parameter groups: betas, weight_decay
    ('training.training_loop', 'record'),  # a line of the stats log
}


def receiver(node):
    """The name a subscript or call is made on, through chained subscripts and calls: metadata for
    metadata['fov'], dataset_record for self.dataset_record['camera'], extract_metadata for extract_metadata(...)."""
    while isinstance(node, (ast.Subscript, ast.Call)):
        node = node.value if isinstance(node, ast.Subscript) else node.func
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def key_reads(name, tree):
    """Lines of x['<a curriculum key>'] and x.get / pop / setdefault('<a curriculum key>'), but on NOT_SETTINGS_BAGS."""
    import curriculums
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key, target = node.slice.value, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
              and node.func.attr in ('get', 'pop', 'setdefault') and isinstance(node.args[0], ast.Constant)):
            key, target = node.args[0].value, node.func.value
        else:
            continue
        if isinstance(key, str) and key in curriculums.KEYS and (name, receiver(target)) not in NOT_SETTINGS_BAGS:
            lines.append(node.lineno)
    return sorted(set(lines))


def test_settings_are_read_as_attributes_past_the_loading():
    """From train.py or a script's loading of a checkpoint to the ray marcher (training, inference, metrics,
    datasets, the generator), settings are a settings.Settings or its groups: no key of the curriculum is read
    out of a dict (metadata['fov'], options.get('h_mean'))."""
    offenders = {name: lines for name, tree in library_and_scripts().items()
                 if name.split('.')[0] not in PLAIN_KEY_PACKAGES and (lines := key_reads(name, tree))}
    assert offenders == {}
