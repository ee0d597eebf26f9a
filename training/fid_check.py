"""FID during training: checked once at start-up, so that a run never dies hours in."""

from tqdm import tqdm

from training.distributed import gather_objects


def fid_available(info, opt):
    """Whether --eval_freq can compute FIDs, checked once before training so a run never dies hours in.

    A --inception_weights file that is missing or unreadable stops the run now.
    Without it, weights that can be neither found in torch.hub's cache nor
    downloaded turn FID off for this run, after a warning that says how to fix it.
    """
    if opt.eval_freq <= 0:
        return False
    from metrics import InceptionWeightsError
    from metrics.inception import build_fid_inception
    from torch_utils.cli import one_line
    problem = fatal = None
    if info.is_main:
        try:
            build_fid_inception(opt.inception_weights)
        except InceptionWeightsError as error:
            problem, fatal = one_line(error), bool(opt.inception_weights)
    problem, fatal = gather_objects((problem, fatal), info)[0]
    if fatal:
        raise InceptionWeightsError(f"--inception_weights: {problem}")
    if problem:
        if info.is_main:
            tqdm.write(f"warning: no FID during this run: {problem} Training goes on without --eval_freq; "
                       f"compute FIDs of its snapshots later with eval_metrics.py, or pass --eval_freq 0 "
                       f"to silence this warning.")
        return False
    return True
