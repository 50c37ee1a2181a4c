"""``adtoolkit tree`` / ``format_tree`` on real HDF5 files.

Two reference files from the NeXus manual's EPICS chapter live in tests/data:
``example.h5`` comes with the ``punx tree`` output printed in the manual, so our
output is compared with it line by line; ``mrinal_001.h5`` is a file written by a
real ADCore IOC (NDAttributes, hard-linked image with ``@target``, an empty group).
Everything else is built in ``tmp_path`` with h5py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from adtoolkit.readers.tree import format_tree, nx_type_name

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "nexus_definitions_manual_epics_example.h5"
MRINAL = DATA / "nexus_definitions_manual_epics_mrinal_001.h5"
PUNX_OUTPUT = DATA / "nexus_definitions_manual_epics_tree_structure.txt"
SRC = Path(__file__).resolve().parents[1] / "src"


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


# -- the reference file and punx's own output ---------------------------------------------


def test_example_matches_punx_tree_line_by_line():
    ours = _lines(format_tree(EXAMPLE))
    punx = _lines(PUNX_OUTPUT.read_text())
    assert len(ours) == len(punx), "\n".join(ours)
    # first line names the file: punx saw it as "example.h5"
    assert ours[0] == "nexus_definitions_manual_epics_example.h5 : NeXus data file"
    assert punx[0] == "example.h5 : NeXus data file"
    for mine, theirs in zip(ours[1:], punx[1:], strict=True):
        if ":NX_" in theirs and "=" in theirs and "__array" not in theirs:
            # scalar datasets: punx prints no value (or a bytes repr); same name/type/shape
            assert mine.split(" =")[0] == theirs.split(" =")[0]
        else:
            assert mine == theirs


def test_example_scalar_values_are_printed():
    text = format_tree(EXAMPLE)
    with h5py.File(EXAMPLE) as f:
        meta = f["entry/instrument/metadata"]
        assert meta["size_x"][()] == 1024 and meta["unique_id"][()] == 333
    assert '        bitcoin_value:NX_CHAR = "15000"\n' in text
    assert "        detector_state:NX_INT64[] = 0\n" in text
    assert "        size_x:NX_INT64[] = 1024\n" in text
    assert "        unique_id:NX_INT64[] = 333\n" in text


def test_adcore_file_hard_link_uses_target_attribute():
    text = format_tree(MRINAL)
    lines = text.splitlines()
    # /entry/data/data and /entry/instrument/detector/data are one dataset; the
    # @target says where it lives, so the NXdata entry is the link
    assert "      data --> /entry/instrument/detector/data" in lines
    assert "        data:NX_UINT8[30,40] = __array" in lines
    assert '          @target = "/entry/instrument/detector/data"' in lines
    assert "          @NDArrayDimBinning = [50, 50]" in lines
    assert text.count(":NX_UINT8[30,40]") == 1


def test_adcore_file_ndattributes_and_empty_group():
    lines = format_tree(MRINAL).splitlines()
    assert "      NDAttributes:NXcollection" in lines
    assert '        @hostname = "mint-vm"' in lines
    assert "        AcquireTime:NX_FLOAT64[1] = 0.1" in lines
    assert '          @NDAttrSource = "13SIM1:cam1:AcquireTime"' in lines
    assert "        MaxSizeX:NX_INT32[1] = 2000" in lines
    # a group without NX_class prints its bare name, and is the last line
    assert lines[-1] == "      performance"
    # 1 x 5 float array: small enough to print in full
    timestamp = next(line for line in lines if "timestamp:" in line)
    assert timestamp.startswith("        timestamp:NX_FLOAT64[1,5] = [[0.000277434, ")


def test_no_values_hides_data_keeps_structure():
    text = format_tree(EXAMPLE, show_values=False)
    assert "__array" not in text
    assert "        image:NX_UINT8[1024,1024]\n" in text
    assert "        unique_id:NX_INT64[]\n" in text
    assert '          @units = "counts"\n' in text


# -- files built here ----------------------------------------------------------------------


@pytest.fixture
def linked_file(tmp_path: Path) -> Path:
    other = tmp_path / "frames_000.h5"
    with h5py.File(other, "w") as f:
        f["entry/data/data"] = np.arange(2 * 4 * 5, dtype="<u2").reshape(2, 4, 5)
    path = tmp_path / "master.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "x" * 200
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["a_first"] = np.arange(12, dtype="<i4")  # hard-linked, no @target
        entry["z_second"] = entry["a_first"]
        entry["soft"] = h5py.SoftLink("/entry/a_first")
        entry["broken"] = h5py.SoftLink("/entry/nowhere")
        entry["frames"] = h5py.ExternalLink("frames_000.h5", "/entry/data/data")
        entry["lost"] = h5py.ExternalLink("missing.h5", "/entry/data/data")
        entry["stack"] = np.zeros((100, 48, 64), dtype="<f4")
        entry["flag"] = np.bool_(True)
        entry["label"] = "hello"
        entry["empty"] = h5py.Empty("f8")
        entry["zero_length"] = np.zeros((0,), dtype="<i2")
        entry["pairs"] = np.array([(1, 2.5)], dtype=[("n", "<i4"), ("x", "<f8")])
    return path


def test_links_are_shown_as_such(linked_file: Path):
    lines = format_tree(linked_file).splitlines()
    assert "    a_first:NX_INT32[12] = [0, 1, 2, '...', 11]" in lines
    assert "    z_second --> /entry/a_first" in lines
    assert "    soft --> /entry/a_first (soft link)" in lines
    assert "    broken --> /entry/nowhere (soft link, dangling)" in lines
    assert "    frames --> frames_000.h5:/entry/data/data (external link)" in lines
    assert "    lost --> missing.h5:/entry/data/data (external link, dangling)" in lines


def test_values_types_and_truncation(linked_file: Path):
    lines = format_tree(linked_file).splitlines()
    assert lines[0] == "master.h5 : NeXus data file"
    title = lines[1]
    assert title.startswith('  @title = "xxxx') and title.endswith("...")
    assert len(title) == len("  @title = ") + 80
    assert "    stack:NX_FLOAT32[100,48,64]" in lines  # 3-D: no preview
    assert "    flag:NX_BOOLEAN[] = True" in lines
    assert '    label:NX_CHAR = "hello"' in lines
    assert "    empty:NX_FLOAT64 = (empty)" in lines
    assert "    zero_length:NX_INT16[0] = []" in lines
    assert any(line.startswith("    pairs:|V12[1] = ") for line in lines), lines


def test_plain_hdf5_file_and_open_objects(tmp_path: Path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["g/values"] = np.array([1.5, 2.5])
        text = format_tree(f)
        sub = format_tree(f["g"])
    assert text.splitlines() == [
        "plain.h5 : HDF5 file",
        "  g",
        "    values:NX_FLOAT64[2] = [1.5, 2.5]",
    ]
    assert sub.splitlines() == ["plain.h5:/g", "  values:NX_FLOAT64[2] = [1.5, 2.5]"]


def test_compressed_dataset_is_previewed(tmp_path: Path):
    hdf5plugin = pytest.importorskip("hdf5plugin", reason="hdf5plugin provides the LZ4 filter")
    path = tmp_path / "lz4.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "image", data=np.arange(48 * 64, dtype="<u2").reshape(48, 64), **hdf5plugin.LZ4()
        )
    lines = format_tree(path).splitlines()
    assert lines[1] == "  image:NX_UINT16[48,64] = __array"
    assert lines[3] == "        [0, 1, 2, '...', 63]"
    assert lines[-2] == "        [3008, 3009, 3010, '...', 3071]"


@pytest.mark.parametrize(
    "dtype,name",
    [("<u1", "NX_UINT8"), (">i8", "NX_INT64"), ("<f4", "NX_FLOAT32"), ("S5", "NX_CHAR")],
)
def test_nx_type_names(dtype, name):
    assert nx_type_name(np.dtype(dtype)) == name


def test_bad_input_names_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        format_tree(tmp_path / "nope.h5")
    text_file = tmp_path / "notes.h5"
    text_file.write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file: .*notes.h5"):
        format_tree(text_file)


# -- the command ---------------------------------------------------------------------------


def _adtoolkit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "adtoolkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_tree_command_prints_the_tree():
    result = _adtoolkit("tree", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout == format_tree(EXAMPLE)


def test_tree_command_reports_missing_file(tmp_path: Path):
    result = _adtoolkit("tree", str(tmp_path / "missing.h5"))
    assert result.returncode == 2
    assert "missing.h5" in result.stderr
    assert result.stdout == ""
