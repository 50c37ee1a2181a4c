"""Write a file under a temporary name and rename it only when it is complete.

Analysis programs poll export directories and open whatever ``*.h5`` appears.
Writing into ``<name>.h5.tmp`` and renaming it with ``os.replace`` (atomic on
one file system) guarantees they never see a half-written file, and that a
failed export leaves no partial file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

TMP_SUFFIX = ".tmp"


class ExportError(OSError):
    """An export failed; the message names the file that could not be written."""


def tmp_path_for(final: Path) -> Path:
    return final.with_name(final.name + TMP_SUFFIX)


def finish_export(tmp_path: str | os.PathLike) -> Path:
    """Rename a complete ``<name>.h5.tmp`` to ``<name>.h5`` and return the final path."""
    tmp = Path(tmp_path)
    if not tmp.name.endswith(TMP_SUFFIX):
        raise ValueError(f"{tmp} is not a temporary export file (*{TMP_SUFFIX})")
    final = tmp.with_name(tmp.name[: -len(TMP_SUFFIX)])
    try:
        os.replace(tmp, final)
    except OSError as exc:
        raise ExportError(f"cannot move {tmp} to {final}: {exc}") from exc
    return final


@contextmanager
def atomic_h5(final: str | os.PathLike, *, overwrite: bool = False) -> Iterator[h5py.File]:
    """Yield an h5py file open on ``<final>.tmp``; rename it to ``final`` on success.

    On any error the temporary file is removed and an ``ExportError`` naming
    ``final`` is raised, chained to the original exception.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise ExportError(f"cannot write {final}: file exists (use overwrite=True)")
    tmp = tmp_path_for(final)
    try:
        f = h5py.File(tmp, "w")
    except OSError as exc:
        raise ExportError(f"cannot write {final}: {exc}") from exc
    try:
        with f:
            yield f
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, Exception) and not isinstance(exc, ExportError):
            raise ExportError(f"cannot write {final}: {exc}") from exc
        raise
    try:
        finish_export(tmp)
    except ExportError:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path, unlink: Callable[[Path], None] = Path.unlink) -> None:
    try:
        unlink(path)
    except FileNotFoundError:
        pass
