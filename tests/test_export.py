"""NeXus export of real bluesky runs whose frames sit in ADCore-layout HDF5 files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from adsupport import World
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp

from adtoolkit.export import ExportError, ExportWarning, NexusSerializer, export, finish_export

PUNX_SUMMARY = re.compile(r"^(OK|NOTE|WARN|ERROR|TODO|UNUSED|COMMENT|OPTIONAL) +(\d+) ", re.M)


def run_punx(path: Path) -> subprocess.CompletedProcess:
    punx = shutil.which("punx")
    if punx is None:
        pytest.skip("punx not installed (pip install punx)")
    return subprocess.run(
        [sys.executable, punx, "validate", str(path)], capture_output=True, text=True, timeout=300
    )


def punx_error_count(out: subprocess.CompletedProcess) -> int:
    counts = dict(PUNX_SUMMARY.findall(out.stdout))
    assert "ERROR" in counts, f"no punx summary (exit {out.returncode}):\n{out.stderr[-3000:]}"
    return int(counts["ERROR"])


def external_links(f: h5py.File) -> list[tuple[str, h5py.ExternalLink]]:
    """Every external link in ``f`` with the path it is reached by (hard-linked groups only)."""
    found = []

    def walk(group: h5py.Group, path: str) -> None:
        for name in group:
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                found.append((f"{path}/{name}", link))
            elif isinstance(link, h5py.HardLink) and isinstance(group[name], h5py.Group):
                walk(group[name], f"{path}/{name}")

    walk(f, "")
    return found


def punx_view(path: Path, directory: Path) -> tuple[Path, list[str]]:
    """A copy of ``path`` whose external links reach objects stored at the links' own paths.

    punx 0.3.5 keys every object by h5py's ``obj.name`` (``validate.py``,
    ``ValidationItem.__init__``: ``self.h5_address = obj.name``).  For an
    object reached through an HDF5 external link that is its path *inside the
    linked file* (``/entry/data/data`` for an ADCore frame file), not the path
    the link sits at.  So every link to an ADCore file lands on the one
    address ``/entry/data/data``: the links under ``instrument/<det>``,
    ``data`` and ``measurement/devices/<det>`` overwrite each other in punx's
    catalogue, and in a file with several entries (``/entry_1``, ...)
    ``validations/default_plot.py`` (``default_plot_v3``) builds the address
    ``/entry_1/data/data`` from ``@signal`` and looks it up in that catalogue:
    ``KeyError``.  Nothing in our file is unusual: NeXus documents external
    links to detector files, and HDF5 names objects this way.

    In the view each external link points at a small file holding, at the
    link's own path, a virtual dataset over the whole linked dataset (same
    shape, type, attributes, values).  The NeXus structure punx checks is the
    exported file's, links included; only the linked file's internal path
    differs.  Returns the view and the paths of the links it redirected.
    """
    view = directory / path.name
    shutil.copyfile(path, view)
    redirected = []
    with h5py.File(view, "r+") as f:
        for i, (where, link) in enumerate(external_links(f)):
            if link.path == where:
                continue
            assert Path(link.filename).is_absolute(), f"{path}:{where} -> {link.filename}"
            shadow = directory / f"{path.stem}_link{i}.h5"
            with h5py.File(link.filename, "r") as src_file, h5py.File(shadow, "w") as out:
                src = src_file[link.path]
                assert isinstance(src, h5py.Dataset), f"{where} links to a group"
                layout = h5py.VirtualLayout(shape=src.shape, dtype=src.dtype)
                layout[...] = h5py.VirtualSource(src)
                ds = out.create_virtual_dataset(where, layout)
                for key, value in src.attrs.items():
                    ds.attrs[key] = value
            del f[where]
            f[where] = h5py.ExternalLink(str(shadow), where)
            redirected.append(where)
    return view, redirected


def assert_punx_finds_no_errors(path: Path) -> None:
    """``punx validate`` reports no errors for ``path``.

    punx runs on the file itself, and, when it holds external links, on its
    ``punx_view`` (see there for the punx bug it works around).  On the file
    itself punx must report no errors or stop with exactly that bug (a
    ``KeyError`` from ``default_plot.py``); the view must report no errors and
    list every redirected link at its own address.
    """
    direct = run_punx(path)
    if direct.returncode == 0:
        assert punx_error_count(direct) == 0, direct.stdout[-3000:]
    else:
        tail = direct.stderr.strip().splitlines()[-3:]
        assert "default_plot.py" in direct.stderr and tail[-1].startswith("KeyError"), (
            direct.stderr[-3000:]
        )
    with tempfile.TemporaryDirectory(prefix="punx_view_") as tmp:
        view, redirected = punx_view(Path(path), Path(tmp))
        if not redirected:
            assert direct.returncode == 0, direct.stderr[-3000:]
            return
        out = run_punx(view)
        assert out.returncode == 0, out.stderr[-3000:]
        assert punx_error_count(out) == 0, out.stdout[-3000:]
        addresses = {line.split(maxsplit=1)[0] for line in out.stdout.splitlines() if line}
        assert set(redirected) <= addresses, sorted(set(redirected) - addresses)


NXCHECK_TOTAL = re.compile(r"Total number of (warnings|errors): (\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def nxdl_version() -> str:
    """The NXDL version nexusformat's ``nxcheck`` checks against (its bundled definitions)."""
    nexusformat = pytest.importorskip("nexusformat", reason="nexusformat not installed")
    definitions = Path(nexusformat.__file__).parent / "definitions"
    return (definitions / "NXDL_VERSION").read_text().strip()


