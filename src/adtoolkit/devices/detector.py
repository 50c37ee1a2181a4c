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
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ophyd import DeviceStatus, Kind
from ophyd.areadetector.detectors import DetectorBase
from ophyd.device import DEFAULT_CONNECTION_TIMEOUT as DEFAULT_TIMEOUT
from ophyd.device import Staged
from ophyd.status import Status

from .batchread import read_many
from .connect import connect_all
from .errors import AcquisitionError, ConfigurationError
from .filestore import HDF5FileStore, is_write_error
from .staging import FastStaging, StageSigs

__all__ = ["AreaDetector"]


def _busy_state(value: Any) -> int | None:
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


def _write_error(fp: HDF5FileStore) -> bool:
    try:
        return is_write_error(fp.write_status.get(use_monitor=False))
    except Exception:  # noqa: BLE001 - only decides whether to add the IOC's message
        return False


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
        self._busy_lock = threading.Lock()
        self._pending: Status | None = None
        self._seen_busy = False
        self._busy_cid: int | None = None
        self._busy_watchers: list = []
        self._verifying: threading.Thread | None = None
        self._fly: dict | None = None
        self.trigger_timeout: float | None = None
        self._paused = False  # pause() closed the file; resume() opens the next one
        self._resume_error: BaseException | None = None  # raised by the next trigger
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
        n = self._fly["num"] if self._fly else self.frames_per_point
        sigs.setdefault("cam.acquire", 0)
        sigs["cam.image_mode"] = "Multiple"
        sigs["cam.num_images"] = n
        sigs.setdefault("cam.wait_for_plugins", "Yes")
        sigs.setdefault("cam.array_callbacks", "Enable")
        for fp in self.file_plugins():
            fp.frames_per_point = 1 if self._fly else self.frames_per_point
            fp.num_capture_value = n if self._fly else 0
        from .staging import resolve

        return resolve(self, sigs.items())

    # -- AcquireBusy ------------------------------------------------------------
    def _busy_changed(self, value: Any = None, **kwargs: Any) -> None:
        state = _busy_state(value)
        with self._busy_lock:
            if state == 1:
                self._seen_busy = True
                watchers, self._busy_watchers = self._busy_watchers, []
            elif state == 0 and self._seen_busy:
                self._seen_busy = False
                watchers = []
                st, self._pending = self._pending, None
                if st is not None and not st.done:
                    # AcquireBusy=Done alone is no proof: an IOC restarted mid-trigger
                    # reads Done too.  Check the frames reached the file plugin(s),
                    # off the monitor thread (it needs CA reads).
                    self._verifying = threading.Thread(target=self._verify, args=(st,), daemon=True)
                    self._verifying.start()
            else:
                return
        for st in watchers:
            if not st.done:
                st.set_finished()

    def _verify(self, st: DeviceStatus) -> None:
        """Finish ``st`` only if every file plugin captured the frames asked for."""
        try:
            problems = []
            for fp, before in st._adt_baselines:
                now = int(fp.num_captured.get(use_monitor=False))
                if now - before != st._adt_frames:
                    problems.append(
                        f"{fp.prefix}NumCaptured_RBV went from {before} to {now}, "
                        f"not up by {st._adt_frames}"
                        + (f"; {fp.write_error()}" if _write_error(fp) else "")
                    )
            if st._adt_stopped is not None and (problems or not st._adt_baselines):
                # cut short by stop() (without a file plugin nothing proves the frames
                # were all taken): the missing frames are what was asked for
                if getattr(st, "_adt_paused", None):
                    if self._fly is not None and self._fly.get("done") is st:
                        raise AcquisitionError(
                            f"{st._adt_paused}; the stream stopped after "
                            + "; ".join(problems or ["? frames"])
                            + ". A stream cannot be resumed: its frames so far are "
                            "collected; run the fly scan again"
                        )
                    _interrupt(st, st._adt_paused)
                    return
                if st._adt_stopped:
                    _interrupt(st, f"{self.name}: stop(success=True) during the acquisition")
                    return
                raise AcquisitionError(
                    "; ".join([f"{self.name}: stopped during the acquisition (stop())", *problems])
                )
            if problems:
                raise AcquisitionError(
                    f"{self.name}: acquisition ended without the frames it asked for: "
                    + "; ".join(problems)
                )
            if st._adt_on_success is not None:
                st._adt_on_success()
        except Exception as exc:  # noqa: BLE001 - reported through the status
            if not st.done:
                st.set_exception(exc)
            return
        if not st.done:
            st.set_finished()

    def _busy_meta(self, connected: bool | None = None, **kwargs: Any) -> None:
        if connected is not False:
            return
        with self._busy_lock:
            st, self._pending = self._pending, None
            self._seen_busy = False
        if st is not None and not st.done:
            st.set_exception(
                AcquisitionError(
                    f"{self.name}: {self.cam.acquire_busy.pvname} disconnected during the "
                    "acquisition (IOC restarted?); its frames cannot be trusted"
                )
            )

    def _arm(self, timeout: float | None, frames: int, on_success: Any = None) -> DeviceStatus:
        st = DeviceStatus(self, timeout=timeout)
        st._adt_frames = frames
        st._adt_on_success = on_success
        st._adt_stopped = None  # stop(success) while acquiring: its success flag
        st.interrupted = None  # why the acquisition was cut short on purpose, if it was
        st._adt_baselines = [
            (fp, int(fp.num_captured.get(use_monitor=False))) for fp in self.file_plugins()
        ]
        with self._busy_lock:
            if self._pending is not None and not self._pending.done:
                raise RuntimeError(f"{self.name}: trigger while an acquisition is running")
            self._pending = st
            self._seen_busy = False
        return st

    def _acquisition_timeout(self, n_frames: int) -> float:
        cam = self.cam
        period = max(float(v) for v in read_many([cam.acquire_time, cam.acquire_period]))
        return 10.0 + 2.0 * n_frames * period

    def stage(self) -> list[object]:
        staged = super().stage()
        try:
            n = self._fly["num"] if self._fly else self.frames_per_point
            self.trigger_timeout = self._acquisition_timeout(n)
            self._busy_cid = self.cam.acquire_busy.subscribe(self._busy_changed, run=False)
            self._meta_cid = self.cam.acquire_busy.subscribe(
                self._busy_meta, event_type="meta", run=False
            )
        except BaseException:
            self.unstage()
            raise
        return staged

    def unstage(self) -> list[object]:
        if self._busy_cid is not None:
            self.cam.acquire_busy.unsubscribe(self._busy_cid)
            self._busy_cid = None
        if getattr(self, "_meta_cid", None) is not None:
            self.cam.acquire_busy.unsubscribe(self._meta_cid)
            self._meta_cid = None
        self._paused = False
        self._resume_error = None
        with self._busy_lock:
            st, self._pending = self._pending, None
            verifying, self._verifying = self._verifying, None
        try:
            if st is not None and not st.done:
                # an aborted acquisition: stop the cam before restoring settings.  The
                # status finishes (interrupted), it does not fail: see the module doc.
                self.cam.acquire.put(0, use_complete=False)
                _interrupt(st, f"{self.name} unstaged during the acquisition")
            elif verifying is not None and verifying is not threading.current_thread():
                # the acquisition ended just before: let its check (and its datum,
                # which needs the open resource) finish before the file is closed
                verifying.join(self.stage_timeout)
        finally:
            result = super().unstage()
        return result

    # -- step scans ---------------------------------------------------------------
    def trigger(self) -> DeviceStatus:
        if self._staged != Staged.yes:
            raise RuntimeError(f"{self.name} is not staged; stage it before triggering")
        if self._resume_error is not None:
            raise self._resume_error
        # the datum is made only once the frames are in the file: a document never
        # claims frames that were not written
        t0 = time.time()
        st = self._arm(
            self.trigger_timeout,
            self.frames_per_point,
            lambda: self.generate_datum(self.image_key, t0, {}),
        )
        self.cam.acquire.put(1, use_complete=False)
        return st

    def generate_datum(self, key: str, timestamp: float, datum_kwargs: dict | None = None):
        for fp in self.file_plugins():
            fp.generate_datum(key, timestamp, datum_kwargs or {})

    def collect_asset_docs(self):
        if self._fly is not None:
            self._fly_datums()
        for fp in self.file_plugins():
            yield from fp.collect_asset_docs()

    def stop(self, *, success: bool = False) -> None:
        """Stop the cam.  A pending trigger ends when AcquireBusy says the IOC is done:
        interrupted (finished, no datum) with ``success=True``, failed otherwise."""
        with self._busy_lock:
            pending = self._pending is not None and not self._pending.done
            if pending and not self._fly:
                self._pending._adt_stopped = bool(success)
        if pending or self._fly:
            self.cam.acquire.put(0, use_complete=False)
        super().stop(success=success)

    # -- pause / resume -----------------------------------------------------------
    def pause(self) -> None:
        """The RunEngine was interrupted: stop the cam, end a pending trigger as
        interrupted, close the file.  Raises ``NoReplayAllowed`` during a stream."""
        if self._staged != Staged.yes:
            return  # not in use by a run (or being unstaged): nothing of ours runs
        why = f"{self.name}: paused (RunEngine interrupted) during the acquisition"
        with self._busy_lock:
            st = self._pending if self._pending is not None and not self._pending.done else None
            if st is not None:
                st._adt_paused = why
                st._adt_stopped = True
        streaming = self._fly is not None
        try:
            self.cam.acquire.put(0, use_complete=False)
            if st is not None:
                self._wait_stopped(st)
            verifying = self._verifying
            if verifying is not None and verifying is not threading.current_thread():
                # a trigger that ended just before: its datum comes before the close
                verifying.join(self.stage_timeout)
            if not streaming:
                for fp in self.file_plugins():
                    fp.close_file()
        except Exception as exc:  # noqa: BLE001 - reported by the next trigger
            self._resume_error = AcquisitionError(f"{why}; could not stop cleanly: {exc}")
        self._paused = True
        if streaming:
            from bluesky.utils import NoReplayAllowed

            raise NoReplayAllowed(
                f"{self.name}: a stream (kickoff/complete/collect) cannot be replayed; "
                "it was stopped and its run ends when the RunEngine resumes"
            )

    def _wait_stopped(self, st: DeviceStatus) -> None:
        """Wait (at most ``stage_timeout``) for ``st`` to end after Acquire=0."""
        ended = threading.Event()
        st.add_callback(lambda *a: ended.set())
        if ended.wait(self.stage_timeout):
            return
        # the IOC never said Done: end the status ourselves so the RunEngine does not
        # report it, and refuse the replayed trigger (the cam may still be acquiring)
        with self._busy_lock:
            if self._pending is st:
                self._pending = None
                self._seen_busy = False
        _interrupt(st, st._adt_paused)
        raise AcquisitionError(
            f"{self.cam.acquire_busy.pvname} did not go to Done within "
            f"{self.stage_timeout:g} s of {self.cam.acquire.pvname}=0"
        )

    def resume(self) -> None:
        """The RunEngine resumes: open a new file with a new resource, so the replayed
        trigger's frames are where its datum says (point 0 of the new resource)."""
        if not self._paused or self._staged != Staged.yes or self._fly is not None:
            return
        self._paused = False
        if self._resume_error is not None:
            return
        try:
            busy = _busy_state(self.cam.acquire_busy.get(use_monitor=False))
            if busy != 0:
                raise AcquisitionError(
                    f"{self.cam.acquire_busy.pvname} is {busy!r}, not Done: the cam is "
                    "still acquiring"
                )
            for fp in self.file_plugins():
                fp.next_file()
        except Exception as exc:  # noqa: BLE001 - reported by the next trigger
            self._resume_error = AcquisitionError(
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
        self._fly = {"num": n, "t0": None, "collected": False}
        try:
            self.stage()
        except BaseException:
            self._fly = None
            raise
        started = DeviceStatus(self, timeout=10.0)
        with self._busy_lock:
            self._busy_watchers.append(started)
        self._fly["done"] = self._arm(self.trigger_timeout, n)
        self._fly["t0"] = time.time()
        self.cam.acquire.put(1, use_complete=False)
        return started

    def complete(self) -> Status:
        if not self._fly:
            raise RuntimeError(f"{self.name}: complete() without kickoff()")
        return self._fly["done"]

    def describe_collect(self) -> dict:
        fp = self.file_plugins()[0]
        return {self.name: {self.image_key: fp.data_key()}}

    def _fly_datums(self) -> None:
        if self._fly is None or "datums" in self._fly:
            return
        fp = self.file_plugins()[0]
        t0, n = self._fly["t0"], self._fly["num"]
        done = self._fly["done"]
        if not (done.done and done.success and done.interrupted is None):
            # collected before the stream ended (the RunEngine's cleanup after an
            # abort collects what was kicked off): one datum per frame in the file only
            n = self._frames_streamed(done, n)
        t1 = time.time()
        step = (t1 - t0) / max(n, 1)
        self._fly["datums"] = [
            (fp.generate_datum(self.image_key, t0 + (i + 1) * step, {}), t0 + (i + 1) * step)
            for i in range(n)
        ]

    def _frames_streamed(self, done: DeviceStatus, asked: int) -> int:
        """Stop a stream still running; the number of its frames the file plugin wrote.

        Waits (at most ``stage_timeout``) for AcquireBusy to report the cam and, with
        WaitForPlugins, the plugins done, so the count is final.  0 when the IOC
        cannot tell (e.g. it restarted): no document may claim a frame not written.
        """
        if not done.done:
            with self._busy_lock:
                if self._pending is done:
                    done._adt_stopped = True  # cut short on purpose: interrupted
            self.cam.acquire.put(0, use_complete=False)
            try:
                done.wait(self.stage_timeout)
            except Exception:  # noqa: BLE001 - the count below is what matters
                pass
        try:
            fp, before = done._adt_baselines[0]
            now = int(fp.num_captured.get(use_monitor=False))
        except Exception:  # noqa: BLE001
            return 0
        return max(0, min(asked, now - before))

    def collect(self):
        """One event per frame, then unstage (which closes the file)."""
        if not self._fly:
            raise RuntimeError(f"{self.name}: collect() without kickoff()")
        try:
            self._fly_datums()
            for datum_id, ts in self._fly["datums"]:
                yield {
                    "time": ts,
                    "data": {self.image_key: datum_id},
                    "timestamps": {self.image_key: ts},
                    # tells databroker the value is a datum id to be filled from the file
                    "filled": {self.image_key: False},
                }
        finally:
            self._fly = None
            self.unstage()


def _interrupt(st: DeviceStatus, reason: str) -> None:
    """Finish ``st`` as cut short on purpose (no datum was made for it)."""
    if not st.done:
        st.interrupted = reason
        st.set_finished()


def _image_in_read(det: AreaDetector) -> None:
    """Kinds so that read() has only the image (plus whatever the user adds)."""
    det.cam.kind = Kind.config
    for fp in det.file_plugins():
        fp.kind = Kind.normal
        fp.read_attrs = []
