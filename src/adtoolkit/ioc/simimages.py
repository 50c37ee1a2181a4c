"""The simDetector image generator, vectorised with numpy.

Follows simDetector.cpp (ADSimDetector R2-x): the image is computed on the
full sensor (MaxSizeX x MaxSizeY) in the array's data type, with C integer
semantics (truncation and wrap-around), then the region (Min/Size/Bin/Reverse)
is extracted.  State carries over between frames exactly where the C++ keeps
it: the LinearRamp increments by ``Gain`` every frame, the Sine phases advance
by one sample per pixel per frame, and a reset (any change of data type, colour
mode, SimMode, peak geometry or gain parameters) starts again.

Modes: 0 LinearRamp, 1 Peaks, 2 Sine, 3 Offset&Noise (background only);
an Offset or Noise turns on the background in every mode.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NUMPY_DTYPES

MAX_PEAK_SIGMA = 4
LINEAR_RAMP, PEAKS, SINE, OFFSET_NOISE = range(4)
MONO, RGB1, RGB2, RGB3 = 0, 2, 3, 4


def c_cast(values: np.ndarray | float, dtype: np.dtype) -> np.ndarray:
    """Convert doubles to ``dtype`` as a C cast does: truncate, then wrap."""
    dtype = np.dtype(dtype)
    values = np.asarray(values, dtype=np.float64)
    if dtype.kind == "f":
        return values.astype(dtype)
    with np.errstate(invalid="ignore"):
        return np.trunc(values).astype(np.int64).astype(dtype)


class BufferPool:
    """Recycles frame buffers nobody references any more (NDArrayPool's free list).

    A published frame may sit in plugin queues or records for a while, so it is
    never written again while referenced; once every holder has let it go its
    memory is reused, which spares the allocation and page faults of a fresh
    megabyte-sized array per frame.  CPython's reference count tells which
    buffers are free: the pool's own list entry is then the only reference.

    Like NDArrayPool, the pool keeps every buffer it handed out (up to
    ``max_bytes`` / ``max_buffers``): when a file writer lags and a queue holds
    many frames, the cam keeps reusing those buffers afterwards instead of
    faulting fresh memory in for each frame beyond a small pool.
    """

    def __init__(self, max_buffers: int = 2048, max_bytes: int = 512 << 20) -> None:
        self.max_buffers = max_buffers
        #: memory the pool may keep (frames in flight beyond it are plain allocations)
        self.max_bytes = max_bytes
        self._buffers: list[np.ndarray] = []
        self._next = 0  # where the next search starts: buffers come back in order

    def get(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised buffer of ``shape``/``dtype`` that nothing else holds."""
        buffers = self._buffers
        if buffers and (buffers[0].shape != shape or buffers[0].dtype != dtype):
            buffers.clear()
            self._next = 0
        n = len(buffers)
        start = self._next if self._next < n else 0
        for k in range(n):
            i = (start + k) % n
            # references: the list entry and getrefcount's argument
            if sys.getrefcount(buffers[i]) == 2:
                self._next = i + 1
                return buffers[i]
        buf = np.empty(shape, dtype)
        if len(buffers) < self.max_buffers and (len(buffers) + 1) * buf.nbytes <= self.max_bytes:
            buffers.append(buf)
        return buf


class SimImageGenerator:
    """Keeps the simulation state between frames (pRaw_, pRamp_, pPeak_ ...)."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.ramp: np.ndarray | None = None
        self.peak: np.ndarray | None = None
        self.background: np.ndarray | None = None
        self.use_background = False
        self.x_counter = 0
        self.y_counter = 0
        self._ramp_cache: tuple | None = None
        self.pool = BufferPool()

    def compute(self, p: Mapping[str, Any], reset: bool) -> np.ndarray:
        """Full-sensor image (Y, X) or (Y, X, 3), in the NDArray data type."""
        dtype = NUMPY_DTYPES[p["DATA_TYPE"]]
        ny, nx = p["MAX_SIZE_Y"], p["MAX_SIZE_X"]
        color = p["COLOR_MODE"]
        rgb = color in (RGB1, RGB2, RGB3)
        shape = (ny, nx, 3) if rgb else (ny, nx)
        mode = p["SIM_MODE"]
        if self.ramp is None or self.ramp.shape != shape or self.ramp.dtype != dtype:
            reset = True

        offset = c_cast(p["SIM_OFFSET"], dtype)
        noise = p["SIM_NOISE"]
        if reset:
            self.use_background = noise != 0 or offset != 0
            if self.use_background:
                if noise == 0:
                    self.background = np.full(shape, offset, dtype=dtype)
                else:
                    r = self.rng.random(shape)
                    self.background = c_cast(noise * r + float(p["SIM_OFFSET"]), dtype)
        if self.use_background and self.background is not None:
            flat = self.background.reshape(-1)
            start = int(flat.size * self.rng.random())
            raw = np.concatenate((flat[start:], flat[:start])).reshape(shape)
        elif mode != LINEAR_RAMP:  # the ramp alone needs no zero background
            raw = np.zeros(shape, dtype=dtype)

        if mode == LINEAR_RAMP:
            self._linear_ramp(p, reset, shape, dtype, rgb)
            # the ramp is a free pool buffer each frame, so a published one is never mutated
            raw = raw + self.ramp if self.use_background else self.ramp
        elif mode == PEAKS:
            raw = self._peaks(p, reset, raw, dtype, rgb)
        elif mode == SINE:
            raw = self._sine(p, reset, raw, dtype, rgb)
        raw = raw.astype(dtype, copy=False)
        if color == RGB2:
            raw = np.ascontiguousarray(raw.transpose(0, 2, 1))  # (Y, 3, X)
        elif color == RGB3:
            raw = np.ascontiguousarray(raw.transpose(2, 0, 1))  # (3, Y, X)
        return raw

    # -- modes -----------------------------------------------------------
    def _linear_ramp(self, p, reset, shape, dtype, rgb) -> None:
        inc = c_cast(p["GAIN"], dtype)
        if reset:
            key = (shape, dtype.str, p["GAIN"], p["SIM_GAIN_X"], p["SIM_GAIN_Y"])
            if rgb:
                key += tuple(p[k] for k in ("SIM_GAIN_RED", "SIM_GAIN_GREEN", "SIM_GAIN_BLUE"))
            cached = self._ramp_cache
            if cached is not None and cached[0] == key:
                self.ramp = cached[1]  # same base image: skip recomputing it (never mutated)
                return
            ny, nx = shape[:2]
            base = (
                p["SIM_GAIN_X"] * np.arange(nx)[None, :] + p["SIM_GAIN_Y"] * np.arange(ny)[:, None]
            )
            if rgb:
                gains = [
                    c_cast(p[k], dtype) * inc
                    for k in ("SIM_GAIN_RED", "SIM_GAIN_GREEN", "SIM_GAIN_BLUE")
                ]
                self.ramp = np.stack([c_cast(float(g) * base, dtype) for g in gains], axis=-1)
            else:
                self.ramp = c_cast(float(inc) * base, dtype)
            self._ramp_cache = (key, self.ramp)
        else:
            if rgb:
                gains = [
                    c_cast(p[k], dtype) * inc
                    for k in ("SIM_GAIN_RED", "SIM_GAIN_GREEN", "SIM_GAIN_BLUE")
                ]
                step = np.array(gains, dtype=dtype)
            else:
                step = inc
            out = self.pool.get(self.ramp.shape, self.ramp.dtype)
            np.add(self.ramp, step, out=out, casting="unsafe")
            self.ramp = out

    def _peaks(self, p, reset, raw, dtype, rgb) -> np.ndarray:
        ny, nx = raw.shape[:2]
        wx, wy = max(p["SIM_PEAK_WIDTH_X"], 1), max(p["SIM_PEAK_WIDTH_Y"], 1)
        fwx = min(2 * MAX_PEAK_SIGMA * wx + 1, nx - 1)
        fwy = min(2 * MAX_PEAK_SIGMA * wy + 1, ny - 1)
        if reset or self.peak is None or self.peak.shape != (fwy, fwx):
            gy = np.exp(-(((np.arange(fwy) - fwy // 2) / wy) ** 2) / 2.0)
            gx = np.exp(-(((np.arange(fwx) - fwx // 2) / wx) ** 2) / 2.0)
            self.peak = c_cast(p["GAIN"] * gy[:, None] * gx[None, :], dtype)
        out = raw.astype(np.float64)
        peak = self.peak.astype(np.float64)
        variation = p["SIM_PEAK_HEIGHT_VARIATION"]
        colour_gains = [p[k] for k in ("SIM_GAIN_RED", "SIM_GAIN_GREEN", "SIM_GAIN_BLUE")]
        for i in range(p["SIM_PEAK_NUM_Y"]):
            for j in range(p["SIM_PEAK_NUM_X"]):
                gv = 1.0
                if variation != 0:
                    gv = 1.0 + (variation / 100.0) * (self.rng.random() - 0.5)
                oy = i * p["SIM_PEAK_STEP_Y"] + p["SIM_PEAK_START_Y"] - fwy // 2
                ox = j * p["SIM_PEAK_STEP_X"] + p["SIM_PEAK_START_X"] - fwx // 2
                y0, y1 = max(oy, 0), min(oy + fwy, ny)
                x0, x1 = max(ox, 0), min(ox + fwx, nx)
                if y0 >= y1 or x0 >= x1:
                    continue
                src = peak[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
                if rgb:
                    for c, g in enumerate(colour_gains):
                        add = c_cast(g * gv * src, dtype).astype(np.float64)
                        out[y0:y1, x0:x1, c] = c_cast(out[y0:y1, x0:x1, c] + add, dtype)
                else:
                    out[y0:y1, x0:x1] = c_cast(out[y0:y1, x0:x1] + gv * src, dtype)
        return c_cast(out, dtype)

    def _sine(self, p, reset, raw, dtype, rgb) -> np.ndarray:
        ny, nx = raw.shape[:2]
        if reset:
            self.x_counter = 0
            self.y_counter = 0
        xt = (self.x_counter + np.arange(nx)) * p["SIM_GAIN_X"] / nx
        yt = (self.y_counter + np.arange(ny)) * p["SIM_GAIN_Y"] / ny
        self.x_counter += nx
        self.y_counter += ny

        def sine(t, axis, n):
            amp, freq, phase = (
                p[f"SIM_{axis}SINE{n}_{k}"] for k in ("AMPLITUDE", "FREQUENCY", "PHASE")
            )
            return amp * np.sin((t * freq + phase / 360.0) * 2.0 * np.pi)

        xs1, xs2 = sine(xt, "X", 1), sine(xt, "X", 2)
        ys1, ys2 = sine(yt, "Y", 1), sine(yt, "Y", 2)
        gain = p["GAIN"]
        base = raw.astype(np.float64)
        if not rgb:
            xs = xs1 + xs2 if p["SIM_XSINE_OPERATION"] == 0 else xs1 * xs2
            ys = ys1 + ys2 if p["SIM_YSINE_OPERATION"] == 0 else ys1 * ys2
            add = c_cast(gain * (ys[:, None] + xs[None, :]), dtype).astype(np.float64)
            return c_cast(base + add, dtype)
        red = c_cast(gain * p["SIM_GAIN_RED"] * np.broadcast_to(xs1[None, :], (ny, nx)), dtype)
        green = c_cast(gain * p["SIM_GAIN_GREEN"] * np.broadcast_to(ys1[:, None], (ny, nx)), dtype)
        blue = c_cast(gain * p["SIM_GAIN_BLUE"] * (xs2[None, :] + ys2[:, None]) / 2.0, dtype)
        add = np.stack([red, green, blue], axis=-1).astype(np.float64)
        return c_cast(base + add, dtype)


def extract_region(
    raw: np.ndarray,
    color: int,
    min_x: int,
    min_y: int,
    size_x: int,
    size_y: int,
    bin_x: int,
    bin_y: int,
    reverse_x: int,
    reverse_y: int,
) -> np.ndarray:
    """NDArrayPool::convert: crop, bin (sum) and reverse, in the same data type."""
    x_axis, y_axis = {MONO: (1, 0), RGB1: (1, 0), RGB2: (2, 0), RGB3: (2, 1)}[color]
    index: list[Any] = [slice(None)] * raw.ndim
    index[x_axis] = slice(min_x, min_x + size_x)
    index[y_axis] = slice(min_y, min_y + size_y)
    out = raw[tuple(index)]
    if bin_x > 1 or bin_y > 1:
        wide = out.astype(np.float64 if raw.dtype.kind == "f" else np.int64)
        shape = list(wide.shape)
        new_shape: list[int] = []
        sum_axes = []
        for axis, n in enumerate(shape):
            b = bin_x if axis == x_axis else bin_y if axis == y_axis else 1
            new_shape += [n // b, b]
            sum_axes.append(2 * axis + 1)
        wide = wide.reshape(new_shape).sum(axis=tuple(sum_axes))
        out = wide.astype(raw.dtype)
    if reverse_x:
        out = np.flip(out, axis=x_axis)
    if reverse_y:
        out = np.flip(out, axis=y_axis)
    return np.ascontiguousarray(out)
