"""NDPluginTimeSeries behind every Stats plugin (``StatsN:TS:``), and the records of
the commonPlugins set (Stats1-5 with time series, ROI1-4, CC1-2), over Channel Access.

Expected boot values are those read from the real IOC (ADCore R3-14, caget after
start-up); expected series are the per-frame statistics read through CA after
each frame, so the time series is checked against what Stats itself published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ioc_helpers import wait_for

COMMON_PLUGINS = Path(__file__).resolve().parents[1] / "iocs" / "commonPlugins"
TARBALL = (
    Path(__file__).resolve().parents[2] / "shared" / "real-adsim" / "real-adsim-runtime.tar.gz"
)


@pytest.fixture(scope="module")
def real_records() -> dict[str, str]:
    """name -> record type of every record of the real IOC (its pvlist, from the tarball)."""
    import tarfile

    with tarfile.open(TARBALL) as tar:
        member = tar.extractfile("real-adsim/pvlist-13SIM1.txt")
        assert member is not None
        text = member.read().decode()
    return dict(line.split() for line in text.splitlines() if line.strip())


def _frame(ca, offset: float, point: int) -> float:
    """Acquire one frame at ``offset``; wait until the time series holds ``point`` points."""
    ca.put("cam1:Offset", offset)
    ca.put("cam1:Acquire", 1)
    ca.wait_value("Stats1:TS:TSCurrentPoint", point)
    return float(ca.get("Stats1:MeanValue_RBV"))


@pytest.fixture
def stats(ca, cam):
    ca.put("Stats1:EnableCallbacks", 1)
    ca.put("Stats1:BlockingCallbacks", 1)
    ca.put("Stats1:ComputeStatistics", 1)
    ca.put("Stats1:TS:EnableCallbacks", 1)
    ca.put("Stats1:TS:TSAcquire", 0)
    yield ca
    ca.put("Stats1:TS:TSAcquire", 0)
    ca.put("Stats1:TS:TSAcquireMode", "Fixed length")
    ca.put("Stats1:TS:TSNumPoints", 2048)
    ca.put("Stats1:TS:TSTimePerPoint", 0.1)
    ca.put("Stats1:EnableCallbacks", 0)
    ca.put("Stats1:BlockingCallbacks", 0)
    ca.put("cam1:Offset", 0.0)


def check_time_series_boot(ca, n: int) -> None:
    """StatsN:TS: as the real IOC shows it after start-up."""
    ts = f"Stats{n}:TS:"
    assert ca.get(ts + "PluginType_RBV") == "NDPluginTimeSeries"
    assert ca.get(ts + "PortName_RBV") == f"STATS{n}_TS"
    assert ca.get(ts + "NDArrayPort") == f"STATS{n}"
    assert ca.get(ts + "NDArrayAddress") == 1
    assert ca.get(ts + "EnableCallbacks", as_string=True) == "Enable"
    assert ca.get(ts + "TSNumPoints") == 2048
    assert ca.get(ts + "TSTimePerPoint") == pytest.approx(0.1)
    assert ca.get(ts + "TSNumAverage") == 1
    assert ca.get(ts + "TSAcquire", as_string=True) == "Done"
    assert ca.get(ts + "TSAcquireMode", as_string=True) == "Fixed length"
    assert ca.get(ts + "TSRead", as_string=True) == "Read"
    assert ca.get(f"Stats{n}:PortName_RBV") == f"STATS{n}"
    assert ca.get(f"Stats{n}:NDArrayPort") == "SIM1"
    assert not np.any(ca.get(ts + "TSTimeAxis"))  # all 0 until TSNumPoints is written


def test_time_series_port_boots_as_the_real_ioc(ioc_factory):
    """A fresh IOC (the session IOC's series settings are changed by the tests below;
    the real IOC's own boot values are compared by the differential records test)."""
    from ioc_helpers import CA

    handle = ioc_factory(prefix="adtboot:")
    ca = CA(handle.prefix)
    try:
        check_time_series_boot(ca, 1)
    finally:
        ca.close()


def test_fixed_length_series_stops_after_num_points(stats):
    ca = stats
    ca.put("Stats1:TS:TSNumPoints", 3)
    ca.put("Stats1:TS:TSAcquire", 1, wait=False)  # busy: completes when the series is full
    ca.wait_value("Stats1:TS:TSAcquiring", 1)
    means = [_frame(ca, offset, i + 1) for i, offset in enumerate((0.0, 10.0, 20.0))]
    ca.wait_value("Stats1:TS:TSAcquire", 0)
    assert ca.get("Stats1:TS:TSAcquiring", as_string=True) == "Done"
    series = wait_for(
        lambda: len(s := list(ca.get("Stats1:TSMeanValue"))) == 3 and s,
        what="TSMeanValue has 3 points",
    )
    np.testing.assert_allclose(series, means)
    assert means[1] > means[0]  # the frames differed, so the order is checked
    maxima = ca.get("Stats1:TSMaxValue")
    assert len(maxima) == 3 and maxima[2] > maxima[0]
    stamps = ca.get("Stats1:TSTimestamp")
    assert len(stamps) == 3 and 0 < stamps[0] <= stamps[1] <= stamps[2]
    np.testing.assert_allclose(ca.get("Stats1:TS:TSTimeAxis")[:3], [0.0, 0.1, 0.2])
    assert ca.get("Stats1:TS:ArraySize0_RBV") == 23  # one value per signal
    assert ca.get("Stats1:TS:DataType_RBV", as_string=True) == "Float64"


def test_circular_buffer_keeps_the_newest_points_oldest_first(stats):
    ca = stats
    ca.put("Stats1:TS:TSAcquireMode", "Circ. buffer")
    ca.put("Stats1:TS:TSNumPoints", 2)
    np.testing.assert_allclose(ca.get("Stats1:TS:TSTimeAxis")[:2], [-0.1, 0.0])
    ca.put("Stats1:TS:TSAcquire", 1, wait=False)
    ca.wait_value("Stats1:TS:TSAcquiring", 1)
    means = [_frame(ca, offset, point) for offset, point in ((30.0, 1), (40.0, 0), (50.0, 1))]
    ca.put("Stats1:TS:TSRead", 1)
    wait_for(  # the waveform may be empty (NORD 0) while the series is read out
        lambda: len(v := ca.get("Stats1:TSMeanValue")) >= 2 and np.allclose(v[:2], means[1:]),
        what=f"TSMeanValue == {means[1:]}",
    )
    assert ca.get("Stats1:TS:TSAcquiring", as_string=True) == "Acquiring"  # never stops
    ca.put("Stats1:TS:TSAcquire", 0)
    ca.wait_value("Stats1:TS:TSAcquiring", 0)
    ca.put("Stats1:TS:TSTimePerPoint", 0.25)
    np.testing.assert_allclose(ca.get("Stats1:TS:TSTimeAxis")[:2], [-0.25, 0.0])


def test_pre_r3_ts_control_drives_the_same_series(ioc_factory):
    """ophyd's StatsPlugin writes Stats1:TSControl (Erase/Start, Stop) and reads
    TSAcquiring: records of older ADCore, served with --adcore 3.4, driving the same
    time-series port as Stats1:TS:."""
    from ioc_helpers import CA

    handle = ioc_factory(prefix="adtleg:", extra_args=("--adcore", "3.4"))
    ca = CA(handle.prefix)
    try:
        for name, value in {
            "ImageMode": "Single",
            "SizeX": 64,
            "SizeY": 48,
            "DataType": "UInt8",
            "SimMode": "LinearRamp",
            "AcquireTime": 0.001,
            "AcquirePeriod": 0.0,
        }.items():
            ca.put("cam1:" + name, value)
        ca.put("Stats1:EnableCallbacks", 1)
        ca.put("Stats1:BlockingCallbacks", 1)
        ca.put("Stats1:TSNumPoints", 5)
        ca.put("Stats1:TSControl", "Erase/Start")
        ca.wait_value("Stats1:TSAcquiring", 1)
        assert ca.get("Stats1:TS:TSAcquiring", as_string=True) == "Acquiring"
        means = [_frame(ca, offset, i + 1) for i, offset in enumerate((5.0, 15.0))]
        ca.put("Stats1:TSControl", "Stop")
        ca.wait_value("Stats1:TSAcquiring", 0)
        np.testing.assert_allclose(ca.get("Stats1:TSMeanValue"), means)
        assert ca.get("Stats1:TSCurrentPoint") == 2
    finally:
        ca.close()


def test_disabled_time_series_keeps_nothing(stats):
    ca = stats
    ca.put("Stats1:TS:EnableCallbacks", 0)
    ca.put("Stats1:TS:TSAcquire", 1, wait=False)
    ca.wait_value("Stats1:TS:TSAcquiring", 1)
    before = ca.get("Stats1:TS:ArrayCounter_RBV")
    ca.put("cam1:Acquire", 1)
    ca.wait_value("Stats1:ArrayCounter_RBV", ca.get("Stats1:ArrayCounter_RBV"))
    assert ca.get("Stats1:TS:TSCurrentPoint") == 0
    assert ca.get("Stats1:TS:ArrayCounter_RBV") == before


@pytest.mark.skipif(not TARBALL.exists(), reason=f"the real IOC ({TARBALL}) is absent")
@pytest.mark.parametrize(
    "suffix",
    [
        *(f"Stats{n}:" for n in range(1, 6)),
        *(f"ROI{n}:" for n in range(1, 5)),
        *(f"CC{n}:" for n in range(1, 3)),
        "ROIStat1:",
        "Attr1:",
        "Pva1:",
    ],
)
def test_records_of_the_real_ioc_are_served(real_records, suffix):
    """The commonPlugins instance serves exactly the records the real IOC has under
    the prefix (older ADCore's extra records only come with --adcore 3.4)."""
    from adtoolkit.ioc.server import SimDetectorIOC, load_instance

    real = {
        name.removeprefix("13SIM1:" + suffix): rtype
        for name, rtype in real_records.items()
        if name.startswith("13SIM1:" + suffix)
    }
    ioc = SimDetectorIOC(prefix="13SIM1:", instance=load_instance(COMMON_PLUGINS))
    ours = {
        n.removeprefix("13SIM1:" + suffix) for n in ioc.pvdb if n.startswith("13SIM1:" + suffix)
    }
    assert sorted(set(real) - ours) == []
    assert sorted(ours - set(real)) == []


@pytest.mark.sim_only(
    "the real IOC allocates all 100,000,000 points (gigabytes) and stops answering for "
    "many seconds; the clamp is the simulated IOC's guard"
)
def test_num_points_stays_within_the_waveforms(stats):
    """TSNumPoints beyond the waveforms' 2048 elements is clamped (the record's DRVH is
    100,000,000 as on the real IOC): the IOC never allocates series it cannot show."""
    ca = stats
    ca.put("Stats1:TS:TSNumPoints", 100_000_000)
    assert len(ca.get("Stats1:TS:TSTimeAxis")) == 2048  # the axis has one entry per point
    ca.put("Stats1:TS:TSNumPoints", 1)
    assert len(ca.get("Stats1:TS:TSTimeAxis")) == 1
    ca.put("Stats1:TS:TSAcquire", 1, wait=False)
    ca.wait_value("Stats1:TS:TSAcquiring", 1)
    _frame(ca, 0.0, 1)  # one point fills a one-point series
    ca.wait_value("Stats1:TS:TSAcquire", 0)