def assert_nxcheck_clean(path: Path) -> None:
    """nexusformat's ``nxcheck -w`` (NXDL v2026.01) finds 0 errors and 0 warnings in ``path``."""
    nxcheck = shutil.which("nxcheck")
    if nxcheck is None:
        pytest.skip("nxcheck not installed (pip install 'nexusformat>=2.1')")
    assert nxdl_version() >= "v2026.01", nxdl_version()
    out = subprocess.run(
        [sys.executable, nxcheck, "-w", str(path)], capture_output=True, text=True, timeout=300
    )
    text = ANSI.sub("", out.stdout + out.stderr)
    totals = dict(NXCHECK_TOTAL.findall(text))
    assert out.returncode == 0 and set(totals) == {"warnings", "errors"}, text[-3000:]
    assert totals == {"warnings": "0", "errors": "0"}, text[-3000:]


def test_readme_names_the_nxdl_version_checked():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"NXDL\n{nxdl_version()}" in readme or f"NXDL {nxdl_version()}" in readme


def assert_valid_nexus(path: Path) -> None:
    """Both checkers pass ``path``: nexusformat's nxcheck (NXDL 2026) and punx (NXDL 2018)."""
    assert_nxcheck_clean(path)
    assert_punx_finds_no_errors(path)


def image_of(world: World, uid: str) -> np.ndarray:
    """Frames as databroker reads them: (points, frames_per_point, Y, X)."""
    return world.catalog[uid].primary.read()[world.det.image.name].values


def test_export_links_frames_and_writes_context(world: World, tmp_path):
    uid = world.scan(points=5)
    art = export(world.documents, tmp_path / "out", file_prefix="scan{scan_id}")
    (path,) = art["nexus"]
    assert path.name == "scan1.h5"
    assert sorted(p.name for p in path.parent.iterdir()) == ["scan1.h5"]  # no .tmp left
    expected = image_of(world, uid)
    with h5py.File(path, "r") as f:
        assert f.attrs["default"] == "entry"
        entry = f["entry"]
        assert entry.attrs["default"] == "data"
        assert entry["entry_identifier"][()].decode() == uid
        det = entry["instrument/adsim"]
        (source,) = det["data"].virtual_sources()  # the IOC's file, not a copy
        assert (source.file_name, source.dset_name) == (str(world.det.files[0]), "/entry/data/data")
        assert det["data"].attrs["units"] == "counts" and "signal" not in det["data"].attrs
        assert np.array_equal(det["data"][()], expected[:, 0])
        assert det["bluesky/field"][()].decode() == "adsim_image"
        assert det["bluesky/frames_per_point"][()] == 1
        for where in ("data", "measurement/devices/adsim"):
            link = entry[where].get("data", getlink=True)
            assert isinstance(link, h5py.ExternalLink)
            assert link.filename == str(world.det.files[0])
        nxdata = entry["data"]
        assert nxdata.attrs["signal"] == "data"
        assert list(nxdata.attrs["axes"]) == ["motor", "y_pixel", "x_pixel"]
        assert np.array_equal(nxdata["data"][()], expected[:, 0])
        assert np.allclose(nxdata["motor"][()], [-1, -0.5, 0, 0.5, 1])
        scal = entry["measurement/scalar_data"]
        assert list(scal.attrs["axes"]) == ["motor"]
        assert list(scal.attrs["signals"]) == ["adsim_total", "det"]
        assert scal.attrs["monitor"] == "I0"
        sums = expected.reshape(5, -1).sum(axis=1, dtype=np.float64)
        assert np.array_equal(scal["adsim_total"][()], sums)
        pos = entry["measurement/positioners"]
        assert pos["motor1"][()] == pytest.approx(0.25)
        assert pos["motor2"][()] == pytest.approx(-3.0)
        dev = entry["measurement/devices/adsim"]
        assert np.array_equal(dev["data"][()], expected[:, 0])
        assert list(dev["NDArrayUniqueId"][()]) == [1, 2, 3, 4, 5]
        assert dev["CameraModel"].attrs["NDAttrSource"] == "SIM:cam1:Model_RBV"
        base = entry["bluesky/streams/baseline"]
        assert base["motor1"].shape == (2,)
        assert entry["bluesky/start/plan_name"][()].decode() == "scan"
        assert entry["bluesky/stop/exit_status"][()].decode() == "success"


