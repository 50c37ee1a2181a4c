"""The simulated NDFileHDF5 plugin's engine: the HDF5 writer.

The layout it writes from is ADCore's format, read in :mod:`adtoolkit.adcore.layout`.
``HDF5Writer`` and ``HDF5WriterError`` are imported lazily, so that a plugin checking
an XMLFileName put does not pull in h5py.
"""

from __future__ import annotations

from typing import Any

from adtoolkit.adcore.layout import validate_layout_param

__all__ = ["HDF5Writer", "HDF5WriterError", "validate_layout_param"]


def __getattr__(name: str) -> Any:
    if name in ("HDF5Writer", "HDF5WriterError"):
        from adtoolkit.ioc.hdf5 import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
