"""asynPortDriver and asynNDArrayDriver: parameters, writes and NDArray callbacks.

``PortDriver`` owns the parameter lists of one asyn port; records are bound
to them by the device-support layer (:mod:`adtoolkit.ioc.devsup`), which this
module does not know.  ``NDArrayDriver`` adds what NDArrayBase.template serves for
every driver and plugin (counters, dimensions, attributes, queued-array
accounting) and the NDArray callback fan-out to plugins registered on the port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from adtoolkit.ioc.ndarray import NDArray, NDAttribute
from adtoolkit.ioc.params import ParamList, Publisher

if TYPE_CHECKING:
    from caproto.server import PVGroup

log = logging.getLogger(__name__)

#: ADCoreVersion_RBV of every port (the ADCore release whose records are served)
ADCORE_VERSION = "3.14.0"


#: hook returning extra NDAttributes for one array (the NDAttributesFile list)
AttributeHook = Callable[[NDArray], Mapping[str, NDAttribute]]


class ArrayClient(Protocol):
    """What a port hands its arrays to: a plugin (NDPluginDriver)."""

    log: logging.Logger

    def driver_callback(self, array: NDArray, origin: NDArrayDriver) -> None: ...


class PortRegistry(dict):
    """asyn port name -> driver, for NDArrayPort wiring (the asyn port list)."""

    def get(self, name: str, default: Any = None) -> NDArrayDriver | None:  # type: ignore[override]
        return super().get(name, default)


class PortDriver:
    """One asyn port: parameter lists per address and the driver's write entry.

    Driver code reads and writes parameters by drvInfo name (``"ACQ_TIME"``),
    never records.  Subclasses override :meth:`write_param` to act on puts.
    """

    #: drvInfo -> boot value set by the driver constructor (overrides template VAL)
    defaults: dict[str, Any] = {}

    def __init__(self, port_name: str, publisher: Publisher, num_addr: int = 1) -> None:
        self.port_name = port_name
        self.publisher = publisher
        self.lists = [ParamList(port_name, publisher, addr) for addr in range(num_addr)]
        self.params = self.lists[0]
        self.group: PVGroup | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{port_name}-write")
        self.log = logging.getLogger(f"adtoolkit.ioc.{port_name}")

    # -- parameters -------------------------------------------------------
    def param_list(self, addr: int = 0) -> ParamList:
        return self.lists[addr]

    def get(self, name: str, addr: int = 0) -> Any:
        return self.lists[addr].get(name)

    def set(self, name: str, value: Any, addr: int = 0) -> None:
        self.lists[addr].set(name, value)

    def call_callbacks(self, addr: int | None = None) -> None:
        for plist in self.lists if addr is None else [self.lists[addr]]:
            plist.call_callbacks()

    def read_param(self, drvinfo: str, addr: int = 0) -> Any:
        """Value of a parameter by drvInfo (for PARAM attributes)."""
        return self.lists[addr].get(drvinfo)

    # -- records ----------------------------------------------------------
    def bind(self, group: PVGroup) -> None:
        """Hook: the port's records are bound to its parameters (by
        :func:`adtoolkit.ioc.devsup.bind_records`); subclasses learn about
        their records here."""
        self.group = group

    def init_params(self) -> None:
        """Hook: set computed boot values after parameters exist."""

    # -- writes -----------------------------------------------------------
    async def write_async(self, addr: int, name: str, value: Any) -> None:
        """Run a client's write in the port thread (like an ASYN_CANBLOCK port)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._write, addr, name, value)

    def _write(self, addr: int, name: str, value: Any) -> None:
        plist = self.lists[addr]
        with plist.lock:
            try:
                self.write_param(addr, name, value)
            finally:
                plist.call_callbacks()

    def write_param(self, addr: int, name: str, value: Any) -> None:
        """Default write: store the value (asynPortDriver::writeInt32 etc.)."""
        self.lists[addr].set(name, value)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class NDArrayDriver(PortDriver):
    """asynNDArrayDriver: what every driver and plugin serves (NDArrayBase)."""

    #: ADCoreVersion_RBV (the IOC sets it to the version it was asked to be)
    adcore_version: str = ADCORE_VERSION

    def __init__(self, port_name: str, publisher: Publisher, num_addr: int = 1) -> None:
        super().__init__(port_name, publisher, num_addr)
        #: plugins registered for this port's arrays: addr -> plugins
        self.clients: dict[int, list[ArrayClient]] = {}
        self._clients_lock = threading.Lock()
        #: arrays handed to plugins and not yet processed (whole plugin tree)
        self._queued = 0
        self._queued_lock = threading.Lock()
        #: collects the NDAttributesFile attributes of each array (None: no file)
        self.attribute_hook: AttributeHook | None = None
        self._attribute_collector: Any = None

    def init_params(self) -> None:
        super().init_params()
        p = self.params
        p.set("PORT_NAME_SELF", self.port_name)
        p.set("ADCORE_VERSION", self.adcore_version)
        # no file read yet: asynNDArrayDriver reports "File not found" for ""
        if "ND_ATTRIBUTES_STATUS" in p:
            p.set("ND_ATTRIBUTES_STATUS", 1)
        p.set("POOL_MAX_MEMORY", 0.0)
        p.define("ARRAY_RATE", "float", 0.0)
        for name in ("POOL_MAX_BUFFERS",):
            if name in p:
                p.set(name, 0)

    # -- writes -------------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        super().write_param(addr, name, value)
        if name in ("ND_ATTRIBUTES_FILE", "ND_ATTRIBUTES_MACROS"):
            self.read_attributes_file()

    def read_attributes_file(self) -> None:
        """asynNDArrayDriver::readNDAttributesFile, re-read on every write of
        NDAttributesFile or NDAttributesMacros.  An empty name clears the list
        without touching NDAttributesStatus."""
        from adtoolkit.adcore.attributes import load_attributes
        from adtoolkit.ioc import ndattributes

        p = self.params
        old, self._attribute_collector = self._attribute_collector, None
        self.attribute_hook = None
        if old is not None:
            old.close()
        result = load_attributes(p.get("ND_ATTRIBUTES_FILE"), p.get("ND_ATTRIBUTES_MACROS"))
        if not p.get("ND_ATTRIBUTES_FILE").strip():
            return
        p.set("ND_ATTRIBUTES_STATUS", result.status)
        if result.status != 0:
            self.log.warning("NDAttributesFile: %s", result.message)
            return
        collector = ndattributes.AttributeCollector(
            result.definitions,
            param_getter=self.read_param,
            ca_context=ndattributes.shared_ca_context(),
        )
        self._attribute_collector = collector
        self.attribute_hook = collector.collect

    def settle_attributes(self) -> None:
        """Before values are taken: let EPICS_PV attributes that have no value yet
        get one (bounded, once per file; see AttributeCollector.settle).  Call it
        outside the parameter lock: the put of NDAttributesFile itself never waits."""
        collector = self._attribute_collector
        if collector is not None:
            collector.settle()

    # -- plugins ----------------------------------------------------------
    def register(self, plugin: ArrayClient, addr: int = 0) -> None:
        with self._clients_lock:
            lst = self.clients.setdefault(addr, [])
            if plugin not in lst:
                lst.append(plugin)

    def unregister(self, plugin: ArrayClient) -> None:
        with self._clients_lock:
            for lst in self.clients.values():
                if plugin in lst:
                    lst.remove(plugin)

    def do_callbacks(
        self, array: NDArray, addr: int = 0, origin: NDArrayDriver | None = None
    ) -> None:
        """Hand an array to every plugin registered on this port (doCallbacksGenericPointer)."""
        origin = origin or self
        with self._clients_lock:
            clients = list(self.clients.get(addr, ()))
        for plugin in clients:
            try:
                plugin.driver_callback(array, origin)
            except Exception:  # one broken plugin must not stop the others or the cam
                plugin.log.exception("driver callback failed for array %d", array.unique_id)

    # -- queued-array accounting (NumQueuedArrays / WaitForPlugins) -------
    def array_queued(self) -> None:
        """Count an array handed to a plugin queue.  Called in the thread that
        called the plugins back, which calls its own callbacks right after, so
        NumQueuedArrays is published there (one update per frame, not two)."""
        with self._queued_lock:
            self._queued += 1
            n = self._queued
        self.set("NUM_QUEUED_ARRAYS", n)

    def array_done(self) -> None:
        with self._queued_lock:
            self._queued = max(self._queued - 1, 0)
            n = self._queued
        with self.params.lock:
            self.set("NUM_QUEUED_ARRAYS", n)
            if n == 0:
                self.queue_emptied()
            self.call_callbacks(0)

    @property
    def queued(self) -> int:
        return self._queued

    def queue_emptied(self) -> None:
        """Hook: every array handed to plugins has been processed."""

    # -- arrays -----------------------------------------------------------
    def update_array_params(self, array: NDArray) -> None:
        """Set the NDArrayBase readbacks that describe an array (beginProcessCallbacks)."""
        p = self.params
        dims = [d.size for d in array.dims]
        p.set("ARRAY_NDIMENSIONS", len(dims))
        p.set("ARRAY_DIMENSIONS", dims + [0] * (10 - len(dims)))
        p.set("DATA_TYPE", array.data_type)
        color = array.attributes.get("ColorMode")
        p.set("COLOR_MODE", int(color.value) if color is not None else array.color_mode)
        p.set("UNIQUE_ID", array.unique_id)
        p.set("TIME_STAMP", array.timestamp)
        p.set("EPICS_TS_SEC", array.epics_ts_sec)
        p.set("EPICS_TS_NSEC", array.epics_ts_nsec)

    def extra_attributes(self, array: NDArray) -> Mapping[str, NDAttribute]:
        """Attributes from the NDAttributesFile for this array (getAttributes)."""
        hook = self.attribute_hook
        if hook is None:
            return {}
        try:
            return hook(array)
        except Exception as exc:  # a broken attribute must not stop acquisition
            self.log.error("attributes: %s", exc)
            return {}
