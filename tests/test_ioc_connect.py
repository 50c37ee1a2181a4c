"""The simulated IOC serves every PV that ophyd's and apstools' area-detector classes use.

Those classes span ADCore versions: some records they name (PoolMaxBuffers,
FileNumber_Sync, Trans1:Type1 ...) are gone from R3-14, so these tests run
against an IOC started as an older ADCore (``--adcore 3.4``), as a beamline
with such an IOC would test."""

from __future__ import annotations

import time

import pytest
from ioc_helpers import (
    PLUGIN_SUFFIXES,
    all_required_pvs,
    apstools_v34_classes,
    connect_all,
    connect_every_signal,
    ophyd_plugin_classes,
)

pytestmark = pytest.mark.ioc


_legacy_iocs = iter(range(1000))


@pytest.fixture
def legacy_ioc(ioc_factory):
    """An IOC serving the records of ADCore 3.4 as well as R3-14's.  Each test
    gets its own prefix: pyepics keeps the channels of a stopped IOC by name."""
    n = next(_legacy_iocs)
    return ioc_factory(prefix=f"adtl{n}:", extra_args=("--adcore", "3.4"))


def test_enumeration_covers_every_plugin_and_apstools_v34():
    """Guard the enumeration itself: every customary plugin is walked, in several versions."""
    found = ophyd_plugin_classes()
    assert set(found.values()) == set(PLUGIN_SUFFIXES.values())
    assert sum(1 for s in found.values() if s == "HDF1:") >= 5  # HDF5Plugin + _V20.._V35
    names = {cls.__name__ for cls in apstools_v34_classes()}
    assert {"CamMixin_V34", "HDF5Plugin_V34"} <= names
    pvs = all_required_pvs("x:")
    assert "x:cam1:Acquire" in pvs and "x:HDF1:FilePath_RBV" in pvs
    assert "x:Over1:8:Name_RBV" in pvs
    assert len(pvs) > 2000


def test_every_pv_ophyd_and_apstools_use_is_served(legacy_ioc):
    names = all_required_pvs(legacy_ioc.prefix)
    connected, missing = connect_all(names, timeout=30)
    assert not missing, f"{len(missing)} PVs not served: {sorted(missing)[:40]}"
    assert len(connected) == len(names)


def _simdetector_with_plugins():
    from ophyd import Component as Cpt
    from ophyd.areadetector import plugins
    from ophyd.areadetector.detectors import SimDetector

    attrs = {}
    for stem, suffix in PLUGIN_SUFFIXES.items():
        cls = getattr(plugins, stem)
        attrs[suffix.rstrip(":").lower()] = Cpt(cls, suffix)
    return type("SimDetectorWithPlugins", (SimDetector,), attrs)


def test_ophyd_simdetector_connects_every_component(legacy_ioc):
    Det = _simdetector_with_plugins()
    det = Det(legacy_ioc.prefix, name="det")
    # instantiate every (lazy) signal, then wait for all at once: ophyd's own
    # wait_for_connection(all_signals=True) connects them one by one (~1 min)
    signals = connect_every_signal(det, timeout=120)
    assert len(signals) > 900
    det.wait_for_connection(all_signals=True, timeout=30)
    assert det.missing_plugins() == []
    assert det.cam.manufacturer.get() == "Simulated detector"
    assert det.cam.model.get() == "Basic simulator"
    assert det.hdf1.plugin_type.get().startswith("NDFileHDF5")
    assert det.stats1.plugin_type.get() == "NDPluginStats"
    assert det.image1.port_name.get() == "Image1"  # commonPlugins.cmd's port name
    assert det.hdf1.nd_array_port.get() == det.cam.port_name.get() == "SIM1"


def test_apstools_v34_detector_triggers(legacy_ioc, tmp_path):
    from apstools.devices import CamMixin_V34, SingleTrigger_V34
    from apstools.devices.area_detector_support import HDF5Plugin_V34
    from ophyd import ADComponent, DetectorBase, EpicsSignalRO
    from ophyd.areadetector import SimDetectorCam
    from ophyd.areadetector.plugins import ImagePlugin_V34

    class Cam(CamMixin_V34, SimDetectorCam):
        pass

    class Det(SingleTrigger_V34, DetectorBase):
        cam = ADComponent(Cam, "cam1:")
        image = ADComponent(ImagePlugin_V34, "image1:")
        hdf1 = ADComponent(HDF5Plugin_V34, "HDF1:")

    from apstools.devices import AD_plugin_primed, AD_prime_plugin2

    # apstools' trigger mixin reads cam1:Acquire in its __init__, with ophyd's 1 s lazy
    # wait: reach the new IOC first (bounded), so that wait is a channel's, not a search's
    probe = EpicsSignalRO(legacy_ioc.prefix + "cam1:Acquire_RBV", name="probe")
    probe.wait_for_connection(timeout=60)
    probe.destroy()
    det = Det(legacy_ioc.prefix, name="det")
    connect_every_signal(det, timeout=60)
    det.validate_asyn_ports()
    cam = det.cam
    cam.size.size_x.put(64)
    cam.size.size_y.put(48)
    AD_prime_plugin2(det.hdf1)  # takes one image with the plugin enabled
    assert AD_plugin_primed(det.hdf1)
    assert det.hdf1.array_size.get() == (0, 48, 64)
    cam.stage_sigs["image_mode"] = "Multiple"
    cam.stage_sigs["num_images"] = 3
    cam.stage_sigs["acquire_time"] = 0.01
    cam.stage_sigs["acquire_period"] = 0.02
    cam.stage_sigs["wait_for_plugins"] = "Yes"
    det.image.stage_sigs["enable"] = 1
    det.stage()
    try:
        for _ in range(2):
            before = cam.array_counter.get()
            t0 = time.monotonic()
            det.trigger().wait(timeout=30)
            assert cam.array_counter.get() == before + 3
            assert cam.acquire_busy.get() == 0
            assert cam.detector_state.get(as_string=True) == "Idle"
            assert time.monotonic() - t0 < 30
        assert det.image.array_counter.get() >= 3
    finally:
        det.unstage()
