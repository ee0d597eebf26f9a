"""Command-line pieces shared by the scripts."""

import argparse
import ast
import sys

import torch

from utils.errors import UserError
from utils.files import out_of_space


def parse_overrides(pairs):
    """['fov=18', 'sample_dist=None', 'betas=(0, 0.9)'] -> {'fov': 18, ...}.

    Values are Python literals (or nan/inf); anything else is kept as a string.
    A numeric key names a stage and takes a dict of that stage's keys.
    """
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"curriculum override {pair!r} is not KEY=VALUE")
        if value.strip().lower() in ('nan', 'inf', '-inf'):
            parsed = float(value)
        else:
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                parsed = value
        if key.isdigit():  # a stage: --set 5000="{'img_size': 128}" merges into that stage
            if not isinstance(parsed, dict):
                raise argparse.ArgumentTypeError(f"stage override {pair!r} must be a dict")
            key = int(key)
        overrides[key] = parsed
    return overrides


def add_override_argument(parser):
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help="override a curriculum key, e.g. --set fov=18 --set ray_end=1.2 (repeatable)")


def pick_device(name=None):
    if name:
        return torch.device(name)
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def one_line(error):
    """The error's whole message on one line: its lines joined, so no path or instruction is lost."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return ' '.join(lines) if lines else type(error).__name__


def run_cli(main, errors=(UserError,)):
    """Runs main(); the exception classes in `errors` (bad input: UserError) exit with one line, no traceback, and
    so does a full disk under any writer (checkpoints report it as utils.files.DiskFullError, a UserError)."""
    try:
        return main()
    except errors as error:
        sys.exit(f"error: {one_line(error)}")
    except OSError as error:
        if not out_of_space(error, None):
            raise
        where = f' while writing {error.filename}' if error.filename else ''
        sys.exit(f'error: no space left on the disk{where}: free some space there or write elsewhere')
