"""Train pi-GAN on one process, one process per GPU, or several nodes (torchrun).

    python train.py                                    # CPU demo on built-in synthetic data
    CUDA_VISIBLE_DEVICES=0,1 python3 train.py --curriculum CelebA --dataset_path '/data/celeba/*.jpg'
    torchrun --nnodes 2 --nproc_per_node 8 ... train.py --curriculum CelebA ...
"""

import time

STARTED = time.time()  # --max_minutes counts from here: start-up is part of the budget

import argparse  # noqa: E402

from curriculums import check_keys  # noqa: E402
from utils.cli import add_override_argument, parse_overrides, run_cli  # noqa: E402
from metrics import list_metrics, parse_metric_names  # noqa: E402
from training.training_loop import PRECISIONS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n_epochs', type=int, default=3000, help="number of epochs of training")
    parser.add_argument('--sample_interval', type=int, default=200,
                        help="steps between sample grids and checkpoint saves")
    parser.add_argument('--output_dir', default='output/spatialsirenbaseline')
    parser.add_argument('--load_dir', default='', help="continue the run saved in this folder")
    parser.add_argument('--curriculum', default='SPATIALSIRENBASELINE',
                        help="curriculum in curriculums.py (default: the CPU demo)")
    parser.add_argument('--eval_freq', type=int, default=5000,
                        help="steps between evaluations of --eval_metrics (0: never)")
    parser.add_argument('--eval_metrics', default=None,
                        help=f"comma-separated metrics logged every --eval_freq steps to metrics.jsonl (fid also "
                             f"to fid.txt), from {', '.join(list_metrics())}; fid, kid and is need the Inception "
                             f"weights, the others the synthetic heads; default: the geometry metrics on "
                             f"Synthetic, fid otherwise")
    parser.add_argument('--geometry_samples', type=int, default=32, help="generated samples per geometry metric")
    parser.add_argument('--port', default='12355', help="rendezvous port for multi-process training")
    parser.add_argument('--set_step', type=int, default=None, help="force the step counter (and its stage)")
    parser.add_argument('--model_save_interval', type=int, default=5000,
                        help="steps between timestamped snapshots in output_dir/snapshots")
    parser.add_argument('--dataset_path', default=None, help="glob or folder of training images")
    add_override_argument(parser)
    parser.add_argument('--max_steps', type=int, default=None, help="stop cleanly after this many steps")
    parser.add_argument('--max_minutes', type=float, default=None,
                        help="end within this many minutes of wall-clock time from the start of the process, "
                             "start-up and the final checkpoint included (the checkpoint is saved)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--precision', choices=PRECISIONS, default=None,
                        help="fp16 (autocast + GradScaler, the original's; default on GPU), bf16, or fp32 "
                             "(default on CPU)")
    parser.add_argument('--nproc', type=int, default=None,
                        help="training processes (default: one per visible GPU, else 1); on GPUs at most one per GPU")
    parser.add_argument('--device', choices=('cuda', 'cpu'), default=None,
                        help="train on the GPUs (NCCL) or the CPU (gloo); default: cuda if a GPU is visible")
    parser.add_argument('--num_workers', type=int, default=2, help="data loading workers per process")
    parser.add_argument('--sample_size', type=int, default=None,
                        help="sample grid resolution (default 128 on GPU, 2x img_size up to 64 on CPU)")
    parser.add_argument('--log_every', type=int, default=10, help="steps between log lines and stats.jsonl rows")
    fid = parser.add_argument_group('FID, KID and IS during training (--eval_freq)')
    fid.add_argument('--fid_images', type=int, default=2048, help="generated images per evaluation")
    fid.add_argument('--fid_size', type=int, default=128, help="resolution of the evaluation images")
    fid.add_argument('--fid_real_images', type=int, default=8000, help="real images written on first use")
    fid.add_argument('--fid_real_dir', default=None, help="real-image folder (default EvalImages/<dataset>_real_images_<size>)")
    fid.add_argument('--inception_weights', default=None, help="local copy of the FID Inception weights (offline)")
    opt = parser.parse_args(argv)
    opt.overrides = parse_overrides(opt.overrides)
    try:
        opt.eval_metrics = None if opt.eval_metrics is None else parse_metric_names(opt.eval_metrics)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: --eval_metrics: {error}\n")  # one line, not the long usage
    return opt


def main(argv=None, started=None):
    """started: time.time() at which the --max_minutes budget began (default: now)."""
    opt = parse_args(argv)
    opt.started = started if started is not None else time.time()
    from training.distributed import launch

    def start():
        check_keys(opt.overrides)  # a typo fails here, before any training process starts
        if opt.load_dir:  # so does a bad checkpoint: in one worker alone, the others' lost connections would print
            from training.run_files import load_checkpoint
            load_checkpoint(opt.load_dir)
        launch(worker, opt)
    run_cli(start)


def worker(process, opt):
    from training.stopping import StopRequest
    from training.training_loop import training_loop
    with StopRequest() as stop:
        training_loop(process, opt, stop)


if __name__ == '__main__':
    main(started=STARTED)
