"""Errors that mean bad input or a stopped run: reported as one line, without a traceback."""


def user_errors():
    from torch.multiprocessing import ProcessRaisedException

    from curriculums import ConfigError
    from datasets import DatasetError
    from metrics import ImageFolderError, InceptionWeightsError
    from torch_utils.checkpoint import CheckpointError
    from training.distributed import LaunchError
    from training.training_loop import TrainingDiverged
    return (CheckpointError, ConfigError, DatasetError, ImageFolderError, InceptionWeightsError, LaunchError,
            TrainingDiverged, ProcessRaisedException)


def describe(error):
    """One line: a worker's exception arrives with its traceback, keep only its last line."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text.strip('"\'')
