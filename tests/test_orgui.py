"""The orGUI backend, tested with the real orgui package (optional extra adtoolkit[orgui])."""

from __future__ import annotations

import runpy

import numpy as np
import pytest
from adsupport import World

from adtoolkit.export import export

scans = pytest.importorskip(
    "orgui.backend.scans", reason="orgui not installed (pip install 'adtoolkit[orgui]')"
)
backends = pytest.importorskip("orgui.backend.backends", reason="orgui backends not importable")
from adtoolkit.readers import orgui_backend  # noqa: E402
from adtoolkit.readers.orgui_backend import AdtoolkitScan  # noqa: E402


@pytest.fixture
def exported(tmp_path):
    world = World(tmp_path)
    uid = world.scan(points=4)
    (path,) = export(world.documents, tmp_path / "o", "orgui")["nexus"]
    frames = world.catalog[uid].primary.read()["adsim_image"].values
    return world, path, frames


def test_backend_file_loads_like_orgui_loads_it(exported):
    """orGUI's "Load backend" runs the file and wants exactly one Scan subclass."""
    _, path, frames = exported
    namespace = runpy.run_path(orgui_backend.__file__)
    found = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, scans.Scan) and v is not scans.Scan
    ]
    assert len(found) == 1
    cls = found[0].with_motors(th="motor", mu="motor1")
    backends.fscans["adtoolkit_test"] = cls
    try:
        fscan = backends.openScan("adtoolkit_test", {"file": str(path), "scanno": 1})
    finally:
        del backends.fscans["adtoolkit_test"]
    assert isinstance(fscan, scans.Scan)
    assert fscan.axisname == "th"
    assert np.allclose(fscan.axis, [-1, -1 / 3, 1 / 3, 1])
    assert np.array_equal(fscan.omega, -fscan.th)
    assert fscan.mu == pytest.approx(0.25)  # motor1's baseline position
    assert fscan.title.startswith("scan motor 4")
    assert len(fscan) == 4
    for i in range(4):
        img = fscan.get_raw_img(i)
        assert isinstance(img, scans.h5_Image)
        assert img.img.dtype == frames.dtype
        assert np.array_equal(img.img, frames[i, 0])
        assert np.array_equal(fscan[i].img, frames[i, 0])
    assert fscan.auxillary_counters == ["adsim_total", "det"]
    sums = frames.reshape(4, -1).sum(axis=1, dtype=np.float64)
    assert np.array_equal(fscan.adsim_total, sums)
    fscan.close()


def test_mu_scan_and_bad_axis(exported):
    _, path, frames = exported
    fscan = AdtoolkitScan(path, th="motor2", mu="motor")
    assert fscan.axisname == "mu"
    assert np.allclose(fscan.mu, [-1, -1 / 3, 1 / 3, 1])
    assert fscan.th == pytest.approx(-3.0) and fscan.omega == pytest.approx(3.0)
    assert np.array_equal(fscan[-1].img, frames[-1, 0])
    with pytest.raises(IndexError, match="out of range"):
        fscan[4]
    fscan.close()
    with pytest.raises(ValueError, match="scan axis 'motor' is neither"):
        AdtoolkitScan(path)  # default names th/mu are not in this run
    with pytest.raises(KeyError, match="no entry for scan 99"):
        AdtoolkitScan(path, 99, th="motor")


def test_parse_h5_node_with_silx_tree_nodes(exported, tmp_path, monkeypatch):
    """orGUI's file browser hands over silx H5Node objects: use real ones (offscreen Qt)."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    qt = pytest.importorskip("silx.gui.qt", reason="silx.gui needs a Qt binding (PyQt5)")
    hdf5 = pytest.importorskip("silx.gui.hdf5", reason="silx.gui.hdf5 not importable")
    world, _, _ = exported
    world.count(num=2)
    (path,) = export(world.documents, tmp_path / "o", "nodes")["nexus"]
    app = qt.QApplication.instance() or qt.QApplication([])
    assert app is not None
    model = hdf5.Hdf5TreeModel()
    model.insertFile(str(path))
    root = model.index(0, 0, qt.QModelIndex())
    nodes = []
    for i in range(model.rowCount(root)):
        item = model.data(model.index(i, 0, root), hdf5.Hdf5TreeModel.H5PY_ITEM_ROLE)
        nodes.append(hdf5.H5Node(item))
    cls = AdtoolkitScan.with_motors(th="motor", mu="motor1")
    parsed = [cls.parse_h5_node(node) for node in nodes]
    assert parsed == [{"scanno": 1, "name": "entry_1"}, {"scanno": 2, "name": "entry_2"}]
    # orGUI then opens the scan from the node (or the file) and the scan number
    fscan = cls(nodes[0], parsed[0]["scanno"])
    assert fscan.entry == "entry_1" and fscan.axisname == "th" and len(fscan) == 4
    fscan.close()
    model.clear()
