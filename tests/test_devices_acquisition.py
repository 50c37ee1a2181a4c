"""How an acquisition ends, from how it was stopped (pure device logic, no IOC).

Without a file plugin nothing proves the frames were all taken, so an acquisition
that was stopped ends by its stop alone: these tests use no baselines.
"""

from __future__ import annotations

import pytest
from ophyd import Signal

from adtoolkit.devices.acquisition import Acquisition, Stop, TriggerStatus
from adtoolkit.devices.errors import AcquisitionError


def _acquisition(stream: bool = False, on_success=None) -> Acquisition:
    status = TriggerStatus(Signal(name="dev"), timeout=None)
    return Acquisition("det", status, 1, (), on_success, stream)


def _finished(acq: Acquisition) -> TriggerStatus:
    acq.finish()
    acq.status.wait(5)
    return acq.status


def test_an_acquisition_nobody_stopped_succeeds_after_its_datum():
    made = []
    acq = _acquisition(on_success=lambda: made.append("datum"))
    st = _finished(acq)
    assert st.success and st.interrupted is None and made == ["datum"]


def test_stop_success_true_ends_interrupted_without_a_datum():
    made = []
    acq = _acquisition(on_success=lambda: made.append("datum"))
    acq.request_stop(Stop.INTERRUPT)
    st = _finished(acq)
    assert st.success and "stop(success=True)" in st.interrupted and made == []


def test_stop_fails_the_status():
    acq = _acquisition()
    acq.request_stop(Stop.FAIL)
    acq.finish()
    with pytest.raises(AcquisitionError, match=r"det: stopped during the acquisition \(stop\(\)\)"):
        acq.status.wait(5)


def test_a_pause_decides_whatever_stop_comes_after_it():
    acq = _acquisition()
    acq.pause("det: paused")
    acq.request_stop(Stop.FAIL)
    st = _finished(acq)
    assert acq.stopped is Stop.PAUSE
    assert st.success and st.interrupted == "det: paused"


def test_a_paused_stream_fails_it_cannot_be_replayed():
    acq = _acquisition(stream=True)
    acq.pause("det: paused")
    acq.finish()
    with pytest.raises(AcquisitionError, match="A stream cannot be resumed"):
        acq.status.wait(5)
