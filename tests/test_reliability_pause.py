"""Pause / resume during an acquisition: RE.request_pause(defer=False), a suspender
tripping on a beam-dump signal, pause then abort, and a stream paused mid-way.

The cam makes a LinearRamp with no noise, so every frame is the previous one plus
``Gain`` at every pixel: frames are told apart and their order is known.  Each event
also reads image1:ArrayData over CA (the last frame the cam produced for that event),
so every frame read back through databroker can be checked bit-exactly against the
cam, and the frames of the trigger the pause cut short (left at the end of the first
file, claimed by no datum) are shown *not* to be the ones the replayed point got.

The pause is timed on the file plugin's own NumCaptured_RBV monitor: one frame into
the second trigger of frames_per_point=4 at 0.3 s per frame, so about 0.9 s remain
before that trigger would have finished.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from ioc_helpers import setpoint_pvs, snapshot
from netns import ca_get, wait_pv

pytestmark = pytest.mark.ioc

X, Y = 64, 48
FPP = 4  # frames per point
PERIOD = 0.3
GAIN = 1
WAIT = 30.0  # bound of every wait in these tests (s); a loaded machine is slow

#: records the IOC itself moves (busy records, readbacks ophyd declares writable)
CAM_SETTINGS = (
    ("size.size_x", X),
    ("size.size_y", Y),
    ("bin_x", 1),
    ("bin_y", 1),
    ("data_type", "UInt16"),
    ("color_mode", "Mono"),
    ("acquire_time", 0.001),
    ("acquire_period", PERIOD),
    ("sim_mode", "LinearRamp"),
    ("noise", 0),
    ("offset", 0),
    ("gain", GAIN),
    ("gain_xy.gain_x", 1),
    ("gain_xy.gain_y", 1),
)


def _sig(device, dotted: str):
    for part in dotted.split("."):
        device = getattr(device, part)
    return device


@pytest.fixture
def det(request, ioc):
    """The detector; ``make_detector`` keyword arguments may come as an indirect
    parameter (e.g. ``{"naming": "epics"}``)."""
    from adtoolkit.devices import make_detector

    (ioc.write_root / "pause").mkdir(exist_ok=True)
    det = make_detector(
        ioc.prefix,
        name="pdet",
        plugins=("hdf1", "image1"),
        write_path=f"{ioc.write_root}/pause/",
        read_path=f"{ioc.read_root}/pause/",
        frames_per_point=FPP,
        connection_timeout=WAIT,  # a loaded 2-core machine can be slow to connect
        **getattr(request, "param", {}),
    )
    saved = [(name, _sig(det.cam, name).get()) for name, _ in CAM_SETTINGS]
    for name, value in CAM_SETTINGS:
        _sig(det.cam, name).set(value).wait(10)
    # a FileNumber as a beamline's autosave has it.  (At 0, which uuid naming writes,
    # staging writes nothing, so unstage does not restore the 1 that AutoIncrement
    # leaves after the file closes: that is staging's rule, not pause/resume's.)
    det.hdf1.file_number.set(42).wait(10)
    # each event also reads the cam's last frame over CA, to compare with the file
    det.image1.kind = "normal"
    det.image1.read_attrs = ["array_data"]
    yield det
    try:
        det.unstage()
    finally:
        for name, value in reversed(saved):
            _sig(det.cam, name).set(value).wait(10)
        det.destroy()


@pytest.fixture
def RE():
    from bluesky import RunEngine

    return RunEngine({})


@pytest.fixture
def catalog(RE):
    import databroker

    broker = databroker.temp()
    RE.subscribe(broker.v1.insert)
    return broker.v2


def _assert_idle(ioc) -> None:
    p = ioc.prefix
    wait_pv(p + "cam1:AcquireBusy", lambda v: v == 0, timeout=WAIT)
    wait_pv(p + "HDF1:Capture_RBV", lambda v: v == 0, timeout=WAIT)
    assert ca_get(p + "cam1:Acquire") == 0
    assert ca_get(p + "HDF1:Capture") == 0


class OnMonitor:
    """Runs ``action`` once, in a helper thread, when ``predicate(value)`` holds for a
    monitor update of ``signal``.  Synchronised on a threading.Event with a bounded
    wait; no sleeps."""

    def __init__(self, signal, predicate, action) -> None:
        self.signal, self.predicate, self.action = signal, predicate, action
        self.seen = threading.Event()
        self.values: list[object] = []
        self.errors: list[BaseException] = []
        self._cid = signal.subscribe(self._cb, run=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _cb(self, value=None, **kwargs) -> None:
        self.values.append(value)
        try:
            if self.predicate(value):
                self.seen.set()
        except Exception:  # noqa: BLE001 - a value the predicate cannot judge
            pass

    def _run(self) -> None:
        try:
            if not self.seen.wait(WAIT):
                raise AssertionError(
                    f"{self.signal.name}: condition not met within {WAIT} s; "
                    f"values seen: {self.values}, now {self.signal.get(use_monitor=False)!r}"
                )
            self.action()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def join(self) -> None:
        self._thread.join(WAIT)
        self.signal.unsubscribe(self._cid)
        assert not self._thread.is_alive(), "helper thread still waiting"
        assert not self.errors, self.errors


def _after_new_file(frames: int):
    """Predicate on NumCaptured_RBV: ``frames`` frames are in the file this run opened.
    NumCaptured_RBV keeps the last run's count until Capture=1 resets it to 0, so a
    count is believed only after a 0 was seen."""
    fresh = threading.Event()

    def predicate(value) -> bool:
        if int(value) == 0:
            fresh.set()
        return fresh.is_set() and int(value) >= frames

    return predicate


def _ca_frames(table) -> list[np.ndarray]:
    return [np.asarray(v)[: X * Y].reshape(Y, X) for v in table["pdet_image1_array_data"]]


def _resources(run) -> list[dict]:
    return [doc for name, doc in run.documents(fill="no") if name == "resource"]


def _event_frames(run, num: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The run's frames and each event's image1:ArrayData, checked: the last frame of each
    point is bit-exact with what the cam produced then, and the frames before it are the
    cam's preceding frames, in order."""
    data = run.primary.read()
    images = data["pdet_image"].values.astype(np.int64)
    assert images.shape == (num, FPP, Y, X)
    ca = [f.astype(np.int64) for f in _ca_frames(data)]
    for i in range(num):
        np.testing.assert_array_equal(images[i, FPP - 1], ca[i])
        for j in range(FPP - 1):
            np.testing.assert_array_equal(images[i, j + 1] - images[i, j], GAIN)
    return images, ca


