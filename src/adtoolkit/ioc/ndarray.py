"""NDArray and NDAttribute: what travels from the cam to the plugins, in-process.

ADCore passes ``NDArray`` objects (data + dimensions + attribute list) from the
driver to plugins through callbacks; nothing of that goes over Channel Access.
We mirror it with a numpy array plus the few pieces of metadata that plugins and
file writers read.  Arrays are treated as immutable once published: plugins that
change data (ROI, Proc) make new arrays, so one frame can be shared by every
plugin queue without copies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: seconds between the POSIX epoch and the EPICS epoch (1990-01-01 UTC)
POSIX_TIME_AT_EPICS_EPOCH = 631152000

#: NDDataType_t enum strings, in record order (DataType / DataType_RBV)
DATA_TYPES = (
    "Int8",
    "UInt8",
    "Int16",
    "UInt16",
    "Int32",
    "UInt32",
    "Int64",
    "UInt64",
    "Float32",
    "Float64",
)
NUMPY_DTYPES = tuple(
    np.dtype(t) for t in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8")
)

#: NDColorMode_t enum strings (ColorMode / ColorMode_RBV)
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")

#: NDAttrDataType_t names used for NDAttribute.datatype
ATTR_DATATYPES = (
    "INT8",
    "UINT8",
    "INT16",
    "UINT16",
    "INT32",
    "UINT32",
    "INT64",
    "UINT64",
    "FLOAT32",
    "FLOAT64",
    "STRING",
    "UNDEFINED",
)


def data_type_index(dtype: np.dtype) -> int:
    """Return the NDDataType_t index of a numpy dtype (raises KeyError if none)."""
    try:
        return NUMPY_DTYPES.index(np.dtype(dtype))
    except ValueError:
        raise KeyError(f"numpy dtype {dtype} has no NDDataType") from None


@dataclass
class NDDimension:
    """One NDArray dimension: ``size`` pixels, as read out with ``offset``/``binning``."""

    size: int
    offset: int = 0
    binning: int = 1
    reverse: int = 0


@dataclass
class NDAttribute:
    """A named value attached to an array (NDAttribute.cpp).

    ``source_type`` is the NDAttrSource_t name as written to HDF5 files
    (``NDAttrSourceDriver``, ``NDAttrSourceEPICSPV``, ``NDAttrSourceParam``,
    ``NDAttrSourceFunct`` or ``NDAttrSourceConst``).
    """

    name: str
    value: Any
    datatype: str = "UNDEFINED"
    description: str = ""
    source: str = ""
    source_type: str = "NDAttrSourceDriver"


@dataclass
class NDArray:
    """An image with its ADCore metadata.

    ``data`` is indexed like the HDF5 dataset ADCore writes: ``(Y, X)`` for Mono
    and ``(Y, X, 3)`` for RGB1, i.e. the NDArray dimensions reversed.  ``dims``
    keeps the NDArray order (X first) with offsets and binning.
    """

    data: np.ndarray
    unique_id: int = 0
    timestamp: float = 0.0
    epics_ts_sec: int = 0
    epics_ts_nsec: int = 0
    color_mode: int = 0
    dims: list[NDDimension] = field(default_factory=list)
    attributes: dict[str, NDAttribute] = field(default_factory=dict)
    #: NDCodec_t name ("lz4", "blosc", ...) when ``compressed`` holds the payload
    #: (NDPluginCodec); ``data`` then keeps the shape and type of the decompressed array
    codec: str = ""
    compressed: bytes | None = None

    def __post_init__(self) -> None:
        if not self.dims:
            self.dims = [NDDimension(n) for n in reversed(self.data.shape)]

    @property
    def ndims(self) -> int:
        return self.data.ndim

    @property
    def data_type(self) -> int:
        """The NDDataType_t index of the data."""
        return data_type_index(self.data.dtype)

    @classmethod
    def stamped(cls, data: np.ndarray, unique_id: int, **kwargs: Any) -> NDArray:
        """Build an array stamped with the current time, as a driver does."""
        now = time.time()
        sec = int(now) - POSIX_TIME_AT_EPICS_EPOCH
        nsec = int((now % 1.0) * 1e9)
        return cls(
            data=data,
            unique_id=unique_id,
            timestamp=sec + nsec * 1e-9,
            epics_ts_sec=sec,
            epics_ts_nsec=nsec,
            **kwargs,
        )
