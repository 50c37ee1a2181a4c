"""The detector: cam + plugins, triggered on AcquireBusy, with a streaming mode.

Triggering.  A trigger writes Acquire=1 and completes when the cam's ``AcquireBusy``
busy record goes back to Done.  With ``WaitForPlugins=Yes`` (set on stage) ADCore
clears it only after every plugin has processed every frame, so when the status
finishes the HDF5 plugin has the frames: no polling of plugin counters, no sleeps, no
CA reads per point.  ``frames_per_point`` frames are taken per trigger (ImageMode
Multiple, NumImages=frames_per_point).

Streaming.  ``kickoff`` / ``complete`` / ``collect`` take N frames into one HDF5 file
with a single Acquire (a fly scan): one event per frame, one datum per frame.

Interrupted triggers.  An acquisition cut short on purpose -- ``unstage`` during a
trigger (what the RunEngine's cleanup does after ``RE.abort()`` or Ctrl-C),
``stop(success=True)`` or a pause (see below) -- finishes the trigger status
*successfully* with ``status.interrupted`` saying why, like ophyd's own
``SingleTrigger`` (whose unstage ends the acquisition and so finishes the status).
It is not a failure of the device: failing the status would make the RunEngine raise
``FailedStatus`` in place of the abort the user asked for (the plan's unstage runs
before the RunEngine starts ignoring failed statuses).  No datum is made for an
interrupted trigger, so no document claims its frames.  ``stop()``
(``success=False``, what a plan's ``stop`` message sends) fails the status instead.

Pause and resume.  When the RunEngine is interrupted (``RE.request_pause()``, Ctrl-C
twice, a suspender tripping on a beam dump) it calls ``pause()`` on every device it
has seen, and on resume rewinds to the last checkpoint and replays the trigger.
``pause()`` stops the cam (Acquire=0, then waits -- at most ``stage_timeout`` -- for
AcquireBusy to say the cam and plugins are done), finishes a pending trigger as
interrupted (no datum, so the RunEngine does not see a failure) and closes the file.
``resume()`` opens a new file with a new resource, so the replayed trigger's frames
are point 0 of the new resource and no frame of the interrupted trigger is ever
claimed (an ``AD_HDF5`` datum cannot carry a frame offset).  A problem on the way
(the cam never reports Done, the new file cannot be opened) does not break the
RunEngine's pause machinery: it is raised by the next ``trigger()``, so the run ends
with that error.

A stream (kickoff/complete/collect) cannot be replayed: ``pause()`` stops it, its
``complete`` status fails with a message that says so and how many frames were
written, and ``NoReplayAllowed`` tells the RunEngine not to replay the kickoff.  The
run then ends failed (on resume) or aborted; either way the RunEngine's cleanup
collects the frames written, one event each.

Where the state lives.  The detector holds the bluesky interface; each state machine
is a small class of its own: one acquisition and how it was stopped
(:class:`~adtoolkit.devices.acquisition.Acquisition`, its ``TriggerStatus`` and the
``AcquireBusyWatch`` that ends it), a stream (:class:`~adtoolkit.devices.stream.Stream`)
and the pause (:class:`PauseState`).  The documents (resource, datum) are made by the
file plugin (:mod:`adtoolkit.devices.filestore`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ophyd import DeviceStatus, Kind
from ophyd.areadetector.detectors import DetectorBase
from ophyd.device import DEFAULT_CONNECTION_TIMEOUT as DEFAULT_TIMEOUT
from ophyd.device import Staged
from ophyd.status import Status

from .acquisition import AcquireBusyWatch, Acquisition, Baseline, Stop, TriggerStatus, busy_state
from .batchread import read_many
from .connect import connect_all
from .errors import AcquisitionError, ConfigurationError
from .filestore import HDF5FileStore
from .staging import FastStaging, StageSigs, resolve
from .stream import Stream
from .writes import WriteBatch

__all__ = ["AreaDetector"]


@dataclass
class PauseState:
    """Between ``pause()`` and ``resume()``.  ``paused``: pause() closed the file and
    resume() opens the next one; ``error``: what went wrong on the way, raised by the
    next ``trigger()`` (the RunEngine's pause machinery must not see it)."""

    paused: bool = False
    error: BaseException | None = None


class AreaDetector(FastStaging, DetectorBase):
    """Base detector class; ``make_detector`` adds the cam and plugin components."""

    #: the cam signals staging and triggering use (connected up front by make_detector)
    used_signals = (
        "cam.acquire",
        "cam.acquire_busy",
        "cam.acquire_time",
        "cam.acquire_period",
        "cam.image_mode",
        "cam.num_images",
        "cam.wait_for_plugins",
        "cam.array_callbacks",
    )

    #: seconds to connect the lazy signals that a walk over all signals creates
    #: (make_detector sets its ``connection_timeout``)
    lazy_connection_timeout: float = 5.0

    def __init__(self, *args: Any, frames_per_point: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames_per_point = frames_per_point  # validated by the property
        self.image_key = f"{self.name}_image"
        self._busy = AcquireBusyWatch(self.name)
        self._stream: Stream | None = None
        self._pause = PauseState()
        self.trigger_timeout: float | None = None
        for fp in self.file_plugins():
            fp.image_key = self.image_key

    def walk_signals(self, *, include_lazy: bool = False):
        """ophyd's ``walk_signals``; with ``include_lazy=True`` the signals not created
        yet are created and connected concurrently first (ophyd would create each one
        and wait for it, ~40 ms apiece).  Raises :class:`ConnectionTimeout` naming the
        PVs that did not connect within ``lazy_connection_timeout``.
        """
        if include_lazy and not self._destroyed:
            connect_all(self, timeout=self.lazy_connection_timeout)
        return super().walk_signals(include_lazy=include_lazy)

    def wait_for_connection(self, all_signals: bool = False, timeout: Any = DEFAULT_TIMEOUT):
        """ophyd's ``wait_for_connection``; with ``all_signals=True`` every lazy signal
        is created first and they all connect concurrently (ophyd connects them one at a
        time, ~40 ms each).  Raises :class:`ConnectionTimeout` (a TimeoutError) naming
        the unconnected PVs.
        """
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.connection_timeout
        if not all_signals or timeout is None:
            return super().wait_for_connection(all_signals=all_signals, timeout=timeout)
        connect_all(self, timeout=timeout)

    # -- configuration ----------------------------------------------------------
    @property
    def frames_per_point(self) -> int:
        return self._fpp

    @frames_per_point.setter
    def frames_per_point(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"frames_per_point must be an int >= 1, not {value!r}")
        self._fpp = value

    def file_plugins(self) -> list[HDF5FileStore]:
        return [
            getattr(self, a)
            for a in self._sub_devices
            if isinstance(getattr(self, a), HDF5FileStore)
        ]

    def _stage_pairs(self):
        sigs = StageSigs(self.stage_sigs)
        fly = self._stream
        n = fly.num if fly else self.frames_per_point
        sigs.setdefault("cam.acquire", 0)
        sigs["cam.image_mode"] = "Multiple"
        sigs["cam.num_images"] = n
        sigs.setdefault("cam.wait_for_plugins", "Yes")
        sigs.setdefault("cam.array_callbacks", "Enable")
        for fp in self.file_plugins():
            fp.frames_per_point = 1 if fly else self.frames_per_point
            fp.num_capture_value = n if fly else 0
        return resolve(self, sigs.items())

    # -- AcquireBusy ------------------------------------------------------------
    def _arm(
        self, timeout: float | None, frames: int, on_success: Any = None, stream: bool = False
    ) -> Acquisition:
        st = TriggerStatus(self, timeout=timeout)
        acq = Acquisition(
            self.name,
            st,
            frames,
            tuple(Baseline.read(fp) for fp in self.file_plugins()),
            on_success,
            stream,
        )
        self._busy.arm(acq)
        return acq

    def _stop_cam(self) -> None:
        self.cam.acquire.put(0, use_complete=False)

    def _acquisition_timeout(self, n_frames: int) -> float:
        cam = self.cam
        period = max(float(v) for v in read_many([cam.acquire_time, cam.acquire_period]))
        return 10.0 + 2.0 * n_frames * period

    def stage(self, *, batch: WriteBatch | None = None) -> list[object]:
        staged = super().stage(batch=batch)
        try:
            n = self._stream.num if self._stream else self.frames_per_point
            self.trigger_timeout = self._acquisition_timeout(n)
            self._busy.attach(self.cam.acquire_busy)
        except BaseException:
            self.unstage(batch=batch)
            raise
        return staged

    def unstage(self, *, batch: WriteBatch | None = None) -> list[object]:
        self._busy.detach()
        self._pause = PauseState()
        acq, verifying = self._busy.take()
        try:
            if acq is not None and not acq.done:
                # an aborted acquisition: stop the cam before restoring settings.  The
                # status finishes (interrupted), it does not fail: see the module doc.
                self._stop_cam()
                acq.interrupt(f"{self.name} unstaged during the acquisition")
            else:
                # the acquisition ended just before: let its check (and its datum,
                # which needs the open resource) finish before the file is closed
                self._busy.join_check(self.stage_timeout, verifying)
        finally:
            result = super().unstage(batch=batch)
        return result

    # -- step scans ---------------------------------------------------------------
    def trigger(self) -> TriggerStatus:
        if self._staged != Staged.yes:
            raise RuntimeError(f"{self.name} is not staged; stage it before triggering")
        if self._pause.error is not None:
            raise self._pause.error
        # the datum is made only once the frames are in the file: a document never
        # claims frames that were not written
        t0 = time.time()
        acq = self._arm(
            self.trigger_timeout,
            self.frames_per_point,
            lambda: self.generate_datum(self.image_key, t0, {}),
        )
        self.cam.acquire.put(1, use_complete=False)
        return acq.status

    def generate_datum(self, key: str, timestamp: float, datum_kwargs: dict | None = None):
        for fp in self.file_plugins():
            fp.generate_datum(key, timestamp, datum_kwargs or {})

    def collect_asset_docs(self):
        if self._stream is not None:
            self._stream_datums()
        for fp in self.file_plugins():
            yield from fp.collect_asset_docs()

    def stop(self, *, success: bool = False) -> None:
        """Stop the cam.  A pending trigger ends when AcquireBusy says the IOC is done:
        interrupted (finished, no datum) with ``success=True``, failed otherwise."""
        with self._busy.lock:
            acq = self._busy.pending
            pending = acq is not None and not acq.done
            if pending and not self._stream:
                acq.request_stop(Stop.INTERRUPT if success else Stop.FAIL)
        if pending or self._stream:
            self._stop_cam()
        super().stop(success=success)

    # -- pause / resume -----------------------------------------------------------
    def pause(self) -> None:
        """The RunEngine was interrupted: stop the cam, end a pending trigger as
        interrupted, close the file.  Raises ``NoReplayAllowed`` during a stream."""
        if self._staged != Staged.yes:
            return  # not in use by a run (or being unstaged): nothing of ours runs
        why = f"{self.name}: paused (RunEngine interrupted) during the acquisition"
        with self._busy.lock:
            acq = self._busy.pending
            if acq is not None and not acq.done:
                acq.pause(why)
            else:
                acq = None
        streaming = self._stream is not None
        try:
            self._stop_cam()
            if acq is not None:
                self._wait_stopped(acq)
            # a trigger that ended just before: its datum comes before the close
            self._busy.join_check(self.stage_timeout)
            if not streaming:
                for fp in self.file_plugins():
                    fp.close_file()
        except Exception as exc:  # noqa: BLE001 - reported by the next trigger
            self._pause.error = AcquisitionError(f"{why}; could not stop cleanly: {exc}")
        self._pause.paused = True
        if streaming:
            from bluesky.utils import NoReplayAllowed

            raise NoReplayAllowed(
                f"{self.name}: a stream (kickoff/complete/collect) cannot be replayed; "
                "it was stopped and its run ends when the RunEngine resumes"
            )

    def _wait_stopped(self, acq: Acquisition) -> None:
        """Wait (at most ``stage_timeout``) for ``acq`` to end after Acquire=0."""
        ended = threading.Event()
        acq.status.add_callback(lambda *a: ended.set())
        if ended.wait(self.stage_timeout):
            return
        # the IOC never said Done: end the status ourselves so the RunEngine does not
        # report it, and refuse the replayed trigger (the cam may still be acquiring)
        self._busy.forget(acq)
        acq.interrupt()
        raise AcquisitionError(
            f"{self.cam.acquire_busy.pvname} did not go to Done within "
            f"{self.stage_timeout:g} s of {self.cam.acquire.pvname}=0"
        )

    def resume(self) -> None:
        """The RunEngine resumes: open a new file with a new resource, so the replayed
        trigger's frames are where its datum says (point 0 of the new resource)."""
        if not self._pause.paused or self._staged != Staged.yes or self._stream is not None:
            return
        self._pause.paused = False
        if self._pause.error is not None:
            return
        try:
            busy = busy_state(self.cam.acquire_busy.get(use_monitor=False))
            if busy != 0:
                raise AcquisitionError(
                    f"{self.cam.acquire_busy.pvname} is {busy!r}, not Done: the cam is "
                    "still acquiring"
                )
            for fp in self.file_plugins():
                fp.next_file()
        except Exception as exc:  # noqa: BLE001 - reported by the next trigger
            self._pause.error = AcquisitionError(
                f"{self.name}: cannot resume: no new file for the replayed trigger: {exc}"
            )

    # -- streaming (fly) ------------------------------------------------------------
    def kickoff(self, num_frames: int | None = None) -> Status:
        """Stage in streaming mode and start ``num_frames`` frames into one file.

        ``num_frames`` defaults to ``self.stream_frames``.  The returned status
        finishes when the cam reports it is acquiring.
        """
        n = num_frames if num_frames is not None else getattr(self, "stream_frames", None)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigurationError(
                f"{self.name}: number of frames to stream must be an int >= 1, not {n!r}"
            )
        if self._staged != Staged.no:
            raise RuntimeError(f"{self.name}: kickoff needs an unstaged detector")
        stream = self._stream = Stream(n)
        try:
            self.stage()
        except BaseException:
            self._stream = None
            raise
        started = DeviceStatus(self, timeout=10.0)
        self._busy.notify_started(started)
        stream.acquisition = self._arm(self.trigger_timeout, n, stream=True)
        stream.t0 = time.time()
        self.cam.acquire.put(1, use_complete=False)
        return started

    def complete(self) -> Status:
        if not self._stream or self._stream.acquisition is None:
            raise RuntimeError(f"{self.name}: complete() without kickoff()")
        return self._stream.acquisition.status

    def describe_collect(self) -> dict:
        fp = self.file_plugins()[0]
        return {self.name: {self.image_key: fp.data_key()}}

    def _stream_datums(self) -> None:
        if self._stream is not None:
            self._stream.make_datums(
                self.file_plugins()[0],
                self.image_key,
                self._busy,
                self._stop_cam,
                self.stage_timeout,
            )

    def collect(self):
        """One event per frame, then unstage (which closes the file)."""
        if not self._stream:
            raise RuntimeError(f"{self.name}: collect() without kickoff()")
        try:
            self._stream_datums()
            yield from self._stream.events(self.image_key)
        finally:
            self._stream = None
            self.unstage()


def _image_in_read(det: AreaDetector) -> None:
    """Kinds so that read() has only the image (plus whatever the user adds)."""
    det.cam.kind = Kind.config
    for fp in det.file_plugins():
        fp.kind = Kind.normal
        fp.read_attrs = []
