"""EPICS_PV NDAttributes: a Channel Access monitor per PV, as ADCore's PVAttribute.

Real ADCore keeps a CA monitor on each EPICS_PV attribute and uses the last
value; we do the same with caproto's threading client, so collecting never
blocks, even for PVs served by this same IOC (a blocking ``get`` issued from the
server's own thread would deadlock it).  As in ADCore the type is known at
connection (the channel's native type), the value is 0 until the first update,
and undefined while disconnected.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_shared_context = None
_shared_context_lock = threading.Lock()


def shared_ca_context():
    """One caproto threading client Context per process (they are costly)."""
    global _shared_context
    with _shared_context_lock:
        if _shared_context is None:
            from caproto.threading.client import Context

            _shared_context = Context()
        return _shared_context


def _convert_pv_value(data: Any, native: str, count: int, dbrtype: str) -> tuple[Any, str]:
    """Convert a CA monitor payload to (value, NDAttribute datatype) like PVAttribute."""
    if native == "STRING":
        first = data[0] if len(data) else b""
        text = first.decode("latin-1") if isinstance(first, bytes) else str(first)
        if dbrtype in ("DBR_NATIVE", "DBR_STRING"):
            return text, "STRING"
        try:
            number = float(text)
        except ValueError:
            return None, "UNDEFINED"
        return _numeric_as(number, dbrtype)
    arr = np.asarray(data)
    if dbrtype == "DBR_STRING":
        if native == "CHAR" and count > 1:
            raw = arr.astype(np.uint8).tobytes()
            return raw.split(b"\0", 1)[0].decode("latin-1"), "STRING"
        if arr.size == 0:
            return "", "STRING"
        value = arr.flat[0]
        if native in ("FLOAT", "DOUBLE"):
            return f"{float(value):g}", "STRING"
        return str(int(value)), "STRING"
    if arr.size == 0:
        return None, "UNDEFINED"
    value = arr.flat[0]
    if dbrtype == "DBR_NATIVE":
        dbrtype = {
            "SHORT": "DBR_SHORT",
            "ENUM": "DBR_ENUM",
            "FLOAT": "DBR_FLOAT",
            "CHAR": "DBR_CHAR",
            "LONG": "DBR_LONG",
            "DOUBLE": "DBR_DOUBLE",
        }.get(native, "DBR_DOUBLE")
    return _numeric_as(value, dbrtype)


def _numeric_as(value: Any, dbrtype: str) -> tuple[Any, str]:
    """Cast like a CA server converting to the requested DBR type (C casts wrap)."""
    datatype = {
        "DBR_CHAR": "INT8",
        "DBR_SHORT": "INT16",
        "DBR_INT": "INT16",
        "DBR_ENUM": "INT16",
        "DBR_LONG": "INT32",
        "DBR_FLOAT": "FLOAT32",
    }.get(dbrtype, "FLOAT64")
    dtype = {"INT8": "i1", "INT16": "i2", "INT32": "i4", "FLOAT32": "f4", "FLOAT64": "f8"}[datatype]
    source = np.asarray(value)
    if dtype.startswith("i") and source.dtype.kind == "f":
        source = np.trunc(source).astype("i8")
    return source.astype(dtype)[()], datatype


def _native_name(data_type: Any) -> str:
    """caproto's ChannelType name without TIME_/STS_/... prefix; INT is DBR_SHORT."""
    native = getattr(data_type, "name", str(data_type))
    for prefix in ("TIME_", "STS_", "CTRL_", "GR_"):
        native = native.removeprefix(prefix)
    return "SHORT" if native == "INT" else native


