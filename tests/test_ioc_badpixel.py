"""NDPluginBadPixel (BadPix1:) in the commonPlugins instance, over Channel Access.

The expected frames were read from the real IOC (ADCore R3-14) through image1
(NDArrayPort BADPIX1) after the same puts: 16 x 12 UInt16 LinearRamp frames at Gain 3
(pixel 3 (x + y)), unbinned and binned 2 x 2, with the bad-pixel file below.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ioc_helpers import wait_for
from test_ioc_roistat import common, ioc_factory  # noqa: F401 (fixtures)

#: every mode, a replacement that is itself bad, a neighbourhood holding a bad pixel,
#: a pixel outside the array, an entry without a mode, and a pixel listed twice
BAD_PIXELS = {
    "Bad pixels": [
        {"Pixel": [2, 1], "Set": 7.9},
        {"Pixel": [5, 3], "Replace": [1, 0]},
        {"Pixel": [6, 3], "Set": 200},
        {"Pixel": [6, 4], "Replace": [0, -1]},
        {"Pixel": [8, 8], "Median": [1, 1]},
        {"Pixel": [9, 8], "Set": 250},
        {"Pixel": [0, 0], "Median": [1, 2]},
        {"Pixel": [15, 11], "Median": [2, 2]},
        {"Pixel": [40, 40], "Set": 1},
        {"Pixel": [3, 6]},
        {"Pixel": [2, 1], "Set": 99},
    ]
}
#: the real IOC's output, unbinned: the ramp but these pixels (x, y) -> value
REAL_CHANGED = {(2, 1): 7, (6, 3): 200, (9, 8): 250, (8, 8): 48, (0, 0): 6, (15, 11): 72}
#: binned 2 x 2 (image1 shows the UInt16 sums modulo 256)
REAL_BINNED = [
    [96, 7, 96, 120, 144, 168, 192, 216],
    [72, 96, 144, 200, 168, 192, 216, 240],
    [96, 120, 144, 200, 192, 216, 240, 8],
    [120, 156, 168, 192, 216, 240, 8, 32],
    [144, 168, 192, 216, 250, 8, 32, 56],
    [168, 192, 216, 240, 8, 32, 56, 32],
]


@pytest.fixture
def badpix(common):  # noqa: F811
    ca = common[1]
    for name, value in {
        "ImageMode": "Single",
        "SizeX": 16,
        "SizeY": 12,
        "BinX": 1,
        "BinY": 1,
        "MinX": 0,
        "MinY": 0,
        "DataType": "UInt16",
        "ColorMode": "Mono",
        "SimMode": "LinearRamp",
        "Noise": 0.0,
        "Offset": 0.0,
        "Gain": 3.0,
        "AcquireTime": 0.001,
        "AcquirePeriod": 0.0,
    }.items():
        ca.put("cam1:" + name, value)
    ca.put("BadPix1:EnableCallbacks", 1)
    ca.put("BadPix1:BlockingCallbacks", 1)
    ca.put("image1:NDArrayPort", "BADPIX1")
    ca.put("image1:EnableCallbacks", 1)
    yield ca
    for name, value in {
        "image1:NDArrayPort": "SIM1",
        "BadPix1:EnableCallbacks": 0,
        "cam1:BinX": 1,
        "cam1:BinY": 1,
        "cam1:Gain": 1.0,
    }.items():
        ca.put(name, value)


def shot(ca, shape: tuple[int, int]) -> np.ndarray:
    before = ca.get("image1:ArrayCounter_RBV")
    ca.put("cam1:Acquire", 1)
    ca.wait_value("image1:ArrayCounter_RBV", before + 1)
    n = shape[0] * shape[1]
    return np.asarray(ca.get("image1:ArrayData"))[:n].astype(np.uint8).reshape(shape)


def test_boot_as_the_real_ioc(common):  # noqa: F811
    ca = common[1]
    assert ca.get("BadPix1:PluginType_RBV") == "NDPluginBadPixel"
    assert ca.get("BadPix1:ArrayCallbacks", as_string=True) == "Enable"
    assert ca.get("BadPix1:FileName") == ""
    assert ca.pv("BadPix1:FileName").channel.native_data_count == 256


def test_bad_pixels_fixed_as_the_real_ioc(badpix, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(BAD_PIXELS))
    badpix.put("BadPix1:FileName", str(path))
    out = shot(badpix, (12, 16))
    y, x = np.mgrid[0:12, 0:16]
    expected = 3 * (x + y)
    for (px, py), value in REAL_CHANGED.items():
        expected[py, px] = value
    np.testing.assert_array_equal(out, expected)

    # a corrupt file and a missing one: errors, the previous list stays in use
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"Bad pixels": [ {"Pixel": [1, 1], "Set": 3}, ')
    for bad in (corrupt, tmp_path / "missing.json"):
        badpix.put("BadPix1:FileName", str(bad))
        out = shot(badpix, (12, 16))
        assert out[1, 2] == 7 and out[3, 6] == 200 and out[1, 1] != 3

    badpix.put("BadPix1:FileName", str(path))
    badpix.put("cam1:BinX", 2)
    badpix.put("cam1:BinY", 2)
    out = shot(badpix, (6, 8))
    # binned pixel (1, 3) holds the entry without a mode: ADCore leaves that mode
    # uninitialised and the real IOC wrote 156 there (left alone unbinned); we leave it
    undefined = np.zeros((6, 8), bool)
    undefined[3, 1] = True
    np.testing.assert_array_equal(out[~undefined], np.asarray(REAL_BINNED)[~undefined])


def test_corrupt_file_error_names_the_file(common, tmp_path):  # noqa: F811
    """The IOC logs an error naming the file (its stderr), and survives."""
    handle, ca = common
    corrupt = tmp_path / "corrupt-list.json"
    corrupt.write_text("{not json")
    ca.put("BadPix1:FileName", str(corrupt))
    assert ca.get("BadPix1:FileName") == str(corrupt)
    wait_for(
        lambda: any(str(corrupt) in line and "ERROR" in line for line in handle.process.output),
        timeout=10,
        what="an error naming the bad-pixel file in the IOC's output",
    )
    assert ca.get("BadPix1:PluginType_RBV") == "NDPluginBadPixel"
