"""End to end: acquire with ``make_detector`` on the simulated IOC, export, read back everywhere.

Runs taken over Channel Access against the session ``ioc`` (64x48 frames, 3
points): a ``count`` and a ``scan`` of an ``ophyd.sim`` motor ``th`` with
``mu`` in the baseline.  Both runs go into one file (two NXentry groups),
linked and with ``copy=True``.  Every way of reading the frames (h5py,
nexusformat, silx, the orGUI backend, ``open_run``) must give databroker's
frames bit for bit, and punx must find no errors.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from ioc_helpers import configure_noisy_frames
from test_export import assert_valid_nexus

from adtoolkit.export import export
from adtoolkit.readers import open_run

pytestmark = pytest.mark.ioc

X, Y, POINTS = 64, 48, 3


@pytest.fixture(scope="module")
def acquired(ioc, tmp_path_factory):
    """Two runs against the IOC: documents, databroker's frames and gauss values, catalog."""
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp
    import databroker
    from bluesky import RunEngine
    from ophyd.sim import SynAxis, SynGauss

    from adtoolkit.devices import make_detector

    RE = RunEngine({})
    catalog = databroker.temp()
    RE.subscribe(catalog.v1.insert)
    documents: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    th, mu = SynAxis(name="th"), SynAxis(name="mu")
    mu.set(1.5).wait(5)
    gauss = SynGauss("gauss", th, "th", center=0, Imax=1)  # a scalar signal beside the frames
    det = make_detector(
        ioc.prefix,
        name="adexp",
        plugins="hdf1",
        write_path=str(ioc.write_root) + "/export/%Y/%m/%d/",
        read_path=str(ioc.read_root) + "/export/%Y/%m/%d/",
    )
    try:
        configure_noisy_frames(det, X, Y)
        (count_uid,) = RE(bp.count([det], num=POINTS))
        (scan_uid,) = RE(bpp.baseline_wrapper(bp.scan([det, gauss], th, -1, 1, POINTS), [mu]))
    finally:
        det.destroy()
    runs = {}
    for plan, uid in (("count", count_uid), ("scan", scan_uid)):
        frames = catalog.v2[uid].primary.read()["adexp_image"].values
        assert frames.shape == (POINTS, 1, Y, X) and frames.dtype == np.uint16
        assert len({f.tobytes() for f in frames[:, 0]}) == POINTS  # noise: all differ
        runs[plan] = (uid, frames)
    runs["gauss"] = catalog.v2[scan_uid].primary.read()["gauss"].values
    return documents, runs, catalog.v2


@pytest.fixture(scope="module", params=[False, True], ids=["linked", "copy"])
def exported(request, acquired, tmp_path_factory):
    documents, runs, catalog = acquired
    out = tmp_path_factory.mktemp("export_ioc")
    (path,) = export(documents, out, "ioc", copy=request.param)["nexus"]
    return path, runs, request.param


ENTRIES = {"count": "entry_1", "scan": "entry_2"}


def test_h5py_reads_databrokers_frames(exported):
    path, runs, copy = exported
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["entry_1", "entry_2"]
        for plan, entry in ENTRIES.items():
            uid, expected = runs[plan]
            grp = f[entry]
            assert grp["entry_identifier"][()].decode() == uid
            assert (
                grp["instrument/adexp/data"].is_virtual is not copy
            )  # frames stay in the IOC file
            link = grp["data"].get("data", getlink=True)
            assert isinstance(link, h5py.ExternalLink) is not copy
            for where in ("instrument/adexp/data", "data/data", "measurement/devices/adexp/data"):
                data = grp[where]
                assert data.dtype == np.uint16
                assert np.array_equal(data[()], expected[:, 0]), where
            uids = grp["measurement/devices/adexp/NDArrayUniqueId"][()]
            assert len(uids) == POINTS and len(set(uids.tolist())) == POINTS
        scan = f["entry_2"]
        assert list(scan["data"].attrs["axes"]) == ["th", "y_pixel", "x_pixel"]
        assert np.allclose(scan["data/th"][()], [-1, 0, 1])
        assert list(scan["measurement/scalar_data"].attrs["axes"]) == ["th"]
        assert list(scan["measurement/scalar_data"].attrs["signals"]) == ["gauss"]
        assert np.array_equal(scan["measurement/scalar_data/gauss"][()], runs["gauss"])
        assert scan["measurement/positioners/mu"][()] == pytest.approx(1.5)
        assert list(f["entry_1/data"].attrs["axes"])[0] == "frame_number"


def test_nexusformat_and_silx_read_it(exported):
    nexus = pytest.importorskip("nexusformat.nexus", reason="nexusformat not installed")
    silx_io = pytest.importorskip("silx.io", reason="silx not installed")
    path, runs, _ = exported
    root = nexus.nxload(str(path))
    try:
        plottable = root.plottable_data  # @default chain: entry_1/data
        assert np.array_equal(plottable.nxsignal.nxdata, runs["count"][1][:, 0])
        scan = root["entry_2/data"]
        assert scan.nxsignal.nxname == "data"
        assert [a.nxname for a in scan.nxaxes] == ["th", "y_pixel", "x_pixel"]
        assert np.array_equal(scan.nxsignal.nxdata, runs["scan"][1][:, 0])
    finally:
        root.nxfile.close()
    with silx_io.open(str(path)) as f:
        for plan, entry in ENTRIES.items():
            data = f[f"/{entry}/instrument/adexp/data"][()]
            assert np.array_equal(data, runs[plan][1][:, 0])


def test_nxcheck_and_punx_find_nothing(exported):
    path, _, _ = exported
    assert_valid_nexus(path)


def test_orgui_backend_loads_the_scan(exported):
    pytest.importorskip("orgui.backend.scans", reason="orgui not installed (adtoolkit[orgui])")
    from adtoolkit.readers.orgui_backend import AdtoolkitScan

    path, runs, _ = exported
    expected = runs["scan"][1]
    fscan = AdtoolkitScan(path, "entry_2", th="th", mu="mu")
    try:
        assert fscan.axisname == "th"
        assert np.allclose(fscan.axis, [-1, 0, 1])
        assert np.array_equal(fscan.omega, -fscan.th)
        assert fscan.mu == pytest.approx(1.5)
        assert len(fscan) == POINTS
        for i in range(POINTS):
            assert np.array_equal(fscan[i].img, expected[i, 0])
        assert fscan.auxillary_counters == ["gauss"]
        assert np.array_equal(fscan.gauss, runs["gauss"])
    finally:
        fscan.close()


def test_open_run_reads_the_same_frames_lazily(exported, acquired):
    import dask.array as da

    path, runs, _ = exported
    _, _, catalog = acquired
    for plan, entry in ENTRIES.items():
        uid, expected = runs[plan]
        with open_run(path, entry=entry) as run:
            frames = run.frames("adexp")
            assert isinstance(frames, da.Array)
            assert run.uid == uid
            assert frames.shape == expected.shape
            assert np.array_equal(frames.compute(), expected)
        with open_run(catalog[uid]) as run:
            assert np.array_equal(run.frames("adexp").compute(), expected)
