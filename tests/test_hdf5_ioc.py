"""HDF1 in the simulated IOC, end to end: ophyd + bluesky + databroker + handlers.

Frames read back through area-detector-handlers are compared with the
simDetector LinearRamp computed here independently (x + y + frame, times the
colour gains, in the data type), never with the IOC's own code.
"""

from __future__ import annotations

import os
import resource
import signal

import h5py
import hdf5plugin  # noqa: F401  (Blosc/LZ4/bitshuffle for the handlers' h5py reads)
import numpy as np
import pytest
from conftest import acquire
from ioc_helpers import CA, wait_for

pytestmark = pytest.mark.ioc

#: "empty" for long-string waveforms: caproto's server currently rejects a put of
#: "" to a CHAR waveform (a lone NUL), so tests clear them with a blank, which
#: the layout and attributes readers treat as empty.
EMPTY = ""

NY, NX = 48, 64


def expected_frame(k: int, dtype: str, color: str, gains=(1.0, 2.0, 3.0)) -> np.ndarray:
    """LinearRamp frame k after a reset (Gain 1, GainX/Y 1), as simDetector makes it."""
    y, x = np.mgrid[0:NY, 0:NX]
    base = (x + y + k).astype(np.float64)
    if color == "RGB1":
        base = np.stack([g * base for g in gains], axis=-1)
    if dtype == "UInt8":
        return (np.trunc(base).astype(np.int64) % 256).astype(np.uint8)
    return base.astype(np.float64)


@pytest.fixture(scope="module")
def det(ioc, ca):
    """An ophyd SimDetector whose HDF1 is ophyd's FileStoreHDF5IterativeWrite plugin."""
    from ophyd import Component as Cpt
    from ophyd.areadetector import SimDetector, SingleTrigger
    from ophyd.areadetector.filestore_mixins import FileStoreHDF5IterativeWrite
    from ophyd.areadetector.plugins import HDF5Plugin

    class HDF5WithFileStore(HDF5Plugin, FileStoreHDF5IterativeWrite):
        pass

    write = str(ioc.write_root / "ophyd") + "/"
    read = str(ioc.read_root / "ophyd") + "/"
    (ioc.read_root / "ophyd").mkdir(exist_ok=True)

    class Det(SingleTrigger, SimDetector):
        hdf1 = Cpt(
            HDF5WithFileStore,
            "HDF1:",
            write_path_template=write,
            read_path_template=read,
            root=str(ioc.read_root),
        )

    device = Det(ioc.prefix, name="det")
    # every signal, the lazy ones too: describe() creates ArraySize*_RBV on first use
    # and ophyd waits only 1 s for a lazy signal, too short on a loaded machine
    device.wait_for_connection(all_signals=True, timeout=60)
    device.read_attrs = ["hdf1"]
    device.hdf1.read_attrs = []
    yield device
    try:
        device.unstage()
    except Exception:
        pass


@pytest.fixture(scope="module")
def db_and_re():
    import databroker
    from bluesky import RunEngine

    db = databroker.temp()
    RE = RunEngine({})
    RE.subscribe(db.insert)
    return db, RE


CASES = [
    # (data type, color, frames per point, compression)
    ("UInt8", "Mono", 1, "None"),
    ("UInt8", "Mono", 3, "zlib"),
    ("Float64", "Mono", 2, "None"),
    ("Float64", "Mono", 1, "Blosc"),
    ("UInt8", "RGB1", 2, "None"),
    ("UInt8", "RGB1", 1, "LZ4"),
    ("UInt8", "Mono", 2, "BSLZ4"),
]


