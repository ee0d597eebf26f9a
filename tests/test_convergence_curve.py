"""bench/convergence.py's curve files: points measured before a value existed still read beside newer ones."""

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))

import convergence  # noqa: E402


def test_curve_keeps_old_columns_and_adds_new_ones(tmp_path):
    old = {'minutes': 12.0, 'step': 100, 'shape_distance': 0.003, 'shape_distance_floor': 0.00095}
    new = {'minutes': 24.0, 'step': 200, 'shape_distance': 0.002, 'shape_distance_floor': 0.00095,
           'shape_distance_floor_mesh': 0.0012, 'shape_coverage': 0.4, 'shape_coverage_num': 16}
    convergence.write_curve(tmp_path, [old, new])
    with open(tmp_path / 'curve.csv') as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:len(old)] == list(old) and set(reader.fieldnames) == set(old) | set(new)
    assert rows[0]['shape_coverage'] == '' and float(rows[1]['shape_coverage']) == 0.4
    assert json.loads((tmp_path / 'curve.json').read_text()) == [old, new]
