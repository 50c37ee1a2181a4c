"""The NDAttributes of each frame, collected from an attributes file's definitions.

For every frame a driver or plugin reads each attribute from its source and
attaches an ``NDAttribute`` to the array; file writers store them.  The four
source types ``asynNDArrayDriver::readNDAttributesFile`` knows (ADCore's
PVAttribute, paramAttribute and functAttribute classes, and a constant):

``EPICS_PV``
    the last value of a CA monitor (:mod:`.pv`).  The code about to use the values
    (cam frame, file open) first calls :meth:`AttributeCollector.settle`, a bounded
    once-per-file wait for first values, so a file's attribute datasets are not
    typed from "no value yet".
``PARAM``
    a driver parameter looked up by its asyn drvInfo string (``ARRAY_COUNTER``,
    ``MODEL``...) through a callable the owner of the parameters provides.
``FUNCTION``
    a registered Python function (:mod:`.functions`).
``CONST``
    a constant string.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from adtoolkit.adcore.attributes import AttributeDefinition
from adtoolkit.adcore.vocabulary import PARAM_NDATTR_TYPES, SOURCE_TYPES
from adtoolkit.ioc.ndarray import NDArray, NDAttribute
from adtoolkit.ioc.ndattributes.functions import FUNCTIONS
from adtoolkit.ioc.ndattributes.pv import PVMonitor, shared_ca_context

logger = logging.getLogger(__name__)

ParamGetter = Callable[[str, int], Any]


#: longest the frame path waits, once per attributes file, for EPICS_PV values
SETTLE_TIMEOUT = 5.0
#: least time between two forced re-searches of unconnected EPICS_PV channels
RESEARCH_INTERVAL = 0.5


class AttributeCollector:
    """Produce the NDAttributes of one frame from a list of definitions.

    ``param_getter(drv_info, addr)`` returns a driver parameter's current value and
    raises ``KeyError`` for an unknown drvInfo.  EPICS_PV monitors are created once,
    here, and reused for every frame.

    Creating the collector (a put of NDAttributesFile) does not wait for Channel
    Access unless ``connect_timeout`` > 0.  Instead the code that is about to use
    the values -- the cam before it stamps a frame, a file writer before it opens
    a file and fixes its attribute dataset types -- calls :meth:`settle`, which
    waits (bounded) for the EPICS_PV attributes that have no value yet.  Each
    monitor gets that wait once: a PV that never connects stays undefined without
    slowing later frames.
    """

    def __init__(
        self,
        definitions: Iterable[AttributeDefinition],
        param_getter: ParamGetter | None = None,
        ca_context: Any = None,
        connect_timeout: float = 0.0,
    ) -> None:
        self.definitions: tuple[AttributeDefinition, ...] = tuple(definitions)
        self.param_getter = param_getter
        self._context = ca_context
        self._monitors: dict[str, PVMonitor] = {}
        self._warned: set[str] = set()
        #: monitors still worth waiting for in settle()
        self._pending: dict[str, PVMonitor] = {}
        self._settle_lock = threading.Lock()
        self._last_research = 0.0
        for d in self.definitions:
            if d.type == "EPICS_PV" and d.name not in self._monitors:
                try:
                    self._monitors[d.name] = PVMonitor(d.source, d.dbrtype, ca_context)
                except Exception as exc:  # bad PV name, no CA: value stays undefined
                    logger.warning("EPICS_PV attribute %s (%s): %s", d.name, d.source, exc)
        self._pending = dict(self._monitors)
        if self._monitors and connect_timeout > 0 and not _in_event_loop():
            self.wait_connected(connect_timeout)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Wait until every EPICS_PV attribute has a value (not from the server thread)."""
        deadline = time.monotonic() + timeout
        ok = True
        for monitor in self._monitors.values():
            ok = monitor.wait(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Before values are used: wait up to ``timeout`` s for EPICS_PV first values.

        Returns at once when every monitor has a value, or has already had its
        wait.  Unconnected channels are searched for again first (an IOC started
        after the attributes were loaded is found now, not at the client's next
        back-off search).  Never waits in an asyncio loop thread.  Returns True
        when every EPICS_PV attribute has a value.
        """
        if not self._pending:
            return True
        if _in_event_loop():
            return False
        with self._settle_lock:  # one waiter; the others find the work done
            pending = {n: m for n, m in self._pending.items() if not m.has_value}
            if pending:
                self._research(pending.values())
                deadline = time.monotonic() + timeout
                for name, monitor in pending.items():
                    if not monitor.wait(max(0.0, deadline - time.monotonic())):
                        logger.warning(
                            "EPICS_PV attribute %s: no value from %s after %.1f s",
                            name,
                            monitor.pvname,
                            timeout,
                        )
            self._pending.clear()
        return all(m.has_value for m in self._monitors.values())

    def _research(self, monitors: Iterable[PVMonitor]) -> None:
        """Ask the CA client to re-send its unanswered searches now (rate-limited)."""
        if all(m.connected for m in monitors):
            return
        now = time.monotonic()
        if now - self._last_research < RESEARCH_INTERVAL:
            return
        self._last_research = now
        context = self._context or shared_ca_context()
        try:
            context.broadcaster.search_now()
        except Exception:  # a context without a broadcaster: wait for its own retries
            logger.debug("search_now failed", exc_info=True)

    def collect(self, array: NDArray | None = None) -> dict[str, NDAttribute]:
        """Read every attribute now; never blocks on Channel Access."""
        result: dict[str, NDAttribute] = {}
        for d in self.definitions:
            value, datatype = self._read(d, array)
            result[d.name] = NDAttribute(
                name=d.name,
                value=value,
                datatype=datatype,
                description=d.description,
                source=d.source,
                source_type=SOURCE_TYPES[d.type],
            )
        return result

    def _read(self, d: AttributeDefinition, array: NDArray | None) -> tuple[Any, str]:
        if d.type == "CONST":
            return d.source, "STRING"
        if d.type == "EPICS_PV":
            monitor = self._monitors.get(d.name)
            return monitor.value if monitor is not None else (None, "UNDEFINED")
        if d.type == "PARAM":
            datatype = PARAM_NDATTR_TYPES.get(d.datatype)
            if datatype is None or self.param_getter is None:
                return None, "UNDEFINED"
            try:
                raw = self.param_getter(d.source, d.addr)
            except KeyError:
                self._warn_once(d.name, f"PARAM attribute {d.name}: unknown drvInfo {d.source!r}")
                return None, "UNDEFINED"
            return _cast_param(raw, datatype), datatype
        function = FUNCTIONS.get(d.source)
        if function is None:
            self._warn_once(d.name, f"FUNCTION attribute {d.name}: no function {d.source!r}")
            return None, "UNDEFINED"
        return function(d.param, array)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def close(self) -> None:
        for monitor in self._monitors.values():
            monitor.close()
        self._monitors.clear()


def _in_event_loop() -> bool:
    """True in a thread running an asyncio loop (e.g. the CA server's): never block there."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _cast_param(raw: Any, datatype: str) -> Any:
    if datatype == "STRING":
        if isinstance(raw, bytes):
            return raw.split(b"\0", 1)[0].decode("latin-1")
        return "" if raw is None else str(raw)
    try:
        if datatype == "FLOAT64":
            return np.float64(raw)
        if datatype == "INT64":
            return np.int64(int(raw))
        return np.int32(int(raw))
    except (TypeError, ValueError):
        return None
