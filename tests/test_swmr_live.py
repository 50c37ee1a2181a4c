"""Live reading: a second process watches a growing SWMR file during a 1,000-frame stream.

ADCore's NDFileHDF5 with ``SWMRMode=On`` lets readers see every flushed frame
while the file is still being written.  Here a real second Python process
opens the simulated IOC's file with ``swmr=True`` as soon as capture starts,
polls the frame count (``Dataset.refresh``), and reports every count it saw.
Frames are 16x8 UInt8 so the stream is quick; ``NumFramesFlush`` makes the
IOC flush every 50 frames, and ``AcquirePeriod`` spreads the 1,000 frames over
about two seconds so that the reader has flushes to see.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from conftest import acquire
from ioc_helpers import CA, wait_for

pytestmark = pytest.mark.ioc

FRAMES = 1000

READER = textwrap.dedent(
    """
    import json, sys, time
    import h5py

    path, frames, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    seen = []
    with h5py.File(path, "r", swmr=True) as f:
        ds = f["/entry/data/data"]
        print("ready", flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ds.refresh()
            n = ds.shape[0]
            if not seen or n != seen[-1]:
                seen.append(n)
            if n >= frames:
                break
        last = ds[n - 1].tolist() if n else None
    print(json.dumps({"seen": seen, "last": last}), flush=True)
    """
)


def test_second_process_sees_the_frame_count_rise(ioc_factory):
    handle = ioc_factory(prefix="adtlive:")
    ca = CA(handle.prefix)
    reader = None
    try:
        folder = handle.write_root / "live"
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in {
            "SizeX": 16,
            "SizeY": 8,
            "DataType": "UInt8",
            "ColorMode": "Mono",
            "AcquireTime": 0.0001,
            "AcquirePeriod": 0.002,
            "SimMode": "LinearRamp",
            "ImageMode": "Single",
        }.items():
            ca.put("cam1:" + key, value)
        ca.put("HDF1:NDArrayPort", "SIM1")
        ca.put("HDF1:EnableCallbacks", 1)
        ca.put("HDF1:BlockingCallbacks", "Yes")
        acquire(ca)  # the file plugin learns the frame dimensions from a first array
        for key, value in {
            "FilePath": str(folder),
            "FileName": "live",
            "FileTemplate": "%s%s_%3.3d.h5",
            "FileWriteMode": "Stream",
            "NumCapture": 0,  # the test stops capture once the reader is done
            "SWMRMode": "On",
            "NumFramesFlush": 50,
        }.items():
            ca.put("HDF1:" + key, value)
        ca.put("HDF1:Capture", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 1)
        assert ca.get("HDF1:SWMRActive_RBV") == 1
        path = ca.get("HDF1:FullFileName_RBV")
        ca.put("cam1:ImageMode", "Multiple")
        ca.put("cam1:NumImages", FRAMES)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, path, str(FRAMES), "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        ca.put("cam1:Acquire", 1)
        out, err = reader.communicate(timeout=180)
        assert reader.returncode == 0, err[-3000:]
        report = json.loads(out.strip().splitlines()[-1])
        ca.wait_value("cam1:Acquire_RBV", 0, timeout=60)
        wait_for(lambda: ca.get("HDF1:NumCaptured_RBV") == FRAMES, 30, "frames captured")
        ca.put("HDF1:Capture", 0)
        ca.wait_value("HDF1:Capture_RBV", 0, timeout=30)
        ca.put("HDF1:SWMRMode", "Off")
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait(timeout=30)
        ca.close()
    seen = report["seen"]
    assert seen == sorted(seen) and seen[-1] == FRAMES, seen
    # the count rose while the file was written: the reader saw intermediate counts
    growing = [n for n in seen if 0 < n < FRAMES]
    assert len(growing) >= 3, seen
    # the counts the reader saw are the IOC's flushes (every 50 frames); the file is
    # created with its first frame written
    assert all(n == 1 or n % 50 == 0 for n in growing), seen
    with h5py.File(path, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (FRAMES, 8, 16)
        assert np.array_equal(np.asarray(report["last"], dtype=np.uint8), data[FRAMES - 1])
        step = (data[1].astype(int) - data[0].astype(int)) % 256  # LinearRamp: +1 per frame
        assert np.all(step == 1)
