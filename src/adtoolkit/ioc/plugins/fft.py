"""NDPluginFFT (``FFT1:``): FFT magnitudes of 1-D and 2-D arrays.

What the real IOC (ADCore R3-14) does, checked value for value on the same
frames (see tests/test_ioc_fft.py):

- each dimension is zero-padded up to the next power of two (nTimeX, nTimeY);
  the output has half of each (nFreqX x nFreqY, at least 1 row), Float64, with
  the plugin's own uniqueId counter (0, 1, ...) and the plugin's attributes only;
- ADCore's N-D transform takes the padded buffer (X fastest) with its
  dimensions listed X first, so it transforms the buffer *as if* it were
  nTimeX rows of nTimeY: ``fft2(buffer.reshape(nTimeX, nTimeY))``.  For a square
  padded array that is the ordinary 2-D FFT; for another it is not, and we
  compute what ADCore computes, not the textbook transform;
- ADCore's transform uses exp(+i...): the imaginary part has the opposite
  sign to numpy's forward FFT;
- magnitude = |F| / (nTimeX * nTimeY); SuppressDC zeroes the first point;
- the output is a running average over FFTNumAverage arrays (restarted by
  FFTResetAverage, which the record keeps showing as Reset, and by a change of
  FFTNumAverage); FFTNumAveraged counts up to FFTNumAverage;
- the waveforms show the first row: FFTTimeSeries (padded), FFTReal,
  FFTImaginary, FFTAbsValue (averaged); FFTTimeAxis is ``i * FFTTimePerPoint``,
  FFTFreqAxis ``i * 0.5 / FFTTimePerPoint / (nFreqX - 1)``;
- an array of other than 1 or 2 dimensions (an RGB image) is counted, its
  readbacks shown, an error logged, and nothing passed on.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray, NDDimension
from adtoolkit.ioc.plugin import PluginDriver

WAVEFORMS = ("FFTTimeAxis", "FFTFreqAxis", "FFTTimeSeries", "FFTReal", "FFTImaginary")


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (ADCore's nextPow2)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def adcore_fft(data: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The complex transform ADCore computes, as a flat buffer, with nTimeX, nTimeY."""
    if data.ndim == 1:
        nx, ny = next_pow2(data.shape[0]), 1
        rows = data.reshape(1, -1)
    else:
        nx, ny = next_pow2(data.shape[1]), next_pow2(data.shape[0])
        rows = data
    buffer = np.zeros((ny, nx))
    buffer[: rows.shape[0], : rows.shape[1]] = rows
    if data.ndim == 1:
        spectrum = np.fft.fft(buffer.ravel())
    else:
        spectrum = np.fft.fft2(buffer.reshape(nx, ny)).ravel()
    return np.conj(spectrum), nx, ny


class NDFFT(PluginDriver):
    plugin_type = "NDPluginFFT"
    templates = ("NDFFT",)

    def __init__(self, *args: Any, nchans: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nchans = nchans
        self._average: np.ndarray | None = None
        self._num_average = 0
        self._out_id = 0
        self._time_in: tuple[int, ...] = ()
        self._time_per_point = 0.0

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"nchans": int(definition.get("nchans") or ioc.cam.get("MAX_SIZE_X"))}

    def record_overrides(self) -> tuple[tuple[str, str, Any], ...]:
        names = (*WAVEFORMS, "FFTAbsValue")
        return (("Name", "value", self.port_name), *((n, "nelm", self.nchans) for n in names))

    def process(self, array: NDArray) -> None:
        self.count_array()
        data = array.data
        if data.ndim not in (1, 2):
            self.log.error(
                "%s: array %d has %d dimensions; the FFT needs 1 or 2 (an RGB array is refused)",
                self.port_name,
                array.unique_id,
                data.ndim,
            )
            return
        spectrum, nx, ny = adcore_fft(data.astype(np.float64))
        nfx, nfy = nx // 2, max(ny // 2, 1)
        # rows i < nFreqY of the buffer, stride nTimeX, first nFreqX points each
        freq = spectrum.reshape(-1, nx)[:nfy, :nfx] if ny > 1 else spectrum[:nfx].reshape(1, -1)
        magnitude = np.abs(freq) / (nx * ny)
        if self.get("FFT_SUPPRESS_DC"):
            freq = freq.copy()
            freq[0, 0] = 0
            magnitude[0, 0] = 0
        size_changed = data.shape != self._time_in
        if size_changed:
            self._time_in = data.shape
            self._average = np.zeros_like(magnitude)
        tpp = self.get("FFT_TIME_PER_POINT")
        if size_changed or tpp != self._time_per_point:
            self._time_per_point = tpp
            self._axes(nx, nfx, tpp)
        self._accumulate(magnitude)
        self._publish(data, freq, nx, nfx)
        self._emit_average(array, nfx, nfy, data.ndim)

    def _axes(self, nx: int, nfx: int, tpp: float) -> None:
        self.set("FFT_TIME_AXIS", np.arange(nx) * tpp)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = 0.5 / tpp / (nfx - 1) if tpp and nfx > 1 else np.inf
            self.set("FFT_FREQ_AXIS", np.arange(nfx) * step)

    def _accumulate(self, magnitude: np.ndarray) -> None:
        num_average = self.get("FFT_NUM_AVERAGE")
        averaged = self.get("FFT_NUM_AVERAGED")
        if self.get("FFT_RESET_AVERAGE"):
            self.set("FFT_RESET_AVERAGE", 0)  # the bo record keeps showing Reset
            averaged = 1
        if num_average != self._num_average:
            self._num_average = num_average
            averaged = 1
        averaged = max(averaged, 1)
        old, new = 1.0 - 1.0 / averaged, 1.0 / averaged
        if averaged < num_average:
            averaged += 1
        self.set("FFT_NUM_AVERAGED", averaged)
        assert self._average is not None
        self._average = self._average * old + magnitude * new

    def _publish(self, data: np.ndarray, freq: np.ndarray, nx: int, nfx: int) -> None:
        first = data if data.ndim == 1 else data[0]
        series = np.zeros(nx)
        series[: first.shape[0]] = first
        n = self.nchans
        self.set("FFT_TIME_SERIES", series[:n])
        self.set("FFT_REAL", freq[0].real[:n])
        self.set("FFT_IMAGINARY", freq[0].imag[:n])
        assert self._average is not None
        self.set("FFT_ABS_VALUE", self._average[0][:n])

    def _emit_average(self, array: NDArray, nfx: int, nfy: int, rank: int) -> None:
        if not self.get("ARRAY_CALLBACKS"):
            return
        assert self._average is not None
        out = np.ascontiguousarray(self._average if rank == 2 else self._average[0])
        now = time.time()
        result = NDArray(
            data=out,
            unique_id=self._out_id,
            timestamp=now,
            epics_ts_sec=array.epics_ts_sec,
            epics_ts_nsec=array.epics_ts_nsec,
            dims=[NDDimension(nfx), NDDimension(nfy)][:rank],
            attributes=dict(self.extra_attributes(array)),
        )
        self._out_id += 1
        self.emit(result)
