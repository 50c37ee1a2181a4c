"""NDPluginFFT (FFT1:, with image2: showing its output) in the commonPlugins instance,
over Channel Access.

Expected values were read from the real IOC (ADCore R3-14) after the same puts on the
same UInt16 LinearRamp frames (value x + y); they agree with ours to the 8 decimals recorded
(float64 rounding of two FFT implementations).  The independent check recomputes
ADCore's transform with numpy from the frame: the padded buffer, X fastest,
transformed as if it were nTimeX rows of nTimeY (ADCore passes its dims X first),
normalised by nTimeX * nTimeY.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_ioc_roistat import common, ioc_factory, small_frames  # noqa: F401 (fixtures)
from test_ioc_timeseries import TARBALL, real_records  # noqa: F401 (fixture)

#: the real IOC, 64 x 20 LinearRamp, Gain 1: image2 (32 x 16) and FFT1's first row
REAL_IMAGE2_HEAD = [25.625, 3.18821789, 1.60182215, 1.07652944]
REAL_IMAGE2_ROW1 = [4.66931575, 0.57500415, 0.28889317]
REAL_IMAGE2_SUM = 82.1960437148145
REAL_REAL = [52480.0, -640.0, -640.0]
REAL_IMAGINARY = [0.0, -6498.02904807, -3217.49727496]
#: 64 x 1: FFTAbsValue
REAL_64X1 = [31.5, 10.19000812, 5.10114862, 3.40760842]
#: FFTNumAverage 2, SuppressDC, Gain 1, 3, 5 then FFTResetAverage at Gain 1: FFTAbsValue[:4]
REAL_AVERAGED = {
    1.0: [0.0, 3.18821789, 1.60182215, 1.07652944],
    3.0: [0.0, 6.37643577, 3.20364431, 2.15305887],
    5.0: [0.0, 11.1587626, 5.60637754, 3.76785303],
}


def frame(ca, **cam) -> None:
    for name, value in cam.items():
        ca.put("cam1:" + name, value)
    before = ca.get("FFT1:ArrayCounter_RBV")
    ca.put("cam1:Acquire", 1)
    ca.wait_value("FFT1:ArrayCounter_RBV", before + 1)


@pytest.fixture
def fft(common):  # noqa: F811
    ca = common[1]
    small_frames(ca)
    for name in ("FFT1:", "image2:"):
        ca.put(name + "EnableCallbacks", 1)
        ca.put(name + "BlockingCallbacks", 1)
    yield ca
    for name, value in {
        "FFT1:EnableCallbacks": 0,
        "image2:EnableCallbacks": 0,
        "FFT1:FFTNumAverage": 1,
        "FFT1:FFTSuppressDC": 0,
        "cam1:Gain": 1.0,
        "cam1:ColorMode": "Mono",
        "cam1:SizeY": 48,
    }.items():
        ca.put(name, value)


def test_fft_records_boot_as_the_real_ioc(common):  # noqa: F811
    ca = common[1]
    assert ca.get("FFT1:PluginType_RBV") == "NDPluginFFT"
    assert ca.get("FFT1:Name") == "FFT1"
    assert ca.get("FFT1:FFTTimePerPoint_RBV") == pytest.approx(0.1)
    assert ca.get("FFT1:FFTTimePerPointLink") == pytest.approx(0.1)
    assert ca.get("FFT1:FFTNumAverage_RBV") == 1
    assert ca.get("FFT1:FFTResetAverage", as_string=True) == "Reset"
    assert ca.get("FFT1:FFTDirection", as_string=True) == "Time to freq."
    assert ca.pv("FFT1:FFTAbsValue").channel.native_data_count == 1024  # NCHANS = XSIZE
    assert ca.get("image2:NDArrayPort") == "FFT1"
    assert ca.pv("image2:ArrayData").channel.native_data_count == 12000000


@pytest.mark.skipif(not TARBALL.exists(), reason="../shared/real-adsim is absent")
@pytest.mark.parametrize(
    "suffix", ["FFT1:", "image2:", "BadPix1:", "Scatter1:", "Gather1:", "Codec1:", "Codec2:"]
)
def test_records_are_the_real_ones(real_records, suffix):  # noqa: F811
    """Every record of the real IOC under these prefixes is served, with its record
    type, and nothing else."""
    from test_ioc_roistat import COMMON_PLUGINS

    from adtoolkit.ioc.server import SimDetectorIOC, load_instance

    ioc = SimDetectorIOC(prefix="13SIM1:", instance=load_instance(COMMON_PLUGINS))
    real = {n: t for n, t in real_records.items() if n.startswith("13SIM1:" + suffix)}
    ours = {n: ch for n, ch in ioc.pvdb.items() if n.startswith("13SIM1:" + suffix)}
    assert sorted(set(real) - set(ours)) == []
    assert sorted(set(ours) - set(real)) == []
    for name, rtype in real.items():
        spec = getattr(ours[name], "_adt_spec", None)
        if spec is not None:
            assert spec.rtype == rtype, name


def adcore_magnitude(image: np.ndarray) -> np.ndarray:
    """ADCore's FFT magnitude of a 2-D frame (see the module docstring)."""
    ny, nx = image.shape
    px, py = 1 << (nx - 1).bit_length(), 1 << (ny - 1).bit_length()
    buffer = np.zeros((py, px))
    buffer[:ny, :nx] = image
    spectrum = np.fft.fft2(buffer.reshape(px, py)).reshape(py, px)
    return np.abs(spectrum[: py // 2, : px // 2]) / (px * py)


def test_fft_of_a_2d_frame_matches_the_real_ioc(fft):
    frame(fft, SizeX=64, SizeY=20)
    fft.wait_value("image2:ArraySize1_RBV", 16)
    assert fft.get("image2:ArraySize0_RBV") == 32
    assert fft.get("image2:DataType_RBV", as_string=True) == "Float64"
    image2 = np.asarray(fft.get("image2:ArrayData"))[:512]
    np.testing.assert_allclose(image2[:4], REAL_IMAGE2_HEAD, atol=1e-8)
    np.testing.assert_allclose(image2[32:35], REAL_IMAGE2_ROW1, atol=1e-8)
    assert image2.sum() == pytest.approx(REAL_IMAGE2_SUM, rel=1e-9)
    y, x = np.mgrid[0:20, 0:64]
    np.testing.assert_allclose(image2, adcore_magnitude(x + y).ravel(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fft.get("FFT1:FFTReal")[:3], REAL_REAL, atol=1e-6)
    np.testing.assert_allclose(fft.get("FFT1:FFTImaginary")[:3], REAL_IMAGINARY, atol=1e-6)
    np.testing.assert_allclose(fft.get("FFT1:FFTAbsValue"), image2[:32], rtol=1e-12)
    np.testing.assert_allclose(fft.get("FFT1:FFTTimeSeries"), np.arange(64))
    np.testing.assert_allclose(fft.get("FFT1:FFTTimeAxis"), np.arange(64) * 0.1)
    np.testing.assert_allclose(fft.get("FFT1:FFTFreqAxis"), np.arange(32) * 5.0 / 31)


def test_fft_of_one_row_and_the_running_average(fft):
    frame(fft, SizeX=64, SizeY=1)
    np.testing.assert_allclose(fft.get("FFT1:FFTAbsValue")[:4], REAL_64X1, atol=1e-8)
    fft.put("cam1:SizeY", 20)
    fft.put("FFT1:FFTNumAverage", 2)
    fft.put("FFT1:FFTSuppressDC", 1)
    for gain, expected in REAL_AVERAGED.items():
        frame(fft, Gain=gain)
        np.testing.assert_allclose(fft.get("FFT1:FFTAbsValue")[:4], expected, atol=1e-8)
        assert fft.get("FFT1:FFTNumAveraged") == 2
    fft.put("FFT1:FFTResetAverage", 1)
    frame(fft, Gain=1.0)  # the average restarts from this frame alone
    np.testing.assert_allclose(fft.get("FFT1:FFTAbsValue")[:4], REAL_AVERAGED[1.0], atol=1e-8)
    assert fft.get("FFT1:FFTResetAverage", as_string=True) == "Reset"  # as the real record


def test_fft_of_an_rgb_frame_is_refused_and_nothing_hangs(fft):
    frame(fft, SizeX=64, SizeY=20)
    fft.wait_value("image2:ArrayCounter_RBV", fft.get("image2:ArrayCounter_RBV"))
    out_before = fft.get("image2:ArrayCounter_RBV")
    frame(fft, ColorMode="RGB1")  # counted, as on the real IOC ...
    assert fft.get("FFT1:NDimensions_RBV") == 3
    assert fft.get("image2:ArrayCounter_RBV") == out_before  # ... but nothing passed on
    frame(fft, ColorMode="Mono")  # and the plugin goes on with the next mono frame
    fft.wait_value("image2:ArrayCounter_RBV", out_before + 1)
