"""Record shapes as the real templates define them: DBR types, lengths, enums, boot values."""

from __future__ import annotations

import pytest
from caproto import ChannelType

from adtoolkit.ioc.ndfile import create_file_path, format_file_name
from adtoolkit.ioc.records import compose, load_template

pytestmark = pytest.mark.ioc


@pytest.mark.parametrize(
    ("suffix", "dbr", "count"),
    [
        ("HDF1:FilePath", ChannelType.CHAR, 256),
        ("HDF1:FilePath_RBV", ChannelType.CHAR, 256),
        ("HDF1:FullFileName_RBV", ChannelType.CHAR, 512),
        ("HDF1:XMLFileName", ChannelType.CHAR, 2048),
        ("HDF1:WriteMessage", ChannelType.CHAR, 256),
        ("HDF1:TempSuffix", ChannelType.STRING, 1),
        ("HDF1:NDArrayPort", ChannelType.STRING, 1),
        ("HDF1:PluginType_RBV", ChannelType.STRING, 1),
        ("HDF1:Capture", ChannelType.ENUM, 1),
        ("HDF1:NumCapture", ChannelType.LONG, 1),
        ("HDF1:Dimensions_RBV", ChannelType.LONG, 10),
        ("cam1:AcquireTime", ChannelType.DOUBLE, 1),
        ("cam1:StatusMessage_RBV", ChannelType.CHAR, 256),
        ("image1:ArrayData", ChannelType.CHAR, 12_000_000),
    ],
)
def test_native_types_and_lengths(ca, suffix, dbr, count):
    pv = ca.pv(suffix)
    assert pv.channel.native_data_type == dbr
    if count > 1:
        assert pv.channel.native_data_count == count


@pytest.mark.parametrize(
    ("suffix", "strings"),
    [
        ("HDF1:FileWriteMode", ["Single", "Capture", "Stream"]),
        ("HDF1:FileFormat_RBV", ["HDF5", "Undefined"]),
        ("HDF1:WriteFile_RBV", ["Done", "Writing"]),
        ("HDF1:Compression", ["None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG"]),
        ("cam1:ColorMode", ["Mono", "RGB1", "RGB2", "RGB3"]),
        (
            "HDF1:ColorMode_RBV",
            ["Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421"],
        ),
        ("cam1:ImageMode", ["Single", "Multiple", "Continuous"]),
        ("cam1:SimMode", ["LinearRamp", "Peaks", "Sine", "Offset&Noise"]),
        (
            "cam1:DetectorState_RBV",
            [
                "Idle",
                "Acquire",
                "Readout",
                "Correct",
                "Saving",
                "Aborting",
                "Error",
                "Waiting",
                "Initializing",
                "Disconnected",
                "Aborted",
            ],
        ),
    ],
)
def test_enum_strings(ca, suffix, strings):
    reading = ca.pv(suffix).read(data_type=ChannelType.CTRL_ENUM)
    got = [s.decode() if isinstance(s, bytes) else s for s in reading.metadata.enum_strings]
    assert got == strings


def test_boot_values(ioc_factory):
    """Driver constructor values win over template VAL.

    asyn output records read the driver's value at iocInit and it replaces the db
    VAL (asyn's "Initial values of output records"), so the boot values are the
    defaults set in asynNDArrayDriver.cpp and NDFileHDF5.cpp; NumCapture has no
    driver default and keeps the template's VAL 1.
    """
    from ioc_helpers import CA

    handle = ioc_factory(prefix="adtb:")
    ca = CA(handle.prefix)
    try:
        expected = {
            "HDF1:FileNumber_RBV": 0,
            "HDF1:AutoIncrement_RBV": 0,
            "HDF1:NumCapture_RBV": 1,
            "HDF1:CreateDirectory_RBV": 0,
            "HDF1:ZLevel_RBV": 6,
            "HDF1:StoreAttr_RBV": 1,
            "HDF1:StorePerform_RBV": 1,
            "HDF1:BoundaryThreshold_RBV": 65536,
            "HDF1:FileTemplate_RBV": "",
            "HDF1:EnableCallbacks_RBV": 0,
            "cam1:ImageMode_RBV": 2,
            "cam1:NumImages_RBV": 100,
            "cam1:AcquireTime_RBV": 0.001,
            "cam1:AcquirePeriod_RBV": 0.005,
            "cam1:SizeX_RBV": 1024,
            "cam1:MaxSizeY_RBV": 1024,
            "cam1:DataType_RBV": 1,
            "cam1:ArrayCallbacks_RBV": 1,
            "cam1:PeakWidthY_RBV": 20,
            "cam1:XSine2Phase_RBV": 90.0,
            "cam1:Manufacturer_RBV": "Simulated detector",
            "cam1:Model_RBV": "Basic simulator",
            "image1:PortName_RBV": "Image1",
            "Stats1:PluginType_RBV": "NDPluginStats",
            "HDF1:NDArrayPort_RBV": "SIM1",
            "cam1:PortName_RBV": "SIM1",
            "HDF1:FilePathExists_RBV": 0,
        }
        got = {k: ca.get(k) for k in expected}
        assert got == expected
    finally:
        ca.close()


def test_tables_compose_with_overrides():
    hdf = compose("NDArrayBase", "NDPluginBase", "NDFile", "NDFileHDF5")
    template, spec = hdf["FileFormat"]
    assert template == "NDFileHDF5" and spec.enum_strings == ("HDF5", "Invalid")
    assert spec.drvinfo == "FILE_FORMAT"
    cam = compose("NDArrayBase", "ADBase", "simDetector")
    spec = cam["ColorMode"][1]
    assert spec.enum_strings == ("Mono", "RGB1", "RGB2", "RGB3")
    assert spec.enum_values == (0, 2, 3, 4)
    names = [s.name for s in load_template("NDFile")]
    assert len(names) == len(set(names)) == 38


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("%s%s_%3.3d.h5", "/d/x_007.h5"),
        ("%s%s_%6.6d.h5", "/d/x_000007.h5"),
        ("%s%s.h5", "/d/x.h5"),  # two %s: the number is ignored, as in C
        ("%s%s", "/d/x"),
        ("constant.h5", "constant.h5"),
    ],
)
def test_format_file_name(template, expected):
    assert format_file_name(template, "/d/", "x", 7) == expected


def test_create_file_path_depths(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    create_file_path(str(target), 0)
    assert not (tmp_path / "a").exists()
    create_file_path(str(target), -3)
    assert target.is_dir()
    other = tmp_path / "p" / "q"
    with pytest.raises(OSError):
        create_file_path(str(other), -1)  # q only, but p is missing