def typed_zero(native: str, count: int, dbrtype: str) -> tuple[Any, str]:
    """The value of a connected PVAttribute before its first monitor update.

    ADCore's PVAttribute decides its NDAttribute type in the CA *connection*
    callback, from ``ca_field_type`` (the channel's native DBF type) and the
    requested dbrtype; the value stays 0 (an empty string) until the first
    monitor arrives.  This gives that pair for a channel's native type.
    """
    if dbrtype == "DBR_STRING" or (native == "STRING" and dbrtype == "DBR_NATIVE"):
        return "", "STRING"
    if native == "STRING":  # a string PV read as a number: 0 of that type
        return _numeric_as(0, dbrtype)
    if native not in ("SHORT", "ENUM", "FLOAT", "CHAR", "LONG", "DOUBLE"):
        return None, "UNDEFINED"  # ADCore: "unknown DBF type", nothing subscribed
    zero = np.zeros(1, dtype="i4")
    return _convert_pv_value(zero, native, count, dbrtype)


class PVMonitor:
    """A CA monitor on one PV that keeps the last value, as ADCore's PVAttribute does.

    Like PVAttribute, the attribute's type is known as soon as the channel
    connects (from its native type), before the first value: until that value
    arrives it reads as 0 of that type.  Before the connection, and after a
    disconnection, it is undefined.
    """

    def __init__(self, pvname: str, dbrtype: str, context: Any = None) -> None:
        self.pvname = pvname
        self.dbrtype = dbrtype
        self._value: tuple[Any, str] = (None, "UNDEFINED")
        self._has_value = False  # a monitor value arrived since the last connection
        self._updated = threading.Event()
        self._lock = threading.Lock()
        self._context = context or shared_ca_context()
        (self._pv,) = self._context.get_pvs(pvname, timeout=2.0)
        # the PV object is shared by every monitor of this name in the context:
        # remove our callback again in close()
        self._conn_token = self._pv.connection_state_callback.add_callback(
            self._on_connection, run=True
        )
        # DBR_STRING asks for the control structure: it carries an enum's strings
        self._sub = self._pv.subscribe(data_type="control" if dbrtype == "DBR_STRING" else None)
        self._sub.add_callback(self._on_update)

    def _on_connection(self, pv: Any, state: str) -> None:
        if state != "connected":
            with self._lock:
                self._value = (None, "UNDEFINED")
                self._has_value = False
            self._updated.clear()

    def _on_update(self, sub: Any, response: Any) -> None:
        try:
            native = _native_name(response.data_type)
            if native == "ENUM" and self.dbrtype == "DBR_STRING":
                strings = list(getattr(response.metadata, "enum_strings", []) or [])
                index = int(np.asarray(response.data).flat[0])
                text = strings[index] if 0 <= index < len(strings) else str(index)
                if isinstance(text, bytes):
                    text = text.decode("latin-1")
                value: tuple[Any, str] = (text, "STRING")
            else:
                value = _convert_pv_value(response.data, native, response.data_count, self.dbrtype)
        except Exception:  # never let a bad payload kill the client thread
            logger.exception("EPICS_PV attribute %s: cannot convert the monitor value", self.pvname)
            return
        with self._lock:
            self._value = value
            self._has_value = True
        self._updated.set()

    @property
    def connected(self) -> bool:
        return bool(self._pv.connected)

    @property
    def has_value(self) -> bool:
        return self._has_value

    @property
    def value(self) -> tuple[Any, str]:
        with self._lock:
            if self._has_value:
                return self._value
        channel = self._pv.channel
        if channel is None or not self._pv.connected:
            return None, "UNDEFINED"
        # connected, first value not here yet: the type is the channel's native one
        native = _native_name(channel.native_data_type)
        return typed_zero(native, int(channel.native_data_count or 1), self.dbrtype)

    def wait(self, timeout: float) -> bool:
        """Wait (in a thread that is not the server's) for the first value."""
        return self._updated.wait(timeout)

    def close(self) -> None:
        try:
            self._pv.connection_state_callback.remove_callback(self._conn_token)
            self._sub.clear()
        except Exception:  # the context may already be gone at interpreter exit
            logger.debug("clearing subscription of %s failed", self.pvname, exc_info=True)