@pytest.mark.parametrize("dtype, color, fpp, compression", CASES)
def test_ophyd_databroker_round_trip(cam, ioc, det, db_and_re, dtype, color, fpp, compression):
    from bluesky.plans import count

    db, RE = db_and_re
    cam.put("cam1:DataType", dtype)
    cam.put("cam1:ColorMode", color)
    for name, gain in (("GainRed", 1.0), ("GainGreen", 2.0), ("GainBlue", 3.0)):
        cam.put("cam1:" + name, gain)
    # long enough that ophyd's SingleTrigger sees Acquire go 1 -> 0 after trigger()
    # returned (with 1 ms the edge can beat it and trigger() returns None)
    cam.put("cam1:AcquireTime", 0.05)
    cam.put("HDF1:NDArrayPort", "SIM1")
    cam.put("HDF1:Compression", compression)
    cam.put("HDF1:XMLFileName", EMPTY)
    det.hdf1.warmup()  # prime the plugin with this size/type (ophyd's own way)
    cam.put("cam1:SimMode", "LinearRamp")  # restart the ramp at frame 0
    det.cam.stage_sigs["num_images"] = fpp
    points = 2
    (uid,) = RE(count([det], num=points))
    run = db[uid]
    images = list(run.data("det_image", fill=True))
    assert len(images) == points
    k = 0
    for image in images:
        image = np.asarray(image)
        shape = (fpp, NY, NX) + ((3,) if color == "RGB1" else ())
        assert image.shape == shape
        for j in range(fpp):
            np.testing.assert_array_equal(image[j], expected_frame(k, dtype, color))
            k += 1
    # the file behind the datum is a real NDFileHDF5 file
    files = [
        os.path.join(doc["root"], doc["resource_path"])
        for name, doc in run.documents()
        if name == "resource"
    ]
    assert len(files) == 1
    for path in files:
        with h5py.File(path, "r") as f:
            data = f["/entry/instrument/detector/data"]
            assert data.shape[0] == points * fpp
            assert f["/entry/data/data"].id == data.id
            uids = f["/entry/instrument/NDAttributes/NDArrayUniqueId"][:]
            assert np.all(np.diff(uids) == 1)
            if compression == "zlib":
                assert data.compression == "gzip"
    assert cam.get("HDF1:WriteStatus") == 0


def test_xml_file_name_put_validation(cam, ioc, tmp_path):
    cam.put("HDF1:XMLFileName", EMPTY)
    assert cam.get("HDF1:XMLValid_RBV") == 1
    assert cam.get("HDF1:XMLErrorMsg_RBV") == "Default layout selected"
    cam.put("HDF1:XMLFileName", str(ioc.write_root / "no_such_layout.xml"))
    assert cam.get("HDF1:XMLValid_RBV") == 0
    assert "cannot be opened" in cam.get("HDF1:XMLErrorMsg_RBV")
    cam.put("HDF1:XMLFileName", '<?xml version="1.0"?><hdf5_layout><group name="g"></hdf5_layout>')
    assert cam.get("HDF1:XMLValid_RBV") == 0
    assert "parser error" in cam.get("HDF1:XMLErrorMsg_RBV")
    cam.put(
        "HDF1:XMLFileName",
        '<?xml version="1.0"?><hdf5_layout><group name="g">'
        '<dataset name="d" source="detector"/></group></hdf5_layout>',
    )
    assert cam.get("HDF1:XMLValid_RBV") == 1
    cam.put("HDF1:XMLFileName", EMPTY)


def _capture(cam, frames: int) -> str:
    """Start a capture, acquire ``frames`` frames, wait for it to end; the file's name."""
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    full = cam.get("HDF1:FullFileName_RBV")
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", frames)
    acquire(cam, frames)
    cam.wait_value("HDF1:Capture_RBV", 0)
    return full


def _stream_setup(cam, folder, name, num_capture=0, **extra):
    cam.put("HDF1:EnableCallbacks", 1)
    cam.put("HDF1:BlockingCallbacks", "Yes")
    acquire(cam)  # prime
    settings = {
        "FilePath": str(folder),
        "FileName": name,
        "FileTemplate": "%s%s_%3.3d.h5",
        "FileNumber": 0,
        "AutoIncrement": "Yes",
        "FileWriteMode": "Stream",
        "NumCapture": num_capture,
        "LazyOpen": "No",
        "TempSuffix": "",
        "XMLFileName": EMPTY,
        "Compression": "None",
    }
    settings.update(extra)
    for key, value in settings.items():
        cam.put("HDF1:" + key, value)


