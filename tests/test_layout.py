"""The architecture's import rules, read from the source with ast: library code never imports a
top-level script, and neither packages nor modules import each other in a cycle. Imports inside
functions count too (a lazy import is still a dependency)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('checkpoints', 'generators', 'siren', 'discriminators', 'training', 'metrics', 'inference', 'torch_utils',
            'preprocessing')
LIBRARY_TOP_LEVEL = ('curriculums', 'datasets', 'synthetic_dataset')
SCRIPTS = {'train', 'eval_metrics', 'fid_evaluation', 'interpolate_w', 'shape_extraction', 'inverse_render',
           'convert_official_checkpoint', 'viewer', 'prepare_dataset'}


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
    assert 'training.training_loop' in graph['training.errors']  # inside a function
    assert 'train' in graph and is_script('render_video') and not is_script('datasets')


def test_no_library_module_imports_a_script():
    graph = import_graph()
    offenders = {name: sorted(filter(is_script, targets)) for name, targets in graph.items() if is_library(name)}
    assert {name: scripts for name, scripts in offenders.items() if scripts} == {}


def test_no_import_cycle_between_modules():
    assert find_cycle(import_graph()) is None


def test_no_import_cycle_between_packages():
    assert find_cycle(package_graph(import_graph())) is None


def test_cycle_finder_finds_cycles():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None
    assert find_cycle(package_graph({'x.one': {'y.two'}, 'y.two': {'x.three'}, 'x.three': set()})) == ['x', 'y', 'x']
