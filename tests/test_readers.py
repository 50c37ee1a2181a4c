"""open_run: lazy frames from exported files and databroker runs, bit-exact, path-mapped."""

from __future__ import annotations

import shutil

import dask.array as da
import numpy as np
import pytest
from adsupport import World
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp

from adtoolkit.export import export
from adtoolkit.readers import as_path_mapper, open_run


def databroker_frames(world: World, uid: str) -> np.ndarray:
    return world.catalog[uid].primary.read()[world.det.image.name].values


@pytest.mark.parametrize("copy", [False, True])
def test_open_exported_file_lazily(tmp_path, copy):
    world = World(tmp_path, frames_per_point=2)
    uid = world.scan(points=4)
    (path,) = export(world.documents, tmp_path / "o", "r", copy=copy)["nexus"]
    with open_run(path) as run:
        frames = run.frames("adsim")
        assert isinstance(frames, da.Array)
        expected = databroker_frames(world, uid)
        assert frames.shape == expected.shape == (4, 2, 48, 64)
        assert frames.dtype == expected.dtype
        assert np.array_equal(frames.compute(), expected)
        assert run.uid == uid and run.start["plan_name"] == "scan"
        assert np.allclose(run.scalars["motor"], [-1, -1 / 3, 1 / 3, 1])
        ds = run.dataset()
        assert isinstance(ds["adsim"].data, da.Array)
        assert np.array_equal(ds["adsim"].isel(time=2).values, expected[2])
        assert np.array_equal(ds["adsim_total"].values, run.scalars["adsim_total"])


def test_open_databroker_run_and_uid_with_path_map(tmp_path):
    world = World(tmp_path, ioc_root="/ioc/data")
    uid = world.scan(points=3)
    expected = databroker_frames(world, uid)
    path_map = {"/ioc/data": str(world.det.write_root)}
    with open_run(world.catalog[uid], path_map=path_map) as run:
        assert np.array_equal(run.frames().compute(), expected)
        assert np.allclose(run.scalars["motor"], [-1, 0, 1])
    with open_run(uid, catalog=world.catalog, path_map=path_map) as run:
        assert np.array_equal(run.frames("adsim").compute(), expected)
    with pytest.raises(OSError, match="/ioc/data/adsim_000000.h5"):
        open_run(world.catalog[uid])  # without the mapping the IOC path is not readable here


def test_moved_frames_found_through_path_map(tmp_path):
    """An export whose links point at the beamline's paths, read where the files moved."""
    world = World(tmp_path, frames_per_point=1)

    def two_files():
        for num in (2, 2):
            yield from bps.stage(world.det)
            for _ in range(num):
                yield from bps.trigger_and_read([world.det])
            yield from bps.unstage(world.det)

    (uid_vds,) = world.RE(bpp.run_wrapper(two_files()))
    uid_link = world.scan(points=3)
    expected = {u: databroker_frames(world, u) for u in (uid_vds, uid_link)}
    (path,) = export(world.documents, tmp_path / "o", "moved")["nexus"]
    moved = tmp_path / "archive"
    shutil.move(world.det.write_root, moved)
    path_map = {str(world.det.write_root): str(moved)}
    for entry, uid in (("entry_1", uid_vds), ("entry_2", uid_link)):
        with open_run(path, entry=entry, path_map=path_map) as run:
            assert run.uid == uid
            assert np.array_equal(run.frames().compute(), expected[uid])
        with pytest.raises(OSError, match=str(world.det.write_root)):
            open_run(path, entry=entry)


def test_errors_name_the_file(tmp_path):
    world = World(tmp_path)
    world.count(num=1)
    (path,) = export(world.documents, tmp_path / "o", "e")["nexus"]
    with pytest.raises(KeyError, match="nope"):
        open_run(path, entry="nope")
    with open_run(path) as run, pytest.raises(KeyError, match="detectors: \\['adsim'\\]"):
        run.frames("other")
    with pytest.raises(OSError, match="missing.h5"):
        open_run(tmp_path / "missing.h5")


def test_path_mapper_rules():
    m = as_path_mapper({"/data": "/mnt/d", "/data/x": "/fast/x/"})
    assert m("/data/a.h5") == "/mnt/d/a.h5"
    assert m("/data/x/b.h5") == "/fast/x/b.h5"  # longest prefix wins
    assert m("/database/c.h5") == "/database/c.h5"  # whole components only
    w = as_path_mapper({"D:\\data": "/mnt/win"})  # a Windows IOC
    assert w("D:\\data\\run1\\f.h5") == "/mnt/win/run1/f.h5"
    assert w("D:/data/f.h5") == "/mnt/win/f.h5"
    assert as_path_mapper(None)("/a") == "/a"
    assert as_path_mapper(str.upper)("/a") == "/A"
    with pytest.raises(TypeError, match="path_map"):
        as_path_mapper(42)


def test_path_map_follows_the_detector_path_rule():
    """A mapping and the detector's PathTemplates map a file the same way: Windows IOC
    paths in any case and with either separator, whole components only."""
    from adtoolkit.paths import PathTemplates

    templates = PathTemplates(write="D:\\data\\%Y\\", read="/mnt/win/%Y/")
    by_templates = as_path_mapper(templates)
    by_prefix = as_path_mapper({"D:\\data": "/mnt/win"})
    for ioc_file in ("D:\\data\\2026\\f.h5", "d:/DATA/2026/f.h5"):
        assert by_templates(ioc_file) == "/mnt/win/2026/f.h5"
        assert by_prefix(ioc_file) == "/mnt/win/2026/f.h5"
    assert as_path_mapper({"D:\\data": "/mnt/win"})("D:\\database\\f.h5") == "D:\\database\\f.h5"