def test_cam_and_plugin_ndattributes_reach_the_file(cam, ioc):
    folder = ioc.write_root / "attrs"
    folder.mkdir(exist_ok=True)
    cam_attrs = (
        "<Attributes>"
        '<Attribute name="Model" type="PARAM" source="MODEL" datatype="STRING" description="m"/>'
        '<Attribute name="AcqTime" type="EPICS_PV" source="$(P)cam1:AcquireTime" dbrtype="DBR_DOUBLE"/>'
        '<Attribute name="Ten" type="FUNCTION" source="myAttrFunct1" param="10"/>'
        "</Attributes>"
    )
    # NDAttributesFile is CHAR[256]: a longer list must be a file
    (ioc.read_root / "cam_attrs.xml").write_text(cam_attrs)
    cam.put("cam1:NDAttributesMacros", f"P={ioc.prefix}")
    cam.put("cam1:NDAttributesFile", str(ioc.write_root / "cam_attrs.xml"))
    assert cam.get("cam1:NDAttributesStatus") == 0
    cam.put(
        "HDF1:NDAttributesFile",
        '<Attributes><Attribute name="Where" type="CONST" source="HDF1"/>'
        '<Attribute name="Captured" type="PARAM" source="NUM_CAPTURED" datatype="INT"/></Attributes>',
    )
    assert cam.get("HDF1:NDAttributesStatus") == 0
    # the EPICS_PV attribute is served by this same IOC: its monitor must connect
    _stream_setup(cam, folder, "attrs", num_capture=3)
    acquire(cam)  # one frame first, so the CA monitor of AcqTime has its value
    full = _capture(cam, 3)
    with h5py.File(full, "r") as f:
        g = f["/entry/instrument/NDAttributes"]
        assert list(g["Model"][:]) == [b"Basic simulator"] * 3
        assert g["AcqTime"].dtype == np.float64 and np.all(g["AcqTime"][:] == 0.001)
        assert s_attr(g["AcqTime"], "NDAttrSource") == f"{ioc.prefix}cam1:AcquireTime"
        assert list(g["Ten"][:]) == [10] * 3
        assert list(g["Where"][:]) == [b"HDF1"] * 3
        assert s_attr(g["Where"], "NDAttrSourceType") == "NDAttrSourceConst"
    # bad files set the status PVs
    cam.put("cam1:NDAttributesFile", str(ioc.write_root / "missing_attrs.xml"))
    assert cam.get("cam1:NDAttributesStatus") == 1
    cam.put("cam1:NDAttributesFile", "<Attributes><Attribute name='a'></Attributes>")
    assert cam.get("cam1:NDAttributesStatus") == 2
    cam.put("cam1:NDAttributesMacros", EMPTY)
    cam.put(
        "cam1:NDAttributesFile", '<Attributes><Attribute name="a" source="$(NOPE)x"/></Attributes>'
    )
    assert cam.get("cam1:NDAttributesStatus") == 0  # no macros given: nothing is expanded
    cam.put("cam1:NDAttributesMacros", "OTHER=1")
    assert cam.get("cam1:NDAttributesStatus") == 3
    cam.put("cam1:NDAttributesFile", EMPTY)
    cam.put("cam1:NDAttributesMacros", EMPTY)
    cam.put("HDF1:NDAttributesFile", EMPTY)


def test_epics_pv_attribute_of_an_ioc_started_later(cam, ioc, ioc_factory):
    """The race of an EPICS_PV monitor without its first value when the file opens,
    made deterministic: the PV lives in an IOC that starts only after HDF1 loaded the
    attributes (the put of NDAttributesFile does not wait for it).  The attribute
    dataset gets the PV's native type (longout NumImages: LONG -> int32), not an
    undefined float32 NaN, and every frame carries the PV's value."""
    folder = ioc.write_root / "late_pv"
    folder.mkdir(exist_ok=True)
    late = "adtlate:"
    cam.put(
        "HDF1:NDAttributesFile",
        f'<Attributes><Attribute name="Late" source="{late}cam1:NumImages"'
        ' description="from an IOC started later"/></Attributes>',
    )
    assert cam.get("HDF1:NDAttributesStatus") == 0
    other_ioc = ioc_factory(prefix=late)
    other = CA(other_ioc.prefix)
    try:
        other.put("cam1:NumImages", 7)
        _stream_setup(cam, folder, "late", num_capture=3)
        full = _capture(cam, 3)
    finally:
        other.close()
        cam.put("HDF1:NDAttributesFile", EMPTY)
    with h5py.File(full, "r") as f:
        dset = f["/entry/instrument/NDAttributes/Late"]
        assert dset.dtype == np.int32
        assert list(dset[:]) == [7, 7, 7]
        assert s_attr(dset, "NDAttrSource") == f"{late}cam1:NumImages"


