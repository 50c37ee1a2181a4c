"""NDPluginTimeSeries (``Stats1:TS:``): time series of the values a plugin sends.

NDPluginStats sends, for every array it measures, a 1-D NDArray of 23 doubles
(MinValue ... Timestamp) on its asyn address 1; the time-series port takes
arrays from there (NDArrayAddress=1) and appends each value to its signal's
series, as NDPluginTimeSeries.cpp does:

- TSAcquire=1 erases the series, sets TSCurrentPoint to 0 and starts;
  TSAcquire=0 stops and publishes the series.  TSAcquire is a busy record:
  a put of 1 completes when acquisition ends.
- TSAcquireMode "Fixed length" stops by itself after TSNumPoints points (and
  publishes); "Circ. buffer" wraps around and publishes oldest point first.
- Every TSNumAverage input points are averaged into one output point;
  TSNumAverage is 1 when the upstream port gives no time per point (the
  commonPlugins set), and TSTimePerPoint is then what the client asked for.
- TSTimeAxis is i * TSTimePerPoint.  TSRead publishes the series now; the
  real IOC's TSRead record is scanned every second while TSAcquiring, which
  :meth:`process` reproduces by publishing at most once per second.

In ADCore the per-signal waveforms (``Stats1:TSMinValue`` ...) are loaded by
NDStats.template on the *Stats* prefix but belong to this port (one asyn
address per signal).  So this port's group sits on the Stats prefix: its signal
table (``signals``, e.g. ``NDStatsTS``) is served there, and its own records
(NDArrayBase + NDPluginBase + NDTimeSeries) on ``prefix`` below it (``TS:``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.records import load_template

FIXED, CIRCULAR = 0, 1
#: TSControl of the pre-R3 NDStats records
ERASE_START, START, STOP, READ = range(4)


def time_series_point(array: NDArray, values: Any) -> NDArray:
    """One point for a time-series port: ``values`` (one per signal) as a 1-D Float64
    array carrying ``array``'s uniqueId and time stamps (what Stats and Attribute send
    on their address 1)."""
    return NDArray(
        data=np.asarray(values, dtype=np.float64),
        unique_id=array.unique_id,
        timestamp=array.timestamp,
        epics_ts_sec=array.epics_ts_sec,
        epics_ts_nsec=array.epics_ts_nsec,
    )


def clamp_points(plugin: PluginDriver, n: int, limit: int) -> int:
    """A number of time-series points within 1..limit (the waveforms' NELM): more
    could never be shown, and would only take memory.  A clamped value is logged."""
    clamped = min(max(n, 1), limit)
    if clamped != n:
        plugin.log.warning("TSNumPoints %d out of 1..%d: using %d", n, limit, clamped)
    return clamped


class NDTimeSeries(PluginDriver):
    plugin_type = "NDPluginTimeSeries"

    def __init__(self, *args: Any, signals: str = "NDStatsTS", prefix: str = "TS:", **kwargs: Any):
        self.signal_table = signals
        self.ts_prefix = prefix
        #: drvInfo of each signal's series, in the order of the values upstream sends
        waveforms = [s for s in load_template(signals) if s.rtype == "waveform" and s.drvinfo]
        self.signals = [s.drvinfo for s in waveforms]
        #: TSNumPoints is kept within what the waveforms can show (their NELM)
        self.max_points = min(s.nelm for s in waveforms)
        super().__init__(*args, **kwargs)
        n = len(self.signals)
        self._series = np.zeros((n, 0))
        self._stamps = np.zeros(0)
        self._sum = np.zeros(n)
        self._num_summed = 0
        self._point = 0
        self._start = 0.0
        self._last_read = 0.0

    # -- records --------------------------------------------------------------
    def all_templates(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.signal_table,)

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(
            (t, self.ts_prefix, 0) for t in ("NDArrayBase", "NDPluginBase", "NDTimeSeries")
        )

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {
            "signals": definition.get("signals", "NDStatsTS"),
            "prefix": definition.get("prefix", "TS:"),
        }

    def init_params(self) -> None:
        super().init_params()
        self.set("TS_NUM_AVERAGE", 1)
        self._allocate(publish_axis=False)  # the real IOC boots with TSTimeAxis all 0

    # -- writes ---------------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        if name == "TS_NUM_POINTS":
            value = clamp_points(self, int(value), self.max_points)
        super().write_param(addr, name, value)
        if name == "TS_NUM_POINTS":
            self._allocate()
        elif name == "TS_ACQUIRE_MODE":
            self._publish_axis()
        elif name == "TS_TIME_PER_POINT":
            self._num_summed = 0
            self._sum[:] = 0
            self._publish_axis()
        elif name == "TS_ACQUIRE":
            self._start_stop(bool(value), erase=True)
        elif name == "TS_READ":
            self._publish_series()
        elif name == "TS_CONTROL":
            if value in (ERASE_START, START):
                self._start_stop(True, erase=value == ERASE_START)
            elif value == STOP:
                self._start_stop(False)
            elif value == READ:
                self._publish_series()

    def _start_stop(self, start: bool, erase: bool = True) -> None:
        if start:
            if erase:
                self._point = 0
                self._series[:] = 0
                self._stamps[:] = 0
                self._start = time.monotonic()
            self._num_summed = 0
            self._sum[:] = 0
            self.set("TS_CURRENT_POINT", self._point)
            self.set("TS_ACQUIRE", 1)
        else:
            self.set("TS_ACQUIRE", 0)
            self._publish_series()

    def _allocate(self, publish_axis: bool = True) -> None:
        n = self.get("TS_NUM_POINTS")
        self._series = np.zeros((len(self.signals), n))
        self._stamps = np.zeros(n)
        self._point = 0
        self.set("TS_CURRENT_POINT", 0)
        if publish_axis:
            self._publish_axis()

    def _publish_axis(self) -> None:
        """TSTimeAxis: 0, dt, 2 dt ...; in a circular buffer the newest point is at 0."""
        n = self._stamps.size
        first = -(n - 1) if self.get("TS_ACQUIRE_MODE") == CIRCULAR else 0
        self._set_series(
            "TS_TIME_AXIS", np.arange(first, first + n) * self.get("TS_TIME_PER_POINT")
        )

    def _set_series(self, name: str, values: np.ndarray) -> None:
        if not len(values):
            values = np.zeros(1)  # never an empty waveform update (pyepics)
        self.params.set(name, np.asarray(values, dtype=np.float64), force=True)

    def _publish_series(self) -> None:
        """doTimeSeriesCallbacks: every signal's series, in time order."""
        self._last_read = time.monotonic()
        if self.get("TS_ACQUIRE_MODE") == CIRCULAR:
            series = np.roll(self._series, -self._point, axis=1)
        else:
            series = self._series[:, : self._point]
        for name, values in zip(self.signals, series, strict=True):
            self._set_series(name, values)

    # -- arrays ---------------------------------------------------------------
    def process(self, array: NDArray) -> None:
        self.count_array()
        data = array.data
        if data.ndim not in (1, 2):
            self.log.error(
                "time series: array %d has %d dimensions, not 1 or 2", array.unique_id, data.ndim
            )
            return
        if not self.get("TS_ACQUIRE"):
            return
        n_signals = len(self.signals)
        # NDArray dims[0] is the signal, dims[1] (if any) the time: numpy shape (times, signals)
        rows = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[-1])
        num_average = max(self.get("TS_NUM_AVERAGE"), 1)
        circular = self.get("TS_ACQUIRE_MODE") == CIRCULAR
        n_points = self._stamps.size
        for row in rows:
            k = min(row.size, n_signals)
            self._sum[:k] += row[:k]
            self._num_summed += 1
            if self._num_summed < num_average:
                continue
            self._series[:, self._point] = self._sum / self._num_summed
            self._sum[:] = 0
            self._num_summed = 0
            self._stamps[self._point] = array.timestamp
            self._point += 1
            if self._point >= n_points:
                if not circular:
                    self.set("TS_CURRENT_POINT", self._point)
                    self.set("TS_ACQUIRE", 0)
                    self._publish_series()
                    break
                self._point = 0
        self.set("TS_CURRENT_POINT", self._point)
        self.set("TS_ELAPSED_TIME", time.monotonic() - self._start)
        if self.get("TS_ACQUIRE") and time.monotonic() - self._last_read >= 1.0:
            self._publish_series()  # the 1-second scan of TSRead