def _check_frames_after_pause(det, run, num: int) -> None:
    """Every frame of every event is the cam's, the replayed point's frames are the
    replayed trigger's, and the interrupted trigger's frames are claimed by no datum."""
    import h5py

    images, ca = _event_frames(run, num)
    # two files: the one closed by the pause, the one opened on resume (point 0 again)
    resources = _resources(run)
    assert len(resources) == 2, resources
    datums = [doc for name, doc in run.documents(fill="no") if name in ("datum", "datum_page")]
    points = {}
    for doc in datums:
        if "datum_kwargs" in doc and isinstance(doc["datum_kwargs"].get("point_number"), int):
            points.setdefault(doc["resource"], []).append(doc["datum_kwargs"]["point_number"])
        else:  # datum_page
            points.setdefault(doc["resource"], []).extend(doc["datum_kwargs"]["point_number"])
    assert points[resources[1]["uid"]][0] == 0
    first = f"{resources[0]['root']}/{resources[0]['resource_path']}"
    with h5py.File(first, "r") as f:
        old = f["/entry/data/data"][()].astype(np.int64)
    # the first file holds point 0 and then the interrupted trigger's frames
    interrupted = old.shape[0] - FPP
    assert 1 <= interrupted < FPP, f"the pause did not cut a trigger short: {old.shape}"
    np.testing.assert_array_equal(old[FPP - 1], ca[0])
    for k in range(interrupted):
        np.testing.assert_array_equal(old[FPP + k] - ca[0], (k + 1) * GAIN)
    # the replayed point has none of them: its frames came after the interrupted ones
    np.testing.assert_array_equal(images[1, 0] - ca[0], (interrupted + 1) * GAIN)
    for i in range(2, num):
        np.testing.assert_array_equal(ca[i] - ca[i - 1], FPP * GAIN)


