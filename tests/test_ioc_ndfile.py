"""NDFile machinery over CA: paths, names, modes, write-root confinement, real files."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from conftest import acquire
from ioc_helpers import wait_for

pytestmark = pytest.mark.ioc


def ramp(ny: int, nx: int, frame: int = 0, dtype=np.uint8) -> np.ndarray:
    """simDetector LinearRamp with gains 1: (x + y + frame) in the data type (C wrap)."""
    y, x = np.mgrid[0:ny, 0:nx]
    return ((x + y + frame) % 256).astype(dtype)


def test_file_path_gets_trailing_slash_and_exists(cam, ioc):
    d = ioc.write_root / "exists"
    d.mkdir(exist_ok=True)
    cam.put("HDF1:FilePath", str(d))
    assert cam.get("HDF1:FilePath_RBV") == str(d) + "/"
    assert cam.get("HDF1:FilePathExists_RBV") == 1
    cam.put("HDF1:FilePath", str(ioc.write_root / "missing"))
    assert cam.get("HDF1:FilePathExists_RBV") == 0
    assert not (ioc.read_root / "missing").exists()


@pytest.mark.parametrize(
    ("depth", "made"),
    [(0, []), (-2, ["c", "c/d"]), (-1, []), (2, ["c", "c/d"])],  # -1: only d, but c is missing
)
def test_create_directory_depth(cam, ioc, depth, made, tmp_path_factory):
    base = ioc.write_root / f"mk{depth + 10}"
    base.mkdir(exist_ok=True)
    target = base / "c" / "d"
    cam.put("TIFF1:CreateDirectory", depth)
    cam.put("TIFF1:FilePath", str(target))
    for rel in ["c", "c/d"]:
        assert (base / rel).is_dir() == (rel in made), rel
    assert cam.get("TIFF1:FilePathExists_RBV") == int("c/d" in made)
    cam.put("TIFF1:CreateDirectory", 0)


def test_create_directory_never_creates_first_level(cam, ioc):
    # -N creates at most N trailing directories and never the first level
    target = f"/adtoolkit_nonexistent_{os.getpid()}/x"
    cam.put("JPEG1:CreateDirectory", -5)
    cam.put("JPEG1:FilePath", target)
    assert not os.path.exists(target.rsplit("/", 1)[0])
    assert cam.get("JPEG1:FilePathExists_RBV") == 0
    cam.put("JPEG1:CreateDirectory", 0)


@pytest.mark.sim_only("write-root confinement is the simulated IOC's own safeguard")
def test_write_root_confinement(cam, ioc, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    cam.put("HDF1:CreateDirectory", -3)
    cam.put("HDF1:FilePath", str(outside))
    assert cam.get("HDF1:FilePathExists_RBV") == 0
    assert "outside the IOC write root" in cam.get("HDF1:WriteMessage")
    # '..' escapes are resolved
    sneaky = str(ioc.write_root / ".." / "escaped_dir")
    cam.put("HDF1:FilePath", sneaky)
    assert cam.get("HDF1:FilePathExists_RBV") == 0
    assert not os.path.exists(os.path.realpath(sneaky))
    # a symlink inside the root pointing outside is resolved too
    link = ioc.write_root / "link_out"
    if not link.exists():
        link.symlink_to(outside)
    cam.put("HDF1:FilePath", str(link / "deeper"))
    assert cam.get("HDF1:FilePathExists_RBV") == 0
    assert not (outside / "deeper").exists()
    # and no file is written there even when asked to
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("HDF1:FileWriteMode", "Single")
    cam.put("HDF1:AutoSave", "Yes")
    cam.put("HDF1:FileName", "nope")
    cam.put("HDF1:FileTemplate", "%s%s_%3.3d.h5")
    acquire(cam)
    wait_for(lambda: cam.get("HDF1:WriteStatus") == 1, 5, "WriteStatus error")
    assert list(outside.iterdir()) == []
    cam.put("HDF1:AutoSave", "No")
    cam.put("HDF1:CreateDirectory", 0)


def test_hdf5_stream_capture(cam, ioc):
    d = ioc.write_root / "stream"
    d.mkdir(exist_ok=True)
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("HDF1:BlockingCallbacks", "Yes")
    acquire(cam)  # prime: the plugin holds an array
    assert cam.get("HDF1:ArraySize0_RBV") == 64 and cam.get("HDF1:ArraySize1_RBV") == 48
    cam.put("HDF1:FilePath", str(d))
    cam.put("HDF1:FileName", "scan")
    cam.put("HDF1:FileTemplate", "%s%s_%6.6d.h5")
    cam.put("HDF1:FileNumber", 0)
    cam.put("HDF1:AutoIncrement", "Yes")
    cam.put("HDF1:FileWriteMode", "Stream")
    cam.put("HDF1:NumCapture", 3)
    cam.put("HDF1:LazyOpen", "No")
    counter_before = cam.get("HDF1:ArrayCounter_RBV")
    cam.put("HDF1:ArrayCounter", 0)
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    # the file is open at once and FileNumber_RBV is already the next number
    assert cam.get("HDF1:FileNumber_RBV") == 1
    full = cam.get("HDF1:FullFileName_RBV")
    assert full == f"{d}/scan_000000.h5"
    assert cam.get("HDF1:WriteFile_RBV") == 1
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 3)
    acquire(cam, 3)
    cam.wait_value("HDF1:Capture_RBV", 0)
    assert cam.get("HDF1:Capture") == 0  # the busy setpoint returned to Done too
    assert cam.get("HDF1:NumCaptured_RBV") == 3
    assert cam.get("HDF1:ArrayCounter_RBV") == 3
    assert cam.get("HDF1:WriteStatus") == 0
    with h5py.File(full, "r") as f:
        data = f["/entry/data/data"][()]
    assert data.shape == (3, 48, 64)
    # frames are consecutive ramps: each frame is the previous + 1 (Gain 1)
    assert np.array_equal(
        data[1].astype(int) - data[0], np.ones((48, 64), int) * 1 - 256 * (data[0] == 255)
    )
    assert counter_before >= 0


def test_two_s_template_and_capture_in_single_mode(cam, ioc):
    d = ioc.write_root / "single"
    d.mkdir(exist_ok=True)
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("HDF1:FilePath", str(d))
    cam.put("HDF1:FileName", "one")
    cam.put("HDF1:FileTemplate", "%s%s.h5")  # apstools' template: two %s must not raise
    cam.put("HDF1:FileWriteMode", "Single")
    cam.put("HDF1:AutoSave", "Yes")
    acquire(cam)
    wait_for(lambda: (d / "one.h5").exists(), 5, "one.h5")
    assert cam.get("HDF1:FullFileName_RBV") == f"{d}/one.h5"
    with h5py.File(d / "one.h5", "r") as f:
        assert f["/entry/data/data"].shape == (48, 64)
    cam.put("HDF1:AutoSave", "No")
    cam.put("HDF1:Capture", 1)
    assert cam.get("HDF1:Capture_RBV") == 0
    assert cam.get("HDF1:WriteMessage") == "ERROR: capture not supported in Single mode"


def test_stream_without_array_needs_priming_then_lazy_open(ioc_factory):
    from ioc_helpers import CA

    extra = ioc_factory(prefix="adtn:")
    ca = CA(extra.prefix)
    try:
        d = extra.write_root / "lazy"
        d.mkdir(parents=True)
        ca.put("HDF1:FilePath", str(d))
        ca.put("HDF1:FileName", "lazy")
        ca.put("HDF1:FileTemplate", "%s%s_%d.h5")
        ca.put("HDF1:FileWriteMode", "Stream")
        ca.put("HDF1:EnableCallbacks", 1)
        ca.put("HDF1:Capture", 1)
        assert ca.get("HDF1:Capture_RBV") == 0
        # as the real R3-14 IOC: the refusal goes to the IOC console only
        assert ca.get("HDF1:WriteMessage") == ""
        assert ca.get("HDF1:WriteStatus") == 0
        wait_for(
            lambda: any("collect an array to get dimensions" in x for x in extra.process.output),
            5,
            "the refusal on the IOC console",
        )
        # LazyOpen: no priming needed, the file opens on the first array
        ca.put("HDF1:LazyOpen", "Yes")
        ca.put("HDF1:NumCapture", 2)
        ca.put("HDF1:AutoIncrement", "Yes")
        ca.put("HDF1:Capture", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 1)
        assert ca.get("HDF1:WriteMessage") == "Lazy Open..."
        assert ca.get("HDF1:FileNumber_RBV") == 0  # not moved until the file opens
        for name, value in {
            "SizeX": 32,
            "SizeY": 16,
            "ImageMode": "Multiple",
            "NumImages": 2,
            "AcquirePeriod": 0.0,
            "AcquireTime": 0.001,
        }.items():
            ca.put("cam1:" + name, value)
        ca.put("cam1:Acquire", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 0, timeout=20)
        with h5py.File(d / "lazy_0.h5", "r") as f:
            assert f["/entry/data/data"].shape == (2, 16, 32)
        assert ca.get("HDF1:FileNumber_RBV") == 1
    finally:
        ca.close()


def test_tiff_and_jpeg_files(cam, ioc):
    import tifffile
    from PIL import Image

    d = ioc.write_root / "pictures"
    d.mkdir(exist_ok=True)
    for p in ("TIFF1:", "JPEG1:"):
        cam.put(p + "EnableCallbacks", 1)
        cam.put(p + "BlockingCallbacks", "Yes")
        cam.put(p + "FilePath", str(d))
        cam.put(p + "FileName", "img")
        cam.put(p + "FileNumber", 7)
        cam.put(p + "AutoIncrement", "Yes")
        cam.put(p + "FileWriteMode", "Single")
        cam.put(p + "AutoSave", "Yes")
    cam.put("TIFF1:FileTemplate", "%s%s_%3.3d.tif")
    cam.put("JPEG1:FileTemplate", "%s%s_%3.3d.jpg")
    cam.put("JPEG1:JPEGQuality", 95)
    cam.put("cam1:GainY", 0.0)  # smooth rows, friendly to JPEG
    acquire(cam)
    wait_for(lambda: (d / "img_007.tif").exists() and (d / "img_007.jpg").exists(), 10, "files")
    assert cam.get("TIFF1:FileNumber_RBV") == 8
    tif = tifffile.imread(d / "img_007.tif")
    assert tif.shape == (48, 64) and tif.dtype == np.uint8
    expected_first = tif[0]
    assert np.array_equal(tif, np.broadcast_to(expected_first, (48, 64)))
    assert np.array_equal(np.diff(tif[0].astype(int)) % 256, np.ones(63, int))
    jpg = np.asarray(Image.open(d / "img_007.jpg"))
    assert jpg.shape == (48, 64)
    assert np.abs(jpg.astype(int) - tif.astype(int)).mean() < 4
    for p in ("TIFF1:", "JPEG1:"):
        cam.put(p + "AutoSave", "No")


def test_temp_suffix_renamed_on_close(cam, ioc):
    d = ioc.write_root / "tmpsfx"
    d.mkdir(exist_ok=True)
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("HDF1:FilePath", str(d))
    cam.put("HDF1:FileName", "t")
    cam.put("HDF1:FileTemplate", "%s%s.h5")
    cam.put("HDF1:TempSuffix", ".tmp")
    cam.put("HDF1:FileWriteMode", "Single")
    cam.put("HDF1:AutoSave", "Yes")
    acquire(cam)
    wait_for(lambda: (d / "t.h5").exists(), 5, "t.h5")
    assert not (d / "t.h5.tmp").exists()
    assert cam.get("HDF1:FullFileName_RBV") == f"{d}/t.h5"
    cam.put("HDF1:TempSuffix", "")
    cam.put("HDF1:AutoSave", "No")


def test_capture_mode_buffers_then_writes_one_file(cam, ioc):
    d = ioc.write_root / "capture"
    d.mkdir(exist_ok=True)
    for name, value in {
        "EnableCallbacks": 1,
        "BlockingCallbacks": "Yes",
        "FilePath": str(d),
        "FileName": "cap",
        "FileTemplate": "%s%s_%d.h5",
        "FileNumber": 0,
        "AutoIncrement": "Yes",
        "FileWriteMode": "Capture",
        "NumCapture": 3,
        "AutoSave": "Yes",
        "ArrayCounter": 0,
    }.items():
        cam.put("HDF1:" + name, value)
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 5)  # more than NumCapture: the rest is not buffered
    acquire(cam, 5)
    cam.wait_value("HDF1:Capture_RBV", 0)
    wait_for(lambda: (d / "cap_0.h5").exists() and cam.get("HDF1:WriteFile_RBV") == 0, 10, "file")
    assert cam.get("HDF1:ArrayCounter_RBV") == 3  # counts buffered frames only
    assert cam.get("HDF1:NumCaptured_RBV") == 0  # counted down while writing
    with h5py.File(d / "cap_0.h5", "r") as f:
        assert f["/entry/data/data"].shape == (3, 48, 64)
    # Capture=0 early keeps the buffer; WriteFile writes it
    cam.put("HDF1:AutoSave", "No")
    cam.put("HDF1:NumCapture", 10)
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    cam.put("cam1:NumImages", 2)
    acquire(cam, 2)
    wait_for(lambda: cam.get("HDF1:NumCaptured_RBV") == 2, 10, "2 buffered")
    cam.put("HDF1:Capture", 0)
    assert not (d / "cap_1.h5").exists()
    cam.put("HDF1:WriteFile", 1)  # busy: returns when written
    with h5py.File(d / "cap_1.h5", "r") as f:
        assert f["/entry/data/data"].shape == (2, 48, 64)
    assert cam.get("HDF1:WriteFile_RBV") == 0


def test_single_mode_write_file_by_hand(cam, ioc):
    d = ioc.write_root / "byhand"
    d.mkdir(exist_ok=True)
    for name, value in {
        "EnableCallbacks": 1,
        "BlockingCallbacks": "Yes",
        "FilePath": str(d),
        "FileName": "hand",
        "FileTemplate": "%s%s.tif",
        "FileWriteMode": "Single",
        "AutoSave": "No",
    }.items():
        cam.put("TIFF1:" + name, value)
    acquire(cam)
    assert not (d / "hand.tif").exists()
    cam.put("TIFF1:WriteFile", 1)
    assert (d / "hand.tif").exists()
    assert cam.get("TIFF1:FullFileName_RBV") == f"{d}/hand.tif"


def test_capture_put_with_callback_completes_when_capture_ends(cam, ioc):
    """Capture is a busy record: a put-callback completes only when capture is over."""
    d = ioc.write_root / "busy"
    d.mkdir(exist_ok=True)
    for name, value in {
        "EnableCallbacks": 1,
        "BlockingCallbacks": "Yes",
        "FilePath": str(d),
        "FileName": "busy",
        "FileTemplate": "%s%s_%d.h5",
        "FileNumber": 0,
        "AutoIncrement": "Yes",
        "FileWriteMode": "Stream",
        "NumCapture": 4,
        "LazyOpen": "Yes",
    }.items():
        cam.put("HDF1:" + name, value)
    cam.put("cam1:ImageMode", "Continuous")
    cam.put("cam1:AcquirePeriod", 0.01)
    cam.put("cam1:Acquire", 1, wait=False)
    try:
        cam.put("HDF1:Capture", 1, wait=True, timeout=30)  # blocks until 4 frames are written
        assert cam.get("HDF1:Capture_RBV") == 0
        assert cam.get("HDF1:NumCaptured_RBV") == 4
    finally:
        cam.put("cam1:Acquire", 0)
    with h5py.File(d / "busy_0.h5", "r") as f:
        assert f["/entry/data/data"].shape == (4, 48, 64)
