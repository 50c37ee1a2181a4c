"""Class structure of the device layer, checked against ADCore's record lists.

No IOC needed: the PV names come from the classes, the expected names from
tests/data (record names of ADCore's templates, and every PV suffix ophyd/apstools
use, as served by the simulated IOC).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adtoolkit.devices import (
    ADBaseCam,
    HDF5FileStore,
    ImagePlugin,
    JPEGPlugin,
    ROIPlugin,
    SimDetectorCam,
    StatsPlugin,
    TIFFPlugin,
)

DATA = Path(__file__).parent / "data"


def _templates() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    current = None
    for line in (DATA / "adcore_records.txt").read_text().splitlines():
        if line.startswith("#####"):
            current = line.split()[1]
            out[current] = set()
        elif line.strip():
            out[current].add(line.strip())
    return out


TEMPLATES = _templates()
SERVED = {
    line.strip()
    for line in (DATA / "pvs_required_by_ophyd_apstools.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def pv_suffixes(cls, prefix: str = "") -> set[str]:
    """Every PV suffix the class would connect to (setpoint and readback), statically."""
    from ophyd import Device
    from ophyd.areadetector.base import EpicsSignalWithRBV
    from ophyd.device import DynamicDeviceComponent
    from ophyd.signal import EpicsSignalBase

    names: set[str] = set()

    def add(sig_cls, suffix, kwargs):
        if not (isinstance(sig_cls, type) and issubclass(sig_cls, EpicsSignalBase)):
            return
        if suffix is None:
            return
        if issubclass(sig_cls, EpicsSignalWithRBV):
            names.update({prefix + suffix, prefix + suffix + "_RBV"})
        else:
            names.add(prefix + suffix)
            if kwargs.get("write_pv"):
                names.add(prefix + kwargs["write_pv"])

    for _attr, cpt in cls._sig_attrs.items():
        if isinstance(cpt, DynamicDeviceComponent):
            for _k, (sig_cls, suffix, kwargs) in cpt.defn.items():
                add(sig_cls, suffix, kwargs)
        elif isinstance(cpt.cls, type) and issubclass(cpt.cls, Device):
            names |= pv_suffixes(cpt.cls, prefix + (cpt.suffix or ""))
        else:
            add(cpt.cls, cpt.suffix, cpt.kwargs)
    return names


CAM_RECORDS = TEMPLATES["ADBase.template"] | TEMPLATES["NDArrayBase.template"]


def test_cam_connects_only_to_records_of_current_adcore():
    extra = pv_suffixes(ADBaseCam) - CAM_RECORDS
    assert extra == set()


def test_simdetector_cam_connects_only_to_current_records():
    allowed = CAM_RECORDS | TEMPLATES["simDetector.template"]
    assert pv_suffixes(SimDetectorCam) - allowed == set()


def test_removed_records_are_gone_and_new_ones_present():
    pvs = pv_suffixes(SimDetectorCam)
    assert "PoolMaxBuffers" not in pvs
    assert "DataType_RBV.DISA" not in pvs
    for rec in (
        "AcquireBusy",
        "AcquireBusyCB",
        "WaitForPlugins",
        "ADCoreVersion_RBV",
        "NumQueuedArrays",
        "UniqueId_RBV",
        "NDAttributesMacros",
        "XSine1Amplitude_RBV",
    ):
        assert rec in pvs, rec
    # WaitForPlugins has no _RBV record in ADCore
    assert "WaitForPlugins_RBV" not in pvs


def test_sim_cam_covers_every_simdetector_record():
    pvs = pv_suffixes(SimDetectorCam)
    missing = TEMPLATES["simDetector.template"] - pvs
    assert missing == set()


def test_hdf5_plugin_connects_only_to_template_records():
    allowed = (
        TEMPLATES["NDFile.template"]
        | TEMPLATES["NDFileHDF5.template"]
        | TEMPLATES["NDPluginBase.template"]
        | TEMPLATES["NDArrayBase.template"]
    )
    extra = pv_suffixes(HDF5FileStore) - allowed
    # ophyd's FileBase also declares these NDFile records by other spellings
    assert extra == set(), sorted(extra)


@pytest.mark.parametrize(
    "cls, suffix",
    [
        (ImagePlugin, "image1:"),
        (StatsPlugin, "Stats1:"),
        (ROIPlugin, "ROI1:"),
        (TIFFPlugin, "TIFF1:"),
        (JPEGPlugin, "JPEG1:"),
        (HDF5FileStore, "HDF1:"),
    ],
)
def test_plugins_use_only_pvs_the_simulated_ioc_serves(cls, suffix):
    pvs = {suffix + pv for pv in pv_suffixes(cls)}
    assert pvs - SERVED == set()
    assert suffix + "PoolMaxBuffers" not in pvs


def test_cam_pvs_are_served():
    pvs = {"cam1:" + pv for pv in pv_suffixes(SimDetectorCam)}
    # the records ophyd never had are served by the simulated IOC too (it serves the
    # templates); only check those that ophyd/apstools list
    ophyd_known = {pv for pv in pvs if pv in SERVED}
    assert ophyd_known  # sanity
    assert {"cam1:AcquireBusy", "cam1:WaitForPlugins"} <= pvs


def test_classes_subclass_ophyd():
    from ophyd.areadetector import cam as ocam
    from ophyd.areadetector import plugins as oplug

    assert issubclass(SimDetectorCam, ocam.SimDetectorCam)
    assert issubclass(ADBaseCam, ocam.CamBase)
    assert issubclass(HDF5FileStore, oplug.HDF5Plugin_V34)
    assert issubclass(ImagePlugin, oplug.ImagePlugin_V34)
