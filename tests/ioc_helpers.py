"""Helpers for IOC-backed tests: PV enumeration from ophyd/apstools classes, CA access.

The PV lists are computed at test time from the installed ophyd and apstools
component trees (never from a stored list), so a new class version that needs
a record the IOC lacks makes the test fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

#: customary plugin suffixes (ADSimDetector EXAMPLE_commonPlugins.cmd) by ophyd class-name stem
PLUGIN_SUFFIXES = {
    "ImagePlugin": "image1:",
    "HDF5Plugin": "HDF1:",
    "StatsPlugin": "Stats1:",
    "ROIPlugin": "ROI1:",
    "ProcessPlugin": "Proc1:",
    "OverlayPlugin": "Over1:",
    "TransformPlugin": "Trans1:",
    "ColorConvPlugin": "CC1:",
    "CircularBuffPlugin": "CB1:",
    "TIFFPlugin": "TIFF1:",
    "JPEGPlugin": "JPEG1:",
    "NetCDFPlugin": "netCDF1:",
    "PvaPlugin": "Pva1:",
}


def component_pvs(cls: type, prefix: str) -> set[str]:
    """Every PV name an ophyd Device class would connect to (lazy ones included)."""
    from ophyd import Device
    from ophyd.areadetector.base import EpicsSignalWithRBV
    from ophyd.device import DynamicDeviceComponent, FormattedComponent
    from ophyd.signal import EpicsSignal, EpicsSignalBase

    names: set[str] = set()

    def signal_pvs(sig_cls: type, suffix: str, kwargs: dict[str, Any], pfx: str) -> None:
        full = pfx + suffix
        if issubclass(sig_cls, EpicsSignalWithRBV) or sig_cls.__name__ == "EpicsPathSignal":
            names.update({full, full + "_RBV"})
            return
        names.add(full)
        if issubclass(sig_cls, EpicsSignal) and kwargs.get("write_pv"):
            names.add(pfx + kwargs["write_pv"])

    def walk(dev_cls: type, pfx: str) -> None:
        for attr in dev_cls.component_names:
            cpt = getattr(dev_cls, attr)
            if isinstance(cpt, DynamicDeviceComponent):
                for _sub_attr, (sub_cls, suffix, kwargs) in cpt.defn.items():
                    if isinstance(sub_cls, type) and issubclass(sub_cls, Device):
                        walk(sub_cls, pfx + (suffix or ""))
                    elif isinstance(sub_cls, type) and issubclass(sub_cls, EpicsSignalBase):
                        signal_pvs(sub_cls, suffix, kwargs, pfx)
                continue
            if isinstance(cpt, FormattedComponent):
                continue  # suffix depends on instance attributes; none in AD plugin classes
            sub_cls, suffix = cpt.cls, cpt.suffix
            if suffix is None:
                continue
            if issubclass(sub_cls, Device):
                walk(sub_cls, pfx + suffix)
            elif issubclass(sub_cls, EpicsSignalBase):
                signal_pvs(sub_cls, suffix, dict(cpt.kwargs), pfx)

    walk(cls, prefix)
    return names


def ophyd_plugin_classes() -> dict[type, str]:
    """Every ophyd plugin class (all versions) at its customary suffix."""
    from ophyd.areadetector import plugins

    found: dict[type, str] = {}
    for name in dir(plugins):
        obj = getattr(plugins, name)
        if not isinstance(obj, type) or not issubclass(obj, plugins.PluginBase):
            continue
        for stem, suffix in PLUGIN_SUFFIXES.items():
            if name == stem or (name.startswith(stem + "_V") and name[len(stem) + 2 :].isdigit()):
                found[obj] = suffix
    return found


def apstools_v34_classes() -> dict[type, str]:
    """apstools' V34 area-detector classes at their customary suffixes."""
    from apstools.devices import area_detector_support as ads

    found: dict[type, str] = {}
    for name in dir(ads):
        obj = getattr(ads, name)
        if not isinstance(obj, type) or "V34" not in name:
            continue
        if name.startswith("CamMixin") or "Cam" in name:
            found[obj] = "cam1:"
        elif "HDF5" in name:
            found[obj] = "HDF1:"
        elif "Image" in name:
            found[obj] = "image1:"
        elif "Stats" in name:
            found[obj] = "Stats1:"
        elif "ROI" in name:
            found[obj] = "ROI1:"
        elif "Process" in name:
            found[obj] = "Proc1:"
        elif "Overlay" in name:
            found[obj] = "Over1:"
        elif "Transform" in name:
            found[obj] = "Trans1:"
        elif "JPEG" in name:
            found[obj] = "JPEG1:"
        elif "TIFF" in name:
            found[obj] = "TIFF1:"
        elif "NetCDF" in name:
            found[obj] = "netCDF1:"
        elif "ColorConv" in name:
            found[obj] = "CC1:"
        elif "CircularBuff" in name or "CircBuff" in name:
            found[obj] = "CB1:"
        elif "Pva" in name:
            found[obj] = "Pva1:"
    return found


def all_required_pvs(prefix: str) -> set[str]:
    """PVs of ophyd's SimDetector cam, every plugin class version and apstools' V34 classes."""
    from ophyd.areadetector import cam
    from ophyd.areadetector.detectors import SimDetector

    names = component_pvs(SimDetector, prefix)
    names |= component_pvs(cam.SimDetectorCam, prefix + "cam1:")
    for cls, suffix in {**ophyd_plugin_classes(), **apstools_v34_classes()}.items():
        names |= component_pvs(cls, prefix + suffix)
    return names


