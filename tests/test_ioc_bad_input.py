"""Bad puts are answered like the real IOC: clamped, truncated or refused; the IOC keeps serving."""

from __future__ import annotations

import pytest
from caproto import ChannelType
from conftest import acquire

pytestmark = pytest.mark.ioc


def refused_put(cam, suffix: str, value, data_type) -> None:
    """Put a bad value without waiting for the reply.

    The IOC answers ECA_PUTFAIL; caproto's threading client does not route that
    error reply to a pending write (it would time out), so the tests check the
    effect instead: the record and its readback keep their value.
    """
    cam.pv(suffix).write([value], data_type=data_type, wait=False)
    cam.get("cam1:Manufacturer_RBV")  # a round trip after the refused put


def still_serving(cam) -> None:
    assert cam.get("cam1:Manufacturer_RBV") == "Simulated detector"
    before = cam.get("cam1:ArrayCounter_RBV")
    assert acquire(cam) == before + 1


def test_negative_acquire_time_is_kept_and_acquisition_works(cam):
    # ao without DRVL: the driver stores it; simTask waits the minimum delay instead
    cam.put("cam1:AcquireTime", -1.0)
    assert cam.get("cam1:AcquireTime_RBV") == -1.0
    still_serving(cam)
    cam.put("cam1:AcquireTime", 0.001)


def test_num_images_zero_takes_one_image(cam):
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 0)
    assert cam.get("cam1:NumImages_RBV") == 0
    before = cam.get("cam1:ArrayCounter_RBV")
    acquire(cam)
    assert cam.get("cam1:ArrayCounter_RBV") == before + 1
    assert cam.get("cam1:DetectorState_RBV", as_string=True) == "Idle"


def test_unknown_enum_string_is_refused(cam):
    cam.put("cam1:ImageMode", "Single")
    refused_put(cam, "cam1:ImageMode", b"Bogus", ChannelType.STRING)
    refused_put(cam, "cam1:ImageMode", 17, ChannelType.ENUM)
    assert cam.get("cam1:ImageMode", as_string=True) == "Single"
    assert cam.get("cam1:ImageMode_RBV", as_string=True) == "Single"
    # a refused put leaves no alarm behind
    reading = cam.pv("cam1:ImageMode").read(data_type=ChannelType.TIME_ENUM)
    assert reading.metadata.severity == 0
    still_serving(cam)


def test_non_numeric_and_out_of_range_values_are_refused(cam):
    cam.put("cam1:NumImages", 5)
    refused_put(cam, "cam1:NumImages", b"abc", ChannelType.STRING)
    assert cam.get("cam1:NumImages") == 5
    assert cam.get("cam1:NumImages_RBV") == 5
    # a double into a longout is converted (truncated), as dbPut does
    cam.pv("cam1:NumImages").write([3.7], data_type=ChannelType.DOUBLE, wait=True)
    assert cam.get("cam1:NumImages_RBV") == 3
    still_serving(cam)


def test_long_string_is_truncated_to_the_waveform(cam):
    cam.put("HDF1:FileName", "a" * 10_000)
    assert cam.get("HDF1:FileName_RBV") == "a" * 255
    assert cam.get("HDF1:FileName") == "a" * 255
    cam.put("HDF1:FileName", "ok")
    assert cam.get("HDF1:FileName_RBV") == "ok"
    # 40-character DBR_STRING records keep 39 characters
    cam.put("HDF1:TempSuffix", "x" * 39)
    assert cam.get("HDF1:TempSuffix_RBV") == "x" * 39
    cam.put("HDF1:TempSuffix", "")
    still_serving(cam)


def test_region_out_of_range_is_clamped(cam):
    cam.put("cam1:MinX", -5)
    cam.put("cam1:SizeX", 100_000)
    cam.put("cam1:BinY", 0)
    acquire(cam)
    assert cam.get("cam1:MinX_RBV") == 0
    assert cam.get("cam1:SizeX_RBV") == cam.get("cam1:MaxSizeX_RBV")
    assert cam.get("cam1:BinY_RBV") == 1
    assert cam.get("cam1:ArraySizeX_RBV") == cam.get("cam1:MaxSizeX_RBV")


def test_absurd_plugin_settings_do_not_kill_plugin_threads(cam):
    for name, value in {
        "MinX": -10,
        "SizeX": 0,
        "BinX": 0,
        "MinY": 10_000,
        "SizeY": -3,
        "DataTypeOut": "Automatic",
        "BlockingCallbacks": "No",
        "EnableCallbacks": 1,
    }.items():
        cam.put("ROI1:" + name, value)
    cam.put("Stats1:NDArrayPort", "ROI1")
    cam.put("Stats1:EnableCallbacks", 1)
    cam.put("Stats1:NDArrayPort", "NO_SUCH_PORT")  # unknown port: simply not connected
    cam.put("Stats1:NDArrayPort", "ROI1")
    acquire(cam)
    uid = acquire(cam)
    cam.wait_value("ROI1:UniqueId_RBV", uid)
    cam.wait_value("Stats1:UniqueId_RBV", uid)
    assert cam.get("Stats1:ArraySize0_RBV") >= 1
    still_serving(cam)
