"""Command-line pieces of the scripts that use a trained generator: its arguments and loading it."""

from checkpoints import load_generator
from utils.cli import add_override_argument, parse_overrides, pick_device

def add_generator_arguments(parser):
    """Arguments of every script that loads a trained generator."""
    parser.add_argument('path', help="generator.pth of a run (ema.pth beside it is used by default)")
    parser.add_argument('--no_ema', action='store_true', help="use the raw weights, not the EMA")
    parser.add_argument('--ema', default='ema.pth', help="EMA file to use (name in the run folder, or a path)")
    parser.add_argument('--curriculum', default=None,
                        help="curriculum name; defaults to the one recorded in the checkpoint")
    add_override_argument(parser)
    parser.add_argument('--device', default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument('--max_batch_size', type=int, default=2400000,
                        help="points per SIREN call; lower it if you run out of memory")


def load_generator_from_args(args):
    """(generator, settings.Settings at its step, device) for scripts built on add_generator_arguments."""
    device = pick_device(args.device)
    generator, settings = load_generator(args.path, ema=None if args.no_ema else args.ema,
                                         curriculum=args.curriculum, overrides=parse_overrides(args.overrides),
                                         device=device)
    return generator, settings, device
