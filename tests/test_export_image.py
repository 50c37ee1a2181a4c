"""write_nexus_image: one in-memory image -> a NeXus file viewers open directly."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from test_export import assert_nxcheck_clean

from adtoolkit.export import ExportError, write_nexus_image
from adtoolkit.export.h5values import MetadataWarning
from adtoolkit.ioc.ndarray import NDArray, NDAttribute


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 4096, size=(48, 64), dtype=np.uint16)


def test_image_tree_default_chain_units_compression(image, tmp_path):
    md = {
        "exposure": 0.25,
        "count": 3,
        "sample": "Si(111)",
        "roi": [0, 0, 64, 48],
        "names": ["a", "b"],
        "motors": {"th": 12.5, "tth": 25.0},
        "flag": True,
    }
    path = write_nexus_image(tmp_path / "img.h5", image, md, units="counts")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.h5"]
    with h5py.File(path, "r") as f:
        assert f.attrs["default"] == "entry"
        assert f["entry"].attrs["NX_class"] == "NXentry"
        assert f["entry"].attrs["default"] == "data"
        det = f["entry/instrument/detector"]
        assert det.attrs["NX_class"] == "NXdetector"
        assert det["data"].dtype == np.uint16
        assert det["data"].compression == "gzip"
        assert det["data"].attrs["units"] == "counts"
        assert np.array_equal(det["data"][()], image)
        nxdata = f["entry/data"]
        assert nxdata.attrs["signal"] == "data"
        assert list(nxdata.attrs["axes"]) == ["y_pixel", "x_pixel"]
        assert np.array_equal(nxdata["data"][()], image)
        meta = det["metadata"]
        assert meta.attrs["NX_class"] == "NXcollection"
        assert meta["exposure"][()] == 0.25 and meta["count"][()] == 3
        assert meta["sample"][()].decode() == "Si(111)"
        assert list(meta["roi"][()]) == [0, 0, 64, 48]
        assert [s.decode() for s in meta["names"][()]] == ["a", "b"]
        assert meta["motors/th"][()] == 12.5
        assert meta["flag"][()] is np.True_


def test_values_hdf5_cannot_hold_become_text_with_warning(image, tmp_path):
    when = datetime.datetime(2026, 11, 21, 12, 0)
    md = {"none": None, "mixed": [1, "a"], "when": when, "ok": 1.5}
    with pytest.warns(MetadataWarning) as record:
        path = write_nexus_image(tmp_path / "w.h5", image, md)
    messages = " ".join(str(w.message) for w in record)
    assert "none" in messages and "mixed" in messages and "when" in messages
    assert "/ok:" not in messages  # a float is stored natively, without a warning
    with h5py.File(path, "r") as f:
        meta = f["entry/instrument/detector/metadata"]
        assert meta["none"][()].decode() == "null" and meta["none"].attrs["encoding"] == "json"
        assert meta["mixed"][()].decode() == '[1, "a"]'
        assert meta["when"][()].decode() == repr(when)
        assert meta["when"].attrs["encoding"] == "repr"
        assert meta["ok"][()] == 1.5


def test_ndarray_with_attributes_and_rgb(tmp_path):
    rgb = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    nd = NDArray(rgb, unique_id=42, timestamp=12.5, color_mode=2)
    nd.attributes["Gain"] = NDAttribute("Gain", 2.0, "FLOAT64")
    hdf5plugin = pytest.importorskip("hdf5plugin", reason="hdf5plugin not installed")
    path = write_nexus_image(tmp_path / "rgb.h5", nd, compression=hdf5plugin.Blosc())
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["entry/data/data"][()], rgb)
        assert list(f["entry/data"].attrs["axes"]) == ["y_pixel", "x_pixel", "color"]
        nda = f["entry/instrument/detector/metadata/NDAttributes"]
        assert nda["NDArrayUniqueId"][()] == 42 and nda["Gain"][()] == 2.0


def test_bad_input_and_unwritable_path(image, tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_nexus_image(tmp_path / "bad.h5", np.zeros(5))
    with pytest.raises(ExportError, match="nodir"):
        write_nexus_image(tmp_path / "nodir" / "x.h5", image)
    write_nexus_image(tmp_path / "x.h5", image)
    with pytest.raises(ExportError, match="exists"):
        write_nexus_image(tmp_path / "x.h5", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_image_file_opens_in_nexus_tools(image, tmp_path):
    nexusformat = pytest.importorskip("nexusformat.nexus", reason="nexusformat not installed")
    path = write_nexus_image(tmp_path / "t.h5", image, {"a": 1})
    root = nexusformat.nxload(str(path))
    assert np.array_equal(root.plottable_data.nxsignal.nxdata, image)
    root.nxfile.close()
    assert_nxcheck_clean(path)
    punx = shutil.which("punx")
    if punx is None:
        pytest.skip("punx not installed (pip install punx)")
    out = subprocess.run(
        [sys.executable, punx, "validate", str(path)], capture_output=True, text=True, timeout=300
    )
    summary = [line for line in out.stdout.splitlines() if line.startswith("ERROR ")]
    assert summary and summary[0].split()[1] == "0", out.stdout[-3000:]
