"""NDPluginScatter (``Scatter1:``) and NDPluginGather (``Gather1:``): spread arrays
over several plugins and bring them back together.

Scatter hands each array to *one* of the plugins registered on its port, in
turn (ADCore's doNDArrayCallbacks of NDPluginScatter): starting after the
client served last, a client that is disabled or whose queue is full is passed
over, and the last client tried takes the array whatever its state (its queue
drops it, or a disabled client ignores it).  With no client the array is
counted and goes nowhere: nothing waits for a receiver.

Gather listens to up to eight (port, address) inputs, one per asyn address
(``Gather1:NDArrayPort_N``/``NDArrayAddress_N`` at address N-1; address 0's are
also ``Gather1:NDArrayPort``), and passes on every array it receives.  As on the
real IOC every input boots on the cam, so an enabled Gather1 receives each cam
frame once per input (eight times); an empty port name is no input.
"""

from __future__ import annotations

from typing import Any

from adtoolkit.ioc.driver import NDArrayDriver
from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver

NUM_INPUTS = 8


def takes_array(client: Any) -> bool:
    """Would this client queue (or process) an array now, rather than ignore or drop it?"""
    p = client.params
    if not p.get("ENABLE_CALLBACKS"):
        return False
    if p.get("BLOCKING_CALLBACKS"):
        return True
    return len(getattr(client, "_queue", ())) < max(p.get("QUEUE_SIZE"), 1)


class NDScatter(PluginDriver):
    plugin_type = "NDPluginScatter"
    templates = ("NDScatter",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next = 0

    def emit(self, array: NDArray) -> None:
        if not self.params.get("ARRAY_CALLBACKS"):
            return
        with self._clients_lock:
            clients = list(self.clients.get(0, ()))
        origin = self._origin or self
        for i in range(len(clients)):
            if self._next >= len(clients):
                self._next = 0
            client = clients[self._next]
            self._next += 1
            if i == len(clients) - 1 or takes_array(client):
                try:
                    client.driver_callback(array, origin)
                except Exception:  # one broken client must not stop the scatter
                    client.log.exception("driver callback failed for array %d", array.unique_id)
                return


class _GatherInput:
    """One registration of Gather on an upstream port (each input registers
    separately, so two inputs on one port deliver each array twice)."""

    def __init__(self, gather: NDGather) -> None:
        self.gather = gather
        self.log = gather.log

    def driver_callback(self, array: NDArray, origin: NDArrayDriver) -> None:
        self.gather.driver_callback(array, origin)


class NDGather(PluginDriver):
    plugin_type = "NDPluginGather"

    def __init__(self, *args: Any, num_inputs: int = NUM_INPUTS, **kwargs: Any) -> None:
        self.num_inputs = num_inputs
        kwargs["num_addr"] = num_inputs
        super().__init__(*args, **kwargs)
        self._inputs = [_GatherInput(self) for _ in range(num_inputs)]
        self._connected: list[NDArrayDriver | None] = [None] * num_inputs

    @classmethod
    def all_templates(cls) -> tuple[str, ...]:
        return ("NDArrayBase", "NDPluginBase", "NDCompat")

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        return tuple((f"NDGatherN@{n + 1}", "", n) for n in range(self.num_inputs))

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"num_inputs": int(definition.get("num_inputs", NUM_INPUTS))}

    def init_params(self) -> None:
        super().init_params()
        for plist in self.lists[1:]:
            plist.set("NDARRAY_PORT", self._boot["NDARRAY_PORT"])
            plist.set("NDARRAY_ADDR", self._boot["NDARRAY_ADDR"])

    def _connect(self) -> None:
        for i, source in enumerate(self._inputs):
            old = self._connected[i]
            if old is not None:
                old.unregister(source)  # type: ignore[arg-type]
                self._connected[i] = None
            upstream = self.registry.get(self.get("NDARRAY_PORT", i))
            if upstream is not None and upstream is not self:
                upstream.register(source, self.get("NDARRAY_ADDR", i))  # type: ignore[arg-type]
                self._connected[i] = upstream

    def write_param(self, addr: int, name: str, value: Any) -> None:
        if name in ("NDARRAY_PORT", "NDARRAY_ADDR"):
            self.lists[addr].set(name, value)
            self._connect()
            self.call_callbacks(addr)
        else:
            super().write_param(addr, name, value)
