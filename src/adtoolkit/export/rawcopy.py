"""Copy uncompressed frames byte for byte, file to file, without passing through HDF5.

Uncompressed frames are stored in the IOC's file as plain byte ranges (a
contiguous dataset, or one chunk per frame or group of frames).  When the
destination is a contiguous dataset whose storage is allocated up front and
never filled, the frames can go straight from one file to the other with
``os.copy_file_range`` (in the kernel, no copy through user space), which is
what makes ``copy=True`` about as fast as copying the files themselves.

``plan_ranges`` decides whether a source qualifies and returns its byte ranges;
``copy_ranges`` moves the bytes.  Anything unusual (filters, frames split over
several chunks, unallocated chunks) makes ``plan_ranges`` return None and the
caller copies through HDF5 instead.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

#: (source offset, destination offset relative to the dataset start, length)
ByteRange = tuple[int, int, int]


def has_filters(ds: h5py.Dataset) -> bool:
    return ds.id.get_create_plist().get_nfilters() > 0


def plan_ranges(ds: h5py.Dataset, start: int, stop: int, dst_offset: int) -> list[ByteRange] | None:
    """Byte ranges holding frames ``start:stop`` of ``ds``, or None if not plainly stored."""
    if has_filters(ds) or ds.dtype.hasobject:
        return None
    frame_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    layout = ds.id.get_create_plist().get_layout()
    ranges: list[ByteRange] = []
    if layout == h5py.h5d.CONTIGUOUS:
        base = ds.id.get_offset()
        if base is None:
            return None
        ranges.append((base + start * frame_bytes, dst_offset, (stop - start) * frame_bytes))
        return ranges
    if layout != h5py.h5d.CHUNKED:
        return None
    chunks = ds.chunks
    if any(c != s for c, s in zip(chunks[1:], ds.shape[1:], strict=True)):
        return None  # a frame spread over several chunks: not one byte range per frame
    c = chunks[0]
    stored = _chunk_offsets(ds)
    frame = start
    while frame < stop:
        k = frame // c
        byte_offset, size = stored.get(k * c, (None, 0))
        if byte_offset is None or size != c * frame_bytes:
            return None
        first = frame - k * c
        n = min(stop, (k + 1) * c) - frame
        src = byte_offset + first * frame_bytes
        dst = dst_offset + (frame - start) * frame_bytes
        if ranges and ranges[-1][0] + ranges[-1][2] == src and ranges[-1][1] + ranges[-1][2] == dst:
            s0, d0, length = ranges[-1]
            ranges[-1] = (s0, d0, length + n * frame_bytes)
        else:
            ranges.append((src, dst, n * frame_bytes))
        frame += n
    return ranges


def _chunk_offsets(ds: h5py.Dataset) -> dict[int, tuple[int, int]]:
    """First frame of each stored chunk -> (byte offset, stored size), in one pass."""
    stored: dict[int, tuple[int, int]] = {}

    def visit(info) -> None:
        stored[info.chunk_offset[0]] = (info.byte_offset, info.size)

    if hasattr(ds.id, "chunk_iter"):  # HDF5 >= 1.12.3 / 1.14
        ds.id.chunk_iter(visit)
    else:
        for i in range(ds.id.get_num_chunks()):
            visit(ds.id.get_chunk_info(i))
    return stored


def create_raw_target(
    group: h5py.Group, name: str, shape: tuple[int, ...], dtype: h5py.h5t.TypeID
) -> h5py.Dataset:
    """A contiguous dataset with its storage allocated now and never written by HDF5."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(shape, shape)
    return h5py.Dataset(h5py.h5d.create(group.id, name.encode(), dtype, space, dcpl=dcpl))


def copy_ranges(src_path: str, dst_path: str, dst_base: int, ranges: list[ByteRange]) -> None:
    """Copy the byte ranges from ``src_path`` into ``dst_path`` at ``dst_base + offset``."""
    src_fd = os.open(src_path, os.O_RDONLY)
    try:
        dst_fd = os.open(dst_path, os.O_WRONLY)
        try:
            for src_off, dst_off, length in ranges:
                _copy_range(src_fd, dst_fd, src_off, dst_base + dst_off, length)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_range(src_fd: int, dst_fd: int, src_off: int, dst_off: int, length: int) -> None:
    done = 0
    use_kernel = hasattr(os, "copy_file_range")
    while done < length:
        n = 0
        if use_kernel:
            try:
                n = os.copy_file_range(
                    src_fd, dst_fd, length - done, src_off + done, dst_off + done
                )
            except OSError:  # e.g. EXDEV on old kernels, or a file system without support
                use_kernel = False
        if not use_kernel:
            data = os.pread(src_fd, min(length - done, 64 << 20), src_off + done)
            n = os.pwrite(dst_fd, data, dst_off + done) if data else 0
        if n <= 0:
            raise OSError(f"short copy: {done} of {length} bytes at offset {src_off}")
        done += n