def connect_all(names: Iterable[str], timeout: float = 20.0) -> tuple[set[str], set[str]]:
    """Connect to many PVs at once (caproto threading client); returns (connected, missing)."""
    from caproto.threading.client import Context

    names = sorted(set(names))
    ctx = Context()
    try:
        pvs = ctx.get_pvs(*names, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(pv.connected for pv in pvs):
            time.sleep(0.05)
        connected = {pv.name for pv in pvs if pv.connected}
        return connected, set(names) - connected
    finally:
        ctx.disconnect()


def connect_every_signal(device: Any, timeout: float = 120.0) -> list:
    """Create every (lazy) signal of an ophyd device without ophyd's 1 s wait per lazy
    signal, then wait for all of them together (bounded): on a loaded machine that
    1 s is what fails, not the IOC."""
    devices = [device, *(dev for _, dev in device.walk_subdevices(include_lazy=True))]
    saved = [(dev, dev.lazy_wait_for_connection) for dev in devices]
    for dev in devices:
        dev.lazy_wait_for_connection = False
    try:
        signals = [walk.item for walk in device.walk_signals(include_lazy=True)]
    finally:
        for dev, value in saved:
            dev.lazy_wait_for_connection = value
    wait_for(
        lambda: all(sig.connected for sig in signals),
        timeout=timeout,
        what=f"every signal of {device.name} to connect",
    )
    return signals


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a true value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class CA:
    """Small synchronous CA access to one IOC prefix (caproto threading client).

    ``put(..., wait=True)`` uses put-callback (WriteNotify), so it returns after
    the record processed (for busy records: after they return to Done).
    """

    def __init__(self, prefix: str, timeout: float = 10.0) -> None:
        from caproto.threading.client import Context

        self.prefix = prefix
        self.timeout = timeout
        self.ctx = Context()
        self._pvs: dict[str, Any] = {}

    def pv(self, suffix: str) -> Any:
        pv = self._pvs.get(suffix)
        if pv is None:
            (pv,) = self.ctx.get_pvs(self.prefix + suffix, timeout=self.timeout)
            pv.wait_for_connection(timeout=self.timeout)
            self._pvs[suffix] = pv
        return pv

    def put(self, suffix: str, value: Any, wait: bool = True, timeout: float | None = None) -> None:
        from caproto import ChannelType

        pv = self.pv(suffix)
        kwargs: dict[str, Any] = {}
        if isinstance(value, str):
            if pv.channel.native_data_type in (ChannelType.CHAR,):
                value = list(value.encode()) + [0]
            else:
                kwargs["data_type"] = ChannelType.STRING
                value = [value]
        elif not isinstance(value, list | tuple):
            value = [value]
        pv.write(value, wait=wait, timeout=timeout or self.timeout, **kwargs)

    def get(self, suffix: str, as_string: bool = False) -> Any:
        from caproto import ChannelType

        pv = self.pv(suffix)
        native = pv.channel.native_data_type
        if native == ChannelType.CHAR and (
            as_string or suffix != "ArrayData" and not suffix.endswith("ArrayData")
        ):
            data = pv.read(timeout=self.timeout).data
            return bytes(data).split(b"\0", 1)[0].decode()
        if native == ChannelType.ENUM and as_string:
            return pv.read(data_type=ChannelType.STRING, timeout=self.timeout).data[0].decode()
        if native == ChannelType.STRING:
            return pv.read(timeout=self.timeout).data[0].decode()
        data = pv.read(timeout=self.timeout).data
        return data[0] if len(data) == 1 and pv.channel.native_data_count == 1 else data

    def wait_value(
        self, suffix: str, expected: Any, timeout: float = 10.0, as_string: bool = False
    ) -> Any:
        return wait_for(
            lambda: self.get(suffix, as_string=as_string) == expected,
            timeout=timeout,
            what=f"{self.prefix}{suffix} == {expected!r}",
        )

    def close(self) -> None:
        self.ctx.disconnect()


#: setpoints the IOC itself moves during or after a run (busy records, statistics):
#: left out when comparing a detector's settings before and after
MOVED_BY_IOC = frozenset(
    {"Acquire", "Capture", "WriteFile", "ReadFile", "FlushNow", "RunTime", "IOSpeed"}
)


def setpoint_pvs(det) -> list[str]:
    """Every writable PV of an ophyd detector (setpoint names), but :data:`MOVED_BY_IOC`."""
    names = set()
    for walk in det.walk_signals(include_lazy=True):
        pv = getattr(walk.item, "setpoint_pvname", None)
        if pv and pv.split(":")[-1] not in MOVED_BY_IOC:
            names.add(pv)
    return sorted(names)


def snapshot(pvs: list[str]) -> dict[str, object]:
    """The values of ``pvs`` read now, as strings; every PV must answer."""
    import epics

    values = epics.caget_many(pvs, as_string=True, connection_timeout=10)
    missing = [pv for pv, v in zip(pvs, values, strict=True) if v is None]
    assert not missing, f"no answer from {missing[:10]}"
    return dict(zip(pvs, values, strict=True))


def configure_noisy_frames(
    det, x: int, y: int, data_type: str = "UInt16", noise: int = 500, offset: int = 1000
) -> None:
    """Small mono frames with noise on an ophyd detector's cam: every frame differs."""
    cam = det.cam
    for sig, value in (
        (cam.size.size_x, x),
        (cam.size.size_y, y),
        (cam.bin_x, 1),
        (cam.bin_y, 1),
        (cam.data_type, data_type),
        (cam.color_mode, "Mono"),
        (cam.acquire_time, 0.001),
        (cam.acquire_period, 0.0),
        (cam.sim_mode, "Offset&Noise"),
        (cam.noise, noise),
        (cam.offset, offset),
    ):
        sig.set(value).wait(10)
