"""The simulated NDFileHDF5 plugin's engine: layout XML and the HDF5 writer.

``HDF5Writer``, ``HDF5WriterError`` and ``validate_layout_param`` are imported
lazily, so that ``adtoolkit.ioc.ndattributes`` (which uses the safe XML reader of
this package) does not pull in h5py.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HDF5Writer", "HDF5WriterError", "validate_layout_param"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from adtoolkit.ioc.hdf5 import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