def test_copy_is_bit_exact_and_self_contained(world: World, tmp_path):
    uid = world.scan(points=4)
    expected = image_of(world, uid)
    (path,) = export(world.catalog[uid], tmp_path, file_prefix="copy", copy=True)["nexus"]
    shutil.rmtree(world.det.write_root)  # the copy must not need the IOC's files
    with h5py.File(path, "r") as f:
        data = f["entry/instrument/adsim/data"]
        assert not data.is_virtual
        assert data.chunks is None  # uncompressed frames are copied as bytes, contiguously
        assert np.array_equal(data[()], expected[:, 0])
        assert np.array_equal(f["entry/measurement/devices/adsim/data"][()], expected[:, 0])


def test_compressed_frames_copied_raw_stay_bit_exact(tmp_path):
    world = World(tmp_path, compression="gzip", chunk_frames=2)
    uid = world.scan(points=5)
    expected = image_of(world, uid)
    (path,) = export(world.documents, tmp_path / "o", file_prefix="z", copy=True)["nexus"]
    with h5py.File(path, "r") as f:
        data = f["entry/instrument/adsim/data"]
        assert data.compression == "gzip"
        assert np.array_equal(data[()], expected[:, 0])


def test_several_runs_become_several_entries(world: World, tmp_path):
    uid1 = world.scan(points=3)
    uid2 = world.count(num=2)
    (path,) = export([world.catalog[uid1], world.catalog[uid2]], tmp_path, "two")["nexus"]
    (path2,) = export(world.documents, tmp_path, "two-docs")["nexus"]
    for p in (path, path2):
        with h5py.File(p, "r") as f:
            assert f.attrs["default"] == "entry_1"
            assert sorted(f) == ["entry_1", "entry_2"]
            assert f["entry_1/entry_identifier"][()].decode() == uid1
            assert f["entry_2/entry_identifier"][()].decode() == uid2
            assert np.array_equal(f["entry_1/data/data"][()], image_of(world, uid1)[:, 0])
            assert np.array_equal(f["entry_2/data/data"][()], image_of(world, uid2)[:, 0])
            # count has no motor: the frames are plotted against the frame number
            assert list(f["entry_2/data"].attrs["axes"])[0] == "frame_number"


@pytest.mark.parametrize(
    "copy, chunk_frames, compression",
    [
        (False, 1, None),  # virtual dataset
        (True, 1, None),  # byte ranges, file to file
        (True, 4, None),  # byte ranges inside 4-frame chunks
        (True, 4, "gzip"),  # raw (compressed) chunk copies
        (True, 3, "gzip"),  # chunks not aligned with the runs' frames: value copies
    ],
)
def test_run_spanning_two_files(tmp_path, copy, chunk_frames, compression):
    world = World(tmp_path, frames_per_point=2, chunk_frames=chunk_frames, compression=compression)

    def two_files():  # the detector is staged twice inside one run: two IOC files
        for num in (2, 3):
            yield from bps.stage(world.det)
            for _ in range(num):
                yield from bps.trigger_and_read([world.det])
            yield from bps.unstage(world.det)

    (uid,) = world.RE(bpp.run_wrapper(two_files()))
    assert len(world.det.files) == 2
    (path,) = export(world.documents, tmp_path / "o", "two", copy=copy)["nexus"]
    expected = image_of(world, uid)
    assert expected.shape == (5, 2, 48, 64)
    with h5py.File(path, "r") as f:
        data = f["entry/instrument/adsim/data"]
        assert data.is_virtual is not copy
        if not copy:
            assert sorted({s.file_name for s in data.virtual_sources()}) == sorted(
                str(p) for p in world.det.files
            )
        elif compression:
            assert data.chunks[0] == chunk_frames and data.compression == compression
        else:
            assert data.chunks is None
        assert np.array_equal(data[()].reshape(expected.shape), expected)
        assert data.attrs["frames_per_point"] == 2
        uids = f["entry/measurement/devices/adsim/NDArrayUniqueId"][()]
        assert list(uids) == list(range(1, 11))


