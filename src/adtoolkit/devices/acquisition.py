"""One acquisition -- Acquire=1 until AcquireBusy says Done -- and the watch that ends it.

Why AcquireBusy.  With ``WaitForPlugins=Yes`` ADCore clears the cam's ``AcquireBusy``
busy record only after every plugin has processed every frame, so when it goes back
to Done the HDF5 plugin has the frames: no polling of plugin counters, no sleeps, no CA
reads per point.

Why a check after Done.  Done alone is no proof: an IOC restarted mid-trigger reads
Done too.  :meth:`Acquisition.finish` compares every file plugin's NumCaptured_RBV with
the count read when the acquisition was armed (:class:`Baseline`), off the monitor
thread (it needs CA reads).

How an acquisition can be cut short (:class:`Stop`), and what its status then says:
``stop(success=True)``, a pause, an unstage finish it *interrupted*
(``status.interrupted`` says why, and no datum is made); ``stop()`` fails it; a pause
during a stream fails it too (a stream cannot be replayed).  See the module doc of
:mod:`adtoolkit.devices.detector` for why an interrupted trigger is not a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ophyd import DeviceStatus, Signal

from .errors import AcquisitionError
from .filestore import HDF5FileStore, is_write_error

__all__ = [
    "AcquireBusyWatch",
    "Acquisition",
    "Baseline",
    "Stop",
    "TriggerStatus",
    "busy_state",
]


def busy_state(value: Any) -> int | None:
    """1 for Acquiring, 0 for Done, whatever form the monitor delivers (enum string,
    index, or the index as text)."""
    if isinstance(value, str):
        if value in ("Acquiring", "1"):
            return 1
        if value in ("Done", "0"):
            return 0
        return None
    try:
        return 1 if int(value) else 0
    except (TypeError, ValueError):
        return None


class TriggerStatus(DeviceStatus):
    """The status of a trigger or a stream: ophyd's DeviceStatus plus ``interrupted``,
    why the acquisition was cut short on purpose (None when it ran to its end)."""

    def __init__(self, device: Any, *, timeout: float | None = None) -> None:
        self.interrupted: str | None = None
        super().__init__(device, timeout=timeout)

    def interrupt(self, reason: str) -> None:
        """Finish as cut short on purpose (no datum was made for it)."""
        if not self.done:
            self.interrupted = reason
            self.set_finished()


class Stop(Enum):
    """Why an acquisition was stopped before it ended by itself."""

    #: ``stop()`` (a plan's stop message): the status fails
    FAIL = "stop()"
    #: ``stop(success=True)`` or a stream collected early: the status is interrupted
    INTERRUPT = "stop(success=True)"
    #: the RunEngine paused: the status is interrupted (a stream's fails)
    PAUSE = "pause()"


@dataclass(frozen=True)
class Baseline:
    """A file plugin's NumCaptured_RBV when the acquisition was armed."""

    plugin: HDF5FileStore
    captured: int

    @classmethod
    def read(cls, plugin: HDF5FileStore) -> Baseline:
        return cls(plugin, int(plugin.num_captured.get(use_monitor=False)))

    def now(self) -> int:
        """NumCaptured_RBV now (read over CA)."""
        return int(self.plugin.num_captured.get(use_monitor=False))


@dataclass(eq=False)
class Acquisition:
    """What one Acquire=1 asked for, and whether (and why) it was stopped early."""

    #: the detector's name, for messages
    name: str
    status: TriggerStatus
    frames: int
    baselines: tuple[Baseline, ...]
    #: run once the frames are proven in the file (the trigger's datum)
    on_success: Callable[[], None] | None = None
    #: a stream (kickoff/complete): a pause fails it, it cannot be replayed
    stream: bool = False
    stopped: Stop | None = None
    #: the pause's message (with ``Stop.PAUSE``)
    pause_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.status.done

    def request_stop(self, how: Stop) -> None:
        """Record a stop; a pause, once recorded, decides the outcome."""
        if self.stopped is not Stop.PAUSE:
            self.stopped = how

    def pause(self, reason: str) -> None:
        self.stopped = Stop.PAUSE
        self.pause_reason = reason

    def interrupt(self, reason: str | None = None) -> None:
        self.status.interrupt(reason or self.pause_reason or f"{self.name}: stopped")

    def _problems(self) -> list[str]:
        problems = []
        for b in self.baselines:
            now = b.now()
            if now - b.captured != self.frames:
                fp = b.plugin
                problems.append(
                    f"{fp.prefix}NumCaptured_RBV went from {b.captured} to {now}, "
                    f"not up by {self.frames}"
                    + (f"; {fp.write_error()}" if _write_error(fp) else "")
                )
        return problems

    def finish(self) -> None:
        """Finish the status: succeeded (after ``on_success``), interrupted or failed,
        from what the file plugins captured and how the acquisition was stopped."""
        st = self.status
        try:
            problems = self._problems()
            if self.stopped is not None and (problems or not self.baselines):
                # cut short by a stop (without a file plugin nothing proves the frames
                # were all taken): the missing frames are what was asked for
                if self.stopped is Stop.PAUSE:
                    if self.stream:
                        raise AcquisitionError(
                            f"{self.pause_reason}; the stream stopped after "
                            + "; ".join(problems or ["? frames"])
                            + ". A stream cannot be resumed: its frames so far are "
                            "collected; run the fly scan again"
                        )
                    self.interrupt()
                    return
                if self.stopped is Stop.INTERRUPT:
                    self.interrupt(f"{self.name}: stop(success=True) during the acquisition")
                    return
                raise AcquisitionError(
                    "; ".join([f"{self.name}: stopped during the acquisition (stop())", *problems])
                )
            if problems:
                raise AcquisitionError(
                    f"{self.name}: acquisition ended without the frames it asked for: "
                    + "; ".join(problems)
                )
            if self.on_success is not None:
                self.on_success()
        except Exception as exc:  # noqa: BLE001 - reported through the status
            if not st.done:
                st.set_exception(exc)
            return
        if not st.done:
            st.set_finished()


