"""The space guard: a full disk or a file-size limit becomes a clean error, not a crash.

HDF5 reports a failed write, but a file whose writes failed can no longer be
closed cleanly, and the library can even crash the process on the following
operations, so the writer asks before each frame whether it fits.
"""

from __future__ import annotations

import errno
import os
import resource
import time

#: room kept free for the metadata HDF5 writes at close (NDAttributes, performance)
SPACE_MARGIN = 4 * 1024 * 1024


def check_space(path: str, nbytes: int) -> None:
    """Raise OSError (EFBIG / ENOSPC) if ``nbytes`` more would not fit in ``path``.

    HDF5 reports a failed write, but a file whose writes failed can no longer be
    closed cleanly, and the library can even crash the process on the following
    operations.  Checking the file-size limit (RLIMIT_FSIZE) and the free space
    first, with a margin for the metadata written at close, turns "disk full"
    into a clean error with the OS message, and a valid file with every frame
    written so far.
    """
    SpaceGuard(path).check(nbytes)


class SpaceGuard:
    """:func:`check_space` for the frames of one file, without a ``statvfs`` per frame.

    The file-size limit is checked every time (a ``stat``; the limit may be
    lowered while the IOC runs).  The free space is asked from the file system
    again only when what was free at the last look, less what this file wrote
    since, comes near the need (``RECHECK_FRAMES`` frames plus the margin), or
    after ``RECHECK_SECONDS`` (other writers share the disk): a disk that fills
    up is still caught at the exact frame, a roomy one costs nothing per frame.
    """

    RECHECK_FRAMES = 64
    RECHECK_SECONDS = 0.5

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self._free = -1  # at the last statvfs; -1: never looked
        self._written = 0  # bytes announced since then
        self._checked_at = 0.0

    def check(self, nbytes: int) -> None:
        path = self.path
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            if size + nbytes + SPACE_MARGIN > soft:
                raise OSError(
                    errno.EFBIG,
                    f"{os.strerror(errno.EFBIG)}: {path} ({size} bytes) cannot take {nbytes} "
                    f"more bytes within the process file size limit of {soft} bytes",
                )
        now = time.monotonic()
        left = self._free - self._written
        if (
            self._free < 0
            or left < self.RECHECK_FRAMES * nbytes + 2 * SPACE_MARGIN
            or now - self._checked_at > self.RECHECK_SECONDS
        ):
            st = os.statvfs(self.folder)
            self._free = left = st.f_bavail * st.f_frsize
            self._written = 0
            self._checked_at = now
        if left < nbytes + SPACE_MARGIN:
            raise OSError(
                errno.ENOSPC,
                f"{os.strerror(errno.ENOSPC)}: {left} bytes free in {self.folder}, "
                f"{nbytes} needed for {path}",
            )
        self._written += nbytes
