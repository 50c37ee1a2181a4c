"""Record fields as rsrv serves them (``NAME.RTYP``, ``.PREC``, ``.PROC`` ...).

The expected values are what ``caget NAME.FIELD`` answers on the real R3-14 IOC
(../shared/real-adsim) for the same records.
"""

from __future__ import annotations

import pytest
from conftest import acquire

pytestmark = pytest.mark.ioc


def field(ca, name: str):
    """A field's value: strings decoded, scalars unpacked, enums as their string."""
    from caproto import ChannelType

    pv = ca.pv(name)
    native = pv.channel.native_data_type
    if native in (ChannelType.STRING, ChannelType.ENUM):
        return pv.read(data_type=ChannelType.STRING).data[0].decode()
    return pv.read().data[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cam1:Acquire.RTYP", "bo"),
        ("cam1:Acquire.DTYP", "asynInt32"),
        ("cam1:Acquire.SCAN", "Passive"),
        ("cam1:Acquire.PINI", "NO"),
        ("cam1:Acquire.SEVR", "NO_ALARM"),
        ("cam1:Acquire.STAT", "NO_ALARM"),
        ("cam1:AcquireTime.PREC", 3),
        ("cam1:AcquireTime.PINI", "YES"),
        ("cam1:AcquireTime.DTYP", "asynFloat64"),
        ("cam1:AcquireTime_RBV.SCAN", "I/O Intr"),
        ("cam1:Gain.PREC", 3),
        ("cam1:Temperature.EGU", "C"),
        ("cam1:ArrayRate_RBV.RTYP", "calc"),
        ("cam1:ArrayRate_RBV.SCAN", "1 second"),
        ("cam1:ArrayRate_RBV.EGU", "Hz"),
        ("HDF1:FilePath.RTYP", "waveform"),
        ("HDF1:FilePath.DTYP", "asynOctetWrite"),
        ("HDF1:FilePath.NELM", 256),
        ("HDF1:FilePath_RBV.DTYP", "asynOctetRead"),
        ("HDF1:NDArrayPort.DTYP", "asynOctetWrite"),
        ("image1:ArrayData.DTYP", "asynInt8ArrayIn"),
        ("image1:ArrayData.NELM", 12_000_000),
        ("HDF1:QueueUseHIGH.RTYP", "calcout"),
        ("HDF1:JPEGQuality.DRVH", 100),
        ("HDF1:JPEGQuality.DRVL", 1),
    ],
)
def test_field_values_as_on_the_real_ioc(ca, name, expected):
    assert field(ca, name) == expected


def test_name_is_the_record_name(ca):
    assert field(ca, "cam1:NumImages.NAME") == ca.prefix + "cam1:NumImages"


def test_a_field_the_record_type_lacks_is_not_served(ca):
    from caproto.threading.client import Context

    ctx = Context()
    try:
        (pv,) = ctx.get_pvs(ca.prefix + "cam1:Acquire.DRVH", timeout=2)
        with pytest.raises(TimeoutError):
            pv.wait_for_connection(timeout=2)  # a bo has no DRVH on the real IOC either
    finally:
        ctx.disconnect()


def test_proc_processes_an_output_record(ca, cam):
    """Processing ArrayCounter writes its VAL to the driver again, as dbProcess does."""
    cam.put("cam1:ImageMode", "Single")
    cam.put("cam1:ArrayCounter", 5)
    cam.wait_value("cam1:ArrayCounter_RBV", 5)
    acquire(cam)
    cam.wait_value("cam1:ArrayCounter_RBV", 6)
    ca.pv("cam1:ArrayCounter.PROC").write([1], wait=True, timeout=10)
    cam.wait_value("cam1:ArrayCounter_RBV", 5)


def test_proc_of_an_input_record_reads_its_parameter(ca):
    ca.pv("cam1:AcquireTime_RBV.PROC").write([1], wait=True, timeout=10)
    assert ca.get("cam1:AcquireTime_RBV") == ca.get("cam1:AcquireTime")


def test_an_output_record_clamps_to_its_drive_limits(ca):
    """HDF1:JPEGQuality has DRVL 1 / DRVH 100: a longout clamps, it does not refuse."""
    try:
        ca.put("HDF1:JPEGQuality", 500)
        ca.wait_value("HDF1:JPEGQuality_RBV", 100)
        ca.put("HDF1:JPEGQuality", -3)
        ca.wait_value("HDF1:JPEGQuality_RBV", 1)
    finally:
        ca.put("HDF1:JPEGQuality", 90)
