"""Put a run's frames into a NeXus file: external link, virtual dataset or an exact copy.

The frames are located first (:mod:`adtoolkit.runs.frames`: datum -> file, dataset,
frame range, with the path mapping applied); this module writes them, and reads the
NDAttribute values that go with them.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..runs.frames import DetectorFrames, FrameBlock, FrameError, open_source
from . import rawcopy

#: groups of an ADCore file that hold one NDAttribute value per frame
NDATTRIBUTE_GROUPS = ("/entry/instrument/NDAttributes", "/entry/instrument/detector/NDAttributes")


def write_frames(
    group: h5py.Group,
    name: str,
    frames: DetectorFrames,
    copy: bool,
    virtual: bool = True,
    copier: rawcopy.BackgroundCopier | None = None,
) -> None:
    """Create ``group[name]`` holding the frames: external link, virtual dataset or a copy.

    * ``copy=False`` and one whole source dataset: an HDF5 external link, the
      cheapest form and the one NeXus tools know best;
    * ``copy=False`` otherwise (several files, partial files): a virtual dataset
      that maps exactly the frames of the run (``virtual=False``: copy them
      instead, for readers that mishandle general virtual datasets, such as
      nexusformat <= 2.1, which assumes one frame per source file);
    * ``copy=True``: the frames copied, chunk by chunk without decompression
      where the source chunking allows it, so compressed data stays bit-exact
      (see ``copy_frames``; ``copier``: byte copies run in its worker thread).
    """
    if not frames.blocks:
        raise FrameError(f"{frames.field!r} has no frames")
    if not copy and frames.whole_file():
        block = frames.blocks[0]
        group[name] = h5py.ExternalLink(block.path, block.key)
        return  # never write attributes through the link: that would modify the IOC's file
    elif not copy and virtual:
        layout = h5py.VirtualLayout(shape=frames.shape, dtype=frames.dtype)
        offset = 0
        for block in frames.blocks:
            with open_source(block.path) as f:
                src_shape = f[block.key].shape
            source = h5py.VirtualSource(block.path, block.key, shape=src_shape)
            layout[offset : offset + len(block)] = source[block.start : block.stop]
            offset += len(block)
        group.create_virtual_dataset(name, layout)
    else:
        copy_frames(group, name, frames, copier)
    group[name].attrs["frames_per_point"] = np.int32(frames.frames_per_point)


def copy_frames(
    group: h5py.Group,
    name: str,
    frames: DetectorFrames,
    copier: rawcopy.BackgroundCopier | None = None,
) -> h5py.Dataset:
    """Copy the frames into ``group[name]``, choosing the fastest exact way.

    1. uncompressed sources: byte ranges copied file to file into a contiguous
       dataset (``rawcopy``), at the speed of copying files; with ``copier``
       the bytes move in its worker thread and are complete only after
       ``copier.wait()`` (the caller writes the rest of the file meanwhile);
    2. one whole compressed dataset: ``H5Ocopy`` (raw chunks, filters kept);
    3. compressed frames on chunk boundaries: raw chunk reads and writes;
    4. anything else: values read and written in 64 MiB slabs.
    """
    total = frames.num_frames
    dst = _copy_raw_bytes(group, name, frames, copier)
    if dst is not None:
        return dst
    if len(frames.blocks) == 1:
        block = frames.blocks[0]
        with open_source(block.path) as f:
            if block.start == 0 and block.stop == f[block.key].shape[0]:
                h5py.h5o.copy(f.id, block.key.encode(), group.id, name.encode())
                return group[name]
    with open_source(frames.blocks[0].path) as f:
        src = f[frames.blocks[0].key]
        dcpl = src.id.get_create_plist()
        tid = src.id.get_type()
        layout_key = _chunk_signature(src)
    shape = (total, *frames.frame_shape)
    if dcpl.get_layout() == h5py.h5d.CHUNKED:
        chunks = dcpl.get_chunk()
        if chunks[0] > total:  # a chunk may not be larger than a fixed-size dataset
            dcpl.set_chunk((total, *chunks[1:]))
            layout_key = None
    space = h5py.h5s.create_simple(shape, shape)
    dst = h5py.Dataset(h5py.h5d.create(group.id, name.encode(), tid, space, dcpl=dcpl))
    offset = 0
    for block in frames.blocks:
        with open_source(block.path) as f:
            src = f[block.key]
            if layout_key is not None and _can_copy_chunks(src, block, offset, layout_key, total):
                _copy_chunks(src, dst, block, offset)
            else:
                _copy_values(src, dst, block, offset)
        offset += len(block)
    return dst


def _copy_raw_bytes(
    group: h5py.Group,
    name: str,
    frames: DetectorFrames,
    copier: rawcopy.BackgroundCopier | None,
) -> h5py.Dataset | None:
    """Strategy 1 of ``copy_frames``; None (nothing created) if a source does not qualify."""
    plans = []
    offset = 0
    tid = None
    for block in frames.blocks:
        with open_source(block.path) as f:
            src = f[block.key]
            frame_bytes = int(np.prod(src.shape[1:], dtype=np.int64)) * src.dtype.itemsize
            ranges = rawcopy.plan_ranges(src, block.start, block.stop, offset * frame_bytes)
            if ranges is None:
                return None
            if tid is None:
                tid = src.id.get_type()
        plans.append((block.path, ranges))
        offset += len(block)
    dst = rawcopy.create_raw_target(group, name, (frames.num_frames, *frames.frame_shape), tid)
    base = dst.id.get_offset()
    if base is None:  # storage not allocated (cannot happen with ALLOC_TIME_EARLY)
        del group[name]
        return None
    group.file.flush()
    for path, ranges in plans:
        if copier is None:
            rawcopy.copy_ranges(path, group.file.filename, base, ranges)
        else:
            copier.submit(path, group.file.filename, base, ranges)
    return dst


def _chunk_signature(ds: h5py.Dataset) -> tuple | None:
    """Chunk shape and filter pipeline: equal signatures allow raw chunk copies."""
    if ds.chunks is None:
        return None
    plist = ds.id.get_create_plist()
    filters = tuple(plist.get_filter(i)[:3] for i in range(plist.get_nfilters()))
    return (ds.chunks, filters, ds.dtype.str)


def _can_copy_chunks(
    src: h5py.Dataset, block: FrameBlock, offset: int, layout_key: tuple, total: int
) -> bool:
    if _chunk_signature(src) != layout_key:
        return False
    c = src.chunks[0]
    if any(cs != s for cs, s in zip(src.chunks[1:], src.shape[1:], strict=True)):
        return False  # frames split over several chunks: keep it simple, copy values
    end_ok = block.stop % c == 0 or (block.stop == src.shape[0] and offset + len(block) == total)
    return block.start % c == 0 and offset % c == 0 and end_ok


def _copy_chunks(src: h5py.Dataset, dst: h5py.Dataset, block: FrameBlock, offset: int) -> None:
    c = src.chunks[0]
    zeros = (0,) * (src.ndim - 1)
    for i in range(block.start, block.stop, c):
        mask, chunk = src.id.read_direct_chunk((i, *zeros))
        dst.id.write_direct_chunk((offset + i - block.start, *zeros), chunk, mask)


def _copy_values(src: h5py.Dataset, dst: h5py.Dataset, block: FrameBlock, offset: int) -> None:
    frame_bytes = max(1, int(np.prod(src.shape[1:])) * src.dtype.itemsize)
    step = max(1, (64 << 20) // frame_bytes)
    for i in range(block.start, block.stop, step):
        j = min(i + step, block.stop)
        dst[offset + i - block.start : offset + j - block.start] = src[i:j]


def read_ndattributes(frames: DetectorFrames) -> dict[str, tuple[np.ndarray, dict]]:
    """NDAttribute values of the run's frames (one value per frame) with their HDF5 attributes.

    Datasets that do not have one row per frame (e.g. a performance table)
    are left out: they cannot be matched to the run's frames.
    """
    values: dict[str, list[np.ndarray]] = {}
    attrs: dict[str, dict] = {}
    for block in frames.blocks:
        with open_source(block.path) as f:
            n_file = f[block.key].shape[0]
            for group_path in NDATTRIBUTE_GROUPS:
                group = f.get(group_path)
                if not isinstance(group, h5py.Group):
                    continue
                for name, ds in group.items():
                    if not isinstance(ds, h5py.Dataset) or ds.ndim < 1 or ds.shape[0] != n_file:
                        continue
                    values.setdefault(name, []).append(ds[block.start : block.stop])
                    attrs.setdefault(name, {k: v for k, v in ds.attrs.items()})
    n_blocks = len(frames.blocks)
    return {
        name: (np.concatenate(parts), attrs[name])
        for name, parts in values.items()
        if len(parts) == n_blocks  # present in every file
    }
