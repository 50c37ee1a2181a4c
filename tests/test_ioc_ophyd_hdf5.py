"""ophyd's own HDF5 FileStore plugin against the simulated IOC: stage, trigger, read back."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.ioc


def test_ophyd_filestore_hdf5_round_trip(cam, ioc):
    from ophyd import Component as Cpt
    from ophyd.areadetector import SimDetector, SingleTrigger
    from ophyd.areadetector.filestore_mixins import FileStoreHDF5IterativeWrite
    from ophyd.areadetector.plugins import HDF5Plugin

    class HDF5(FileStoreHDF5IterativeWrite, HDF5Plugin):
        pass

    class Det(SingleTrigger, SimDetector):
        _default_read_attrs = ("hdf5",)
        hdf5 = Cpt(
            HDF5,
            "HDF1:",
            write_path_template=str(ioc.write_root / "ophyd" / "%Y"),
            read_path_template=str(ioc.read_root / "ophyd" / "%Y"),
            root=str(ioc.read_root),
        )

    det = Det(ioc.prefix, name="det")
    det.wait_for_connection(timeout=30)
    import datetime

    (ioc.write_root / "ophyd" / datetime.datetime.now().strftime("%Y")).mkdir(
        parents=True, exist_ok=True
    )
    det.cam.stage_sigs["num_images"] = 2
    # not faster: ophyd's SingleTrigger.trigger() returns self._status, which its
    # own Acquire 1->0 callback sets to None if the acquisition is already over
    det.cam.stage_sigs["acquire_time"] = 0.05
    det.cam.stage_sigs["acquire_period"] = 0.06
    det.hdf5.warmup()  # ophyd's own priming: one image with the plugin enabled
    assert sum(det.hdf5.array_size.get()) > 0
    docs = []
    det.hdf5._asset_docs_cache.clear()
    det.stage()
    try:
        assert det.hdf5.capture.get() == 1
        assert det.hdf5.file_number.get() == 1
        for _ in range(3):
            det.trigger().wait(timeout=30)
            reading = det.read()
            docs.append(reading["det_image"]["value"])  # a datum id
        asset_docs = list(det.collect_asset_docs())
    finally:
        det.unstage()
    resources = [d for name, d in asset_docs if name == "resource"]
    assert len(resources) == 1
    path = resources[0]["root"] + "/" + resources[0]["resource_path"]
    with h5py.File(path, "r") as f:
        data = f["/entry/data/data"][()]
    assert data.shape == (6, 48, 64)  # 3 points x 2 frames, appended in order
    # consecutive frames of the LinearRamp differ by Gain (1) everywhere (mod 256)
    steps = (data[1:].astype(int) - data[:-1].astype(int)) % 256
    assert np.all(steps == 1)
    assert len(set(docs)) == 3


def test_ophyd_image_plugin_reads_an_rgb_frame(cam, ioc):
    """ophyd's ImagePlugin.image (array_pixels multiplies ArraySize2 in, so it
    needs a 3-D array: RGB1, as with a real IOC)."""
    from ophyd import Component as Cpt
    from ophyd.areadetector import SimDetector
    from ophyd.areadetector.plugins import ImagePlugin

    class Det(SimDetector):
        image1 = Cpt(ImagePlugin, "image1:")

    det = Det(ioc.prefix, name="det")
    det.wait_for_connection(timeout=30)
    cam.put("cam1:ColorMode", "RGB1")
    cam.put("image1:EnableCallbacks", 1)
    cam.put("image1:BlockingCallbacks", "Yes")
    from conftest import acquire

    uid = acquire(cam)
    cam.wait_value("image1:UniqueId_RBV", uid)
    image = det.image1.image
    assert image.shape == (48, 64, 3)
    y, x = np.mgrid[0:48, 0:64]
    for c in range(3):  # GainRed/Green/Blue 1
        assert np.array_equal(image[..., c].astype(np.uint8), ((x + y) % 256).astype(np.uint8))