def test_compression_the_ioc_cannot_do_is_said_in_write_message(cam, ioc):
    """JPEG (hdf5plugin has no JPEG filter): the file is written uncompressed, WriteStatus
    stays OK and WriteMessage says why; the next good file clears the message."""
    folder = ioc.write_root / "jpeg_fallback"
    folder.mkdir(exist_ok=True)
    _stream_setup(cam, folder, "jpeg", num_capture=2, Compression="JPEG")
    full = _capture(cam, 2)
    assert cam.get("HDF1:WriteStatus") == 0
    assert (
        cam.get("HDF1:WriteMessage")
        == "JPEG compression is not available here: frames stored uncompressed"
    )
    with h5py.File(full, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (2, NY, NX)
        assert data.id.get_create_plist().get_nfilters() == 0
    cam.put("HDF1:Compression", "None")
    cam.put("HDF1:NumCapture", 1)
    cam.put("cam1:ImageMode", "Single")
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    acquire(cam)
    cam.wait_value("HDF1:Capture_RBV", 0)
    assert cam.get("HDF1:WriteMessage") == ""


def s_attr(obj, name):
    value = obj.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- faults


def _capture_fails(cam, message_part):
    cam.put("HDF1:Capture", 1, wait=False)
    wait_for(lambda: cam.get("HDF1:WriteStatus") == 1, 10, "WriteStatus = Write error")
    assert cam.get("HDF1:Capture_RBV") == 0
    assert cam.get("HDF1:Capture") == 0
    message = cam.get("HDF1:WriteMessage")
    assert message_part in message, message
    return message


def test_missing_directory_is_a_write_error(cam, ioc):
    folder = ioc.write_root / "faults_missing"
    folder.mkdir(exist_ok=True)
    _stream_setup(cam, folder, "ok", num_capture=1)
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    good = cam.get("HDF1:FullFileName_RBV")
    acquire(cam)
    cam.wait_value("HDF1:Capture_RBV", 0)
    before = open(good, "rb").read()
    cam.put("HDF1:CreateDirectory", 0)
    cam.put("HDF1:FilePath", str(folder / "gone"))
    _capture_fails(cam, "No such file or directory")
    # the IOC keeps serving and the earlier file is untouched
    assert cam.get("cam1:Acquire_RBV") == 0
    acquire(cam)
    assert open(good, "rb").read() == before
    with h5py.File(good, "r") as f:
        assert f["/entry/data/data"].shape == (1, NY, NX)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories anyway")
def test_unwritable_directory_is_a_write_error(cam, ioc):
    folder = ioc.write_root / "faults_readonly"
    folder.mkdir(exist_ok=True)
    _stream_setup(cam, folder, "ro", num_capture=1)
    folder.chmod(0o500)
    try:
        _capture_fails(cam, "Permission denied")
    finally:
        folder.chmod(0o700)


def test_failed_rename_is_a_write_error(cam, ioc):
    folder = ioc.write_root / "faults_rename"
    folder.mkdir(exist_ok=True)
    _stream_setup(cam, folder, "ren", num_capture=1, TempSuffix=".tmp")
    # the final name is taken by a non-empty directory: the rename must fail
    blocker = folder / "ren_000.h5"
    blocker.mkdir(exist_ok=True)
    (blocker / "keep").write_text("x")
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    acquire(cam)
    wait_for(lambda: cam.get("HDF1:WriteStatus") == 1, 10, "WriteStatus = Write error")
    assert "Error renaming temporary file" in cam.get("HDF1:WriteMessage")
    cam.wait_value("HDF1:Capture_RBV", 0)
    # the data is still there, under the temporary name
    with h5py.File(folder / "ren_000.h5.tmp", "r") as f:
        assert f["/entry/data/data"].shape == (1, NY, NX)
    cam.put("HDF1:TempSuffix", "")


def test_full_disk_is_a_write_error_and_files_closed_earlier_survive(ioc_factory, tmp_path):
    handle = ioc_factory(prefix="adtfull:")
    ca = CA(handle.prefix)
    try:
        folder = handle.write_root / "full"
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in {
            "SizeX": 512,
            "SizeY": 512,
            "DataType": "UInt8",
            "ImageMode": "Single",
            "AcquireTime": 0.001,
            "AcquirePeriod": 0,
        }.items():
            ca.put("cam1:" + key, value)
        ca.put("HDF1:NDArrayPort", "SIM1")
        ca.put("HDF1:EnableCallbacks", 1)
        ca.put("HDF1:BlockingCallbacks", "Yes")
        acquire(ca)
        for key, value in {
            "FilePath": str(folder),
            "FileName": "full",
            "FileTemplate": "%s%s_%3.3d.h5",
            "AutoIncrement": "Yes",
            "FileWriteMode": "Stream",
            "NumCapture": 2,
        }.items():
            ca.put("HDF1:" + key, value)
        ca.put("HDF1:Capture", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 1)
        first = ca.get("HDF1:FullFileName_RBV")
        ca.put("cam1:ImageMode", "Multiple")
        ca.put("cam1:NumImages", 2)
        acquire(ca, 2)
        ca.wait_value("HDF1:Capture_RBV", 0)
        before = open(first, "rb").read()
        # now the IOC process may write files of at most 6 MB: a "full disk"
        limit = 6 * 1024 * 1024
        resource.prlimit(handle.process.process.pid, resource.RLIMIT_FSIZE, (limit, limit))
        ca.put("HDF1:NumCapture", 0)
        ca.put("HDF1:Capture", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 1)
        second = ca.get("HDF1:FullFileName_RBV")
        ca.put("cam1:NumImages", 40)
        ca.put("cam1:Acquire", 1)
        wait_for(lambda: ca.get("HDF1:WriteStatus") == 1, 30, "WriteStatus = Write error")
        assert "File too large" in ca.get("HDF1:WriteMessage")
        ca.wait_value("HDF1:Capture_RBV", 0, timeout=30)
        ca.wait_value("cam1:Acquire_RBV", 0, timeout=30)
        # the IOC still serves, the first file is untouched, the second holds what fitted
        assert ca.get("cam1:Model_RBV") == "Basic simulator"
        assert open(first, "rb").read() == before
        with h5py.File(second, "r") as f:
            n = f["/entry/data/data"].shape[0]
            assert 1 <= n < 40
            frames = f["/entry/data/data"][:]
        assert os.path.getsize(second) <= limit
        assert frames.shape == (n, 512, 512)
        assert handle.process.running
    finally:
        ca.close()


def test_swmr_frames_survive_sigkill_of_the_ioc(ioc_factory):
    handle = ioc_factory(prefix="adtswmr:")
    ca = CA(handle.prefix)
    try:
        folder = handle.write_root / "swmr"
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in {
            "SizeX": 64,
            "SizeY": 48,
            "DataType": "UInt8",
            "AcquireTime": 0.001,
            "ImageMode": "Single",
        }.items():
            ca.put("cam1:" + key, value)
        ca.put("HDF1:NDArrayPort", "SIM1")
        ca.put("HDF1:EnableCallbacks", 1)
        ca.put("HDF1:BlockingCallbacks", "Yes")
        acquire(ca)
        for key, value in {
            "FilePath": str(folder),
            "FileName": "swmr",
            "FileTemplate": "%s%s_%3.3d.h5",
            "FileWriteMode": "Stream",
            "NumCapture": 0,
            "SWMRMode": "On",
            "NumFramesFlush": 2,
        }.items():
            ca.put("HDF1:" + key, value)
        ca.put("cam1:SimMode", "LinearRamp")
        ca.put("HDF1:Capture", 1, wait=False)
        ca.wait_value("HDF1:Capture_RBV", 1)
        assert ca.get("HDF1:SWMRActive_RBV") == 1
        path = ca.get("HDF1:FullFileName_RBV")
        ca.put("cam1:ImageMode", "Multiple")
        ca.put("cam1:NumImages", 6)
        acquire(ca, 6)
        wait_for(lambda: ca.get("HDF1:NumCaptured_RBV") == 6, 10, "6 frames captured")
        wait_for(lambda: ca.get("HDF1:SWMRCbCounter_RBV") >= 3, 10, "3 flushes")
        handle.process.process.send_signal(signal.SIGKILL)
        handle.process.process.wait(timeout=30)
    finally:
        ca.close()
    with h5py.File(path, "r", swmr=True) as f:
        data = f["/entry/data/data"]
        assert data.shape[0] == 6
        for k in range(6):
            np.testing.assert_array_equal(data[k], expected_frame(k, "UInt8", "Mono"))


def test_flush_now_chunk_and_speed_readbacks(cam, ioc):
    folder = ioc.write_root / "flushnow"
    folder.mkdir(exist_ok=True)
    _stream_setup(
        cam,
        folder,
        "fl",
        num_capture=0,
        SWMRMode="On",
        NumFramesFlush=0,
        ChunkSizeAuto="No",
        NumColChunks=16,
        NumRowChunks=1000,
        NumFramesChunks=2,
    )
    cam.put("HDF1:Capture", 1, wait=False)
    cam.wait_value("HDF1:Capture_RBV", 1)
    path = cam.get("HDF1:FullFileName_RBV")
    assert cam.get("HDF1:SWMRActive_RBV") == 1
    # the chosen chunking is written back (rows clamped to the frame height)
    assert cam.get("HDF1:NumColChunks_RBV") == 16
    assert cam.get("HDF1:NumRowChunks_RBV") == NY
    assert cam.get("HDF1:NumFramesChunks_RBV") == 2
    cam.put("cam1:ImageMode", "Multiple")
    cam.put("cam1:NumImages", 3)
    acquire(cam, 3)
    wait_for(lambda: cam.get("HDF1:NumCaptured_RBV") == 3, 10, "3 frames captured")
    counter = cam.get("HDF1:SWMRCbCounter_RBV")
    cam.put("HDF1:FlushNow", 1)  # busy record: returns when the flush is done
    assert cam.get("HDF1:FlushNow") == 0
    assert cam.get("HDF1:SWMRCbCounter_RBV") == counter + 1
    with h5py.File(path, "r", swmr=True) as f:
        data = f["/entry/data/data"]
        assert data.shape == (3, NY, NX) and data.chunks == (2, NY, 16)
        frames = data[:].astype(int)
        # consecutive LinearRamp frames, the third one in a partly filled chunk
        assert np.all((frames[1] - frames[0]) % 256 == 1)
        assert np.all((frames[2] - frames[1]) % 256 == 1)
        y, x = np.mgrid[0:NY, 0:NX]
        assert np.all((frames[0] - (x + y)) % 256 == frames[0, 0, 0])
        last = cam.get("HDF1:UniqueId_RBV")
        uids = f["/entry/instrument/NDAttributes/NDArrayUniqueId"][:]
        assert list(uids) == [last - 2, last - 1, last]
    cam.put("HDF1:Capture", 0)
    cam.wait_value("HDF1:Capture_RBV", 0)
    assert cam.get("HDF1:SWMRActive_RBV") == 0
    assert cam.get("HDF1:RunTime") > 0 and cam.get("HDF1:IOSpeed") > 0
    with h5py.File(path, "r") as f:
        assert f["/entry/instrument/performance/timestamp"].shape == (3, 5)
    for key, value in {"SWMRMode": "Off", "ChunkSizeAuto": "Yes", "NumFramesChunks": 1}.items():
        cam.put("HDF1:" + key, value)
