"""NDPluginROIStat (``ROIStat1:``): simple statistics of up to eight regions.

Each ROI is one asyn address (``ROIStat1:1:`` is address 0 ... ``ROIStat1:8:``
address 7), as NDPluginROIStat.cpp has them:

- an ROI with Use=Yes is clipped to the array (MinX/MinY into the array, a
  negative one to the last pixel as ADCore's unsigned arithmetic does, SizeX/
  SizeY at least 1 and at most what is left), and the clipped values are written
  back to its MinX/SizeX... readbacks; MaxSizeX/MaxSizeY_RBV are the array's;
- MinValue, MaxValue, MeanValue, Total of the region; Net is Total minus the
  average of a BgdWidth-wide frame inside the region's edges (its pixels summed
  as ADCore loops over them: top rows, bottom rows, then left and right columns
  of the rows in between) times the region's pixel count;
- the plugin's own time series (TSControl: Erase/Start, Start, Stop, Read,
  Erase; TSNumPoints; TSCurrentPoint; TSAcquiring) keeps MinValue ... Net and
  the array time stamp of every used ROI per array, and stops by itself when
  full.  The real IOC's TSRead record rereads the series every second while
  acquiring, which :meth:`process` reproduces;
- Reset clears one ROI's values, ResetAll every ROI's;
- only 1-D and 2-D arrays are measured; others are refused with an error in
  the log and not passed on (ADCore returns before endProcessCallbacks).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.plugins.timeseries import clamp_points

NUM_ROIS = 8
#: NELM of the ROIStat1:n:TS* waveforms (NCHANS)
MAX_POINTS = 2048
VALUES = ("MIN_VALUE", "MAX_VALUE", "MEAN_VALUE", "TOTAL", "NET")
#: the time series of every ROI, in the order of their rows in the store
SERIES = ("MIN_VALUE", "MAX_VALUE", "MEAN_VALUE", "TOTAL", "NET", "TIMESTAMP")
ERASE_START, START, STOP, READ, ERASE = range(5)


class NDROIStat(PluginDriver):
    plugin_type = "NDPluginROIStat"
    templates = ("NDROIStat",)

    def __init__(self, *args: Any, num_rois: int = NUM_ROIS, **kwargs: Any) -> None:
        self.num_rois = num_rois
        kwargs["num_addr"] = num_rois
        super().__init__(*args, **kwargs)
        self._series = np.zeros((num_rois, len(SERIES), 0))
        self._point = 0
        self._last_read = 0.0

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(("NDROIStatN", f"{i + 1}:", i) for i in range(self.num_rois))

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"num_rois": int(definition.get("num_rois", NUM_ROIS))}

    def init_params(self) -> None:
        super().init_params()
        # as the real IOC boots: the driver's values win over the templates' VAL
        # (SizeX/SizeY VAL=1 show 0), and the Reset records read 1
        self.set("ROISTAT_RESETALL", 1)
        for plist in self.lists:
            plist.set("ROISTAT_DIM0_SIZE", 0)
            plist.set("ROISTAT_DIM1_SIZE", 0)
            plist.set("ROISTAT_RESET", 1)
        self._allocate()

    def _allocate(self) -> None:
        n = max(self.get("ROISTAT_TS_NUM_POINTS"), 1)
        self._series = np.zeros((self.num_rois, len(SERIES), n))
        self._point = 0
        self.set("ROISTAT_TS_CURRENT_POINT", 0)

    # -- writes ---------------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        if name == "ROISTAT_TS_NUM_POINTS":
            value = clamp_points(self, int(value), MAX_POINTS)
        super().write_param(addr, name, value)
        if name == "ROISTAT_RESET":
            self._clear(addr)
        elif name == "ROISTAT_RESETALL":
            for roi in range(self.num_rois):
                self._clear(roi)
        elif name == "ROISTAT_TS_NUM_POINTS":
            self._allocate()
        elif name == "ROISTAT_TS_CONTROL":
            self._ts_control(int(value))

    def _clear(self, roi: int) -> None:
        plist = self.lists[roi]
        for name in VALUES:
            plist.set("ROISTAT_" + name, 0.0)
        plist.call_callbacks()

    def _ts_control(self, command: int) -> None:
        if command in (ERASE_START, ERASE):
            self._point = 0
            self._series[:] = 0
            self.set("ROISTAT_TS_CURRENT_POINT", 0)
        if command == ERASE_START or (command == START and self._point < self._series.shape[2]):
            self.set("ROISTAT_TS_ACQUIRING", 1)
        elif command == STOP:
            self.set("ROISTAT_TS_ACQUIRING", 0)
        if command in (STOP, READ, ERASE):
            self._publish_series()

    def _publish_series(self) -> None:
        self._last_read = time.monotonic()
        n = self._point
        for roi in range(self.num_rois):
            plist = self.lists[roi]
            for row, name in enumerate(SERIES):
                values = self._series[roi, row, :n] if n else np.zeros(1)
                plist.set("ROISTAT_TS_" + name, values, force=True)
            plist.call_callbacks()

    # -- arrays ---------------------------------------------------------------
    def process(self, array: NDArray) -> None:
        self.count_array()
        data = array.data
        if data.ndim not in (1, 2):
            self.log.error(
                "ROIStat: array %d has %d dimensions; only 1-D and 2-D arrays are measured",
                array.unique_id,
                data.ndim,
            )
            return
        dims = data.shape[::-1]  # NDArray order: dims[0] is x
        self.set("ARRAY_SIZE_X", dims[0])
        if data.ndim > 1:
            self.set("ARRAY_SIZE_Y", dims[1])
        acquiring = self.get("ROISTAT_TS_ACQUIRING")
        for roi in range(self.num_rois):
            plist = self.lists[roi]
            if not plist.get("ROISTAT_USE"):
                continue
            values = self._measure(plist, data, dims)
            if acquiring:
                self._series[roi, :, self._point] = [*values, array.timestamp]
            plist.call_callbacks()
        if acquiring:
            self._point += 1
            self.set("ROISTAT_TS_CURRENT_POINT", self._point)
            if self._point >= self._series.shape[2]:
                self.set("ROISTAT_TS_ACQUIRING", 0)
                self._publish_series()
            elif time.monotonic() - self._last_read >= 1.0:
                self._publish_series()  # the 1-second scan of TSRead
        self.emit(array)

    @staticmethod
    def _measure(plist: Any, data: np.ndarray, dims: tuple[int, ...]) -> list[float]:
        """Clip the ROI to the array, publish the clipped geometry, compute its values."""
        offset, size = [0, 0], [1, 1]
        for d, n in enumerate(dims):
            lo = plist.get(f"ROISTAT_DIM{d}_MIN")
            # ADCore keeps the offset in a size_t: a negative MinX wraps to a huge
            # value and is clipped to the last pixel, not to 0 (seen on the real IOC)
            lo = n - 1 if lo < 0 else min(lo, n - 1)
            offset[d] = lo
            size[d] = min(max(plist.get(f"ROISTAT_DIM{d}_SIZE"), 1), n - lo)
            plist.set(f"ROISTAT_DIM{d}_MAX_SIZE", n)
            plist.set(f"ROISTAT_DIM{d}_MIN", lo)
            plist.set(f"ROISTAT_DIM{d}_SIZE", size[d])
        if len(dims) == 1:
            plist.set("ROISTAT_DIM1_MAX_SIZE", 0)
            region = data[offset[0] : offset[0] + size[0]].astype(np.float64)[np.newaxis, :]
        else:
            region = data[offset[1] : offset[1] + size[1], offset[0] : offset[0] + size[0]].astype(
                np.float64
            )
        total = float(region.sum())
        ny, nx = region.shape
        width = plist.get("ROISTAT_BGD_WIDTH")
        net = total
        if width > 0:
            wx, wy = min(width, nx), min(width, ny)
            if len(dims) == 1:
                parts = [region[:, :wx], region[:, nx - wx :]]
            else:
                middle = region[wy : ny - wy]
                parts = [region[:wy], region[ny - wy :], middle[:, :wx], middle[:, nx - wx :]]
            count = sum(p.size for p in parts)
            if count:
                net = total - sum(float(p.sum()) for p in parts) / count * region.size
        values = [float(region.min()), float(region.max()), total / region.size, total, net]
        for name, value in zip(VALUES, values, strict=True):
            plist.set("ROISTAT_" + name, value)
        return values
