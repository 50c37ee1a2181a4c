"""NDPluginStdArrays (``image1:``): the last array as the ArrayData waveform.

The waveform's element type is fixed when the records are loaded (FTVL), as in
the real IOC; arrays of another data type are converted to it with C cast
semantics.  Image data is held in ``caproto.ChannelByte`` for CHAR/UCHAR (same
DBR_CHAR on the wire as ChannelChar, without treating the bytes as text, which
is ~30x faster).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.simimages import c_cast

FTVL_DTYPES = {
    "CHAR": np.dtype("i1"),
    "UCHAR": np.dtype("u1"),
    "SHORT": np.dtype("i2"),
    "USHORT": np.dtype("u2"),
    "LONG": np.dtype("i4"),
    "ULONG": np.dtype("u4"),
    "FLOAT": np.dtype("f4"),
    "DOUBLE": np.dtype("f8"),
}


class NDStdArrays(PluginDriver):
    plugin_type = "NDPluginStdArrays"
    templates = ("NDStdArrays",)

    def __init__(
        self, *args: Any, ftvl: str = "CHAR", nelm: int = 3 * 1024 * 1024, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if ftvl not in FTVL_DTYPES:
            raise ValueError(f"NDStdArrays ftvl {ftvl!r} is not one of {sorted(FTVL_DTYPES)}")
        self.ftvl = ftvl
        self.nelm = int(nelm)
        self.out_dtype = FTVL_DTYPES[ftvl]

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        cam = ioc.cam
        nelm = definition.get("nelm") or 3 * cam.get("MAX_SIZE_X") * cam.get("MAX_SIZE_Y")
        return {"ftvl": definition.get("ftvl", "CHAR"), "nelm": int(nelm)}

    def record_overrides(self) -> tuple[tuple[str, str, Any], ...]:
        return (("ArrayData", "ftvl", self.ftvl), ("ArrayData", "nelm", self.nelm))

    def process(self, array: NDArray) -> None:
        self.count_array()
        data = array.data
        if (
            data.dtype.itemsize == self.out_dtype.itemsize
            and data.dtype.kind in "iu"
            and self.out_dtype.kind in "iu"
        ):
            out = data.reshape(-1).view(self.out_dtype)  # same bits, as a C copy of the buffer
        elif data.dtype == self.out_dtype:
            out = data.reshape(-1)
        else:
            out = c_cast(data.reshape(-1), self.out_dtype)
        out = out[: self.nelm]
        if out.flags.writeable:
            # a read-only *view*: the record shows the frame without copying a
            # megabyte per frame; published frames are never written again (the
            # cam's buffer pool only reuses buffers nobody references)
            out = out.view()
            out.flags.writeable = False
        self.params.set("STD_ARRAY_DATA", out, force=True)
        self.emit(array)
