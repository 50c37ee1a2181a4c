"""NDPluginStats (``Stats1:``): basic statistics and centroid of each array.

Computed with numpy in float64: MinValue, MaxValue, MeanValue, Sigma, Total,
Net (total minus background, BgdWidth=0 gives Net=Total), MinX/MinY, MaxX/MaxY,
and the centroid moments (CentroidX/Y, SigmaX/Y, SigmaXY, CentroidTotal) when
ComputeCentroid=Yes, as NDPluginStats.cpp defines them (pixels above
CentroidThreshold contribute).
"""

from __future__ import annotations

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver


class NDStats(PluginDriver):
    plugin_type = "NDPluginStats"
    templates = ("NDStats",)

    def process(self, array: NDArray) -> None:
        self.count_array()
        p = self.params
        data = array.data
        if data.ndim == 3 and array.color_mode != 0:
            return self.emit(array)  # Stats works on 2-D (mono) arrays only
        img = data.astype(np.float64, copy=False)
        if p.get("COMPUTE_STATISTICS"):
            flat = img.reshape(-1)
            imin, imax = int(np.argmin(flat)), int(np.argmax(flat))
            nx = img.shape[-1]
            total = float(flat.sum())
            p.update(
                {
                    "MIN_VALUE": float(flat[imin]),
                    "MAX_VALUE": float(flat[imax]),
                    "MEAN_VALUE": total / flat.size,
                    "SIGMA_VALUE": float(flat.std()),
                    "TOTAL": total,
                    "NET": total,
                    "MIN_X": float(imin % nx),
                    "MIN_Y": float(imin // nx),
                    "MAX_X": float(imax % nx),
                    "MAX_Y": float(imax // nx),
                }
            )
        if p.get("COMPUTE_CENTROID") and img.ndim == 2:
            self._centroid(img)
        self.emit(array)

    def _centroid(self, img: np.ndarray) -> None:
        p = self.params
        threshold = p.get("CENTROID_THRESHOLD")
        w = np.where(img >= threshold, img, 0.0)
        total = float(w.sum())
        values = {"CENTROID_TOTAL": total}
        if total > 0:
            ny, nx = img.shape
            x = np.arange(nx, dtype=np.float64)
            y = np.arange(ny, dtype=np.float64)
            px, py = w.sum(axis=0), w.sum(axis=1)
            cx = float((px * x).sum() / total)
            cy = float((py * y).sum() / total)
            vx = float((px * (x - cx) ** 2).sum() / total)
            vy = float((py * (y - cy) ** 2).sum() / total)
            vxy = float((w * np.outer(y - cy, x - cx)).sum() / total)
            values.update(
                {
                    "CENTROIDX_VALUE": cx,
                    "CENTROIDY_VALUE": cy,
                    "SIGMAX_VALUE": vx**0.5,
                    "SIGMAY_VALUE": vy**0.5,
                    "SIGMAXY_VALUE": vxy / (vx * vy) ** 0.5 if vx > 0 and vy > 0 else 0.0,
                }
            )
        p.update(values)
