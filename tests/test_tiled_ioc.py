"""Runs from the simulated IOC ingested by an embedded tiled server, read back through it.

One ``EmbeddedTiled`` (tiled's SimpleTiledServer, SQLite catalog in a temporary
directory, the IOC's read root as readable storage) for the module; a ``count``
and a ``scan`` with two frames per point taken with ``make_detector`` over
Channel Access, the classic ``AD_HDF5`` documents going to databroker and to
tiled at once.  Frames read through the tiled server must equal the HDF5 files
bit for bit, and ``open_run`` must give the same run from tiled as from
databroker.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from ioc_helpers import configure_noisy_frames

pytest.importorskip("tiled.server", reason="tiled not installed (pip install 'adtoolkit[tiled]')")
pytest.importorskip("bluesky_tiled_plugins", reason="bluesky-tiled-plugins not installed")

from adtoolkit.readers import open_run  # noqa: E402
from adtoolkit.tiledcatalog import EmbeddedTiled, TiledCatalogError, connect  # noqa: E402

pytestmark = pytest.mark.ioc

X, Y = 32, 24


def _make_detector(ioc, name: str, sub: str, fpp: int = 1):
    from adtoolkit.devices import make_detector

    det = make_detector(
        ioc.prefix,
        name=name,
        plugins="hdf1",
        frames_per_point=fpp,
        write_path=f"{ioc.write_root}/{sub}/",
        read_path=f"{ioc.read_root}/{sub}/",
    )
    configure_noisy_frames(det, X, Y)
    return det


@pytest.fixture(scope="module")
def tiled_runs(ioc, tmp_path_factory):
    import bluesky.plans as bp
    import databroker
    from bluesky import RunEngine
    from ophyd.sim import SynAxis

    tiled = EmbeddedTiled(
        readable=[ioc.read_root / "tiled"], directory=tmp_path_factory.mktemp("tiled")
    )
    RE = RunEngine({})
    catalog = databroker.temp()
    RE.subscribe(catalog.v1.insert)
    RE.subscribe(tiled.writer)
    th = SynAxis(name="th")
    det = _make_detector(ioc, "tdet", "tiled/%Y", fpp=1)
    det2 = _make_detector(ioc, "tdet2", "tiled/fpp", fpp=2)
    try:
        (count_uid,) = RE(bp.count([det], num=2))
        (scan_uid,) = RE(bp.scan([det2], th, -1, 1, 3))
    finally:
        det.destroy()
        det2.destroy()
    runs = {"count": (count_uid, "tdet"), "scan": (scan_uid, "tdet2")}
    # Everything read through tiled first: the server runs in this process and
    # opens the files SWMR; HDF5 refuses that while databroker's handler holds
    # the same file open without SWMR (see adtoolkit.tiledcatalog).
    through_tiled = {}
    for plan, (uid, name) in runs.items():
        arr = tiled.client[uid]["primary"][f"{name}_image"]
        with open_run(tiled.client[uid]) as opened:
            through_tiled[plan] = {
                "dtype": arr.dtype,
                "read": arr.read(),
                "open_run": opened,
                "frames": opened.frames().compute(),
            }
        with open_run(uid, catalog=tiled.client) as by_uid:
            through_tiled[plan]["by_uid"] = by_uid.frames().compute()
    try:
        yield tiled, catalog.v2, runs, RE, through_tiled
    finally:
        tiled.close()


def _file_frames(catalog, uid: str, key: str) -> np.ndarray:
    """The frames as the HDF5 files hold them, in event order (points, fpp, Y, X)."""
    from event_model import unpack_datum_page, unpack_event_page

    docs = []
    for name, doc in catalog[uid].documents(fill="no"):
        if name == "event_page":
            docs += [("event", d) for d in unpack_event_page(doc)]
        elif name == "datum_page":
            docs += [("datum", d) for d in unpack_datum_page(doc)]
        else:
            docs.append((name, doc))
    resources = {d["uid"]: d for n, d in docs if n == "resource"}
    datums = {d["datum_id"]: d for n, d in docs if n == "datum"}
    out = []
    for name, doc in docs:
        if name != "event" or key not in doc["data"]:
            continue
        datum = datums[doc["data"][key]]
        res = resources[datum["resource"]]
        fpp = res["resource_kwargs"]["frame_per_point"]
        i = datum["datum_kwargs"]["point_number"]
        with h5py.File(f"{res['root']}/{res['resource_path']}".replace("//", "/"), "r") as f:
            out.append(f["/entry/data/data"][i * fpp : (i + 1) * fpp])
    return np.stack(out)


@pytest.mark.parametrize("plan", ["count", "scan"])
def test_frames_through_tiled_are_the_files_bit_for_bit(tiled_runs, plan):
    _, catalog, runs, _, through_tiled = tiled_runs
    uid, name = runs[plan]
    key = f"{name}_image"
    expected = _file_frames(catalog, uid, key)
    assert expected.shape == ((2, 1) if plan == "count" else (3, 2)) + (Y, X)
    frames = expected.reshape(-1, Y, X)
    assert len({f.tobytes() for f in frames}) == len(frames)  # noise: every frame differs
    got = through_tiled[plan]
    assert got["dtype"] == np.uint16  # the descriptor's dtype_numpy, not tiled's <f8 fallback
    assert got["read"].dtype == np.uint16 and np.array_equal(got["read"], expected)
    assert np.array_equal(catalog[uid].primary.read()[key].values, expected)


@pytest.mark.parametrize("plan", ["count", "scan"])
def test_open_run_reads_tiled_like_databroker(tiled_runs, plan):
    _, catalog, runs, _, through_tiled = tiled_runs
    uid, name = runs[plan]
    from_tiled = through_tiled[plan]["open_run"]
    with open_run(catalog[uid]) as from_db:
        assert from_tiled.uid == from_db.uid == uid
        assert from_tiled.source == f"tiled run {uid}"
        assert list(from_tiled.detectors) == list(from_db.detectors) == [name]
        db_frames = from_db.frames().compute()
        assert through_tiled[plan]["frames"].dtype == np.uint16
        assert np.array_equal(through_tiled[plan]["frames"], db_frames)
        assert np.array_equal(through_tiled[plan]["by_uid"], db_frames)
        assert sorted(from_tiled.scalars) == sorted(from_db.scalars)
        for key, values in from_db.scalars.items():
            assert np.array_equal(from_tiled.scalars[key], values), key
        assert np.allclose(from_tiled.time, from_db.time)


def test_server_down_names_the_server():
    from adtoolkit.ioc.launcher import free_port

    port = free_port()  # nothing listens there
    with pytest.raises(
        TiledCatalogError, match=f"tiled server http://127.0.0.1:{port}/api/v1 is not reachable"
    ):
        connect(f"http://127.0.0.1:{port}/api/v1?api_key=secret")


def test_file_outside_readable_storage_names_server_and_path(tiled_runs, ioc):
    """Refused before anything is sent, with the server and the file named."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    tiled = tiled_runs[0]
    det = _make_detector(ioc, "tout", "outside")  # outside <read_root>/tiled
    try:
        RE = RunEngine({})
        RE.subscribe(tiled.writer)
        with pytest.raises(TiledCatalogError) as known:
            RE(bp.count([det], num=1))
        message = str(known.value)
        assert tiled.name in message and f"{ioc.read_root}/outside/" in message
        assert "outside the server's readable storage" in message and "api_key" not in message
    finally:
        det.destroy()
