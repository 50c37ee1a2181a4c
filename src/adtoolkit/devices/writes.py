"""Writing settings to the IOC: put-completion, busy-record waits, batches of writes.

Settings are written with CA put-completion instead of ophyd's ``set().wait()``, which
polls each readback in turn.  A :class:`WriteBatch` sends writes back to back and
awaits their completions together at a few *barriers* -- before a check that reads a
result (FilePathExists_RBV), before a busy record (``capture``) and at the end -- so a
whole stage costs a handful of round trips, not one per setting.  Order is still
guaranteed: an IOC processes the requests of one CA circuit in order, and an asyn port
executes writes in order.  Busy records are the exception: their put completes only
when the operation ends, so for them we wait for the readback to reach the requested
value (:func:`put_wait_readback`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from numbers import Integral
from typing import Any

from ophyd import Signal
from ophyd.signal import EpicsSignalBase

__all__ = [
    "Watch",
    "WriteBatch",
    "current",
    "enum_strs",
    "key_name",
    "put_wait",
    "put_wait_readback",
    "pvname",
    "same_value",
    "wait_for",
]


def current(sig: Signal) -> Any:
    """The signal's value, read over CA now.

    Not from a monitor: monitor updates of readbacks can trail a put's completion by
    tens of milliseconds (seen with the simulated IOC), so a value cached from a monitor
    right after our own writes (an unstage followed by the next stage) can be stale and
    would make us skip a write that is needed.
    """
    return sig.get(use_monitor=False)


def key_name(key: Any) -> str:
    """The attribute name a stage_sigs key (string path or Signal) stands for."""
    if isinstance(key, str):
        return key.rsplit(".", 1)[-1]
    return getattr(key, "attr_name", None) or getattr(key, "name", "")


def pvname(sig: Signal) -> str:
    """The PV a signal writes to, for messages."""
    return getattr(sig, "setpoint_pvname", None) or getattr(sig, "pvname", None) or sig.name


def enum_strs(sig: Signal) -> tuple:
    """The PV's enum states (empty when it is not an enum)."""
    strs = getattr(sig, "enum_strs", None)
    if not strs:
        strs = (getattr(sig, "metadata", {}) or {}).get("enum_strs")
    return tuple(strs or ())


def put_wait(sig: Signal, value: Any, timeout: float) -> None:
    """Write with CA put-completion and wait for the completion (one round trip).

    Soft signals (no CA, e.g. ophyd's fake devices in unit tests) are simply set.
    """
    if not isinstance(sig, EpicsSignalBase):
        sig.set(value).wait(timeout)
        return
    done = threading.Event()
    sig.put(value, use_complete=True, callback=lambda *a, **k: done.set(), timeout=timeout)
    if not done.wait(timeout):
        raise TimeoutError(
            f"writing {value!r} to {pvname(sig)} did not complete within {timeout:g} s"
        )


def same_value(sig: Signal, current: Any, value: Any) -> bool:
    """``current`` (as read) is ``value`` (as written), an enum by index or by name."""
    if current == value:
        return True
    states = enum_strs(sig)
    if states and isinstance(value, str) and isinstance(current, Integral):
        return 0 <= current < len(states) and states[current] == value
    if states and isinstance(current, str) and isinstance(value, Integral):
        return 0 <= value < len(states) and states[value] == current
    return False


#: a signal to read when a busy write ends without reaching its value, and a function
#: of that signal's value that returns the exception to raise (or None)
Watch = tuple[Signal, Callable[[Any], BaseException | None]]


def put_wait_readback(sig: Signal, value: Any, timeout: float, watch: Watch | None = None) -> None:
    """Write and wait (on a monitor) until the readback equals the value.

    For busy records, whose put completes only when the operation they start ends.
    ``watch`` lets the IOC's own error report end the wait at once instead of after
    ``timeout`` with nothing but the readback to show.  It is read when *this* write's
    put-completion arrives while the readback is not there: a busy record completes
    early only when the operation ended at once (e.g. a file plugin's Capture=1 that
    could not open the file sets WriteStatus to "Write error" and Capture back to 0).
    A monitor on the watched signal would not do: a "Write error" left by an earlier
    failure looks the same as a new one, and a real IOC posts no event when the value
    does not change.
    """
    if not isinstance(sig, EpicsSignalBase):
        sig.set(value).wait(timeout)
        return
    reached = threading.Event()
    ended = threading.Event()

    def cb(value: Any = None, **kwargs: Any) -> None:
        if same_value(sig, value, target):
            reached.set()

    def put_done(*args: Any, **kwargs: Any) -> None:
        ended.set()
        reached.set()

    target = value
    deadline = time.monotonic() + timeout
    cid = sig.subscribe(cb, run=False)
    try:
        if watch is None:
            sig.put(value, use_complete=False)
        else:
            sig.put(value, use_complete=True, callback=put_done, timeout=timeout)
        if same_value(sig, sig.get(use_monitor=False), value):
            return
        while _wait_until(reached, deadline):
            if not ended.is_set():
                return  # only the monitor sets ``reached`` alone: the value is there
            # this write's put-completion: the operation ended (or never was busy)
            ended.clear()
            reached.clear()
            if same_value(sig, sig.get(use_monitor=False), value):
                return
            if watch is not None:
                exc = watch[1](watch[0].get(use_monitor=False))
                if exc is not None:
                    raise exc
                watch = None  # no error reported: wait for the readback as usual
        raise TimeoutError(
            f"{pvname(sig)} was set to {value!r} but its readback {sig.pvname} "
            f"shows {sig.get(use_monitor=False)!r} after {timeout:g} s"
        )
    finally:
        sig.unsubscribe(cid)


def _wait_until(event: threading.Event, deadline: float) -> bool:
    return event.wait(max(0.0, deadline - time.monotonic()))


class WriteBatch:
    """Writes issued back to back, completions awaited together.

    A CA put-completion costs a full round trip (about 20 ms from pyepics to a caproto
    server on one host), but puts on one circuit are
    processed by the IOC in the order they were sent, and an asyn port executes writes
    in order.  So we send every write at once and wait for all completions at
    *barriers*: before a check that reads back a result, and before and after a
    busy-record write.

    One batch serves a whole device tree's stage or unstage: the device that starts it
    passes it to its children and waits for its last barrier.  A batch used for
    restoring also gathers the restores' failures (``errors``) and the settings to read
    back once everything is written (``verify``, see
    :func:`adtoolkit.devices.settings.finish_restore`).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pending: list[tuple[Signal, Any, threading.Event]] = []
        self.errors: list[str] = []
        self.verify: list[tuple[Signal, Any]] = []

    def put(self, sig: Signal, value: Any) -> None:
        if not isinstance(sig, EpicsSignalBase):
            sig.set(value).wait(self.timeout)
            return
        done = threading.Event()
        sig.put(value, use_complete=True, callback=lambda *a, **k: done.set(), timeout=self.timeout)
        self.pending.append((sig, value, done))

    def barrier(self) -> None:
        deadline = time.monotonic() + self.timeout
        late = []
        for sig, value, done in self.pending:
            if not _wait_until(done, deadline):
                late.append(f"{pvname(sig)} <- {value!r}")
        self.pending.clear()
        if late:
            raise TimeoutError(
                f"write(s) did not complete within {self.timeout:g} s: " + ", ".join(late)
            )

    def drain(self) -> None:
        """Wait for what was sent, ignoring failures (leaving with another exception)."""
        try:
            self.barrier()
        except Exception:  # noqa: BLE001 - the original exception is reported
            pass


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.001) -> None:
    """Poll ``predicate`` until true; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
