"""IOC write / workstation read path templates (adtoolkit.paths)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtoolkit.paths import (
    PathTemplateError,
    PathTemplates,
    ReadPathMissingError,
    guess_semantics,
)

WHEN = datetime(2026, 11, 21, 9, 5, 7)


def test_same_mount_point_adds_trailing_separator():
    t = PathTemplates("/data/run/%Y/%m/%d")
    r = t.render(WHEN)
    assert r.write_dir == "/data/run/2026/11/21/"
    assert r.read_dir == "/data/run/2026/11/21/"


def test_different_mount_points_posix():
    t = PathTemplates("/mnt/ioc/data/%Y/%m/", read="/home/bl/data/%Y/%m/")
    assert t.write_root == "/mnt/ioc/"
    assert t.read_root == "/home/bl/"
    r = t.render(WHEN)
    assert r.write_dir == "/mnt/ioc/data/2026/11/"
    assert r.read_dir == "/home/bl/data/2026/11/"
    assert t.to_read_path("/mnt/ioc/data/2026/11/a_000001.h5") == Path(
        "/home/bl/data/2026/11/a_000001.h5"
    )
    # any IOC-side name under the mount point maps, not only today's directory
    assert t.to_read_path("/mnt/ioc/other/x.tif") == Path("/home/bl/other/x.tif")


def test_windows_ioc_uses_backslashes_and_maps_case_insensitively():
    t = PathTemplates(r"D:\data\%Y\%m", read="/nfs/det/data/%Y/%m")
    assert t.semantics == "windows"
    r = t.render(WHEN)
    assert r.write_dir == "D:\\data\\2026\\11\\"
    assert r.read_dir == "/nfs/det/data/2026/11/"
    assert t.to_read_path(r"d:\DATA\2026\11\img_000003.h5") == Path(
        "/nfs/det/DATA/2026/11/img_000003.h5"
    )
    assert t.to_read_path("D:/data/2026/11/b.h5") == Path("/nfs/det/data/2026/11/b.h5")


def test_unc_path_is_windows():
    assert guess_semantics(r"\\server\share\data") == "windows"
    assert guess_semantics("/data") == "posix"
    assert guess_semantics("C:/data") == "windows"


@pytest.mark.skipif(os.name == "nt", reason="checks the posix workstation case")
def test_windows_write_without_read_is_refused():
    with pytest.raises(PathTemplateError, match="give read="):
        PathTemplates(r"D:\data")


@pytest.mark.parametrize(
    "template, fragment",
    [
        ("", "empty"),
        ("data/%Y", "not an absolute"),
        ("/data/%Y/%", "dangling"),
        ("/data/%c/", "'%c'"),
        ("/data/%x", "'%x'"),
        ("/data/%D", "'%D'"),
        ("/data/../etc", "'..'"),
        ("/data/./x", "'.'"),
        ("/data/\nx", "control"),
        (" /data", "white space"),
    ],
)
def test_bad_write_templates_name_the_problem(template, fragment):
    with pytest.raises(PathTemplateError) as err:
        PathTemplates(template, read="/local/x")
    assert fragment in str(err.value)


def test_non_str_template_is_a_clear_error():
    with pytest.raises(PathTemplateError, match="int"):
        PathTemplates(42)  # type: ignore[arg-type]


def test_windows_forbidden_characters():
    with pytest.raises(PathTemplateError, match="Windows does not allow"):
        PathTemplates(r"D:\data\a?b", read="/x/a?b")


def test_strftime_in_mount_point_is_refused():
    # the date-dependent directories differ between the sides: no mapping is possible
    with pytest.raises(PathTemplateError, match="mount point"):
        PathTemplates("/data/%Y/ioc", read="/home/%m/ws")


def test_too_long_write_path():
    t = PathTemplates("/" + "a" * 300, read="/b/" + "a" * 300)
    with pytest.raises(PathTemplateError, match="at most 255"):
        t.render(WHEN)


def test_file_outside_the_mount_point_names_the_mapping():
    t = PathTemplates("/mnt/ioc/data/%Y", read="/home/bl/data/%Y")
    with pytest.raises(PathTemplateError) as err:
        t.to_read_path("/elsewhere/x.h5")
    msg = str(err.value)
    assert "/elsewhere/x.h5" in msg and "/mnt/ioc/" in msg and "/home/bl/" in msg


def test_missing_file_names_both_paths(tmp_path):
    t = PathTemplates("/ioc/side/data", read=str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "present.h5").write_bytes(b"x")
    assert t.existing_read_path("/ioc/side/data/present.h5") == tmp_path / "data" / "present.h5"
    with pytest.raises(ReadPathMissingError) as err:
        t.existing_read_path("/ioc/side/data/absent.h5")
    msg = str(err.value)
    assert "/ioc/side/data/absent.h5" in msg
    assert str(tmp_path / "data" / "absent.h5") in msg
    assert "mapping" in msg


def test_percent_literal():
    t = PathTemplates("/data/100%%/%Y")
    assert t.render(WHEN).write_dir == "/data/100%/2026/"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="abc%Ymdc\\/.: _", max_size=8), min_size=0, max_size=5),
    st.lists(st.text(alphabet="xyz", min_size=1, max_size=4), min_size=1, max_size=3),
)
def test_fuzz_never_a_wrong_path(tail_parts, read_root_parts):
    """Either a clear error or a path that satisfies every invariant."""
    write = "/ioc/" + "/".join(tail_parts)
    read = "/" + "/".join(read_root_parts) + "/" + "/".join(tail_parts)
    try:
        t = PathTemplates(write, read=read)
        r = t.render(WHEN)
    except PathTemplateError:
        return
    assert r.write_dir.endswith("/") and r.read_dir.endswith("/")
    w = PurePosixPath(r.write_dir)
    assert w.is_absolute()
    assert ".." not in w.parts
    expected = Path(r.read_dir) / "f_000001.h5"
    assert t.to_read_path(r.write_dir + "f_000001.h5") == expected
    # the rendered directories have the same depth as the templates
    assert len(PurePosixPath(r.write_dir).parts) == len(PurePosixPath(write).parts)


def test_fixed_dirs_are_the_data_directory_without_its_dated_part():
    """Where make_detector puts the XML files: never the filesystem root that write ==
    read makes the mount point."""
    same = PathTemplates("/data/beamline/", "/data/beamline/")
    assert same.write_root == "/"
    assert same.fixed_dirs == ("/data/beamline/", "/data/beamline/")
    dated = PathTemplates("/data/adsim/%Y/%m/", "/mnt/adsim/%Y/%m/")
    assert dated.fixed_dirs == ("/data/adsim/", "/mnt/adsim/")
    windows = PathTemplates("D:\\data\\run\\%Y\\", "/mnt/d/data/run/%Y/")
    assert windows.fixed_dirs == ("D:\\data\\run\\", "/mnt/d/data/run/")
