"""Automatic, cheap priming of file plugins.

An NDFile plugin in Stream mode opens its file on Capture=1 using the dimensions and
data type of the last array it received, so it must have seen one frame of the right
shape first.  ophyd refuses to stage an unprimed plugin and apstools primes it with a
fixed 2 s sleep.  Here:

* :func:`expected_frame` computes what the cam's *next* frame will look like from its
  settings (SizeX/BinX, SizeY/BinY, DataType, ColorMode), not from the last frame, so a
  changed ROI or binning is noticed;
* :func:`needs_priming` compares that with what the plugin last received;
* :func:`prime` takes one short frame, waits on the plugin's UniqueId_RBV monitor
  (no sleep), and restores every setting it touched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import PrimingError
from .staging import apply_settings, restore, wait_for

__all__ = ["FrameSpec", "expected_frame", "plugin_frame", "needs_priming", "prime"]


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


def _s(sig) -> str:
    return sig.get(as_string=True, use_monitor=False)


def expected_frame(cam) -> FrameSpec:
    """The frame the cam will produce with its current settings."""
    size_x = int(cam.size.size_x.get(use_monitor=False))
    size_y = int(cam.size.size_y.get(use_monitor=False))
    bin_x = max(1, int(cam.bin_x.get(use_monitor=False)))
    bin_y = max(1, int(cam.bin_y.get(use_monitor=False)))
    color = _s(cam.color_mode)
    shape: tuple[int, ...] = (size_y // bin_y, size_x // bin_x)
    if color.startswith("RGB"):
        shape = shape + (3,)
    return FrameSpec(shape, _s(cam.data_type), color)


def plugin_frame(plugin) -> FrameSpec:
    """What the plugin last received (ArraySize0..2_RBV, NDimensions, type, colour)."""
    nd = int(plugin.ndimensions.get(use_monitor=False) or 0)
    dims = [int(plugin.array_size.width.get(use_monitor=False))]
    dims.append(int(plugin.array_size.height.get(use_monitor=False)))
    dims.append(int(plugin.array_size.depth.get(use_monitor=False)))
    dims = dims[: max(nd, 0)]
    color = _s(plugin.color_mode)
    if nd == 3 and color == "RGB1":  # NDArray dims (3, X, Y) -> numpy (Y, X, 3)
        shape = (dims[2], dims[1], dims[0])
    else:
        shape = tuple(reversed(dims))
    return FrameSpec(shape, _s(plugin.data_type), color)


def needs_priming(cam, plugin) -> bool:
    got = plugin_frame(plugin)
    if not got.shape or 0 in got.shape:
        return True
    return got != expected_frame(cam)


def prime(cam, plugin, timeout: float = 10.0) -> FrameSpec:
    """Push one frame from ``cam`` into ``plugin``; restore everything afterwards."""
    received = threading.Event()

    def on_uid(value=None, **kwargs):
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
        cid = plugin.unique_id.subscribe(on_uid, run=False)
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
            plugin.unique_id.unsubscribe(cid)
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