def _write_error(fp: HDF5FileStore) -> bool:
    try:
        return is_write_error(fp.write_status.get(use_monitor=False))
    except Exception:  # noqa: BLE001 - only decides whether to add the IOC's message
        return False


class AcquireBusyWatch:
    """The monitor on the cam's AcquireBusy that ends the pending :class:`Acquisition`.

    At most one acquisition is pending.  Acquiring then Done ends it (its check runs
    on a thread of its own, :attr:`verifying`); a disconnect fails it (an IOC restarted
    mid-trigger: its frames cannot be trusted).  ``started`` statuses finish on the
    next Acquiring (a stream's kickoff).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.busy: Signal | None = None
        self.lock = threading.Lock()
        self.pending: Acquisition | None = None
        self.verifying: threading.Thread | None = None
        self._seen_busy = False
        self._started: list[DeviceStatus] = []
        self._cids: tuple[int, int] | None = None

    # -- subscription -------------------------------------------------------------
    def attach(self, busy: Signal) -> None:
        """Subscribe to ``busy`` (the cam's AcquireBusy), values and connection."""
        self.busy = busy
        value = busy.subscribe(self._on_value, run=False)
        try:
            meta = busy.subscribe(self._on_meta, event_type="meta", run=False)
        except BaseException:
            busy.unsubscribe(value)
            raise
        self._cids = (value, meta)

    def detach(self) -> None:
        cids, self._cids = self._cids, None
        for cid in cids or ():
            self.busy.unsubscribe(cid)

    # -- the pending acquisition ----------------------------------------------------
    def arm(self, acq: Acquisition) -> None:
        with self.lock:
            if self.pending is not None and not self.pending.done:
                raise RuntimeError(f"{self.name}: trigger while an acquisition is running")
            self.pending = acq
            self._seen_busy = False

    def running(self) -> Acquisition | None:
        """The pending acquisition if it has not ended (read under the lock)."""
        with self.lock:
            return self.pending if self.pending is not None and not self.pending.done else None

    def take(self) -> tuple[Acquisition | None, threading.Thread | None]:
        """Forget the pending acquisition and its check (unstage)."""
        with self.lock:
            acq, self.pending = self.pending, None
            verifying, self.verifying = self.verifying, None
        return acq, verifying

    def forget(self, acq: Acquisition) -> None:
        """Stop waiting for ``acq`` (the IOC never said Done)."""
        with self.lock:
            if self.pending is acq:
                self.pending = None
                self._seen_busy = False

    def notify_started(self, status: DeviceStatus) -> None:
        with self.lock:
            self._started.append(status)

    def join_check(self, timeout: float, verifying: threading.Thread | None = None) -> None:
        """Let the check of an acquisition that just ended (and its datum) finish."""
        verifying = verifying if verifying is not None else self.verifying
        if verifying is not None and verifying is not threading.current_thread():
            verifying.join(timeout)

    # -- monitor callbacks -----------------------------------------------------------
    def _on_value(self, value: Any = None, **kwargs: Any) -> None:
        state = busy_state(value)
        with self.lock:
            if state == 1:
                self._seen_busy = True
                started, self._started = self._started, []
            elif state == 0 and self._seen_busy:
                self._seen_busy = False
                started = []
                acq, self.pending = self.pending, None
                if acq is not None and not acq.done:
                    self.verifying = threading.Thread(target=acq.finish, daemon=True)
                    self.verifying.start()
            else:
                return
        for st in started:
            if not st.done:
                st.set_finished()

    def _on_meta(self, connected: bool | None = None, **kwargs: Any) -> None:
        if connected is not False:
            return
        with self.lock:
            acq, self.pending = self.pending, None
            self._seen_busy = False
        if acq is not None and not acq.done:
            acq.status.set_exception(
                AcquisitionError(
                    f"{self.name}: {getattr(self.busy, 'pvname', 'AcquireBusy')} disconnected during the "
                    "acquisition (IOC restarted?); its frames cannot be trusted"
                )
            )
