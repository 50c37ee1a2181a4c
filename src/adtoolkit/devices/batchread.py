"""Read many PVs in one network round trip.

``sig.get(use_monitor=False)`` sends one CA read and waits for its reply before the
caller can send the next, so reading the ~15 originals of a plugin's stage settings
costs ~15 round trips.  :func:`read_many` sends all the reads first and then collects
the replies: one round trip for the lot.  Each value is still read from the IOC (not
from a monitor, which can trail a put), after everything written before the call.

The values are what ``sig.get(use_monitor=False)`` returns (``get_setpoint`` with
``setpoint=True``): the same pyepics conversions (``PV.get_with_metadata``) and ophyd's
string handling (``string=True`` signals give text, enums their state string).  Only
ophyd's pyepics control layer is batched; a signal of another kind (the caproto layer,
soft signals) or one whose batched read fails is read the ordinary way, so errors are
ophyd's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["read_many"]


def _pyepics():
    try:
        from epics import ca
        from epics.pv import PV
    except ImportError:  # pragma: no cover - pyepics is installed with ophyd here
        return None, None
    return ca, PV


def _ordinary(sig: Any, setpoint: bool, as_string: bool | None) -> Any:
    kwargs = {"use_monitor": False}
    if as_string is not None:
        kwargs["as_string"] = as_string
    if setpoint and hasattr(sig, "get_setpoint"):
        return sig.get_setpoint(**kwargs)
    return sig.get(**kwargs)


def _pv_of(sig: Any, setpoint: bool, PV: type) -> Any:
    pv = getattr(sig, "_write_pv", None) if setpoint else None
    if pv is None:
        pv = getattr(sig, "_read_pv", None)
    if not isinstance(pv, PV) or not pv.connected or pv.context is None:
        return None
    return pv


def _as_get_returns(
    sig: Any, pv: Any, value: Any, count: int | None, as_string: bool | None
) -> Any:
    """Convert a raw CA value as ``PV.get_with_metadata`` and ophyd's ``get`` do."""
    from ophyd.utils.epics_pvs import waveform_to_string

    string = bool(getattr(sig, "_string", False))
    if as_string is None:
        as_string = string
    # pyepics' PV.get_with_metadata
    if as_string:
        # char waveform -> text, enum -> state name, DBR_STRING as is
        value = pv._set_charval(value, force_long_string=True)
    elif pv.nelm > 1 and value is not None:
        import numpy as np

        try:
            len(value)
        except TypeError:  # a scalar leaking through unpack, as pyepics handles it
            value = [value]
        value = np.asarray(value)
        if count is not None and count < len(value):
            value = value[:count]
    # ophyd's EpicsSignalBase.get and _fix_type
    if as_string:
        value = waveform_to_string(value)
    if string:
        value = waveform_to_string(value)
    return value


def read_many(
    signals: Sequence[Any],
    setpoint: bool = False,
    as_string: bool | Sequence[bool | None] | None = None,
    timeout: float = 5.0,
) -> list:
    """The current values of ``signals`` (read from the IOC now), in one round trip.

    ``as_string`` is ``get``'s argument, for all signals or one per signal (``None``:
    the signal's own default).
    """
    signals = list(signals)
    if as_string is None or isinstance(as_string, bool):
        strings: list[bool | None] = [as_string] * len(signals)
    else:
        strings = list(as_string)
        if len(strings) != len(signals):
            raise ValueError("as_string needs one entry per signal")
    ca, PV = _pyepics()
    values: list[Any] = [None] * len(signals)
    batched: list[tuple[int, Any, int, int | None]] = []
    if ca is not None:
        context = None
        for i, sig in enumerate(signals):
            pv = _pv_of(sig, setpoint, PV)
            if pv is None:
                continue
            if context is None:
                context = ca.current_context()
                if context is None:  # a thread new to CA: attach, as pyepics' PV does
                    ca.attach_context(pv.context)
                    context = pv.context
            if pv.context != context:
                continue
            # the request ophyd's get() makes: DBR_TIME_xxx (form="time"), with the
            # count pyepics' PV.get_with_metadata would ask for
            try:
                count = pv._args["count"] if pv._args["count"] != pv._args["nelm"] else None
                ftype = ca.promote_type(pv.chid, use_time=True)
                ca.get_with_metadata(pv.chid, ftype=ftype, count=count, wait=False)
            except Exception:  # noqa: BLE001 - e.g. disconnected since: read it below
                continue
            batched.append((i, pv, ftype, count))
        if batched:
            ca.flush_io()
    done = set()
    for i, pv, ftype, count in batched:
        try:
            md = ca.get_complete_with_metadata(pv.chid, ftype=ftype, count=count, timeout=timeout)
        except Exception:  # noqa: BLE001 - read it the ordinary way: ophyd's errors
            md = None
        if md is not None:
            values[i] = _as_get_returns(signals[i], pv, md["value"], count, strings[i])
            done.add(i)
    for i, sig in enumerate(signals):
        if i not in done:
            values[i] = _ordinary(sig, setpoint, strings[i])
    return values
