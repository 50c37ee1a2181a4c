"""Random IOC/workstation path templates and IOC file names against adtoolkit.paths.

A wrong path is worse than an error: the IOC writes one place and the workstation
looks in another, or, worse, a file name the IOC reports maps outside the data
directory.  So for any input the mapping either raises PathTemplateError with a
message naming the input, or gives the one right answer, which these tests compute
independently with plain string operations and the standard library's strftime.
"""

from __future__ import annotations

import os
import string
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adtoolkit.paths import PathTemplateError, PathTemplates

#: CI keeps the fuzz short; ADTOOLKIT_FUZZ_EXAMPLES=1000 for a deep run
EXAMPLES = int(os.environ.get("ADTOOLKIT_FUZZ_EXAMPLES", "80"))

SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

SAFE_CODES = ["%Y", "%m", "%d", "%H", "%M", "%S", "%j", "%y"]
UNSAFE_CODES = ["%c", "%x", "%X", "%D", "%T", "%R", "%r"]  # each gives "/" or ":"

name_chars = string.ascii_letters + string.digits + "_-+.@ =,"
component = st.text(name_chars, min_size=1, max_size=8).filter(
    lambda c: c not in (".", "..") and c == c.strip()
)
dated_component = st.lists(
    st.one_of(component, st.sampled_from(SAFE_CODES)), min_size=1, max_size=3
).map("".join)
mount = st.lists(component, min_size=1, max_size=3)
tail = st.lists(dated_component, min_size=0, max_size=3)
when = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))
drive = st.sampled_from(["C:", "D:", "z:"])


def posix(parts):
    return "/" + "/".join(parts)


@SETTINGS
@given(wmount=mount, rmount=mount, tail=tail, when=when, trailing=st.booleans())
def test_posix_templates_render_and_map_exactly(wmount, rmount, tail, when, trailing):
    write = posix(wmount + tail) + ("/" if trailing else "")
    read = posix(rmount + tail)
    templates = PathTemplates(write, read)
    rendered = templates.render(when)
    expect_w = when.strftime(posix(wmount + tail)) + "/"
    expect_r = when.strftime(posix(rmount + tail)) + "/"
    assert rendered.write_dir == expect_w
    assert rendered.read_dir == expect_r
    for name in ("f_000001.h5", "sub/f.tif"):
        assert templates.to_read_path(expect_w + name) == Path(expect_r + name)


@SETTINGS
@given(wmount=mount, rmount=mount, tail=tail, when=when, d=drive, bs=st.booleans())
def test_windows_ioc_templates_map_to_posix_workstation(wmount, rmount, tail, when, d, bs):
    assume(all(not set(p) & set('<>:"|?*') for p in wmount + tail))
    sep = "\\" if bs else "/"
    write = d + sep + sep.join(wmount + tail)
    read = posix(rmount + tail)
    templates = PathTemplates(write, read, semantics="windows")
    rendered = templates.render(when)
    assert rendered.write_dir.endswith("\\")
    expect_w = PureWindowsPath(when.strftime(d + "\\" + "\\".join(wmount + tail)))
    assert PureWindowsPath(rendered.write_dir) == expect_w
    expect_r = when.strftime(posix(rmount + tail)) + "/"
    assert rendered.read_dir == expect_r
    ioc_file = rendered.write_dir + "f_000001.h5"
    assert templates.to_read_path(ioc_file) == Path(expect_r + "f_000001.h5")


@SETTINGS
@given(wmount=mount, tail=tail, code=st.sampled_from(UNSAFE_CODES), where=st.integers(0, 5))
def test_codes_that_make_separators_are_refused(wmount, tail, code, where):
    parts = wmount + tail
    i = where % len(parts)
    parts = parts[:i] + [parts[i] + code] + parts[i + 1 :]
    template = posix(parts)
    try:
        PathTemplates(template, template).render(datetime(2026, 11, 21, 12, 30, 5))
    except PathTemplateError as exc:
        assert template in str(exc) or repr(template) in str(exc)
    else:
        raise AssertionError(f"{template!r} accepted although {code} contains a separator")


@SETTINGS
@given(
    wmount=mount,
    rmount=mount,
    tail=tail,
    rel=st.lists(st.one_of(component, st.sampled_from(["..", ".", ""])), max_size=5),
)
def test_ioc_file_names_map_inside_or_raise(wmount, rmount, tail, rel):
    """Any name the IOC reports: inside the mount it maps exactly, '..' never escapes."""
    templates = PathTemplates(posix(wmount + tail), posix(rmount + tail))
    ioc_file = templates.write_root + "/".join(rel)
    try:
        result = templates.to_read_path(ioc_file)
    except PathTemplateError as exc:
        assert ioc_file in str(exc) or repr(ioc_file) in str(exc)
        return
    parts = PurePosixPath(ioc_file).relative_to(templates.write_root).parts
    assert ".." not in parts
    assert result == Path(templates.read_root, *parts)
    assert Path(templates.read_root) in (result, *result.parents)


@SETTINGS
@given(write=st.text(max_size=40), read=st.one_of(st.none(), st.text(max_size=40)))
def test_arbitrary_templates_raise_clearly_or_stay_consistent(write, read):
    try:
        templates = PathTemplates(write, read)
        rendered = templates.render(datetime(2026, 11, 21, 12, 30, 5))
    except PathTemplateError as exc:
        assert str(exc)
        return
    sep = "\\" if templates.semantics == "windows" else "/"
    assert rendered.write_dir.endswith(sep) and rendered.read_dir.endswith("/")
    assert ".." not in PurePosixPath(rendered.read_dir).parts
    mapped = templates.to_read_path(rendered.write_dir + "x.h5")
    assert mapped == Path(rendered.read_dir) / "x.h5"


@SETTINGS
@given(ioc_file=st.one_of(st.text(max_size=60), st.text(max_size=40).map("/ioc/data/".__add__)))
def test_arbitrary_ioc_file_names_raise_clearly_or_map_inside(ioc_file):
    templates = PathTemplates("/ioc/data/%Y", "/home/bl/data/%Y")
    try:
        result = templates.to_read_path(ioc_file)
    except PathTemplateError as exc:
        assert str(exc)
        return
    assert Path("/home/bl/data") in (result, *result.parents)
    assert ".." not in result.parts
