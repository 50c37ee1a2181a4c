"""The commonPlugins instance (iocs/commonPlugins) over Channel Access: NDPluginROIStat
(ROIStat1:, eight ROIs), NDPluginAttribute (Attr1:, eight attributes, with its time
series Attr1:TS:) and the time series of Stats2-5.

The expected ROIStat values were read from the real IOC (ADCore R3-14) after the
same puts on the same 64 x 48 UInt16 LinearRamp frames (Gain 1, 2, 3): clipping
of out-of-range ROIs, statistics and the plugin's own time series.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from ioc_helpers import CA
from test_ioc_timeseries import check_time_series_boot

COMMON_PLUGINS = Path(__file__).resolve().parents[1] / "iocs" / "commonPlugins"

#: ROI number -> (MinX, MinY, SizeX, SizeY, BgdWidth) put
ROIS = {1: (10, 5, 20, 10, 2), 2: (60, -4, 100, 0, 3), 3: (3, 3, 5, 4, 3)}
#: ROI number -> (MinX, MinY, SizeX, SizeY) readbacks, (Min, Max, Mean, Total, Net), TSTotal
REAL = {
    1: ((10, 5, 20, 10), (45, 129, 87, 17400, 0), (5800, 11600, 17400)),
    2: ((60, 47, 4, 1), (321, 330, 325.5, 1302, 0), (434, 868, 1302)),
    3: ((3, 3, 5, 4), (18, 39, 28.5, 570, 0), (190, 380, 570)),
}


def acquire(ca, plugin: str = "ROIStat1:") -> None:
    """One frame, processed by ``plugin`` (waits on its ArrayCounter, not on the put)."""
    before = ca.get(plugin + "ArrayCounter_RBV")
    ca.put("cam1:Acquire", 1)
    ca.wait_value(plugin + "ArrayCounter_RBV", before + 1)


def small_frames(ca) -> None:
    """64 x 48 UInt16 LinearRamp single frames, fast."""
    for name, value in {
        "ImageMode": "Single",
        "SizeX": 64,
        "SizeY": 48,
        "DataType": "UInt16",
        "ColorMode": "Mono",
        "SimMode": "LinearRamp",
        "Noise": 0.0,
        "Offset": 0.0,
        "AcquireTime": 0.001,
        "AcquirePeriod": 0.0,
    }.items():
        ca.put("cam1:" + name, value)


@pytest.fixture(scope="module")
def common(request):
    """An IOC serving iocs/commonPlugins (started once for this module)."""
    factory = request.getfixturevalue("ioc_factory")
    handle = factory(prefix="adtcp:", extra_args=("--instance", str(COMMON_PLUGINS)))
    client = CA(handle.prefix)
    yield handle, client
    client.close()


@pytest.fixture(scope="module")
def ioc_factory(tmp_path_factory):
    """ioc_factory for the module (conftest's is per test)."""
    import conftest

    from adtoolkit.ioc.launcher import SimulatedIOC

    if conftest._external_prefix():
        pytest.skip("starts a simulated IOC; not available in external-IOC mode")
    started: list[SimulatedIOC] = []

    def start(prefix: str, extra_args: tuple[str, ...] = ()):
        port = conftest._pool[
            -1
        ]  # the last pool port: conftest's ioc_factory takes the first free ones
        root = tmp_path_factory.mktemp("common_plugins")
        proc = SimulatedIOC(prefix=prefix, write_root=root, port=port, extra_args=extra_args)
        started.append(proc)
        proc.start()
        return conftest.IOCHandle(prefix, root, root, port, proc)

    yield start
    for proc in started:
        proc.stop()


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_stats_time_series_boot_as_the_real_ioc(common, n):
    check_time_series_boot(common[1], n)


def test_rois_port_names(common):
    ca = common[1]
    for suffix, port in (("ROI4:", "ROI4"), ("CC2:", "CC2"), ("ROIStat1:", "ROISTAT1")):
        assert ca.get(suffix + "PortName_RBV") == port
    assert ca.get("ROIStat1:PluginType_RBV") == "NDPluginROIStat"
    assert ca.get("ROIStat1:1:SizeX") == 0  # the driver's 0 wins over the template's VAL=1


def test_roistat_matches_the_real_ioc(common):
    ca = common[1]
    small_frames(ca)
    ca.put("ROIStat1:EnableCallbacks", 1)
    ca.put("ROIStat1:BlockingCallbacks", 1)
    for roi, (min_x, min_y, size_x, size_y, bgd) in ROIS.items():
        for record, value in zip(
            ("Use", "MinX", "MinY", "SizeX", "SizeY", "BgdWidth"),
            (1, min_x, min_y, size_x, size_y, bgd),
            strict=True,
        ):
            ca.put(f"ROIStat1:{roi}:{record}", value)
    ca.put("ROIStat1:TSNumPoints", 3)
    ca.put("ROIStat1:TSControl", "Erase/Start")
    for gain in (1.0, 2.0, 3.0):
        ca.put("cam1:Gain", gain)
        acquire(ca)
    ca.wait_value("ROIStat1:TSAcquiring", 0)  # full after 3 points: stops by itself
    assert ca.get("ROIStat1:TSCurrentPoint") == 3
    for roi, (geometry, values, ts_total) in REAL.items():
        got = [ca.get(f"ROIStat1:{roi}:{r}_RBV") for r in ("MinX", "MinY", "SizeX", "SizeY")]
        assert got == list(geometry), roi
        assert ca.get(f"ROIStat1:{roi}:MaxSizeX_RBV") == 64
        assert ca.get(f"ROIStat1:{roi}:MaxSizeY_RBV") == 48
        got = [
            ca.get(f"ROIStat1:{roi}:{r}_RBV")
            for r in ("MinValue", "MaxValue", "MeanValue", "Total", "Net")
        ]
        np.testing.assert_allclose(got, values, err_msg=f"ROI {roi}")
        np.testing.assert_allclose(ca.get(f"ROIStat1:{roi}:TSTotal"), ts_total)
        stamps = ca.get(f"ROIStat1:{roi}:TSTimestamp")
        assert len(stamps) == 3 and 0 < stamps[0] <= stamps[2]
    assert ca.get("ROIStat1:4:Total_RBV") == 0  # unused ROIs are not measured
    ca.put("ROIStat1:1:Reset", 1)
    assert ca.get("ROIStat1:1:Total_RBV") == 0
    assert ca.get("ROIStat1:2:Total_RBV") == 1302
    ca.put("ROIStat1:ResetAll", 1)
    assert ca.get("ROIStat1:2:Total_RBV") == 0


def test_roistat_refuses_a_colour_array_and_survives(common):
    ca = common[1]
    small_frames(ca)
    ca.put("ROIStat1:EnableCallbacks", 1)
    ca.put("ROIStat1:BlockingCallbacks", 1)
    ca.put("ROIStat1:1:Use", 1)
    for record, value in (("MinX", 10), ("MinY", 5), ("SizeX", 20), ("SizeY", 10)):
        ca.put("ROIStat1:1:" + record, value)
    ca.put("ROIStat1:ResetAll", 1)
    ca.put("cam1:ColorMode", "RGB1")
    acquire(ca)
    assert ca.get("ROIStat1:1:Total_RBV") == 0  # not measured
    ca.put("cam1:ColorMode", "Mono")
    acquire(ca)
    assert ca.get("ROIStat1:1:Total_RBV") > 0  # the plugin still works


def test_ophyd_async_roistat_connects_and_reads(common):
    """ophyd-async's NDROIStatIO (eight NDROIStatNIO channels) connects and reads."""
    from ophyd_async.epics.adcore import NDROIStatIO, NDStatsIO

    prefix = common[0].prefix

    async def main() -> tuple:
        roistat = NDROIStatIO(prefix + "ROIStat1:")
        stats = NDStatsIO(prefix + "Stats3:")
        await roistat.connect(timeout=20)
        await stats.connect(timeout=20)
        values = (
            await roistat.channels[1].use.get_value(),
            await roistat.channels[8].size_x.get_value(),
            await roistat.nd_array_port.get_value(),
            await stats.nd_array_port.get_value(),
        )
        # drop aioca's channels while this loop runs: their disconnect callbacks
        # would otherwise fire into a closed loop when the IOC stops
        from aioca import purge_channel_caches

        purge_channel_caches()
        return values

    use, size_x, port, stats_port = asyncio.run(main())
    assert isinstance(use, bool)
    assert size_x == 0
    assert port == "SIM1"
    assert stats_port == "SIM1"


def test_attribute_values_sums_and_time_series(common):
    """Attr1 as the real IOC behaves for the same puts: values and sums of the named
    attributes, nothing for an unknown name, the time series of the values, and a
    Reset that clears only the first attribute (Attr1:Reset is address 0)."""
    ca = common[1]
    small_frames(ca)
    ca.put("Attr1:EnableCallbacks", 1)
    ca.put("Attr1:BlockingCallbacks", 1)
    ca.put("Attr1:1:AttrName", "NDArrayUniqueId")
    ca.put("Attr1:2:AttrName", "NoSuchAttribute")
    ca.put("Attr1:3:AttrName", "NDArrayUniqueId")
    ca.put("Attr1:Reset", 1)
    ca.put("Attr1:TS:TSNumPoints", 3)
    ca.put("Attr1:TS:TSAcquire", 1, wait=False)
    ca.wait_value("Attr1:TS:TSAcquiring", 1)
    ids = []
    for _ in range(3):
        acquire(ca, "Attr1:")
        ids.append(ca.get("Attr1:UniqueId_RBV"))  # the array's id (the cam shows 0)
    assert ca.get("Attr1:1:Value_RBV") == ids[-1]
    assert ca.get("Attr1:2:Value_RBV") == 0
    ca.wait_value("Attr1:TS:TSAcquire", 0)  # full after 3 points
    np.testing.assert_allclose(ca.get("Attr1:1:TSArrayValue"), ids)
    assert not np.any(ca.get("Attr1:2:TSArrayValue"))
    assert ca.get("Attr1:TS:ArraySize0_RBV") == 8  # one value per attribute
    sum3 = ca.get("Attr1:3:ValueSum_RBV")
    assert sum3 == sum(ids)  # attribute 3 was named just before these frames
    ca.put("Attr1:Reset", 1)
    assert ca.get("Attr1:1:ValueSum_RBV") == 0
    assert ca.get("Attr1:3:ValueSum_RBV") == sum3
    ca.put("Attr1:EnableCallbacks", 0)
