"""NDPluginDriver: how a plugin receives arrays (NDPluginBase.template).

A plugin registers with the port named by its NDArrayPort/NDArrayAddress.
When the upstream driver calls back with an array, an enabled plugin either
processes it at once in the caller's thread (BlockingCallbacks=Yes) or puts it
on its queue for its own worker thread; a full queue drops the array and counts
it in DroppedArrays.  Every array handed over is counted on the *origin* driver
(the cam) until processed, through the whole plugin tree, which is what
NumQueuedArrays and WaitForPlugins/AcquireBusy need.

Plugin readbacks describing the array (ArraySize0_RBV ... UniqueId_RBV) change
only when an enabled plugin receives an array: that is "priming",
which ophyd's HDF5 plugin needs before it can stage (its dimensions come from them).
"""

from __future__ import annotations

import collections
import threading
import time
from importlib import resources
from typing import Any

from adtoolkit.ioc.driver import NDArrayDriver, PortRegistry
from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.params import Publisher


class PluginDriver(NDArrayDriver):
    """Base of every plugin: queue, worker thread, wiring and priming."""

    plugin_type = "NDPluginDriver"
    #: templates this plugin loads after NDArrayBase + NDPluginBase
    templates: tuple[str, ...] = ()
    #: takes codec-compressed arrays (NDPluginCodec); the others ignore them, as
    #: ADCore's plugins that are not compression aware do
    compression_aware = False

    def __init__(
        self,
        port_name: str,
        publisher: Publisher,
        registry: PortRegistry,
        ndarray_port: str = "",
        ndarray_addr: int = 0,
        queue_size: int = 20,
        enabled: bool = False,
        blocking: bool = False,
        num_addr: int = 1,
    ) -> None:
        super().__init__(port_name, publisher, num_addr)
        self.registry = registry
        self._boot = {
            "NDARRAY_PORT": ndarray_port,
            "NDARRAY_ADDR": ndarray_addr,
            "QUEUE_SIZE": queue_size,
            "ENABLE_CALLBACKS": int(enabled),
            "BLOCKING_CALLBACKS": int(blocking),
        }
        self._queue: collections.deque[tuple[NDArray, NDArrayDriver]] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._upstream: NDArrayDriver | None = None
        self._last_callback = 0.0
        self._origin: NDArrayDriver | None = None
        #: driver_callback queued an array but could not publish QueueFree
        self._queue_free_stale = False
        self._thread = threading.Thread(
            target=self._worker, name=f"{port_name}-plugin", daemon=True
        )

    # -- setup --------------------------------------------------------------
    @classmethod
    def all_templates(cls) -> tuple[str, ...]:
        """Templates loaded on this plugin's prefix, in dbLoadRecords order."""
        templates = cls.templates
        # a plugin's own template (NDFileTIFF.template ...) if it has a table
        own = cls.plugin_type
        if (
            own not in templates
            and resources.files("adtoolkit.ioc").joinpath("db", f"{own}.txt").is_file()
        ):
            templates = (*templates, own)
        return ("NDArrayBase", "NDPluginBase") + templates + ("NDCompat",)

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        """(template, prefix, asyn address) loaded once per address (overlays)."""
        return ()

    def record_overrides(self) -> tuple[tuple[str, str, Any], ...]:
        """(record, field, value) macro substitutions for this instance."""
        return ()

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        """Extra constructor arguments taken from the instance definition."""
        return {}

    def init_params(self) -> None:
        super().init_params()
        p = self.params
        for name, value in self._boot.items():
            p.set(name, value)
        # plugins that pass no arrays on (file writers, StdArrays) boot with
        # ArrayCallbacks Disable, as on the real IOC; every other one Enable
        if {"NDFile", "NDStdArrays"} & set(self.all_templates()):
            p.set("ARRAY_CALLBACKS", 0)
        p.set("PLUGIN_TYPE", self.plugin_type)
        p.set("QUEUE_FREE", self._boot["QUEUE_SIZE"])
        p.set("NUM_THREADS", 1)
        p.set("MAX_THREADS", 1)
        p.set("DRIVER_VERSION", self.adcore_version)  # a plugin's version is ADCore's
        # a plugin never sets these: the records keep their template VAL
        for name in ("MANUFACTURER", "MODEL", "SERIAL_NUMBER", "SDK_VERSION", "FIRMWARE_VERSION"):
            if name in p:
                p.set(name, "Unknown")

    def start(self) -> None:
        """Connect to the upstream port and start the worker thread."""
        self._connect()
        self._thread.start()

    def _connect(self) -> None:
        if self._upstream is not None:
            self._upstream.unregister(self)
            self._upstream = None
        upstream = self.registry.get(self.get("NDARRAY_PORT"))
        if upstream is not None and upstream is not self:
            upstream.register(self, self.get("NDARRAY_ADDR"))
            self._upstream = upstream

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self.shutdown()

    # -- writes -------------------------------------------------------------
    def write_param(self, addr: int, name: str, value: Any) -> None:
        p = self.params
        if name in ("NDARRAY_PORT", "NDARRAY_ADDR"):
            p.set(name, value)
            self._connect()
        elif name == "QUEUE_SIZE":
            value = max(int(value), 1)
            p.set(name, value)
            self._update_queue_free()
        elif name == "PROCESS_PLUGIN":
            last = getattr(self, "_last_array", None)
            if last is not None and self.get("ENABLE_CALLBACKS"):
                self.driver_callback(last, self._upstream or self)
        else:
            super().write_param(addr, name, value)

    # -- receiving arrays ---------------------------------------------------
    def driver_callback(self, array: NDArray, origin: NDArrayDriver) -> None:
        """Called by the upstream driver, in its thread (NDPluginDriver::driverCallback)."""
        p = self.params
        if not p.get("ENABLE_CALLBACKS") or (array.codec and not self.compression_aware):
            return
        min_time = p.get("MIN_CALLBACK_TIME")
        now = time.monotonic()
        if min_time > 0 and now - self._last_callback < min_time:
            return
        self._last_callback = now
        if p.get("BLOCKING_CALLBACKS"):
            self.process_array(array, origin)
            return
        with self._cond:
            if len(self._queue) >= max(p.get("QUEUE_SIZE"), 1):
                with p.lock:
                    p.set("DROPPED_ARRAYS", p.get("DROPPED_ARRAYS") + 1)
                    p.call_callbacks()
                return
            origin.array_queued()
            self._queue.append((array, origin))
            self._cond.notify()
        # Never wait here for the plugin's port lock: its worker holds it while it
        # processes an array (a file write can take milliseconds), and the cam must
        # not be slowed down to the plugin's pace -- that is what the queue is for.
        # When the lock is busy its holder publishes QueueFree on release instead.
        if p.lock.acquire(blocking=False):
            try:
                self._update_queue_free()
                p.call_callbacks()
            finally:
                p.lock.release()
        else:
            self._queue_free_stale = True

    def _update_queue_free(self) -> None:
        """QueueFree from the queue length *now*, so the last update is never stale.

        The length is read under the port lock: the cam thread (append) and the
        worker (pop) both update QueueFree, and whichever takes the lock last
        reads the final length, so a late writer cannot publish an old count.
        """
        p = self.params
        with p.lock:
            p.set("QUEUE_FREE", max(p.get("QUEUE_SIZE") - len(self._queue), 0))

    def _worker(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                array, origin = self._queue.popleft()
            self._update_queue_free()
            try:
                self.process_array(array, origin)
            finally:
                origin.array_done()

    def process_array(self, array: NDArray, origin: NDArrayDriver) -> None:
        """beginProcessCallbacks + processCallbacks + endProcessCallbacks."""
        p = self.params
        start = time.perf_counter()
        with p.lock:
            self._origin = origin
            self._last_array = array
            self.update_array_params(array)
            try:
                self.process(array)
            except Exception as exc:  # a bad frame must not kill the plugin thread
                self.log.exception("processing array %d: %s", array.unique_id, exc)
            finally:
                self._origin = None
            p.set("EXECUTION_TIME", (time.perf_counter() - start) * 1e3)
            if self._queue_free_stale:  # arrays were queued while we held the lock
                self._queue_free_stale = False
                self._update_queue_free()
            p.call_callbacks()

    def count_array(self) -> None:
        """ArrayCounter++ for an array this plugin has dealt with."""
        p = self.params
        p.set("ARRAY_COUNTER", p.get("ARRAY_COUNTER") + 1)

    def process(self, array: NDArray) -> None:
        """Plugin work on one array (override).  Default: pass it on."""
        self.count_array()
        self.emit(array)

    def emit(self, array: NDArray) -> None:
        """Pass an output array to plugins downstream (if ArrayCallbacks)."""
        if self.params.get("ARRAY_CALLBACKS"):
            self.do_callbacks(array, origin=self._origin or self)


class PassThroughPlugin(PluginDriver):
    """Plugins served for their records whose processing is not simulated
    (Proc, Over, Trans, CC, CB, Pva): arrays pass through unchanged."""


def make_passthrough(plugin_type: str, templates: tuple[str, ...]) -> type[PluginDriver]:
    return type(
        plugin_type,
        (PassThroughPlugin,),
        {"plugin_type": plugin_type, "templates": templates},
    )
