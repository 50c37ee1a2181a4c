"""Behaviour the real simDetector IOC (ADCore R3-14) shows, checked on both IOCs.

Each test here runs against the simulated and the real IOC (``[sim]``/``[real]``):
what it asserts was first seen on the real IOC (issue 12).
"""

from __future__ import annotations

import pytest
from conftest import acquire

pytestmark = pytest.mark.ioc


def test_file_path_slash_does_not_exist(cam):
    """ADCore strips the trailing separator and stats the rest: "/" stats "" -> No."""
    cam.put("HDF1:CreateDirectory", 0)
    cam.put("HDF1:FilePath", "/")
    assert cam.get("HDF1:FilePathExists_RBV") == 0
    assert cam.get("HDF1:FilePath_RBV") == "/"


def test_file_path_without_separator_gets_one(cam, ioc):
    cam.put("HDF1:FilePath", str(ioc.write_root))
    assert cam.get("HDF1:FilePathExists_RBV") == 1
    assert cam.get("HDF1:FilePath_RBV") == str(ioc.write_root) + "/"


@pytest.mark.parametrize(("mode", "frames"), [("Single", 1), ("Multiple", 3)])
def test_acquire_put_callback_completes_when_acquisition_ends(cam, mode, frames):
    """``caput -c cam1:Acquire 1``: the Acquire bo's put-callback ends with the acquisition.

    The exposure (0.3 s a frame) is far longer than a put's round trip, so a
    completion sent at once would find no new frame and the detector still busy.
    """
    cam.put("cam1:ImageMode", mode)
    cam.put("cam1:NumImages", frames)
    cam.put("cam1:AcquireTime", 0.3)
    before = cam.get("cam1:ArrayCounter_RBV")
    cam.put("cam1:Acquire", 1, wait=True, timeout=30)
    assert cam.get("cam1:ArrayCounter_RBV") == before + frames
    assert cam.get("cam1:Acquire") == 0
    assert cam.get("cam1:DetectorState_RBV", as_string=True) == "Idle"


def test_capture_in_single_mode_says_why_but_keeps_write_ok(cam):
    cam.put("HDF1:FileWriteMode", "Single")
    cam.put("HDF1:Capture", 1)
    assert cam.get("HDF1:Capture_RBV") == 0
    # R3-14 sets the message without calling its callbacks, so the record shows it
    # only at the next update of the plugin's parameters; ours shows it at once
    assert cam.get("HDF1:WriteMessage") in ("", "ERROR: capture not supported in Single mode")
    assert cam.get("HDF1:WriteStatus") == 0


def test_file_plugin_counts_only_the_arrays_it_saves(cam, ioc):
    """A file plugin's ArrayCounter_RBV counts saved arrays, not received ones."""
    d = ioc.write_root / "counted"
    d.mkdir(exist_ok=True)
    cam.put("HDF1:FilePath", str(d))
    cam.put("HDF1:FileName", "counted")
    cam.put("HDF1:FileTemplate", "%s%s_%3.3d.h5")
    cam.put("HDF1:FileNumber", 0)
    cam.put("HDF1:AutoIncrement", "No")
    cam.put("HDF1:ArrayCounter", 0)
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 3)
    last = acquire(cam, 3)
    # received: UniqueId_RBV and the sizes follow the last array ...
    cam.wait_value("HDF1:UniqueId_RBV", last)
    assert cam.get("HDF1:ArraySize0_RBV") == 64
    # ... but nothing was saved (Single mode, AutoSave No), so nothing is counted
    assert cam.get("HDF1:ArrayCounter_RBV") == 0
    cam.put("HDF1:AutoSave", "Yes")
    last = acquire(cam, 3)
    cam.wait_value("HDF1:UniqueId_RBV", last)
    cam.wait_value("HDF1:ArrayCounter_RBV", 3)
    assert (d / "counted_000.h5").exists()


def test_put_then_get_on_one_circuit_returns_the_new_value(cam, ioc, request):
    """rsrv serves a circuit's requests in order: a get after a put sees the put."""
    if ioc.kind == "sim":
        request.applymarker(
            pytest.mark.xfail(
                reason="issue 12: caproto answers a read after waiting only 1 ms for a "
                "write still in the driver's write thread; setting the record before the "
                "driver write made ophyd's set() complete before the driver had acted "
                "(an NDAttributesFile not yet read), so the fix must order the circuit",
                strict=False,
            )
        )
    stale = []
    for i in range(200):
        value = 1000 + i
        cam.put("HDF1:NumCapture", value, wait=False)
        got = cam.get("HDF1:NumCapture")
        if got != value:
            stale.append((value, got))
    assert not stale, f"{len(stale)} of 200 gets returned an older value, e.g. {stale[:3]}"
