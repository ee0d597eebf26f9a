"""Atomic file writes: a reader sees the old file or the whole new one, never part of one."""

import contextlib
import errno
import os
import uuid
from pathlib import Path

from utils.errors import UserError

# A write that fails with less free space than this on its disk failed for want of space: torch.save reports a
# full disk as a RuntimeError of its zip writer ("unexpected pos"), not as an OSError with ENOSPC.
FULL_BELOW = 1 << 20


class DiskFullError(UserError):
    """Files could not be written for want of space; the files they were to replace are unchanged."""


@contextlib.contextmanager
def replacing(paths):
    """Temporary paths, one per path, in its folder; when the block ends without an error they are renamed over
    paths, in order. On an error nothing is renamed and the temporary files are removed, so the files at paths stay
    as they were; a full disk raises DiskFullError."""
    paths = [Path(path) for path in paths]
    temporaries = [path.with_name(f'.{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp') for path in paths]
    try:
        yield temporaries
    except BaseException as error:
        folder = paths[0].parent if paths else Path('.')
        free = free_bytes(folder) if folder.is_dir() else None  # measured before the cleanup frees it
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        if out_of_space(error, free):
            names = ', '.join(path.name for path in paths)
            left = f' ({free / 2**20:.1f} MiB free)' if free is not None else ''
            raise DiskFullError(f'no space left on the disk of {folder}{left} while writing {names}: free some space '
                                f'there or write elsewhere; the files already there are unchanged') from error
        raise
    for temporary, path in zip(temporaries, paths):
        os.replace(temporary, path)


@contextlib.contextmanager
def atomic_writes(paths, mode='wb'):
    """Files open for writing (mode 'wb' or 'w'), one per path, in order, that replace the files at paths (fsynced
    first) only once the block ends without an error: see replacing."""
    with replacing(paths) as temporaries:
        files = []
        try:
            for temporary in temporaries:
                files.append(open(temporary, mode.replace('w', 'x')))  # 'x': never an existing file
            yield files
            for file in files:
                file.flush()
                os.fsync(file.fileno())
        except BaseException:
            for file in files:  # closing flushes: on a full disk that fails, and must not hide what ended the block
                with contextlib.suppress(OSError):
                    file.close()
            raise
        for file in files:
            file.close()


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path for a library that writes by name (mrcfile, trimesh), renamed over path once the block
    ends without an error: see replacing."""
    with replacing([path]) as (temporary,):
        yield temporary
        with open(temporary, 'rb') as written:  # on disk before the rename, as atomic_writes does
            os.fsync(written.fileno())


def free_bytes(folder):
    """Bytes this process can still write on folder's disk (root may also use the blocks reserved for it)."""
    stats = os.statvfs(folder)
    return stats.f_frsize * (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail)


def require_space(folder, needed, what):
    """DiskFullError now, rather than hours later, when folder's disk has less than `needed` bytes free."""
    free = free_bytes(folder)
    if free < needed:
        raise DiskFullError(f'no space left on the disk of {folder} for {what}: {free / 2**20:.1f} MiB free, at least '
                            f'{needed / 2**20:.0f} MiB needed; free some space there or write elsewhere')


def out_of_space(error, free):
    """Whether a failed write failed because its disk is full (free: its bytes free at the failure). An OSError says
    so by its errno; torch.save's RuntimeError does not, and counts when the disk is (nearly) full."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, RuntimeError) and free is not None and free < FULL_BELOW


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """A file open for writing whose content replaces the file at path only once the block ends without an
    error (written to a temporary file in the same folder, fsynced, then renamed)."""
    with atomic_writes([path], mode) as (file,):
        yield file
