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

Copying the bytes costs as much as copying the files, so everything else an
export does (documents, HDF5 metadata, NDAttributes) would add to it.
``BackgroundCopier`` moves the bytes in a worker thread while the caller
writes the rest of the file: the kernel copy releases the GIL, and the two
never touch the same bytes (HDF5 allocated the dataset's region and never
writes into it).
"""

from __future__ import annotations

import mmap
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

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


#: source bytes mapped at once, and largest piece one write moves
WINDOW = 64 << 20


def _iov_max() -> int:
    """Buffers one ``pwritev`` may take (POSIX guarantees at least 16; Linux has 1024)."""
    try:
        return max(16, min(1024, os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):  # no sysconf, or no such name here
        return 16


IOV_MAX = _iov_max()


def copy_ranges(
    src_path: str,
    dst_path: str,
    dst_base: int,
    ranges: list[ByteRange],
    cancel: threading.Event | None = None,
) -> None:
    """Copy the byte ranges from ``src_path`` into ``dst_path`` at ``dst_base + offset``.

    The source is memory-mapped and each run of ranges that is contiguous in
    the destination goes out in one ``pwritev``: one copy, page cache to page
    cache, whatever the ranges' offsets.  ``copy_file_range`` (what ``cp``
    does, through ``sendfile``) costs about 40 % more when source and
    destination offsets differ modulo the page size, which they do for HDF5
    chunks; and few system calls let a ``BackgroundCopier`` thread run while
    the caller's thread holds the GIL.  The mapping is only ever read by the
    kernel (inside ``pwritev``), so a source truncated meanwhile makes the
    write fail (EFAULT or a short write), never a SIGBUS.

    ``cancel`` set: stop between writes (the destination is being thrown away).
    Errors name both files.
    """
    try:
        src_fd = os.open(src_path, os.O_RDONLY)
        try:
            dst_fd = os.open(dst_path, os.O_WRONLY)
            try:
                for batch in _batches(ranges):
                    if cancel is not None and cancel.is_set():
                        return
                    if not _write_mapped(src_fd, dst_fd, dst_base, batch):
                        for src_off, dst_off, length in batch:
                            _copy_range(src_fd, dst_fd, src_off, dst_base + dst_off, length)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
    except OSError as exc:
        raise OSError(f"cannot copy frames from {src_path} to {dst_path}: {exc}") from exc


def _batches(ranges: list[ByteRange]) -> list[list[ByteRange]]:
    """Ranges split to at most ``WINDOW`` bytes and grouped for one mapped ``pwritev``.

    A batch is contiguous in the destination, spans at most ``2 * WINDOW``
    bytes of the source and has at most ``IOV_MAX`` pieces.
    """
    batches: list[list[ByteRange]] = []
    batch: list[ByteRange] = []
    lo = hi = 0
    for src_off, dst_off, length in ranges:
        for k in range(0, length, WINDOW):
            piece = (src_off + k, dst_off + k, min(WINDOW, length - k))
            s, d, n = piece
            if batch:
                last_d, last_n = batch[-1][1], batch[-1][2]
                new_lo, new_hi = min(lo, s), max(hi, s + n)
                if d == last_d + last_n and new_hi - new_lo <= 2 * WINDOW and len(batch) < IOV_MAX:
                    batch.append(piece)
                    lo, hi = new_lo, new_hi
                    continue
                batches.append(batch)
            batch, lo, hi = [piece], s, s + n
    if batch:
        batches.append(batch)
    return batches


def _write_mapped(src_fd: int, dst_fd: int, dst_base: int, batch: list[ByteRange]) -> bool:
    """Write ``batch`` from a mapping of the source; False if the source cannot be mapped."""
    if not hasattr(os, "pwritev") or not hasattr(mmap, "MAP_SHARED"):  # e.g. Windows
        return False
    lo = min(s for s, _, _ in batch)
    lo -= lo % mmap.ALLOCATIONGRANULARITY
    hi = max(s + n for s, _, n in batch)
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    try:
        mapped = mmap.mmap(src_fd, hi - lo, flags=flags, prot=mmap.PROT_READ, offset=lo)
    except (OSError, ValueError):  # beyond the end of the file, or no mmap here
        return False
    views: list[memoryview] = []
    try:
        whole = memoryview(mapped)
        views.append(whole)
        buffers = [whole[s - lo : s - lo + n] for s, _, n in batch]
        views += buffers
        offset = dst_base + batch[0][1]
        remaining = sum(n for _, _, n in batch)
        while remaining:
            written = os.pwritev(dst_fd, buffers, offset)
            if written <= 0:
                raise OSError(f"short write: {remaining} bytes left at offset {offset}")
            offset += written
            remaining -= written
            while buffers and written >= len(buffers[0]):
                written -= len(buffers.pop(0))
            if written:
                buffers[0] = buffers[0][written:]
                views.append(buffers[0])
    finally:
        for view in reversed(views):
            view.release()
        mapped.close()
    return True


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


class BackgroundCopier:
    """Runs ``copy_ranges`` jobs one after another in a worker thread.

    Use it as a context manager around the writing of the destination file,
    *inside* the block that closes (and renames) that file::

        with atomic_h5(path) as f, BackgroundCopier() as copier:
            ...  # copier.submit(...) returns at once; write the rest of f

    Leaving the block normally waits for every copy and raises the first
    error; leaving it by an exception cancels the copies still to run and
    waits for the running one, so the file is never closed, renamed or
    removed while a copy still writes into it.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: list[Future] = []
        self._cancel = threading.Event()

    def submit(self, src_path: str, dst_path: str, dst_base: int, ranges: list[ByteRange]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rawcopy")
        job = self._executor.submit(copy_ranges, src_path, dst_path, dst_base, ranges, self._cancel)
        self._jobs.append(job)

    def wait(self) -> None:
        """Wait for every submitted copy; raise the first failure."""
        try:
            for job in self._jobs:
                job.result()  # copy_ranges' errors name both files
        finally:
            self._shutdown()

    def cancel(self) -> None:
        """Drop the copies not started, stop the running one between ranges, wait for it."""
        self._cancel.set()
        for job in self._jobs:
            job.cancel()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._jobs.clear()

    def __enter__(self) -> BackgroundCopier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.wait()
        else:
            self.cancel()
