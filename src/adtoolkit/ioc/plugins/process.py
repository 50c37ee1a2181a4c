"""NDPluginProcess (``Proc1:``): offset/scale and clipping of each array.

A minimal version of ADCore's processing chain, in its order, computed in
float64: ``(value + Offset) * Scale`` when EnableOffsetScale, then values below
LowClip set to LowClip (EnableLowClip) and above HighClip set to HighClip
(EnableHighClip); the result is converted to DataTypeOut (Automatic keeps the
input type) with C conversion semantics.  Background, flat field and the
recursive filter are not simulated: with them enabled the array still gets
the steps above.  With nothing enabled and DataTypeOut Automatic the array
passes through untouched (no copy).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from adtoolkit.ioc.ndarray import NUMPY_DTYPES, NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.simimages import c_cast

AUTOMATIC = 10


class NDProcess(PluginDriver):
    plugin_type = "NDPluginProcess"
    templates = ("NDProcess",)

    def process(self, array: NDArray) -> None:
        self.count_array()
        g = self.params.get
        choice = g("PROCESS_DATA_TYPE")
        dtype = (
            array.data.dtype
            if choice == AUTOMATIC or not 0 <= choice < len(NUMPY_DTYPES)
            else NUMPY_DTYPES[choice]
        )
        offset_scale, low, high = g("ENABLE_OFFSETSCALE"), g("ENABLE_LOWCLIP"), g("ENABLE_HIGHCLIP")
        if not (offset_scale or low or high) and dtype == array.data.dtype:
            return self.emit(array)
        values = array.data.astype(np.float64)
        if offset_scale:
            values += g("OFFSET")
            values *= g("SCALE")
        if low:
            np.maximum(values, g("LOW_CLIP"), out=values)
        if high:
            np.minimum(values, g("HIGH_CLIP"), out=values)
        out = np.ascontiguousarray(c_cast(values, dtype))
        self.emit(dataclasses.replace(array, data=out, attributes=dict(array.attributes)))