def test_path_map_points_links_to_workstation_files(tmp_path):
    world = World(tmp_path, ioc_root="/ioc/data/run7")
    uid = world.scan(points=3)
    real = str(world.det.write_root)
    expected = image_of(world, uid)  # the catalog maps the root like the exporter
    longest_prefix_wins = {"/ioc": "/nowhere", "/ioc/data/run7": real}
    for path_map in (longest_prefix_wins, lambda p: p.replace("/ioc/data/run7", real)):
        (path,) = export(world.documents, tmp_path / "o", "pm", path_map=path_map, overwrite=True)[
            "nexus"
        ]
        with h5py.File(path, "r") as f:
            (source,) = f["entry/instrument/adsim/data"].virtual_sources()
            assert source.file_name == str(world.det.files[0])
            assert f["entry/data"].get("data", getlink=True).filename == source.file_name
            assert np.array_equal(f["entry/data/data"][()], expected[:, 0])
    with pytest.raises(ExportError, match="/ioc/data/run7/adsim_000000.h5"):
        export(world.documents, tmp_path / "o", "nomap")
    assert not list((tmp_path / "o").glob("nomap*"))


def test_unwritable_destination_names_path_and_leaves_nothing(world: World, tmp_path):
    world.scan(points=2)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(ExportError, match=str(blocker / "x.h5")):
        export(world.documents, blocker, "x")
    out = tmp_path / "out"
    export(world.documents, out, "x")
    with pytest.raises(ExportError, match="file exists"):
        export(world.documents, out, "x")
    # a failure in the middle of writing (a frame file vanished) leaves no file either
    world.det.files[0].unlink()
    with pytest.raises(ExportError, match=str(world.det.files[0])):
        export(world.documents, out, "y")
    assert sorted(p.name for p in out.iterdir()) == ["x.h5"]


def test_finish_export_renames_only_tmp_files(tmp_path):
    tmp = tmp_path / "a.h5.tmp"
    with h5py.File(tmp, "w") as f:
        f["x"] = 1
    final = finish_export(tmp)
    assert final == tmp_path / "a.h5" and final.exists() and not tmp.exists()
    with pytest.raises(ValueError, match="a.h5"):
        finish_export(final)


def test_live_serializer_writes_each_run_at_stop(tmp_path):
    world = World(tmp_path, frames_per_point=3)
    with NexusSerializer(tmp_path / "live", file_prefix="live_{scan_id}", timeout=10) as ser:
        world.RE.subscribe(ser)
        uid1 = world.scan(points=3)
        uid2 = world.count(num=2)
    art = ser.artifacts  # leaving the with-block waited for both writes
    assert [p.name for p in art["nexus"]] == ["live_1.h5", "live_2.h5"]
    for path, uid in zip(art["nexus"], (uid1, uid2), strict=True):
        expected = image_of(world, uid)
        with h5py.File(path, "r") as f:
            data = f["entry/instrument/adsim/data"][()]
            assert np.array_equal(data.reshape(expected.shape), expected)
            # 3 frames per point: no single motor value per frame, so frame numbers
            assert list(f["entry/data"].attrs["axes"])[0] == "frame_number"


