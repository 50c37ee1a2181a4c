"""Automatic, cheap priming of file plugins.

An NDFile plugin in Stream mode opens its file on Capture=1 using the dimensions and
data type of the last array it received, so it must have seen one frame of the right
shape first.  ophyd refuses to stage an unprimed plugin and apstools primes it with a
fixed 2 s sleep.  Here:

* :func:`expected_frame` computes what the cam's *next* frame will look like from its
  settings (SizeX/BinX, SizeY/BinY, DataType, ColorMode), not from the last frame, so a
  changed ROI or binning is noticed;
* :func:`needs_priming` compares that with what the plugin last received;
* :func:`prime` takes one short frame, waits on the plugin's TimeStamp_RBV monitor
  (no sleep), and restores every setting it touched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .batchread import read_many
from .errors import PrimingError
from .settings import apply_settings, restore
from .writes import current, wait_for

__all__ = [
    "FrameSpec",
    "expected_frame",
    "plugin_frame",
    "needs_priming",
    "frames",
    "prime",
    "CAM_SIGNALS",
    "PLUGIN_SIGNALS",
]

#: what this module reads and writes on the cam and on the plugin; the classes list
#: them in ``used_signals`` so that make_detector connects them up front
CAM_SIGNALS = (
    "size.size_x",
    "size.size_y",
    "bin_x",
    "bin_y",
    "color_mode",
    "data_type",
    "array_callbacks",
    "image_mode",
    "acquire_time",
    "acquire_period",
    "acquire",
)
PLUGIN_SIGNALS = (
    "ndimensions",
    "array_size.width",
    "array_size.height",
    "array_size.depth",
    "color_mode",
    "data_type",
    "time_stamp",
    "enable",
    "nd_array_port",
)


@dataclass(frozen=True)
class FrameSpec:
    """Shape in numpy order ((Y, X) or (Y, X, 3)), data type and colour mode names."""

    shape: tuple[int, ...]
    data_type: str
    color_mode: str

    @property
    def numpy_dtype(self) -> str:
        import numpy as np

        return np.dtype(self.data_type.lower()).str


def _cam_signals(cam) -> list:
    return [cam.size.size_x, cam.size.size_y, cam.bin_x, cam.bin_y, cam.color_mode, cam.data_type]


def _plugin_signals(plugin) -> list:
    size = plugin.array_size
    return [
        plugin.ndimensions,
        size.width,
        size.height,
        size.depth,
        plugin.color_mode,
        plugin.data_type,
    ]


#: numbers, then colour mode and data type as their state names
_AS_STRING = (False, False, False, False, True, True)


def _cam_frame(values: list) -> FrameSpec:
    size_x, size_y, bin_x, bin_y, color, data_type = values
    bin_x, bin_y = max(1, int(bin_x or 0)), max(1, int(bin_y or 0))
    shape: tuple[int, ...] = (int(size_y or 0) // bin_y, int(size_x or 0) // bin_x)
    if color.startswith("RGB"):
        shape = shape + (3,)
    return FrameSpec(shape, data_type, color)


def _plugin_frame(values: list) -> FrameSpec:
    nd, width, height, depth, color, data_type = values
    nd = int(nd or 0)
    dims = [int(width or 0), int(height or 0), int(depth or 0)][: max(nd, 0)]
    if nd == 3 and color == "RGB1":  # NDArray dims (3, X, Y) -> numpy (Y, X, 3)
        shape = (dims[2], dims[1], dims[0])
    else:
        shape = tuple(reversed(dims))
    return FrameSpec(shape, data_type, color)


def expected_frame(cam) -> FrameSpec:
    """The frame the cam will produce with its current settings."""
    return _cam_frame(read_many(_cam_signals(cam), as_string=_AS_STRING))


def plugin_frame(plugin) -> FrameSpec:
    """What the plugin last received (ArraySize0..2_RBV, NDimensions, type, colour)."""
    return _plugin_frame(read_many(_plugin_signals(plugin), as_string=_AS_STRING))


def frames(cam, plugin) -> tuple[FrameSpec, FrameSpec]:
    """(:func:`expected_frame`, :func:`plugin_frame`), read in one round trip."""
    values = read_many(_cam_signals(cam) + _plugin_signals(plugin), as_string=_AS_STRING * 2)
    return _cam_frame(values[:6]), _plugin_frame(values[6:])


def needs_priming(cam, plugin, read: tuple[FrameSpec, FrameSpec] | None = None) -> bool:
    """Whether ``plugin`` must see a frame first; ``read``: :func:`frames` already read."""
    expected, got = read or frames(cam, plugin)
    if not got.shape or 0 in got.shape:
        return True
    return got != expected


def prime(cam, plugin, timeout: float = 10.0) -> FrameSpec:
    """Push one frame from ``cam`` into ``plugin``; restore everything afterwards.

    Its writes are waited for on their own (no stage's batch): the cam settings must be
    in place before Acquire=1, and restored before the stage goes on.
    """
    received = threading.Event()
    # The frame is recognised by a TimeStamp_RBV different from the one held now.
    # Not by "any monitor event": a new subscription first delivers the current
    # value, and not by UniqueId_RBV alone, which repeats after an ArrayCounter reset.
    stamp_before = current(plugin.time_stamp)

    def on_stamp(value=None, **kwargs):
        if value != stamp_before:
            received.set()

    settings = [
        (plugin.enable, "Enable"),
        (cam.array_callbacks, "Enable"),
        (cam.image_mode, "Single"),
        (cam.acquire_time, min(float(cam.acquire_time.get(use_monitor=False)), 0.001)),
        (cam.acquire_period, 0.0),
    ]
    applied = apply_settings(settings, timeout)
    try:
        cid = plugin.time_stamp.subscribe(on_stamp, run=False)
        try:
            received.clear()
            cam.acquire.put(1, use_complete=False)
            if not received.wait(timeout):
                raise PrimingError(
                    f"priming {plugin.prefix}: no frame reached the plugin within "
                    f"{timeout:g} s after {cam.acquire.setpoint_pvname}=1 (is its NDArrayPort "
                    f"{plugin.nd_array_port.get()!r} the cam's port?)"
                )
        finally:
            plugin.time_stamp.unsubscribe(cid)
        # UniqueId_RBV and the dimension records are posted together; make sure we
        # read the dimensions of *this* frame
        try:
            wait_for(
                lambda: bool(plugin_frame(plugin).shape) and 0 not in plugin_frame(plugin).shape,
                timeout,
                f"{plugin.prefix}ArraySize0_RBV.. to show the primed frame",
            )
        except TimeoutError as exc:
            raise PrimingError(f"priming {plugin.prefix}: {exc}") from None
    finally:
        restore(applied, timeout)
    return plugin_frame(plugin)
