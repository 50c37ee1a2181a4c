"""Byte-range copies of frames, file to file (``adtoolkit.export.rawcopy``)."""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from adtoolkit.export import rawcopy


def make_source(path, size: int = 200_000) -> bytes:
    data = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return data


def expected_copy(data: bytes, dst_size: int, base: int, ranges) -> bytes:
    out = bytearray(dst_size)
    for s, d, n in ranges:
        out[base + d : base + d + n] = data[s : s + n]
    return bytes(out)


# unaligned offsets, out-of-order sources, a gap in the destination, a piece
# longer than the (shrunk) window, and more pieces than one pwritev may take
RANGES = [
    (33, 0, 5000),
    (150_001, 5000, 20_000),
    (70_000, 25_000, 3),
    (90_000, 30_000, 40_000),
    *[(10_000 + 7 * i, 70_000 + 5 * i, 5) for i in range(40)],
]


@pytest.mark.parametrize("window, iov_max", [(64 << 20, 1024), (8192, 16)])
def test_copy_ranges_puts_every_byte_in_place(tmp_path, monkeypatch, window, iov_max):
    monkeypatch.setattr(rawcopy, "WINDOW", window)
    monkeypatch.setattr(rawcopy, "IOV_MAX", iov_max)
    data = make_source(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.write_bytes(bytes(80_000))
    rawcopy.copy_ranges(str(tmp_path / "src"), str(dst), 100, RANGES)
    assert dst.read_bytes() == expected_copy(data, 80_000, 100, RANGES)
    batches = rawcopy._batches(RANGES)
    assert [r for b in batches for r in b if r[2] > window] == []
    assert max(len(b) for b in batches) <= iov_max
    if window == 8192:  # the 20 000 and 40 000 byte ranges are split
        assert sum(len(b) for b in batches) > len(RANGES)


def test_copy_beyond_the_end_of_the_source_names_both_files(tmp_path):
    make_source(tmp_path / "src", size=1000)
    dst = tmp_path / "dst"
    dst.write_bytes(b"")
    with pytest.raises(OSError, match=f"{tmp_path / 'src'} to {dst}.*short copy"):
        rawcopy.copy_ranges(str(tmp_path / "src"), str(dst), 0, [(500, 0, 1000)])


def test_copy_of_a_missing_source_names_it(tmp_path):
    with pytest.raises(OSError, match=str(tmp_path / "nope")):
        rawcopy.copy_ranges(str(tmp_path / "nope"), str(tmp_path / "dst"), 0, [(0, 0, 1)])


def test_background_copier_finishes_every_copy_before_leaving(tmp_path):
    data = make_source(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.write_bytes(bytes(80_000))
    with rawcopy.BackgroundCopier() as copier:
        for r in RANGES:
            copier.submit(str(tmp_path / "src"), str(dst), 100, [r])
    assert dst.read_bytes() == expected_copy(data, 80_000, 100, RANGES)
    assert not [t for t in threading.enumerate() if t.name.startswith("rawcopy")]


def test_background_copier_raises_the_copy_error(tmp_path):
    make_source(tmp_path / "src", size=10)
    (tmp_path / "dst").write_bytes(b"")
    with pytest.raises(OSError, match="short copy"):
        with rawcopy.BackgroundCopier() as copier:
            copier.submit(str(tmp_path / "src"), str(tmp_path / "dst"), 0, [(0, 0, 100)])


def test_background_copier_cancels_when_the_writer_fails(tmp_path, monkeypatch):
    """An error while the file is written: copies not started never run, the running one stops."""
    make_source(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.write_bytes(bytes(80_000))
    original = rawcopy.copy_ranges
    started = []

    def held_until_cancelled(*args):
        started.append(args[3])
        args[4].wait(10)  # the copier's cancel event: set when the with-block fails
        return original(*args)

    monkeypatch.setattr(rawcopy, "copy_ranges", held_until_cancelled)
    with pytest.raises(RuntimeError, match="writer failed"):
        with rawcopy.BackgroundCopier() as copier:
            for r in RANGES:
                copier.submit(str(tmp_path / "src"), str(dst), 0, [r])
            raise RuntimeError("writer failed")
    assert started == [[RANGES[0]]]
    assert dst.read_bytes() == bytes(80_000)
    assert not [t for t in threading.enumerate() if t.name.startswith("rawcopy")]


def test_raw_target_is_allocated_and_never_filled(tmp_path):
    """The export's destination: its bytes sit at get_offset() and HDF5 writes none."""
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        ds = rawcopy.create_raw_target(f, "d", (3, 4), h5py.h5t.NATIVE_UINT16)
        base = ds.id.get_offset()
        assert base is not None
    values = np.arange(12, dtype="<u2").reshape(3, 4)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, values.tobytes(), base)
    finally:
        os.close(fd)
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["d"][()], values)
