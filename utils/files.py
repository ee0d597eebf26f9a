"""Atomic file writes: a reader sees the old file or the whole new one, never part of one."""

import contextlib
import os
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_writes(paths, mode='wb'):
    """Files open for writing (mode 'wb' or 'w'), one per path, in order; each is a temporary file in its
    path's folder. When the block ends without an error, each is flushed and fsynced, then all are renamed
    over their paths, in order. On an error nothing is renamed: the temporary files are removed and the
    files at paths stay as they were."""
    temporaries, files = [], []
    try:
        with contextlib.ExitStack() as stack:
            for path in map(Path, paths):
                temporary = path.with_name(f'.{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp')
                temporaries.append((temporary, path))
                files.append(stack.enter_context(open(temporary, mode.replace('w', 'x'))))  # never an existing file
            yield files
            for file in files:
                file.flush()
                os.fsync(file.fileno())
    except BaseException:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, path in temporaries:
        os.replace(temporary, path)


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """A file open for writing whose content replaces the file at path only once the block ends without an
    error (written to a temporary file in the same folder, fsynced, then renamed)."""
    with atomic_writes([path], mode) as (file,):
        yield file
