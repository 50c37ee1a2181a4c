"""Connect the signals of a device concurrently: the ones in use, or all of them.

ophyd instantiates lazy components one at a time and, by default, waits for each to
connect before creating the next (``Component.create_component`` calls
``wait_for_connection`` when ``lazy_wait_for_connection`` is true).  With ~40 ms per
signal, a detector with a few hundred signals pays seconds to tens of seconds the
first time it is staged or described.  Here we switch that per-signal wait off,
create the signals (which only *starts* the CA search), and then wait once for all
of them, so the searches and metadata reads overlap.

Which signals.  Creating an ophyd/pyepics signal object costs ~2 ms of CPU, so
creating all ~390 of a cam + HDF5 + image detector costs ~0.8 s before the first
frame, for signals most sessions never touch.  :func:`connect_used` creates only
what will be used -- what ``read()``/``describe()``/``read_configuration()`` read
(by Kind), every ``stage_sigs`` key, and the signals each class declares in
``used_signals`` (port validation, priming, staging checks, triggering) -- and
leaves the rest lazy exactly as ophyd does: they connect on first access.
:func:`connect_all` is the everything-up-front variant.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ophyd import Device, Kind

from .errors import ConnectionTimeout

__all__ = ["connect_all", "connect_used", "instantiate_all", "used_signal_names"]

#: kinds whose signals a RunEngine reads (read/describe and read/describe_configuration)
_READ_KINDS = Kind.normal | Kind.config


def _no_wait_getattr(device: Device, attr: str):
    """``getattr`` that creates a lazy component without waiting for it to connect."""
    saved = device.lazy_wait_for_connection
    device.lazy_wait_for_connection = False
    try:
        return getattr(device, attr)
    finally:
        device.lazy_wait_for_connection = saved


def resolve(device: Device, dotted: str):
    """The component ``device.<dotted>``, created (if lazy) without waiting."""
    obj = device
    for part in dotted.split("."):
        if isinstance(obj, Device):
            obj = _no_wait_getattr(obj, part)
        else:
            obj = getattr(obj, part)
    return obj


def declared_signals(device: Device) -> list[str]:
    """``used_signals`` of every class in ``type(device).__mro__`` (names relative to it)."""
    names: list[str] = []
    for klass in reversed(type(device).__mro__):
        for name in klass.__dict__.get("used_signals", ()):
            if name not in names:
                names.append(name)
    return names


def _read_signal_names(device: Device, prefix: str = "") -> Iterable[str]:
    """Signals a RunEngine will read, found by Kind without creating any other signal.

    Uses ``Device._get_kind``, which answers for lazy components not created yet (the
    same lookup ophyd's ``read_attrs``/``configuration_attrs`` use).
    """
    for name in device.component_names:
        if not device._get_kind(name) & _READ_KINDS:
            continue
        cpt = getattr(type(device), name)
        if isinstance(cpt.cls, type) and issubclass(cpt.cls, Device):
            yield from _read_signal_names(_no_wait_getattr(device, name), f"{prefix}{name}.")
        else:
            yield prefix + name


def used_signal_names(device: Device) -> list[str]:
    """Dotted names (relative to ``device``) of the signals adtoolkit will use.

    The union of the signals read by Kind, every string ``stage_sigs`` key and every
    ``used_signals`` declaration, for ``device`` and each of its direct sub-devices
    (the cam and the plugins).
    """
    names: list[str] = list(_read_signal_names(device))
    parts: list[tuple[str, Device]] = [("", device)]
    for attr in device._sub_devices:
        parts.append((f"{attr}.", _no_wait_getattr(device, attr)))
    for prefix, dev in parts:
        keys = [k for k in getattr(dev, "stage_sigs", {}) if isinstance(k, str)]
        for name in keys + declared_signals(dev):
            names.append(prefix + name)
    return list(dict.fromkeys(names))  # de-duplicated, in order


def instantiate_all(device: Device) -> list:
    """Create every (lazy) signal of ``device`` without waiting for any to connect."""
    devices = [device] + [d for _, d in device.walk_subdevices(include_lazy=True)]
    saved = [(d, d.lazy_wait_for_connection) for d in devices]
    try:
        for d in devices:
            d.lazy_wait_for_connection = False
        # Device's own walk: AreaDetector's override would call back into this function
        signals = [w.item for w in Device.walk_signals(device, include_lazy=True)]
        # walking may have created more sub-devices; make sure they do not wait either
        for _, d in device.walk_subdevices(include_lazy=True):
            d.lazy_wait_for_connection = False
        return signals
    finally:
        for d, value in saved:
            d.lazy_wait_for_connection = value


def _wait_connected(device: Device, t0: float, timeout: float, poll: float) -> float:
    """Wait for every *created* signal of ``device``; ConnectionTimeout names the rest."""
    signals = [w.item for w in device.walk_signals(include_lazy=False)]
    deadline = t0 + timeout
    pending = [s for s in signals if not s.connected]
    while pending:
        if time.monotonic() >= deadline:
            names = []
            for s in pending:
                pvs = [getattr(s, "pvname", None)]
                write = getattr(s, "setpoint_pvname", None)
                if write and write != pvs[0]:
                    pvs.append(write)
                pv = " / ".join(p for p in pvs if p)
                names.append(f"{pv} ({s.name})" if pv else s.name)
            raise ConnectionTimeout(device.name, sorted(names), timeout)
        time.sleep(poll)
        pending = [s for s in pending if not s.connected]
    return time.monotonic() - t0


def connect_all(device: Device, timeout: float = 5.0, poll: float = 0.005) -> float:
    """Connect all signals of ``device`` in parallel; return the seconds it took.

    Raises :class:`ConnectionTimeout` naming the unconnected PVs when ``timeout``
    expires.  Never waits longer than ``timeout`` (plus one poll interval).
    """
    t0 = time.monotonic()
    instantiate_all(device)
    return _wait_connected(device, t0, timeout, poll)


def connect_used(device: Device, timeout: float = 5.0, poll: float = 0.005) -> float:
    """Connect, in parallel, the signals :func:`used_signal_names` lists (and any
    already created); the others stay lazy.  Same errors and bounds as
    :func:`connect_all`.
    """
    t0 = time.monotonic()
    for name in used_signal_names(device):
        resolve(device, name)
    return _wait_connected(device, t0, timeout, poll)
