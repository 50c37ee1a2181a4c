"""NDPluginBadPixel (``BadPix1:``): fix listed bad pixels in a copy of each array.

The list comes from the JSON file named by FileName (read when FileName is
written), in ADCore's format::

    {"Bad pixels": [{"Pixel": [x, y], "Set": 0},
                    {"Pixel": [x, y], "Replace": [dx, dy]},
                    {"Pixel": [x, y], "Median": [mx, my]}]}

Coordinates are raw detector pixels: each maps to ``(x - offsetX) / binX``
(C division, truncating) in the array, and a pixel outside the array is left
alone.  Set writes the value (converted to the array type as C does);
Replace copies the pixel ``dx * binX, dy * binY`` away; Median writes the
median of the ``(2 mx + 1) x (2 my + 1)`` neighbourhood (itself excluded, the
mean of the two middle values for an even count).  A replacement or
neighbourhood pixel that is itself listed is skipped (ADCore logs a warning).
An entry with no mode key leaves the pixel alone (ADCore leaves its mode
uninitialised: the real IOC left such a pixel alone in an unbinned frame and
wrote a neighbour mean in a binned one); a pixel listed twice keeps its first
entry.  The array is indexed as ADCore does, at ``y * xSize + x`` of its data.

A file that cannot be read or parsed gives an error naming the file and keeps
the previous list; an entry of the wrong shape gives an error naming the file
and the entry, with the entries before it in use (ADCore clears the list once
the JSON has parsed).  ArrayCallbacks boots at 1: the plugin always passes its
arrays on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.simimages import c_cast


@dataclass(frozen=True)
class BadPixel:
    x: int
    y: int
    mode: str = ""  # Set, Replace, Median, or "" (no key: left alone)
    value: float = 0.0
    dx: int = 0
    dy: int = 0


def parse_entry(entry: Any) -> BadPixel:
    """One entry of "Bad pixels" (later keys win, as ADCore tests them in this order)."""
    x, y = (int(v) for v in entry["Pixel"][:2])
    pixel = BadPixel(x, y)
    if "Median" in entry:
        pixel = BadPixel(x, y, "Median", dx=int(entry["Median"][0]), dy=int(entry["Median"][1]))
    if "Set" in entry:
        pixel = BadPixel(x, y, "Set", value=float(entry["Set"]))
    if "Replace" in entry:
        pixel = BadPixel(x, y, "Replace", dx=int(entry["Replace"][0]), dy=int(entry["Replace"][1]))
    return pixel


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class NDBadPixel(PluginDriver):
    plugin_type = "NDPluginBadPixel"
    templates = ("NDBadPixel",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (y, x) -> entry, in ADCore's std::set order (y, then x)
        self.bad_pixels: dict[tuple[int, int], BadPixel] = {}

    def init_params(self) -> None:
        super().init_params()
        self.set("ARRAY_CALLBACKS", 1)

    def write_param(self, addr: int, name: str, value: Any) -> None:
        super().write_param(addr, name, value)
        if name == "BAD_PIXEL_FILE_NAME" and str(value).strip("\0"):
            self.read_file(str(value).strip("\0"))

    def read_file(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                document = json.load(f)
            entries = document["Bad pixels"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.log.error("BadPix FileName %s: cannot read a bad-pixel list: %s", path, exc)
            return
        pixels: dict[tuple[int, int], BadPixel] = {}
        self.bad_pixels = pixels
        for i, entry in enumerate(entries):
            try:
                pixel = parse_entry(entry)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                self.log.error(
                    "BadPix FileName %s: entry %d %r is not valid: %s", path, i, entry, exc
                )
                break
            pixels.setdefault((pixel.y, pixel.x), pixel)
        self.bad_pixels = dict(sorted(pixels.items()))

    def process(self, array: NDArray) -> None:
        self.count_array()
        out = array.data.copy()
        self.fix(out, array)
        self.emit(dataclasses.replace(array, data=out, attributes=dict(array.attributes)))

    def fix(self, data: np.ndarray, array: NDArray) -> None:
        pixels = self.bad_pixels
        if not pixels:
            return
        flat = data.reshape(-1)
        rgb1 = data.ndim == 3 and array.color_mode == 2
        xdim, ydim = (1, 2) if rgb1 else (0, 1)
        dims = array.dims
        size_x = dims[xdim].size
        off_x, bin_x = dims[xdim].offset, max(dims[xdim].binning, 1)
        if len(dims) > 1:
            size_y = dims[ydim].size
            off_y, bin_y = dims[ydim].offset, max(dims[ydim].binning, 1)
        else:
            size_y, off_y, bin_y = 1, 0, 1

        def index(x: int, y: int) -> int:
            ix, iy = _trunc_div(x - off_x, bin_x), _trunc_div(y - off_y, bin_y)
            if 0 <= ix < size_x and 0 <= iy < size_y:
                return iy * size_x + ix
            return -1

        for (y, x), bp in pixels.items():
            i = index(x, y)
            if i < 0:
                continue
            if not bp.mode:
                continue
            if bp.mode == "Set":
                flat[i] = c_cast(np.array([bp.value]), flat.dtype)[0]
            elif bp.mode == "Replace":
                rx, ry = x + bp.dx * bin_x, y + bp.dy * bin_y
                j = index(rx, ry)
                if (ry, rx) in pixels or j < 0:
                    continue
                flat[i] = flat[j]
            else:
                values = []
                for dy in range(-bp.dy, bp.dy + 1):
                    for dx in range(-bp.dx, bp.dx + 1):
                        if dx == 0 and dy == 0:
                            continue
                        nx, ny = x + dx * bin_x, y + dy * bin_y
                        j = index(nx, ny)
                        if (ny, nx) in pixels or j < 0:
                            continue
                        values.append(float(flat[j]))
                if values:
                    values.sort()
                    mid = len(values) // 2
                    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
                    flat[i] = c_cast(np.array([median]), flat.dtype)[0]