def _run_until_paused(RE, plan, num_captured, frames: int, defer: bool) -> None:
    """Run ``plan`` and request a pause once ``frames`` frames are in the current file."""
    from bluesky.utils import RunEngineInterrupted

    pauser = OnMonitor(num_captured, _after_new_file(frames), lambda: RE.request_pause(defer=defer))
    with pytest.raises(RunEngineInterrupted):
        RE(plan)
    pauser.join()
    assert RE.state == "paused"


def test_pause_mid_trigger_then_resume(ioc, det, RE, catalog):
    import bluesky.plans as bp

    pvs = setpoint_pvs(det)
    before = snapshot(pvs)
    _run_until_paused(RE, bp.count([det], num=3), det.hdf1.num_captured, FPP + 1, defer=False)
    # paused: the cam does not acquire and the file is closed
    _assert_idle(ioc)
    RE.resume()
    assert RE.state == "idle"
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.metadata["stop"]["num_events"] == {"primary": 3}
    _check_frames_after_pause(det, run, 3)
    _assert_idle(ioc)
    assert snapshot(pvs) == before


def test_pause_during_the_first_trigger(ioc, det, RE, catalog):
    """Paused before any point was taken: the first file holds only interrupted frames
    and no datum claims it, so its resource is never emitted."""
    import bluesky.plans as bp
    import h5py

    _run_until_paused(RE, bp.count([det], num=2), det.hdf1.num_captured, 1, defer=False)
    first = det.hdf1.read_file_name
    RE.resume()
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "success"
    images, ca = _event_frames(run, 2)
    resources = _resources(run)
    assert [Path(r["root"], r["resource_path"]) for r in resources] == [
        Path(det.hdf1.read_file_name)
    ]
    assert Path(first) != Path(det.hdf1.read_file_name)
    with h5py.File(first, "r") as f:
        assert 1 <= f["/entry/data/data"].shape[0] < FPP  # the interrupted frames only
    _assert_idle(ioc)


def test_suspender_trips_mid_trigger_and_clears(ioc, det, RE, catalog):
    import bluesky.plans as bp
    from bluesky.suspenders import SuspendBoolHigh
    from ophyd import Signal

    beam_dump = Signal(name="beam_dump", value=0)
    RE.install_suspender(SuspendBoolHigh(beam_dump, sleep=0))
    pvs = setpoint_pvs(det)
    before = snapshot(pvs)
    # observe (not replace) the device's pause(): the suspension is in effect once the
    # RunEngine has called it
    paused = threading.Event()
    original_pause = det.pause

    def observed_pause():
        try:
            return original_pause()
        finally:
            paused.set()

    det.pause = observed_pause
    while_suspended: list[object] = []
    errors: list[BaseException] = []

    def clear_when_paused() -> None:
        try:
            assert paused.wait(WAIT), f"pause() not called within {WAIT} s"
            # the beam is still dumped: the cam must be idle and the file closed
            while_suspended.append(ca_get(ioc.prefix + "cam1:AcquireBusy"))
            while_suspended.append(ca_get(ioc.prefix + "HDF1:Capture_RBV"))
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)
        finally:
            beam_dump.put(0)  # never leave the RunEngine suspended

    def dump_beam() -> None:
        beam_dump.put(1)
        threading.Thread(target=clear_when_paused, daemon=True).start()

    # the beam dumps one frame into the second trigger, and comes back once paused
    tripper = OnMonitor(det.hdf1.num_captured, _after_new_file(FPP + 1), dump_beam)
    RE(bp.count([det], num=3))
    tripper.join()
    assert not errors, errors
    assert while_suspended == [0, 0]
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.metadata["stop"]["num_events"] == {"primary": 3}
    _check_frames_after_pause(det, run, 3)
    _assert_idle(ioc)
    assert snapshot(pvs) == before


