"""The writer's failures, as the plugin reports them (WriteStatus / WriteMessage)."""

from __future__ import annotations


class HDF5WriterError(RuntimeError):
    """A failure the plugin reports as WriteStatus=Write error with this WriteMessage."""


def detached(exc: Exception) -> Exception:
    """The same error without its traceback (whose frames hold HDF5 objects alive)."""
    if isinstance(exc, HDF5WriterError):
        return HDF5WriterError(str(exc))
    if isinstance(exc, OSError):
        if exc.errno is not None:
            return type(exc)(exc.errno, exc.strerror or str(exc))
        return OSError(str(exc))
    return HDF5WriterError(f"{type(exc).__name__}: {exc}")