def test_files_open_in_nexus_tools(world: World, tmp_path):
    nexusformat = pytest.importorskip("nexusformat.nexus", reason="nexusformat not installed")
    silx_io = pytest.importorskip("silx.io", reason="silx not installed")
    uid = world.scan(points=3)
    expected = image_of(world, uid)[:, 0]
    for copy in (False, True):
        (path,) = export(world.documents, tmp_path, f"tools{copy}", copy=copy)["nexus"]
        root = nexusformat.nxload(str(path))
        plottable = root.plottable_data  # follows the @default chain
        assert plottable.nxsignal.nxname == "data"
        assert np.array_equal(plottable.nxsignal.nxdata, expected)
        assert [a.nxname for a in plottable.nxaxes] == ["motor", "y_pixel", "x_pixel"]
        root.nxfile.close()
        with silx_io.open(str(path)) as f:
            assert np.array_equal(f["/entry/measurement/devices/adsim/data"][()], expected)
        assert_valid_nexus(path)


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def test_scalar_only_run_plots_signal_against_axis(world: World, tmp_path):
    uid = world.RE(bp.scan([world.gauss], world.motor, -1, 1, 3))[0]
    (path,) = export(world.documents, tmp_path, "scalars")["nexus"]
    with h5py.File(path, "r") as f:
        assert "adsim" not in f["entry/instrument"]
        nxdata = f["entry/data"]
        assert nxdata.attrs["signal"] == "det"
        assert list(nxdata.attrs["axes"]) == ["motor"]
        expected = world.catalog[uid].primary.read()["det"].values
        assert np.array_equal(nxdata["det"][()], expected)
        assert f["entry/measurement/scalar_data"].attrs["monitor"] == ""


def test_monitor_streams_and_unsupported_externals(world: World, tmp_path):
    from ophyd.sim import SynSignalWithRegistry

    npy = SynSignalWithRegistry(lambda: np.ones((4, 4)), name="npy_img", save_path=str(tmp_path))
    plan = bpp.monitor_during_wrapper(
        bp.scan([world.det, npy], world.motor, 0, 1, 2), [world.motor1]
    )
    world.RE(plan)
    with pytest.warns(ExportWarning, match="'npy_img'.*NPY_SEQ"):
        (path,) = export(world.documents, tmp_path, "mon")["nexus"]
    with h5py.File(path, "r") as f:
        streams = f["entry/bluesky/streams"]
        assert sorted(streams) == ["baseline", "motor1_monitor", "primary"]
        assert streams["motor1_monitor/motor1"][0] == pytest.approx(0.25)
        assert "npy_img" not in streams["primary"]
        assert list(f["entry/instrument"]) == ["adsim"]


def test_live_serializer_times_out_with_the_missing_file_named(tmp_path):
    world = World(tmp_path)
    serializer = NexusSerializer(tmp_path / "live", timeout=0.5)

    def remove_file_then_forward(name, doc):
        if name == "stop":
            world.det.files[0].unlink()  # the frames never become readable
        serializer(name, doc)

    world.RE.subscribe(remove_file_then_forward)
    world.count(num=1)
    with pytest.raises(ExportError, match=f"not readable after 0.5 s.*{world.det.files[0]}"):
        serializer.wait(timeout=30)
    assert not (tmp_path / "live").exists() or not list((tmp_path / "live").iterdir())


def test_virtual_false_copies_what_a_link_cannot_express(tmp_path):
    """nexusformat reads a general virtual dataset wrongly; virtual=False avoids one."""
    nexusformat = pytest.importorskip("nexusformat.nexus", reason="nexusformat not installed")
    world = World(tmp_path)

    def two_files():
        for num in (2, 3):
            yield from bps.stage(world.det)
            for _ in range(num):
                yield from bps.trigger_and_read([world.det])
            yield from bps.unstage(world.det)

    (uid,) = world.RE(bpp.run_wrapper(two_files()))
    uid2 = world.scan(points=2)
    (path,) = export(world.documents, tmp_path / "o", "novds", virtual=False)["nexus"]
    with h5py.File(path, "r") as f:
        assert not f["entry_1/instrument/adsim/data"].is_virtual  # copied
        link = f["entry_2/instrument/adsim"].get("data", getlink=True)
        assert isinstance(link, h5py.ExternalLink)  # whole file: still a link
    root = nexusformat.nxload(str(path))
    assert np.array_equal(root["entry_1/data/data"].nxdata, image_of(world, uid)[:, 0])
    assert np.array_equal(root["entry_2/data/data"].nxdata, image_of(world, uid2)[:, 0])
    root.nxfile.close()