def test_pause_then_abort(ioc, det, RE, catalog):
    import bluesky.plans as bp

    pvs = setpoint_pvs(det)
    before = snapshot(pvs)
    _run_until_paused(RE, bp.count([det], num=3), det.hdf1.num_captured, FPP + 1, defer=False)
    RE.abort("test: abort after a pause")
    assert RE.state == "idle"
    _assert_idle(ioc)
    assert snapshot(pvs) == before
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "abort"
    # the point taken before the pause is intact and bit-exact
    data = run.primary.read()
    images = data["pdet_image"].values
    assert images.shape == (1, FPP, Y, X)
    np.testing.assert_array_equal(images[0, FPP - 1], _ca_frames(data)[0])


@pytest.mark.parametrize("det", [{"naming": "epics"}], indirect=True)
def test_deferred_pause_with_epics_file_names(ioc, det, RE, catalog):
    """A single Ctrl-C (request_pause(defer=True)) pauses at the next checkpoint, with
    no trigger running: the file is still closed on pause and the next one opened on
    resume, named by the IOC's next FileNumber."""
    import bluesky.plans as bp

    det.hdf1.file_name.set("paused_scan").wait(10)
    # epics naming moves FileNumber on; ADCore's FileNumber setpoint follows that
    # (asyn:READBACK), so it is checked below through FileNumber_RBV on both IOCs
    pvs = [pv for pv in setpoint_pvs(det) if not pv.endswith(":FileNumber")]
    before = snapshot(pvs)
    _run_until_paused(RE, bp.count([det], num=3), det.hdf1.num_captured, FPP + 1, defer=True)
    _assert_idle(ioc)
    RE.resume()
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "success"
    images, ca = _event_frames(run, 3)
    for i in range(1, 3):  # no frame lost or taken between points
        np.testing.assert_array_equal(ca[i] - ca[i - 1], FPP * GAIN)
    # the pause came after point 1: points 0 and 1 in one file, point 2 in the next
    files = [Path(r["root"], r["resource_path"]) for r in _resources(run)]
    assert files == [
        Path(ioc.read_root, "pause", "paused_scan_000042.h5"),
        Path(ioc.read_root, "pause", "paused_scan_000043.h5"),
    ]
    _assert_idle(ioc)
    assert snapshot(pvs) == before
    # epics naming: FileNumber is the user's numbering, moved on by the two files
    assert ca_get(ioc.prefix + "HDF1:FileNumber_RBV") == 44


def test_pause_during_a_stream_fails_the_run_clearly(ioc, det, RE, catalog):
    """A stream cannot be replayed: pause() stops it, resuming ends the run failed with
    a message saying so, and the frames written are still collected."""
    import bluesky.plans as bp
    import h5py
    from bluesky.utils import FailedStatus

    det.image1.kind = "omitted"
    det.stream_frames = 50
    pvs = setpoint_pvs(det)
    before = snapshot(pvs)
    _run_until_paused(RE, bp.fly([det]), det.hdf1.num_captured, 2, defer=False)
    wait_pv(ioc.prefix + "cam1:AcquireBusy", lambda v: v == 0, timeout=WAIT)
    with pytest.raises(FailedStatus) as info:
        RE.resume()
    assert "cannot be resumed" in str(info.value.__cause__)
    assert RE.state == "idle"
    _assert_idle(ioc)
    assert snapshot(pvs) == before
    run = catalog[-1]
    assert run.metadata["stop"]["exit_status"] == "fail"
    with h5py.File(det.hdf1.read_file_name, "r") as f:
        written = f["/entry/data/data"].shape[0]
    assert 2 <= written < 50
    assert run["pdet"].read()["pdet_image"].values.shape == (written, 1, Y, X)
