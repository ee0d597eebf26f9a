"""Errors that mean bad input or a stopped run: reported as one line, without a traceback."""


def user_errors():
    from curriculums import ConfigError
    from datasets import DatasetError
    from metrics import ImageFolderError, InceptionWeightsError
    from checkpoints import CheckpointError
    from training.distributed import LaunchError, WorkerError
    from training.stopping import TrainingInterrupted
    from training.training_loop import TrainingDiverged
    return (CheckpointError, ConfigError, DatasetError, ImageFolderError, InceptionWeightsError, LaunchError,
            TrainingDiverged, TrainingInterrupted, WorkerError)

