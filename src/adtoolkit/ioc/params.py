"""The asyn parameter layer: one value per drvInfo, shared by a setpoint and its _RBV.

In ADCore a driver never touches records: it reads and writes *parameters*
(``setIntegerParam(NDArrayCounter, n)``) and then calls ``callParamCallbacks()``,
which pushes every changed parameter to the I/O Intr records bound to it.  We
keep exactly that split, so driver code stays free of Channel Access and a
readback can never disagree with the value the driver uses.

Thread model: drivers run in their own threads (acquisition, plugin workers,
write executors).  Values live here under a lock; :meth:`ParamList.call_callbacks`
hands the changed values to a :class:`Publisher`, which applies them to the
caproto channels inside the asyncio loop, in order.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Param:
    """One asyn parameter (drvInfo) of one port address."""

    name: str
    kind: str  # "int" | "float" | "str" | "array"
    value: Any
    #: channels showing this parameter: (channel, converter to the channel value)
    bindings: list[tuple[Any, Callable[[Any], Any]]] = field(default_factory=list)
    #: Python-side listeners called (in the publishing thread) on every change
    listeners: list[Callable[[Any], None]] = field(default_factory=list)


def coerce(kind: str, value: Any) -> Any:
    """Convert a value to the parameter's asyn type (as asynPortDriver stores it)."""
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "str":
        if isinstance(value, bytes):
            value = value.split(b"\0", 1)[0].decode("latin-1")
        return str(value).split("\0", 1)[0]
    return value


class Publisher:
    """Applies parameter changes to caproto channels inside the server's loop.

    Before the loop runs (while the IOC is built) values are written straight
    into the channels; afterwards batches are queued thread-safely and applied
    in order by one task, like the single callback thread of an asyn port.

    At high frame rates drivers publish thousands of small batches a second.
    Waking the loop for each one costs a self-pipe write and a GIL hand-over
    that the acquisition thread then waits for, so the task gathers whatever
    arrives within ``gather`` seconds (1 ms: far below what a CA client can
    notice; the timestamps are those of the driver's callbacks) and applies it
    in one pass.  A channel nobody subscribes to only needs its newest value,
    so consecutive updates of such channels are coalesced; subscribed
    channels, put-completion waiters and flush markers see every value in order.
    """

    def __init__(self, gather: float = 0.001) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.gather = gather
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        # batches from driver threads wait here; the loop is woken once per burst
        self._pending: collections.deque = collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_scheduled = False

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def publish(self, batch: list[tuple[Any, Any, float]]) -> None:
        if not batch:
            return
        loop = self.loop
        if loop is None or loop.is_closed():
            for channel, value, stamp in batch:
                set_channel_now(channel, value, stamp)
            return
        self._pending.append(batch)
        with self._wake_lock:
            if self._wake_scheduled:
                return
            self._wake_scheduled = True
        loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        pending = self._pending
        wake = self._wake
        while True:
            await wake.wait()
            if self.gather > 0:
                await asyncio.sleep(self.gather)
            wake.clear()
            # reset before draining: a batch appended after this reset wakes us again
            with self._wake_lock:
                self._wake_scheduled = False
            latest: dict[Any, tuple[Any, float]] = {}
            while pending:
                for channel, value, stamp in pending.popleft():
                    if not getattr(channel, "_queues", True) and not getattr(
                        channel, "_adt_waiters", None
                    ):
                        latest.pop(channel, None)  # keep the newest last, in order
                        latest[channel] = (value, stamp)
                        continue
                    if latest:
                        self._store(latest)
                    await self._apply(channel, value, stamp)
            if latest:
                self._store(latest)

    @staticmethod
    def _store(latest: dict[Any, tuple[Any, float]]) -> None:
        """Store the newest values of unsubscribed channels (no event machinery)."""
        for channel, (value, stamp) in latest.items():
            try:
                set_channel_now(channel, value, stamp)
            except Exception as exc:  # a bad value must not kill the publisher
                channel.log.error("cannot update %s to %r: %s", channel.pvname, value, exc)
        latest.clear()

    @staticmethod
    async def _apply(channel: Any, value: Any, stamp: float) -> None:
        try:
            if getattr(channel, "_queues", True):
                await channel.write(value, verify_value=False, timestamp=stamp)
            else:  # nobody subscribed: store the value, skip the event machinery
                set_channel_now(channel, value, stamp)
        except Exception as exc:  # a bad value must not kill the publisher
            channel.log.error("cannot update %s to %r: %s", channel.pvname, value, exc)
        waiters = getattr(channel, "_adt_waiters", None)
        if waiters:
            for waiter in list(waiters):
                waiter(value)

    async def flush(self) -> None:
        """Wait until every batch queued so far has been applied."""
        if self._task is None:
            return
        done = asyncio.Event()
        self.publish([(_Marker(done), None, 0.0)])
        await done.wait()


class _Marker:
    """A pseudo channel whose 'write' sets an event: used by Publisher.flush."""

    pvname = "<flush>"

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    async def write(self, value: Any, **kwargs: Any) -> None:
        self.event.set()


def set_channel_now(channel: Any, value: Any, stamp: float) -> None:
    """Set a channel's value synchronously (no subscribers exist yet)."""
    from caproto import TimeStamp

    value = channel.preprocess_value(value)
    channel._data["value"] = value
    channel._data["timestamp"] = TimeStamp.from_flexible_value(stamp)
    # caproto caches converted reads until the next publish(): drop that cache
    content = getattr(channel, "_content", None)
    if content:
        content.clear()


class ParamList:
    """The parameters of one asyn port address (``asynPortDriver`` param list).

    ``lock`` plays the role of the asyn port lock: drivers hold it while they
    read-modify-write several parameters.
    """

    def __init__(self, port: str, publisher: Publisher, addr: int = 0) -> None:
        self.port = port
        self.addr = addr
        self.publisher = publisher
        self.lock = threading.RLock()
        self.params: dict[str, Param] = {}
        self._changed: dict[str, Param] = {}

    def define(self, name: str, kind: str, value: Any = None) -> Param:
        """Create a parameter (or return the existing one)."""
        param = self.params.get(name)
        if param is None:
            if value is None:
                value = {"int": 0, "float": 0.0, "str": "", "array": []}[kind]
            param = Param(name, kind, coerce(kind, value))
            self.params[name] = param
        return param

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def get(self, name: str) -> Any:
        return self.params[name].value

    def set(self, name: str, value: Any, force: bool = False) -> None:
        """Set a value; it reaches the records at the next :meth:`call_callbacks`."""
        with self.lock:
            param = self.params[name]
            value = coerce(param.kind, value)
            if force or not _same(param.value, value):
                param.value = value
                self._changed[name] = param

    def update(self, values: dict[str, Any]) -> None:
        with self.lock:
            for name, value in values.items():
                self.set(name, value)

    def call_callbacks(self) -> None:
        """Push every changed parameter to its records and listeners."""
        with self.lock:
            changed = list(self._changed.values())
            self._changed.clear()
            stamp = time.time()
            batch = []
            for param in changed:
                for channel, convert in param.bindings:
                    try:
                        batch.append((channel, convert(param.value), stamp))
                    except Exception as exc:
                        channel.log.error(
                            "%s: cannot show %r: %s", channel.pvname, param.value, exc
                        )
            self.publisher.publish(batch)
        for param in changed:
            for listener in param.listeners:
                listener(param.value)

    def snapshot(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        with self.lock:
            if names is None:
                return {n: p.value for n, p in self.params.items()}
            return {n: self.params[n].value for n in names}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # numpy arrays
        return False
