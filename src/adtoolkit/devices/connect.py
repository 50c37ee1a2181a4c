"""Connect every signal of a device concurrently.

ophyd instantiates lazy components one at a time and, by default, waits for each to
connect before creating the next (``Component.create_component`` calls
``wait_for_connection`` when ``lazy_wait_for_connection`` is true).  With ~40 ms per
signal, a detector with a few hundred signals pays seconds to tens of seconds the
first time it is staged or described.  Here we switch that per-signal wait off,
create every signal (which only *starts* the CA search), and then wait once for all
of them, so the searches and metadata reads overlap.
"""

from __future__ import annotations

import time

from ophyd import Device

from .errors import ConnectionTimeout

__all__ = ["connect_all", "instantiate_all"]


def instantiate_all(device: Device) -> list:
    """Create every (lazy) signal of ``device`` without waiting for any to connect."""
    devices = [device] + [d for _, d in device.walk_subdevices(include_lazy=True)]
    saved = [(d, d.lazy_wait_for_connection) for d in devices]
    try:
        for d in devices:
            d.lazy_wait_for_connection = False
        signals = [w.item for w in device.walk_signals(include_lazy=True)]
        # walking may have created more sub-devices; make sure they do not wait either
        for _, d in device.walk_subdevices(include_lazy=True):
            d.lazy_wait_for_connection = False
        return signals
    finally:
        for d, value in saved:
            d.lazy_wait_for_connection = value


def connect_all(device: Device, timeout: float = 5.0, poll: float = 0.005) -> float:
    """Connect all signals of ``device`` in parallel; return the seconds it took.

    Raises :class:`ConnectionTimeout` naming the unconnected PVs when ``timeout``
    expires.  Never waits longer than ``timeout`` (plus one poll interval).
    """
    t0 = time.monotonic()
    signals = instantiate_all(device)
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
