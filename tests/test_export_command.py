"""``adtoolkit export --catalog NAME UID... -o DIR`` against a real named databroker catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from adsupport import World

SRC = Path(__file__).resolve().parents[1] / "src"


def run_cli(args: list[str], data_home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(data_home), PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "adtoolkit", "export", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


@pytest.fixture
def named_catalog(tmp_path):
    """A World whose msgpack catalog is findable by name through intake's search path."""
    world = World(tmp_path, ioc_root="/ioc/data")
    data_home = tmp_path / "xdg"
    (data_home / "intake").mkdir(parents=True)
    (data_home / "intake" / "adt_test.yml").write_text(
        "sources:\n"
        "  adt_test:\n"
        "    driver: bluesky-msgpack-catalog\n"
        "    args:\n"
        f"      paths: ['{tmp_path / 'catalog'}/*.msgpack']\n"
    )
    return world, data_home


def test_cli_exports_runs_from_a_named_catalog(named_catalog, tmp_path):
    world, data_home = named_catalog
    uid1 = world.scan(points=3)
    uid2 = world.count(num=2)
    expected = {u: world.catalog[u].primary.read()["adsim_image"].values for u in (uid1, uid2)}
    out = tmp_path / "out"
    pm = f"/ioc/data={world.det.write_root}"
    res = run_cli(
        ["--catalog", "adt_test", uid1, uid2[:8], "-o", str(out), "--path-map", pm, "--copy"],
        data_home,
    )
    assert res.returncode == 0, res.stderr
    (path,) = [Path(line) for line in res.stdout.split()]
    assert path.parent == out
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["entry_1", "entry_2"]
        for name, uid in (("entry_1", uid1), ("entry_2", uid2)):
            assert f[name]["entry_identifier"][()].decode() == uid
            assert np.array_equal(f[name]["data/data"][()], expected[uid][:, 0])

    res = run_cli(
        [
            "--catalog",
            "adt_test",
            uid1,
            uid2,
            "-o",
            str(out),
            "--path-map",
            pm,
            "--separate",
            "--prefix",
            "run_{scan_id}",
        ],
        data_home,
    )
    assert res.returncode == 0, res.stderr
    assert [Path(p).name for p in res.stdout.split()] == ["run_1.h5", "run_2.h5"]


def test_cli_errors_are_clear(named_catalog, tmp_path):
    world, data_home = named_catalog
    uid = world.count(num=1)
    res = run_cli(["--catalog", "nope", uid, "-o", str(tmp_path)], data_home)
    assert res.returncode == 1 and "no catalog 'nope'" in res.stderr
    res = run_cli(["--catalog", "adt_test", uid, "-o", str(tmp_path)], data_home)
    assert res.returncode == 1 and "/ioc/data/adsim_000000.h5" in res.stderr  # unmapped path
    res = run_cli(["--catalog", "adt_test", uid, "-o", str(tmp_path), "--path-map", "x"], data_home)
    assert res.returncode == 2 and "IOC_DIR=LOCAL_DIR" in res.stderr
    assert not list(tmp_path.glob("*.h5*"))
