"""NDPluginROI (``ROI1:``): crop and bin each array, then pass it on.

Per dimension (X, Y): Min, Size (clamped to the array), Bin (sum of pixels, as
NDArrayPool::convert does), Reverse; AutoSize uses the full dimension; a
disabled dimension is passed whole.  DataTypeOut converts the output type
(Automatic keeps it); EnableScale divides by Scale.
"""

from __future__ import annotations

import numpy as np

from adtoolkit.ioc.ndarray import NUMPY_DTYPES, NDArray, NDDimension
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.simimages import c_cast

AUTOMATIC = 10


class NDROI(PluginDriver):
    plugin_type = "NDPluginROI"
    templates = ("NDROI",)

    def process(self, array: NDArray) -> None:
        p = self.params
        self.count_array()
        data = array.data
        if data.ndim != 2:
            return self.emit(array)  # colour ROI not simulated: pass through
        out = data
        dims = []
        for axis, d in ((1, 0), (0, 1)):  # numpy axis, ROI dim index (X=0, Y=1)
            n = data.shape[axis]
            p.set(f"ROI_DIM{d}_MAX_SIZE", n)
            if not p.get(f"ROI_DIM{d}_ENABLE"):
                start, size, binning, rev = 0, n, 1, 0
            else:
                start = min(max(p.get(f"ROI_DIM{d}_MIN"), 0), n - 1)
                size = n - start if p.get(f"ROI_DIM{d}_AUTO_SIZE") else p.get(f"ROI_DIM{d}_SIZE")
                size = min(max(size, 1), n - start)
                binning = min(max(p.get(f"ROI_DIM{d}_BIN"), 1), size)
                size -= size % binning
                rev = p.get(f"ROI_DIM{d}_REVERSE")
            index = [slice(None), slice(None)]
            index[axis] = slice(start, start + size)
            out = out[tuple(index)]
            if binning > 1:
                wide = out.astype(np.float64 if out.dtype.kind == "f" else np.int64)
                shape = list(wide.shape)
                shape[axis : axis + 1] = [size // binning, binning]
                out = wide.reshape(shape).sum(axis=axis + 1)
            if rev:
                out = np.flip(out, axis=axis)
            src = array.dims[d] if d < len(array.dims) else NDDimension(n)
            dims.append(
                NDDimension(
                    size // binning,
                    src.offset + start * src.binning,
                    src.binning * binning,
                    int(bool(src.reverse) ^ bool(rev)),
                )
            )
        dtype_choice = p.get("ROI_DATA_TYPE")
        dtype = (
            data.dtype
            if dtype_choice == AUTOMATIC or dtype_choice >= len(NUMPY_DTYPES)
            else NUMPY_DTYPES[dtype_choice]
        )
        if p.get("ROI_ENABLE_SCALE") and p.get("ROI_SCALE_VALUE") != 0:
            out = out / p.get("ROI_SCALE_VALUE")
        out = np.ascontiguousarray(c_cast(out, dtype) if out.dtype != dtype else out)
        result = NDArray(
            data=out,
            unique_id=array.unique_id,
            timestamp=array.timestamp,
            epics_ts_sec=array.epics_ts_sec,
            epics_ts_nsec=array.epics_ts_nsec,
            color_mode=array.color_mode,
            dims=dims,
            attributes=dict(array.attributes),
        )
        self.emit(result)
