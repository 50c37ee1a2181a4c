"""Simulated images, priming, image1, Stats and ROI, checked against numpy over CA.

Expected images are computed here, independently, from the simDetector formulas
(ADSimDetector simDetector.cpp): never by the IOC's own code.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import acquire
from ioc_helpers import wait_for

pytestmark = pytest.mark.ioc

NY, NX = 48, 64


def read_image(ca, shape=(NY, NX), dtype=np.uint8) -> np.ndarray:
    data = np.asarray(ca.get("image1:ArrayData"))
    n = int(np.prod(shape))
    return data[:n].view(np.uint8 if dtype == np.uint8 else data.dtype).astype(dtype).reshape(shape)


def wrap_u8(values) -> np.ndarray:
    """C conversion double -> epicsUInt8: truncate toward zero, keep the low 8 bits."""
    return (np.trunc(np.asarray(values, dtype=float)).astype(np.int64) % 256).astype(np.uint8)


def take(cam) -> np.ndarray:
    cam.put("image1:EnableCallbacks", 1)
    cam.put("image1:BlockingCallbacks", "Yes")
    uid = acquire(cam)
    cam.wait_value("image1:UniqueId_RBV", uid)
    return read_image(cam)


def test_linear_ramp_frames_and_region(cam):
    y, x = np.mgrid[0:NY, 0:NX]
    first = take(cam)
    assert np.array_equal(first, wrap_u8(x + y))
    second = take(cam)
    assert np.array_equal(second, wrap_u8(x + y + 1))  # += Gain per frame
    # region: MinX/MinY offset the sensor coordinates, GainX/GainY scale them
    cam.put("cam1:MinX", 10)
    cam.put("cam1:MinY", 5)
    cam.put("cam1:GainX", 2.0)  # resets the ramp
    img = take(cam)
    assert np.array_equal(img, wrap_u8(2 * (x + 10) + (y + 5)))
    assert cam.get("cam1:ArraySizeX_RBV") == NX and cam.get("cam1:ArraySizeY_RBV") == NY


def test_binning_and_reverse(cam):
    cam.put("cam1:BinX", 2)
    cam.put("cam1:BinY", 4)
    cam.put("cam1:ReverseX", 1)
    cam.put("cam1:SimMode", "LinearRamp")  # reset
    cam.put("image1:EnableCallbacks", 1)
    cam.put("image1:BlockingCallbacks", "Yes")
    uid = acquire(cam)
    cam.wait_value("image1:UniqueId_RBV", uid)
    assert cam.get("image1:ArraySize0_RBV") == NX // 2
    assert cam.get("image1:ArraySize1_RBV") == NY // 4
    img = read_image(cam, (NY // 4, NX // 2))
    y, x = np.mgrid[0:NY, 0:NX]
    full = (x + y).astype(np.int64)
    binned = full.reshape(NY // 4, 4, NX // 2, 2).sum(axis=(1, 3))
    assert np.array_equal(img, wrap_u8(binned[:, ::-1]))


def test_peaks(cam):
    sx, sy, wx, wy, gain = 30, 20, 4, 3, 100.0
    for name, value in {
        "PeakStartX": sx,
        "PeakStartY": sy,
        "PeakWidthX": wx,
        "PeakWidthY": wy,
        "PeakNumX": 1,
        "PeakNumY": 1,
        "Gain": gain,
        "SimMode": "Peaks",
    }.items():
        cam.put("cam1:" + name, value)
    img = take(cam)
    fwx, fwy = 2 * 4 * wx + 1, 2 * 4 * wy + 1
    expected = np.zeros((NY, NX))
    for yy in range(NY):
        for xx in range(NX):
            i, j = yy - sy + fwy // 2, xx - sx + fwx // 2
            if 0 <= i < fwy and 0 <= j < fwx:
                gx = np.exp(-(((j - fwx // 2) / wx) ** 2) / 2)
                gy = np.exp(-(((i - fwy // 2) / wy) ** 2) / 2)
                expected[yy, xx] = np.trunc(gain * gx * gy)
    assert np.array_equal(img, expected.astype(np.uint8))
    assert img.max() == 100 and img[sy, sx] == 100


def test_sine(cam):
    cam.put("cam1:Gain", 20.0)
    cam.put("cam1:SimMode", "Sine")
    img = take(cam)
    # defaults: XSine1 amp 1 freq 1 phase 0, XSine2 amp 1 freq 2 phase 90, same for Y, Add
    nsx, nsy = 1024, 1024  # computed on the full sensor (MaxSizeX/Y)
    xt = np.arange(NX) * 1.0 / nsx
    yt = np.arange(NY) * 1.0 / nsy
    xs = np.sin(xt * 2 * np.pi) + np.sin((xt * 2 + 0.25) * 2 * np.pi)
    ys = np.sin(yt * 2 * np.pi) + np.sin((yt * 2 + 0.25) * 2 * np.pi)
    expected = wrap_u8(20.0 * (ys[:, None] + xs[None, :]))
    assert np.array_equal(img, expected)


def test_offset_and_noise(cam):
    cam.put("cam1:Offset", 7.0)
    cam.put("cam1:SimMode", "Offset&Noise")
    img = take(cam)
    assert np.all(img == 7)
    cam.put("cam1:Noise", 10.0)
    img = take(cam)
    assert img.min() >= 7 and img.max() <= 17 and img.std() > 1


@pytest.mark.parametrize(
    ("dtype_name", "dtype"), [("Int16", np.int16), ("UInt16", np.uint16), ("Float32", np.float32)]
)
def test_data_types_through_tiff(cam, ioc, dtype_name, dtype):
    import tifffile

    d = ioc.write_root / "dtypes"
    d.mkdir(exist_ok=True)
    cam.put("cam1:DataType", dtype_name)
    cam.put("cam1:GainX", 300.0)
    for name, value in {
        "FilePath": str(d),
        "FileName": dtype_name,
        "FileTemplate": "%s%s.tif",
        "FileWriteMode": "Single",
        "AutoSave": "Yes",
        "BlockingCallbacks": "Yes",
        "EnableCallbacks": 1,
    }.items():
        cam.put("TIFF1:" + name, value)
    acquire(cam)
    path = d / f"{dtype_name}.tif"
    wait_for(path.exists, 5, str(path))
    img = tifffile.imread(path)
    assert img.dtype == dtype
    y, x = np.mgrid[0:NY, 0:NX]
    expected = 300.0 * x + y
    if np.dtype(dtype).kind == "f":
        assert np.array_equal(img, expected.astype(dtype))
    else:
        bits = np.dtype(dtype).itemsize * 8
        wrapped = np.trunc(expected).astype(np.int64) % (1 << bits)
        assert np.array_equal(img.astype(np.int64) % (1 << bits), wrapped)
    assert cam.get("TIFF1:DataType_RBV", as_string=True) == dtype_name
    cam.put("TIFF1:AutoSave", "No")


def test_rgb1(cam):
    cam.put("cam1:ColorMode", "RGB1")
    cam.put("cam1:GainRed", 1.0)
    cam.put("cam1:GainGreen", 2.0)
    cam.put("cam1:GainBlue", 3.0)
    cam.put("image1:EnableCallbacks", 1)
    cam.put("image1:BlockingCallbacks", "Yes")
    uid = acquire(cam)
    cam.wait_value("image1:UniqueId_RBV", uid)
    assert cam.get("image1:NDimensions_RBV") == 3
    assert [cam.get(f"image1:ArraySize{i}_RBV") for i in range(3)] == [3, NX, NY]
    assert cam.get("image1:ColorMode_RBV", as_string=True) == "RGB1"
    img = read_image(cam, (NY, NX, 3))
    y, x = np.mgrid[0:NY, 0:NX]
    for c, g in enumerate((1, 2, 3)):
        assert np.array_equal(img[..., c], wrap_u8(g * (x + y))), c


def test_roi_on_rgb1_crops_and_bins_each_colour(cam):
    cam.put("cam1:ColorMode", "RGB1")
    cam.put("cam1:GainRed", 1.0)
    cam.put("cam1:GainGreen", 2.0)
    cam.put("cam1:GainBlue", 3.0)
    for name, value in {
        "MinX": 5,
        "SizeX": 20,
        "BinX": 2,
        "MinY": 3,
        "SizeY": 10,
        "BinY": 1,
        "ReverseY": 1,
        "EnableX": 1,
        "EnableY": 1,
        "BlockingCallbacks": "Yes",
        "EnableCallbacks": 1,
    }.items():
        cam.put("ROI1:" + name, value)
    cam.put("image1:NDArrayPort", "ROI1")
    try:
        cam.put("image1:EnableCallbacks", 1)
        cam.put("image1:BlockingCallbacks", "Yes")
        uid = acquire(cam)
        cam.wait_value("image1:UniqueId_RBV", uid)
        assert [cam.get(f"image1:ArraySize{i}_RBV") for i in range(3)] == [3, 10, 10]
        assert cam.get("image1:ColorMode_RBV", as_string=True) == "RGB1"
        assert cam.get("ROI1:MaxSizeX_RBV") == NX and cam.get("ROI1:MaxSizeY_RBV") == NY
        img = read_image(cam, (10, 10, 3))
        y, x = np.mgrid[0:NY, 0:NX]
        for c, g in enumerate((1, 2, 3)):
            full = wrap_u8(g * (x + y)).astype(np.int64)
            expected = full[3:13, 5:25].reshape(10, 10, 2).sum(axis=2)[::-1] % 256
            assert np.array_equal(img[..., c], expected), c
    finally:
        cam.put("image1:NDArrayPort", "SIM1")
        cam.put("ROI1:ReverseY", 0)


def test_proc1_offset_scale_and_clipping(cam):
    settings = {
        "EnableOffsetScale": "Enable",
        "Offset": -10.0,
        "Scale": 2.0,
        "EnableLowClip": "Enable",
        "LowClipThresh": 3.0,  # R3-14 records: below the threshold becomes the value
        "LowClipValue": 3.0,
        "EnableHighClip": "Enable",
        "HighClipThresh": 150.0,
        "HighClipValue": 150.0,
        "BlockingCallbacks": "Yes",
        "EnableCallbacks": 1,
    }
    for name, value in settings.items():
        cam.put("Proc1:" + name, value)
    cam.put("image1:NDArrayPort", "PROC1")
    try:
        img = take(cam)
        y, x = np.mgrid[0:NY, 0:NX]
        expected = np.clip((x + y - 10) * 2.0, 3.0, 150.0).astype(np.uint8)
        assert np.array_equal(img, expected)
        assert cam.get("Proc1:ArrayCounter_RBV") >= 1
        # nothing enabled: the array passes unchanged
        for name in ("EnableOffsetScale", "EnableLowClip", "EnableHighClip"):
            cam.put("Proc1:" + name, "Disable")
        assert np.array_equal(take(cam), wrap_u8(x + y + 1))  # the ramp's next frame
    finally:
        cam.put("image1:NDArrayPort", "SIM1")
        for name in ("EnableOffsetScale", "EnableLowClip", "EnableHighClip"):
            cam.put("Proc1:" + name, "Disable")


def test_priming_only_when_enabled(cam):
    cam.put("cam1:SizeX", 40)
    cam.put("cam1:SizeY", 30)
    before = [cam.get(f"CC1:ArraySize{i}_RBV") for i in range(3)], cam.get("CC1:UniqueId_RBV")
    acquire(cam)  # CC1 disabled: nothing changes
    assert (
        [cam.get(f"CC1:ArraySize{i}_RBV") for i in range(3)],
        cam.get("CC1:UniqueId_RBV"),
    ) == before
    cam.put("CC1:EnableCallbacks", 1)
    uid = acquire(cam)
    cam.wait_value("CC1:UniqueId_RBV", uid)
    assert [cam.get(f"CC1:ArraySize{i}_RBV") for i in range(3)] == [40, 30, 0]
    assert cam.get("CC1:NDimensions_RBV") == 2
    assert cam.get("CC1:DataType_RBV", as_string=True) == "UInt8"
    assert cam.get("CC1:ColorMode_RBV", as_string=True) == "Mono"
    assert cam.get("CC1:TimeStamp_RBV") > 0
    # simDetector stamps the array, never its own TimeStamp/UniqueId parameters
    assert (cam.get("cam1:TimeStamp_RBV"), cam.get("cam1:UniqueId_RBV")) == (0, 0)


def test_stats_against_numpy(cam):
    for name, value in {
        "PeakStartX": 20,
        "PeakStartY": 15,
        "PeakWidthX": 5,
        "PeakWidthY": 4,
        "Gain": 200.0,
        "SimMode": "Peaks",
    }.items():
        cam.put("cam1:" + name, value)
    cam.put("Stats1:ComputeStatistics", "Yes")
    cam.put("Stats1:ComputeCentroid", "Yes")
    cam.put("Stats1:CentroidThreshold", 0.0)
    cam.put("Stats1:BlockingCallbacks", "Yes")
    cam.put("Stats1:EnableCallbacks", 1)
    img = take(cam).astype(float)
    cam.wait_value("Stats1:UniqueId_RBV", cam.get("image1:UniqueId_RBV"))
    assert cam.get("Stats1:MinValue_RBV") == img.min()
    assert cam.get("Stats1:MaxValue_RBV") == img.max()
    assert cam.get("Stats1:Total_RBV") == img.sum()
    assert cam.get("Stats1:MeanValue_RBV") == pytest.approx(img.mean())
    assert cam.get("Stats1:Sigma_RBV") == pytest.approx(img.std())
    y, x = np.mgrid[0:NY, 0:NX]
    assert cam.get("Stats1:CentroidX_RBV") == pytest.approx((img * x).sum() / img.sum())
    assert cam.get("Stats1:CentroidY_RBV") == pytest.approx((img * y).sum() / img.sum())
    assert (cam.get("Stats1:MaxX_RBV"), cam.get("Stats1:MaxY_RBV")) == (20, 15)
    cam.put("Stats1:ComputeCentroid", "No")


def test_stats_histogram_profiles_and_moments_against_numpy(cam):
    """Histogram (bins, below/above, entropy, bin positions), the four X/Y profiles
    and the higher centroid moments, each recomputed here from the image."""
    import math
    from collections import Counter

    for name, value in {
        "PeakStartX": 4,  # cut by the left edge: skewed in X
        "PeakStartY": 17,
        "PeakWidthX": 6,
        "PeakWidthY": 3,
        "Gain": 200.0,
        "SimMode": "Peaks",
    }.items():
        cam.put("cam1:" + name, value)
    lo, hi, size, threshold = 10.0, 150.0, 16, 50.0
    for name, value in {
        "ComputeStatistics": "Yes",
        "ComputeCentroid": "Yes",
        "ComputeProfiles": "Yes",
        "ComputeHistogram": "Yes",
        "CentroidThreshold": threshold,
        "HistSize": size,
        "HistMin": lo,
        "HistMax": hi,
        "CursorX": 30,
        "CursorY": 20,
        "BlockingCallbacks": "Yes",
        "EnableCallbacks": 1,
    }.items():
        cam.put("Stats1:" + name, value)
    try:
        img = take(cam).astype(float)
        cam.wait_value("Stats1:UniqueId_RBV", cam.get("image1:UniqueId_RBV"))
        get = lambda name, n: np.asarray(cam.get("Stats1:" + name))[:n]  # noqa: E731

        # histogram: pixel by pixel, with the bin rule of NDPluginStats
        counts: Counter[int] = Counter()
        below = above = 0
        for v in img.ravel():
            if v < lo:
                below += 1
            elif v > hi:
                above += 1
            else:
                counts[math.floor((v - lo) * (size - 1) / (hi - lo) + 0.5)] += 1
        expected = np.array([counts[i] for i in range(size)], dtype=float)
        assert below > 0 and above > 0 and expected.sum() > 0  # the case is not trivial
        assert np.array_equal(get("Histogram_RBV", size), expected)
        assert cam.get("Stats1:HistBelow_RBV") == below
        assert cam.get("Stats1:HistAbove_RBV") == above
        entropy = -sum(c * math.log(c) for c in counts.values() if c > 0) / img.size
        assert cam.get("Stats1:HistEntropy_RBV") == pytest.approx(entropy)
        positions = [lo + i * (hi - lo) / size for i in range(size)]
        assert get("HistogramX_RBV", size) == pytest.approx(positions)

        # profiles
        assert cam.get("Stats1:ProfileSizeX_RBV") == NX
        assert cam.get("Stats1:ProfileSizeY_RBV") == NY
        thresholded = np.where(img >= threshold, img, 0.0)
        assert get("ProfileAverageX_RBV", NX) == pytest.approx(img.mean(axis=0))
        assert get("ProfileAverageY_RBV", NY) == pytest.approx(img.mean(axis=1))
        assert get("ProfileThresholdX_RBV", NX) == pytest.approx(thresholded.mean(axis=0))
        assert get("ProfileThresholdY_RBV", NY) == pytest.approx(thresholded.mean(axis=1))
        assert np.array_equal(get("ProfileCursorX_RBV", NX), img[20, :])
        assert np.array_equal(get("ProfileCursorY_RBV", NY), img[:, 30])

        # centroid moments of the thresholded image
        y, x = np.mgrid[0:NY, 0:NX]
        m = thresholded.sum()
        cx, cy = (thresholded * x).sum() / m, (thresholded * y).sum() / m
        vx = (thresholded * (x - cx) ** 2).sum() / m
        vy = (thresholded * (y - cy) ** 2).sum() / m
        vxy = (thresholded * (x - cx) * (y - cy)).sum() / m
        assert cam.get("Stats1:CentroidTotal_RBV") == pytest.approx(m)
        assert cam.get("Stats1:CentroidX_RBV") == pytest.approx(cx)
        assert cam.get("Stats1:SigmaX_RBV") == pytest.approx(math.sqrt(vx))
        assert cam.get("Stats1:SigmaY_RBV") == pytest.approx(math.sqrt(vy))
        assert cam.get("Stats1:SigmaXY_RBV") == pytest.approx(vxy / math.sqrt(vx * vy), abs=1e-9)
        skew_x = (thresholded * (x - cx) ** 3).sum() / m / vx**1.5
        kurt_y = (thresholded * (y - cy) ** 4).sum() / m / vy**2 - 3.0
        assert abs(skew_x) > 0.1
        assert cam.get("Stats1:SkewX_RBV") == pytest.approx(skew_x)
        assert cam.get("Stats1:KurtosisY_RBV") == pytest.approx(kurt_y)
        ecc = ((vx - vy) ** 2 - 4 * vxy**2) / (vx + vy) ** 2
        assert cam.get("Stats1:Eccentricity_RBV") == pytest.approx(ecc)
        orientation = math.degrees(0.5 * math.atan2(2 * vxy, vx - vy))
        assert cam.get("Stats1:Orientation_RBV") == pytest.approx(orientation, abs=1e-9)
        row, col = int(cy + 0.5), int(cx + 0.5)
        assert np.array_equal(get("ProfileCentroidX_RBV", NX), img[row, :])
        assert np.array_equal(get("ProfileCentroidY_RBV", NY), img[:, col])
    finally:
        for name, value in {
            "ComputeCentroid": "No",
            "ComputeProfiles": "No",
            "ComputeHistogram": "No",
            "HistSize": 256,
            "HistMin": 0.0,
            "HistMax": 255.0,
            "CentroidThreshold": 1.0,
        }.items():
            cam.put("Stats1:" + name, value)


def test_roi_crop_bin_feeding_stats(cam):
    for name, value in {
        "MinX": 5,
        "SizeX": 20,
        "BinX": 2,
        "MinY": 3,
        "SizeY": 10,
        "BinY": 1,
        "EnableX": 1,
        "EnableY": 1,
        "BlockingCallbacks": "Yes",
        "EnableCallbacks": 1,
    }.items():
        cam.put("ROI1:" + name, value)
    cam.put("Stats1:NDArrayPort", "ROI1")  # chained plugins
    cam.put("Stats1:BlockingCallbacks", "Yes")
    cam.put("Stats1:EnableCallbacks", 1)
    cam.put("Stats1:ComputeStatistics", "Yes")
    img = take(cam).astype(np.int64)
    cam.wait_value("Stats1:UniqueId_RBV", cam.get("image1:UniqueId_RBV"))
    roi = img[3:13, 5:25].reshape(10, 10, 2).sum(axis=2) % 256
    assert cam.get("Stats1:ArraySize0_RBV") == 10
    assert cam.get("Stats1:ArraySize1_RBV") == 10
    assert cam.get("Stats1:Total_RBV") == roi.sum()
    assert cam.get("Stats1:MaxValue_RBV") == roi.max()
    assert cam.get("ROI1:MaxSizeX_RBV") == NX
    assert cam.get("Stats1:NDArrayPort_RBV") == "ROI1"
