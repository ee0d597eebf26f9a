"""Interactive viewer in the browser: orbit a generated scene, change seed and truncation, export what you see.

    python viewer.py RUN/generator.pth --port 8080

then open the printed address (over SSH: ssh -L 8080:localhost:8080 HOST first).
Drag to orbit, scroll to zoom; the panel sets seed, psi, fov, steps per ray,
view dependence, RGB/depth/normals and W-space interpolation to a second seed,
and saves the view (PNG), a turntable (MP4) or the mesh (PLY) into --output_dir.
"""

import argparse
import time
from pathlib import Path

from inference.arguments import add_generator_arguments, load_generator_from_args
from inference.viewer import ViewRenderer
from inference.viewer_server import Viewer, ViewerConfig, check_port_free
from utils.cli import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    parser.add_argument('--port', type=int, default=8080, help="port of the web page")
    parser.add_argument('--host', default='127.0.0.1', help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument('--image_size', type=int, default=128, help="resolution of a view at rest")
    parser.add_argument('--preview_size', type=int, default=None,
                        help="resolution while the view moves (default: 64 on a GPU, 16 on a CPU)")
    parser.add_argument('--seed', type=int, default=0, help="seed shown first")
    parser.add_argument('--psi', type=float, default=0.7, help="truncation shown first")
    parser.add_argument('--ray_step_multiplier', type=float, default=1,
                        help="samples per ray = the curriculum's num_steps times this (changeable in the page)")
    parser.add_argument('--output_dir', default='viewer_output', help="folder for saved PNGs, MP4s and meshes")
    return parser.parse_args(argv)


def main(argv=None, serve_forever=True):
    args = parse_args(argv)
    check_port_free(args.host, args.port)  # before the slow part, so a busy port fails at once
    generator, run_settings, device = load_generator_from_args(args)
    renderer = ViewRenderer(generator, run_settings, args.max_batch_size)
    preview_size = args.preview_size or (64 if device.type == 'cuda' else 16)
    config = ViewerConfig(args.image_size, preview_size, Path(args.output_dir))
    settings = renderer.default_settings(seed=args.seed, psi=args.psi, ray_step_multiplier=args.ray_step_multiplier)
    viewer = Viewer(renderer, config, settings)
    url = viewer.start(args.host, args.port)
    print(f"viewer: open {url} in a browser (Ctrl+C to stop)", flush=True)
    if not serve_forever:
        return viewer
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("viewer: stopped")
    finally:
        viewer.stop()


if __name__ == '__main__':
    run_cli(main)
