"""NDPluginStats (``Stats1:``): statistics, centroid, profiles and histogram.

Computed with numpy in float64, with the definitions of NDPluginStats.cpp:

- statistics: MinValue, MaxValue, MeanValue, Sigma (population standard
  deviation), Total, Net (total minus BgdWidth-wide edge background),
  MinX/MinY, MaxX/MaxY;
- centroid (ComputeCentroid): pixels at or above CentroidThreshold give the raw
  moments, hence CentroidX/Y, SigmaX/Y, SigmaXY (correlation), SkewX/Y,
  KurtosisX/Y (excess), Eccentricity and Orientation (degrees), CentroidTotal;
- profiles (ComputeProfiles): average and thresholded X/Y profiles (filled by
  the centroid pass, as in ADCore), the row/column through the centroid and
  through the cursor (CursorX/CursorY), ProfileSizeX/Y;
- histogram (ComputeHistogram): HistSize bins from HistMin to HistMax, a value
  v going to bin int((v - HistMin) * (HistSize - 1) / (HistMax - HistMin) + 0.5);
  values outside the range count in HistBelow/HistAbove; HistEntropy is
  -sum(c * ln c) / N over the bins; HistogramX_RBV holds the bin positions
  HistMin + i * (HistMax - HistMin) / HistSize, updated when the range changes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.plugins.timeseries import time_series_point

PROFILES = ("AVERAGE", "THRESHOLD", "CENTROID", "CURSOR")

#: the values sent to the time-series port on address 1, in NDPluginStats' order
#: (the asyn addresses of Stats1:TSMinValue ... Stats1:TSOrientation); the array's
#: time stamp follows as the 23rd value (Stats1:TSTimestamp)
#: the centroid pass's values (0 when nothing reaches CentroidThreshold)
CENTROID_VALUES = (
    "CENTROIDX_VALUE",
    "CENTROIDY_VALUE",
    "SIGMAX_VALUE",
    "SIGMAY_VALUE",
    "SIGMAXY_VALUE",
    "SKEWX_VALUE",
    "SKEWY_VALUE",
    "KURTOSISX_VALUE",
    "KURTOSISY_VALUE",
    "ECCENTRICITY_VALUE",
    "ORIENTATION_VALUE",
)
TIME_SERIES = (
    "MIN_VALUE",
    "MIN_X",
    "MIN_Y",
    "MAX_VALUE",
    "MAX_X",
    "MAX_Y",
    "MEAN_VALUE",
    "SIGMA_VALUE",
    "TOTAL",
    "NET",
    "CENTROID_TOTAL",
    *CENTROID_VALUES,
)


class NDStats(PluginDriver):
    plugin_type = "NDPluginStats"
    templates = ("NDStats",)

    def init_params(self) -> None:
        super().init_params()
        self._compute_hist_x()

    def write_param(self, addr: int, name: str, value: Any) -> None:
        super().write_param(addr, name, value)
        if name in ("HIST_SIZE", "HIST_MIN", "HIST_MAX"):
            self._compute_hist_x()

    def _nelm(self, name: str) -> int:
        """Element count of the waveform records showing parameter ``name``."""
        lengths = [getattr(ch, "max_length", 0) for ch, _ in self.params.params[name].bindings]
        return min((n for n in lengths if n), default=1 << 30)

    def _set_array(self, name: str, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)[: self._nelm(name)]
        if not len(values):
            values = np.zeros(1)  # never an empty waveform update (pyepics)
        self.params.set(name, values, force=True)

    def _compute_hist_x(self) -> None:
        p = self.params
        size = max(p.get("HIST_SIZE"), 1)
        lo, hi = p.get("HIST_MIN"), p.get("HIST_MAX")
        self._set_array("HIST_X_ARRAY", lo + np.arange(size) * ((hi - lo) / size))

    # -- processing -----------------------------------------------------------
    def process(self, array: NDArray) -> None:
        self.count_array()
        p = self.params
        data = array.data
        if data.ndim == 3 and array.color_mode != 0:
            return self.emit(array)  # Stats works on 2-D (mono) arrays only
        img = data.astype(np.float64, copy=False)
        if p.get("COMPUTE_STATISTICS"):
            self._statistics(img)
        centroid = p.get("COMPUTE_CENTROID") and img.ndim == 2
        profiles = p.get("COMPUTE_PROFILES") and img.ndim == 2
        if centroid or profiles:
            ny, nx = img.shape
            p.set("PROFILE_SIZE_X", nx)
            p.set("PROFILE_SIZE_Y", ny)
            prof = {f"{k}_{a}": np.zeros(n) for k in PROFILES for a, n in (("X", nx), ("Y", ny))}
            if centroid:
                self._centroid(img, prof)
            if profiles:
                self._profiles(img, prof)
                for key, values in prof.items():
                    self._set_array(f"PROFILE_{key}", values)
        if p.get("COMPUTE_HISTOGRAM"):
            self._histogram(img)
        if self.clients.get(1):  # a time-series port listens (Stats1:TS:)
            self._send_time_series(array)
        self.emit(array)

    def _send_time_series(self, array: NDArray) -> None:
        """doTimeSeriesCallbacks: this array's statistics as one 1-D array on address 1."""
        values = [self.params.get(name) for name in TIME_SERIES] + [array.timestamp]
        self.do_callbacks(time_series_point(array, values), addr=1, origin=self._origin or self)

    def _statistics(self, img: np.ndarray) -> None:
        p = self.params
        flat = img.reshape(-1)
        imin, imax = int(np.argmin(flat)), int(np.argmax(flat))
        nx = img.shape[-1]
        total = float(flat.sum())
        net = total
        width = p.get("BGD_WIDTH")
        if width > 0:
            net = total - self._background(img, width) * flat.size
        p.update(
            {
                "MIN_VALUE": float(flat[imin]),
                "MAX_VALUE": float(flat[imax]),
                "MEAN_VALUE": total / flat.size,
                "SIGMA_VALUE": float(flat.std()),
                "TOTAL": total,
                "NET": net,
                "MIN_X": float(imin % nx),
                "MIN_Y": float(imin // nx),
                "MAX_X": float(imax % nx),
                "MAX_Y": float(imax // nx),
            }
        )

    @staticmethod
    def _background(img: np.ndarray, width: int) -> float:
        """Average of the BgdWidth-wide slabs at both ends of every dimension
        (corner pixels count once per slab, as in ADCore)."""
        counts, pixels = 0.0, 0
        for axis, n in enumerate(img.shape):
            w = min(width, n)
            for start in (0, max(n - width, 0)):
                slab = np.take(img, range(start, start + min(w, n - start)), axis=axis)
                counts += float(slab.sum())
                pixels += slab.size
        return counts / max(pixels, 1)

    def _centroid(self, img: np.ndarray, prof: dict[str, np.ndarray]) -> None:
        p = self.params
        ny, nx = img.shape
        w = np.where(img >= p.get("CENTROID_THRESHOLD"), img, 0.0)
        px, py = w.sum(axis=0), w.sum(axis=1)
        prof["AVERAGE_X"] = img.sum(axis=0) / ny
        prof["AVERAGE_Y"] = img.sum(axis=1) / nx
        prof["THRESHOLD_X"] = px / ny
        prof["THRESHOLD_Y"] = py / nx
        m00 = float(px.sum())
        values = dict.fromkeys(CENTROID_VALUES, 0.0)
        values["CENTROID_TOTAL"] = m00
        if m00 > 0:
            x = np.arange(nx, dtype=np.float64)
            y = np.arange(ny, dtype=np.float64)
            cx = float((px * x).sum()) / m00
            cy = float((py * y).sum()) / m00
            # central moments of the thresholded image, normalised by the total
            vx = float((px * (x - cx) ** 2).sum()) / m00
            vy = float((py * (y - cy) ** 2).sum()) / m00
            vxy = float((w * np.outer(y - cy, x - cx)).sum()) / m00
            sx, sy = math.sqrt(max(vx, 0.0)), math.sqrt(max(vy, 0.0))
            values.update(
                CENTROIDX_VALUE=cx,
                CENTROIDY_VALUE=cy,
                SIGMAX_VALUE=sx,
                SIGMAY_VALUE=sy,
                ORIENTATION_VALUE=math.degrees(0.5 * math.atan2(2.0 * vxy, vx - vy)),
            )
            if sx and sy:
                values["SIGMAXY_VALUE"] = vxy / (sx * sy)
            if vx:
                values["SKEWX_VALUE"] = float((px * (x - cx) ** 3).sum()) / m00 / vx**1.5
                values["KURTOSISX_VALUE"] = float((px * (x - cx) ** 4).sum()) / m00 / vx**2 - 3
            if vy:
                values["SKEWY_VALUE"] = float((py * (y - cy) ** 3).sum()) / m00 / vy**1.5
                values["KURTOSISY_VALUE"] = float((py * (y - cy) ** 4).sum()) / m00 / vy**2 - 3
            if vx + vy:
                values["ECCENTRICITY_VALUE"] = ((vx - vy) ** 2 - 4 * vxy**2) / (vx + vy) ** 2
        p.update(values)

    def _profiles(self, img: np.ndarray, prof: dict[str, np.ndarray]) -> None:
        p = self.params
        ny, nx = img.shape

        def clamp(i: float, n: int) -> int:
            return min(max(int(i), 0), n - 1)

        row = clamp(p.get("CENTROIDY_VALUE") + 0.5, ny)
        col = clamp(p.get("CENTROIDX_VALUE") + 0.5, nx)
        prof["CENTROID_X"] = img[row, :]
        prof["CENTROID_Y"] = img[:, col]
        prof["CURSOR_X"] = img[clamp(p.get("CURSOR_Y"), ny), :]
        prof["CURSOR_Y"] = img[:, clamp(p.get("CURSOR_X"), nx)]
        p.set("CURSOR_VAL", float(img[clamp(p.get("CURSOR_Y"), ny), clamp(p.get("CURSOR_X"), nx)]))

    def _histogram(self, img: np.ndarray) -> None:
        p = self.params
        size = max(p.get("HIST_SIZE"), 1)
        lo, hi = p.get("HIST_MIN"), p.get("HIST_MAX")
        flat = img.reshape(-1)
        below = flat < lo
        above = flat > hi
        inside = flat[~(below | above)]
        if hi > lo and size > 1:
            bins = ((inside - lo) * ((size - 1) / (hi - lo)) + 0.5).astype(np.int64)
        else:
            bins = np.zeros(inside.size, np.int64)
        hist = np.bincount(bins, minlength=size)[:size].astype(np.float64)
        counts = np.where(hist > 0, hist, 1.0)
        p.set("HIST_BELOW", int(below.sum()))
        p.set("HIST_ABOVE", int(above.sum()))
        p.set("HIST_ENTROPY", -float((counts * np.log(counts)).sum()) / flat.size)
        self._set_array("HIST_ARRAY", hist)
