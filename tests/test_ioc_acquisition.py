"""Cam acquisition semantics over CA, as ADBase.template, NDArrayBase.template and
simDetector.cpp define them (ImageMode, TriggerMode, NumImages/NumExposures
counters, DetectorState_RBV, AcquireBusy)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import acquire
from ioc_helpers import wait_for

pytestmark = pytest.mark.ioc


class Monitor:
    """Collects (pv suffix, value) events of several PVs, in arrival order."""

    def __init__(self, ca, *suffixes: str, data_type=None) -> None:
        from caproto import ChannelType, field_types

        self.events: list[tuple[str, object, float]] = []
        self.lock = threading.Lock()
        self.subs = []
        for suffix in suffixes:
            pv = ca.pv(suffix)
            native = pv.channel.native_data_type
            dtype = ChannelType.STRING if native == ChannelType.ENUM else native
            sub = pv.subscribe(data_type=field_types["time"][dtype])
            cb = self._callback(suffix)
            sub.add_callback(cb)
            self.subs.append((sub, cb))  # caproto holds callbacks weakly

    def _callback(self, suffix):
        def cb(sub, response):
            value = response.data[0]
            if isinstance(value, bytes):
                value = value.decode()
            with self.lock:
                self.events.append((suffix, value, response.metadata.timestamp))

        return cb

    def values(self, suffix: str) -> list:
        with self.lock:
            return [v for s, v, _ in self.events if s == suffix]

    def clear(self) -> None:
        with self.lock:
            self.events.clear()

    def close(self) -> None:
        for sub, _ in self.subs:
            sub.clear()


def test_single_image_state_sequence_and_counters(cam):
    mon = Monitor(cam, "cam1:DetectorState_RBV", "cam1:Acquire", "cam1:AcquireBusy")
    try:
        wait_for(lambda: len(mon.events) >= 3, 5, "initial monitor events")
        mon.clear()
        before = cam.get("cam1:ArrayCounter_RBV")
        after = acquire(cam)
        assert cam.get("cam1:ArrayCounter_RBV") == after == before + 1
        assert cam.get("cam1:NumImagesCounter_RBV") == 1
        wait_for(lambda: "Idle" in mon.values("cam1:DetectorState_RBV"), 5, "Idle")
        states = mon.values("cam1:DetectorState_RBV")
        assert states[:2] == ["Acquire", "Readout"] and states[-1] == "Idle"
        assert mon.values("cam1:Acquire") == ["Acquire", "Done"]  # setpoint returns to 0
        assert mon.values("cam1:AcquireBusy") == ["Acquiring", "Done"]
        assert cam.get("cam1:StatusMessage_RBV") == "Waiting for acquisition"
    finally:
        mon.close()


def test_multiple_images_and_timestamps_follow_the_period(cam):
    cam.put("image1:EnableCallbacks", 1)
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 6)
    cam.put("cam1:AcquireTime", 0.01)
    cam.put("cam1:AcquirePeriod", 0.05)
    mon = Monitor(cam, "image1:TimeStamp_RBV", "image1:UniqueId_RBV", "cam1:DetectorState_RBV")
    try:
        wait_for(lambda: mon.values("image1:UniqueId_RBV"), 5, "initial")
        mon.clear()
        last = acquire(cam, 6)
        wait_for(lambda: last in mon.values("image1:UniqueId_RBV"), 5, "last frame in image1")
        ids = mon.values("image1:UniqueId_RBV")
        assert ids == list(range(last - 5, last + 1))
        assert cam.get("cam1:NumImagesCounter_RBV") == 6
        stamps = np.array(mon.values("image1:TimeStamp_RBV"))
        assert len(stamps) == 6
        periods = np.diff(stamps)
        # correctness, generous tolerance: frames are ~AcquirePeriod apart, not back to back
        assert np.all(periods > 0.025) and np.all(periods < 0.5), periods
        assert abs(np.median(periods) - 0.05) < 0.02, periods
        assert "Waiting" in mon.values("cam1:DetectorState_RBV")
        # EPICS-epoch seconds: TimeStamp_RBV ~ now - 631152000
        assert abs(stamps[-1] - (time.time() - 631152000)) < 60
    finally:
        mon.close()


def test_continuous_then_stop_gives_idle(cam):
    cam.put("cam1:ImageMode", "Continuous")
    cam.put("cam1:AcquirePeriod", 0.01)
    before = cam.get("cam1:ArrayCounter_RBV")
    cam.put("cam1:Acquire", 1, wait=False)
    wait_for(lambda: cam.get("cam1:ArrayCounter_RBV") >= before + 3, 10, "3 frames")
    cam.put("cam1:Acquire", 0)
    cam.wait_value("cam1:DetectorState_RBV", "Idle", as_string=True)
    assert cam.get("cam1:Acquire_RBV") == 0
    assert cam.get("cam1:StatusMessage_RBV") == "Acquisition stopped"


def test_stop_in_multiple_mode_gives_aborted(cam):
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 1000)
    cam.put("cam1:AcquirePeriod", 0.01)
    before = cam.get("cam1:ArrayCounter_RBV")
    cam.put("cam1:Acquire", 1, wait=False)
    wait_for(lambda: cam.get("cam1:ArrayCounter_RBV") >= before + 2, 10, "2 frames")
    cam.put("cam1:Acquire", 0)
    cam.wait_value("cam1:DetectorState_RBV", "Aborted", as_string=True)
    assert cam.get("cam1:AcquireBusy") == 0


def test_array_callbacks_disabled_sends_nothing(cam):
    cam.put("image1:EnableCallbacks", 1)
    acquire(cam)
    uid = cam.get("image1:UniqueId_RBV")
    cam.put("cam1:ArrayCallbacks", 0)
    counter = acquire(cam)
    assert cam.get("cam1:ArrayCounter_RBV") == counter
    assert cam.get("image1:UniqueId_RBV") == uid
    cam.put("cam1:ArrayCallbacks", 1)


def test_wait_for_plugins_busy_clears_after_slow_plugin(cam):
    """AcquireBusy clears only after every enabled plugin processed every frame.

    Stats1 on full 1024x1024 frames is slower than the cam at AcquirePeriod 0,
    so frames queue up; the monitor order shows Stats1 finishing before busy clears.
    """
    n = 15
    cam.put("cam1:SizeX", 1024)
    cam.put("cam1:SizeY", 1024)
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", n)
    cam.put("cam1:WaitForPlugins", "Yes")
    cam.put("Stats1:QueueSize", 100)
    cam.put("Stats1:BlockingCallbacks", "No")
    cam.put("Stats1:ComputeCentroid", "Yes")
    cam.put("Stats1:EnableCallbacks", 1)
    cam.put("Stats1:ArrayCounter", 0)
    cam.put("Stats1:DroppedArrays", 0)
    mon = Monitor(cam, "Stats1:ArrayCounter_RBV", "cam1:AcquireBusy", "cam1:Acquire")
    try:
        wait_for(lambda: len(mon.events) >= 3, 5, "initial events")
        mon.clear()
        cam.put("cam1:Acquire", 1, wait=False)
        wait_for(lambda: "Done" in mon.values("cam1:AcquireBusy"), 60, "AcquireBusy Done")
        with mon.lock:
            order = [(s, v) for s, v, _ in mon.events]
        busy_done = order.index(("cam1:AcquireBusy", "Done"))
        counts = [v for s, v in order[:busy_done] if s == "Stats1:ArrayCounter_RBV"]
        assert counts and counts[-1] == n, order
        assert cam.get("Stats1:DroppedArrays_RBV") == 0
        assert cam.get("cam1:NumQueuedArrays") == 0
    finally:
        mon.close()
        cam.put("cam1:WaitForPlugins", "No")
        cam.put("Stats1:ComputeCentroid", "No")


def test_dropped_arrays_when_queue_is_full(cam, ioc):
    """A non-blocking plugin slower than the cam with QueueSize 1 drops arrays;
    every array is either processed or counted in DroppedArrays.

    Whether the plugin falls behind is a race between two threads (a JPEG encode
    of 1024x1024 takes about as long as the cam needs for a frame while the encoder
    holds the GIL), so a burst of frames is repeated, checking the accounting each
    time, until one burst has dropped arrays; a burst without drops happens about
    one time in three.
    """
    n = 100
    d = ioc.write_root / "drops"
    d.mkdir(exist_ok=True)
    cam.put("cam1:SizeX", 1024)
    cam.put("cam1:SizeY", 1024)
    cam.put("cam1:AcquireTime", 0.0)
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", n)
    for name, value in {
        "FilePath": str(d),
        "FileName": "drop",
        "FileTemplate": "%s%s_%d.jpg",
        "AutoIncrement": "Yes",
        "FileWriteMode": "Single",
        "AutoSave": "Yes",
        "QueueSize": 1,
        "JPEGQuality": 100,
        "BlockingCallbacks": "No",
        "EnableCallbacks": 1,
    }.items():
        cam.put("JPEG1:" + name, value)
    assert cam.get("JPEG1:QueueSize_RBV") == 1
    dropped = 0
    for _burst in range(12):
        for f in d.glob("drop_*.jpg"):
            f.unlink()
        cam.put("JPEG1:DroppedArrays", 0)
        cam.put("JPEG1:ArrayCounter", 0)
        acquire(cam, n)
        wait_for(lambda: cam.get("cam1:NumQueuedArrays") == 0, 30, "queue drained")
        wait_for(lambda: cam.get("JPEG1:QueueFree") == 1, 10, "JPEG1 queue free")
        dropped = cam.get("JPEG1:DroppedArrays_RBV")
        processed = cam.get("JPEG1:ArrayCounter_RBV")
        assert dropped + processed == n
        assert len(list(d.glob("drop_*.jpg"))) == processed
        if dropped > 0:
            break
    assert dropped > 0, "12 bursts of 100 frames and the plugin never fell behind"
    cam.put("JPEG1:AutoSave", "No")
    cam.put("JPEG1:QueueSize", 20)


@pytest.mark.sim_only(
    "ADSimDetector R2-11 never updates TimeRemaining_RBV (it stays 0 on the real IOC); "
    "the countdown is the simulated IOC's own"
)
def test_time_remaining_counts_down_to_zero(cam):
    """TimeRemaining_RBV: the rest of the exposure plus one period per image to come
    (Multiple), refreshed during long exposures, 0 once the acquisition ends."""
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 3)
    cam.put("cam1:AcquireTime", 0.3)
    cam.put("cam1:AcquirePeriod", 0.4)
    mon = Monitor(cam, "cam1:TimeRemaining_RBV")
    try:
        wait_for(lambda: mon.values("cam1:TimeRemaining_RBV"), 5, "initial monitor event")
        assert mon.values("cam1:TimeRemaining_RBV")[-1] == 0.0  # idle
        mon.clear()
        acquire(cam, 3)
        wait_for(lambda: mon.values("cam1:TimeRemaining_RBV")[-1:] == [0.0], 5, "back to 0")
        values = mon.values("cam1:TimeRemaining_RBV")
    finally:
        mon.close()
        cam.put("cam1:ImageMode", "Single")
        cam.put("cam1:NumImages", 1)
        cam.put("cam1:AcquireTime", 0.001)
        cam.put("cam1:AcquirePeriod", 0.0)
    running = values[:-1]
    # first frame: 0.3 s exposure + 2 more images at max(0.4, 0.3) s each = 1.1 s
    assert 0.9 < running[0] <= 1.1
    # refreshed several times on the way down (exposures and waits of 0.3 s / 0.1 s)
    assert len(running) >= 6
    assert all(0.0 <= v <= 1.1 for v in running)
    assert running[-1] < 0.35  # the last image's exposure
    assert values[-1] == 0.0