def test_two_area_detectors_and_sample(world: World, tmp_path):
    from adsupport import HDF5FrameDetector

    det2 = HDF5FrameDetector(
        name="adsim2", write_root=tmp_path / "ioc2", shape=(8, 16), dtype="uint8"
    )
    (uid,) = world.RE(
        bp.scan([det2, world.det], world.motor, 0, 1, 3, md={"sample": {"name": "Pt(111)"}})
    )
    (path,) = export(world.documents, tmp_path / "o", "two")["nexus"]
    primary = world.catalog[uid].primary.read()
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        assert entry["sample/name"][()].decode() == "Pt(111)"
        assert sorted(entry["instrument"]) == ["adsim", "adsim2"]
        assert sorted(entry["measurement/devices"]) == ["adsim", "adsim2"]
        for name in ("adsim", "adsim2"):
            expected = primary[f"{name}_image"].values[:, 0]
            assert np.array_equal(entry["instrument"][name]["data"][()], expected)
            assert np.array_equal(entry["measurement/devices"][name]["data"][()], expected)
        # the default plot is the first detector the plan names
        assert entry["data/data"].shape == (3, 8, 16)


def test_failed_run_exports_what_was_taken_and_validates(tmp_path):
    """A plan that dies after two points: the export holds the points it took."""
    world = World(tmp_path)

    class Boom(Exception):
        pass

    def dies_after_two():
        yield from bps.stage(world.det)  # the RunEngine unstages it when the plan fails
        for _ in range(2):
            yield from bps.trigger_and_read([world.det, world.motor])
        raise Boom()

    with pytest.raises(Boom):
        world.RE(bpp.run_wrapper(dies_after_two()))
    uid2 = world.scan(points=2)
    (uid1,) = [u for u in world.catalog if u != uid2]
    names = [n for n, _ in world.documents]
    failed_docs = world.documents[: names.index("stop") + 1]  # the first run's documents
    assert failed_docs[0][1]["uid"] == uid1
    (alone,) = export(failed_docs, tmp_path / "o", "failed")["nexus"]
    (both,) = export(world.documents, tmp_path / "o", "both")["nexus"]
    for path, entry in ((alone, "entry"), (both, "entry_1")):
        with h5py.File(path, "r") as f:
            assert f[entry]["bluesky/stop/exit_status"][()].decode() == "fail"
            data = f[entry]["instrument/adsim/data"]
            assert data.shape == (2, 48, 64)
            assert np.array_equal(data[()], image_of(world, uid1)[:, 0])
        assert_valid_nexus(path)
    with h5py.File(both, "r") as f:
        assert np.array_equal(f["entry_2/data/data"][()], image_of(world, uid2)[:, 0])


@pytest.mark.parametrize("copy", [False, True], ids=["linked", "copy"])
@pytest.mark.parametrize("runs", [1, 2], ids=["single_run", "multi_run"])
def test_nxcheck_and_punx_find_nothing(tmp_path, runs, copy):
    world = World(tmp_path)
    world.scan(points=3)
    if runs == 2:
        world.count(num=2)
    (path,) = export(world.documents, tmp_path / "o", "punx", copy=copy)["nexus"]
    with h5py.File(path, "r") as f:
        assert len([k for k in f if f[k].attrs["NX_class"] == "NXentry"]) == runs
        links = external_links(f)
    # linked: data and measurement/devices link each entry's IOC file (the
    # NXdetector holds a virtual dataset over it: see adtoolkit.export.links)
    assert len(links) == (0 if copy else 2 * runs)
    assert_valid_nexus(path)


def h5_tree(f: h5py.File) -> dict[str, tuple]:
    """Path -> (kind, attributes, shape, dtype, values) of everything reachable in ``f``."""
    tree: dict[str, tuple] = {}

    def visit(name: str, obj) -> None:
        attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            value = np.asarray(obj[()])
            tree[name] = ("dataset", attrs, obj.shape, obj.dtype.str, value.tolist())
        else:
            tree[name] = ("group", attrs)

    for path, _ in external_links(f):  # visititems does not enter external links
        visit(path.lstrip("/"), f[path])
    f.visititems(visit)
    return tree


def test_punx_view_changes_nothing_punx_checks(tmp_path):
    """The view only moves the linked datasets' paths inside their files."""
    world = World(tmp_path)
    world.scan(points=3)
    world.count(num=2)
    (path,) = export(world.documents, tmp_path / "o", "two")["nexus"]
    (tmp_path / "view").mkdir()
    view, redirected = punx_view(path, tmp_path / "view")
    with h5py.File(path, "r") as f, h5py.File(view, "r") as v:
        assert [p for p, _ in external_links(f)] == redirected
        assert h5_tree(v) == h5_tree(f)
        for where in redirected:
            assert v[where].name == where  # what punx keys its catalogue by
            assert f[where].name == "/entry/data/data"  # the path in the IOC's file
