"""Pva1:Image over pvAccess (NDPluginPva on p4p), read with a p4p client and with the
real IOC's ``pvget``: the same NTNDArray as the real IOC's for the same frame.

REAL_PVGET is ``pvget -v 13SIM1:Pva1:Image`` from the real IOC (ADCore R3-14) for a
4 x 3 UInt8 LinearRamp frame, with the frame's uniqueId and time stamps taken out.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from ioc_helpers import CA

TARBALL = (
    Path(__file__).resolve().parents[2] / "shared" / "real-adsim" / "real-adsim-runtime.tar.gz"
)

REAL_PVGET = """\
PV epics:nt/NTNDArray:1.0
    union value
        ubyte[]  [0,1,2,3,1,2,3,4,2,3,4,5]
    codec_t codec
        string name
        any parameters
            int  5
    long compressedSize 12
    long uncompressedSize 12
    dimension_t[] dimension
        dimension_t
            int size 4
            int offset 0
            int fullSize 4
            int binning 1
            boolean reverse false
        dimension_t
            int size 3
            int offset 0
            int fullSize 3
            int binning 1
            boolean reverse false
    int uniqueId ID
    time_t dataTimeStamp STAMP
        long secondsPastEpoch S
        int nanoseconds NS
        int userTag 0
    epics:nt/NTAttribute:1.0[] attribute
        epics:nt/NTAttribute:1.0
            string name ColorMode
            any value
                int  0
            string descriptor "Color mode"
            int sourceType 0
            string source Driver
    string descriptor
    alarm_t alarm
        int severity 0
        int status 0
        string message
    time_t timeStamp STAMP
        long secondsPastEpoch S
        int nanoseconds NS
        int userTag 0
    display_t display
        double limitLow 0
        double limitHigh 0
        string description
        string format
        string units
"""


def normalise(text: str, unique_id: int) -> str:
    """pvget -v output with the PV name, this frame's uniqueId and time stamps replaced."""
    lines = []
    for line in text.splitlines():
        line = line.rstrip()
        line = re.sub(r"^\S+ (epics:nt/NTNDArray)", r"PV \1", line)
        line = re.sub(r"(time_t \w+) .*", r"\1 STAMP", line)
        line = re.sub(r"(long secondsPastEpoch) \d+", r"\1 S", line)
        line = re.sub(r"(int nanoseconds) \d+", r"\1 NS", line)
        line = line.replace(f"int uniqueId {unique_id}", "int uniqueId ID")
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def pva_ioc(ioc_factory):
    """An IOC (built-in default instance) and a CA client; one 4 x 3 UInt8 frame in Pva1."""
    handle = ioc_factory(prefix="adtpva:")
    ca = CA(handle.prefix)
    for name, value in {
        "ImageMode": "Single",
        "SizeX": 4,
        "SizeY": 3,
        "DataType": "UInt8",
        "ColorMode": "Mono",
        "SimMode": "LinearRamp",
        "Gain": 1.0,
        "Offset": 0.0,
        "Noise": 0.0,
        "AcquireTime": 0.001,
        "AcquirePeriod": 0.0,
    }.items():
        ca.put("cam1:" + name, value)
    ca.put("Pva1:EnableCallbacks", 1)
    ca.put("image1:EnableCallbacks", 1)
    ca.put("cam1:Acquire", 1)
    ca.wait_value("Pva1:ArrayCounter_RBV", 1)
    yield handle, ca
    ca.close()


def pva_conf(ca_port: int) -> dict[str, str]:
    """Client settings reaching the IOC's pvAccess server (UDP CA+2, TCP CA+3)."""
    return {
        "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{ca_port + 2}",
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_BROADCAST_PORT": str(ca_port + 2),
        "EPICS_PVA_SERVER_PORT": str(ca_port + 3),
    }


def test_p4p_client_reads_the_frame(pva_ioc):
    from p4p.client.thread import Context

    handle, ca = pva_ioc
    assert ca.get("Pva1:PvName_RBV") == handle.prefix + "Pva1:Image"
    ctx = Context("pva", conf=pva_conf(handle.port), useenv=False)
    try:
        # the frame was posted before Pva1:ArrayCounter_RBV counted it
        image = ctx.get(handle.prefix + "Pva1:Image", timeout=10.0)
        raw = image.raw
    finally:
        ctx.close()
    assert image.shape == (3, 4)
    assert image.dtype == np.uint8
    expected = np.asarray(ca.get("image1:ArrayData"), dtype=np.uint8)[:12].reshape(3, 4)
    np.testing.assert_array_equal(image, expected)  # the same frame as over CA
    assert raw.uniqueId == ca.get("Pva1:UniqueId_RBV")  # the array's id (the cam shows 0)
    assert [d.size for d in raw.dimension] == [4, 3]
    assert raw.codec.name == "" and raw.compressedSize == raw.uncompressedSize == 12
    attributes = {a.name: a.value for a in raw.attribute}
    assert attributes["ColorMode"] == 0


@pytest.mark.skipif(not TARBALL.exists(), reason=f"the real IOC ({TARBALL}) is absent")
def test_pvget_shows_what_the_real_ioc_serves(pva_ioc, tmp_path):
    handle, ca = pva_ioc
    member = "real-adsim/base/bin/linux-x86_64/pvget"
    with tarfile.open(TARBALL) as tar:
        tar.extract(member, tmp_path, filter="data")
    pvget = tmp_path / member
    env = dict(os.environ, **pva_conf(handle.port))
    out = subprocess.run(
        [str(pvget), "-w", "10", "-v", handle.prefix + "Pva1:Image"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    ).stdout
    assert normalise(out, ca.get("Pva1:UniqueId_RBV")) == REAL_PVGET
