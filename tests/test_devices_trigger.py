"""Trigger logic on AcquireBusy (unit tests on ophyd fake devices, no IOC).

The IOC-backed tests cover real acquisitions; here we drive AcquireBusy by hand to pin
down the edge cases: an acquisition that ends before trigger() returns, several
triggers, unstage during an acquisition, and the status timeout.
"""

from __future__ import annotations

import pytest
from ophyd.sim import make_fake_device

from adtoolkit.devices.errors import AcquisitionError
from adtoolkit.devices.factory import make_detector


@pytest.fixture
def det(tmp_path):
    real = make_detector("FAKE:", name="det", plugins="image1", connect=False)
    det = make_fake_device(type(real))("FAKE:", name="det")
    for dotted, strs in {
        "cam.image_mode": ["Single", "Multiple", "Continuous"],
        "cam.wait_for_plugins": ["No", "Yes"],
        "cam.array_callbacks": ["Disable", "Enable"],
        "cam.acquire": ["Done", "Acquire"],
        "cam.acquire_busy": ["Done", "Acquiring"],
        "image1.enable": ["Disable", "Enable"],
        "image1.blocking_callbacks": ["No", "Yes"],
    }.items():
        getattr(det, dotted).sim_set_enum_strs(strs)
        getattr(det, dotted).sim_put(0)
    det.image1.stage_sigs.pop("parent.cam.array_callbacks", None)
    det.cam.acquire_time.sim_put(0.001)
    det.cam.acquire_period.sim_put(0.0)
    return det


def _instant_ioc(det):
    """Acquire=1 makes AcquireBusy go 1 and back to 0 before put() returns."""

    def acquire(value, *args, **kwargs):
        det.cam.acquire.sim_put(value)
        if value == 1:
            det.cam.acquire_busy.sim_put(1)
            det.cam.acquire_busy.sim_put(0)
            det.cam.acquire.sim_put(0)

    det.cam.acquire.sim_set_putter(acquire)


def test_acquisition_finishing_before_trigger_returns(det):
    # ophyd's SingleTrigger returns None in this case (its status is cleared by the
    # monitor callback); ours must return a finished status
    _instant_ioc(det)
    det.stage()
    try:
        for _ in range(3):
            st = det.trigger()
            assert st is not None
            st.wait(1)
            assert st.success
    finally:
        det.unstage()


def test_trigger_waits_for_acquirebusy_to_clear(det):
    det.stage()
    try:
        st = det.trigger()
        assert not st.done
        det.cam.acquire_busy.sim_put(1)
        assert not st.done  # still acquiring (or plugins still busy)
        det.cam.acquire_busy.sim_put(0)
        st.wait(1)
        assert st.success
    finally:
        det.unstage()


def test_done_before_acquiring_is_ignored(det):
    # a stale "Done" (e.g. the monitor's first update) must not finish the trigger
    det.stage()
    try:
        st = det.trigger()
        det.cam.acquire_busy.sim_put(0)
        assert not st.done
        det.cam.acquire_busy.sim_put("Acquiring")
        det.cam.acquire_busy.sim_put("Done")
        st.wait(1)
    finally:
        det.unstage()


def test_unstage_during_acquisition_interrupts_the_status_and_stops_the_cam(det):
    # what the RunEngine's cleanup does after RE.abort(): the status must not fail (the
    # RunEngine would report FailedStatus instead of the abort) but say it was cut short
    det.stage()
    st = det.trigger()
    det.cam.acquire_busy.sim_put(1)
    det.unstage()
    st.wait(1)
    assert st.success
    assert "unstaged during the acquisition" in st.interrupted
    assert det.cam.acquire.get() == 0


def test_completed_trigger_is_not_interrupted(det):
    _instant_ioc(det)
    det.stage()
    try:
        st = det.trigger()
        st.wait(1)
        assert st.success and st.interrupted is None
    finally:
        det.unstage()


@pytest.mark.parametrize("success", [True, False])
def test_stop_during_acquisition_ends_the_trigger_when_the_ioc_is_done(det, success):
    # ophyd's convention (positioners): stop(success=True) ends what is pending
    # successfully, stop() fails it; either way only once AcquireBusy says Done
    det.stage()
    try:
        st = det.trigger()
        det.cam.acquire_busy.sim_put(1)
        det.stop(success=success)
        assert det.cam.acquire.get() == 0
        assert not st.done  # the IOC has not said it is done yet
        det.cam.acquire_busy.sim_put(0)
        if success:
            st.wait(5)
            assert "stop(success=True)" in st.interrupted
        else:
            with pytest.raises(AcquisitionError, match=r"stopped during the acquisition"):
                st.wait(5)
    finally:
        det.unstage()


def test_trigger_needs_stage(det):
    with pytest.raises(RuntimeError, match="not staged"):
        det.trigger()


def test_trigger_status_times_out_instead_of_hanging(det):
    from ophyd.utils.errors import StatusTimeoutError

    det.stage()
    try:
        det.trigger_timeout = 0.2  # the IOC never answers
        st = det.trigger()
        with pytest.raises(StatusTimeoutError):
            st.wait(5)
    finally:
        det.unstage()
