"""Where an area detector's frames are: datum -> (file, dataset, frame range).

An image field in a bluesky event holds a datum id.  The datum's resource names
the file (``root`` + ``resource_path``, written from the IOC's point of view)
and, for the ``AD_HDF5`` family of specs, the frames are
``/entry/data/data[point_number*fpp:(point_number+1)*fpp]``.  This module turns
a run's datum ids into a list of contiguous ``FrameBlock`` ranges with the path
mapping applied, and then links, virtualises or copies them into a NeXus file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

import h5py
import numpy as np

from . import rawcopy
from .documents import RunDocuments, Stream

#: specs whose frames live in one (N, Y, X) dataset at /entry/data/data
AD_HDF5_SPECS = {"AD_HDF5", "AD_HDF5_SWMR", "AD_HDF5_SWMR_STREAM"}
AD_HDF5_KEY = "/entry/data/data"
#: groups of an ADCore file that hold one NDAttribute value per frame
NDATTRIBUTE_GROUPS = ("/entry/instrument/NDAttributes", "/entry/instrument/detector/NDAttributes")


class FrameError(OSError):
    """A detector's frames cannot be located or read; the message names the file."""


@dataclass
class FrameBlock:
    """Frames ``start:stop`` of dataset ``key`` in file ``path`` (workstation path)."""

    path: str
    key: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class DetectorFrames:
    """All frames of one image field of a stream, in event order."""

    field: str
    detector: str
    frames_per_point: int
    blocks: list[FrameBlock] = field(default_factory=list)
    frame_shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None

    @property
    def num_frames(self) -> int:
        return sum(len(b) for b in self.blocks)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.num_frames, *self.frame_shape)

    def whole_file(self) -> bool:
        """True if the frames are exactly one whole dataset of one file, in order."""
        if len(self.blocks) != 1:
            return False
        block = self.blocks[0]
        with open_source(block.path) as f:
            return block.start == 0 and block.stop == f[block.key].shape[0]


def resource_path(resource: dict) -> str:
    """The IOC-side path of a resource's file: ``root`` joined with ``resource_path``."""
    flavour = PureWindowsPath if resource.get("path_semantics") == "windows" else PurePosixPath
    return str(flavour(resource.get("root") or "", resource["resource_path"]))


def open_source(path: str) -> h5py.File:
    """Open an IOC-written file read-only; the error names the file."""
    try:
        return h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise FrameError(f"cannot read detector file {path}: {exc}") from exc


def image_fields(stream: Stream, resources: dict[str, dict], datums: dict[str, dict]) -> list[str]:
    """The fields of ``stream`` that refer to area-detector frames in files."""
    found = []
    for key, dk in stream.data_keys.items():
        if not str(dk.get("external", "")).startswith("FILESTORE"):
            continue
        column = stream.data.get(key) or []
        datum_id = next((d for d in column if d is not None), None)
        datum = datums.get(datum_id)
        if datum is None:
            continue
        spec = resources.get(datum["resource"], {}).get("spec")
        if spec in AD_HDF5_SPECS:
            found.append(key)
    return found


def locate_frames(
    run: RunDocuments, stream: Stream, key: str, mapper: Callable[[str], str]
) -> DetectorFrames:
    """Turn the datum ids of ``stream[key]`` into frame blocks, with the path mapping applied."""
    dk = stream.data_keys[key]
    detector = dk.get("object_name") or key
    blocks: list[FrameBlock] = []
    fpp = None
    local_paths: dict[str, str] = {}  # resource uid -> mapped path
    for datum_id in stream.data[key]:
        try:
            datum = run.datums[datum_id]
            resource = run.resources[datum["resource"]]
        except KeyError:
            raise FrameError(
                f"run {run.uid}: field {key!r} refers to datum {datum_id!r}, "
                "which has no datum/resource document"
            ) from None
        spec = resource.get("spec")
        if spec not in AD_HDF5_SPECS:
            raise FrameError(
                f"run {run.uid}: field {key!r} uses spec {spec!r}, not an AD_HDF5 file"
            )
        n = int(resource.get("resource_kwargs", {}).get("frame_per_point", 1))
        if fpp is None:
            fpp = n
        elif fpp != n:
            raise FrameError(
                f"run {run.uid}: field {key!r} changes frame_per_point from {fpp} to {n} "
                f"in {resource_path(resource)}"
            )
        point = int(datum["datum_kwargs"]["point_number"])
        path = local_paths.get(resource["uid"])
        if path is None:
            path = local_paths[resource["uid"]] = mapper(resource_path(resource))
        start, stop = point * n, (point + 1) * n
        last = blocks[-1] if blocks else None
        if last is not None and last.path == path and last.stop == start:
            last.stop = stop
        else:
            blocks.append(FrameBlock(path, AD_HDF5_KEY, start, stop))
    frames = DetectorFrames(field=key, detector=detector, frames_per_point=fpp or 1, blocks=blocks)
    _read_layout(frames)
    return frames


def _read_layout(frames: DetectorFrames) -> None:
    """Fill shape/dtype from the files and check every referenced frame exists."""
    for block in frames.blocks:
        with open_source(block.path) as f:
            try:
                ds = f[block.key]
            except KeyError:
                raise FrameError(f"detector file {block.path} has no dataset {block.key}") from None
            if ds.shape[0] < block.stop:
                raise FrameError(
                    f"detector file {block.path} holds {ds.shape[0]} frames in {block.key}; "
                    f"the run refers to frames up to {block.stop}"
                )
            shape, dtype = tuple(ds.shape[1:]), ds.dtype
        if frames.dtype is None:
            frames.frame_shape, frames.dtype = shape, dtype
        elif (shape, dtype) != (frames.frame_shape, frames.dtype):
            raise FrameError(
                f"detector file {block.path} holds {dtype} frames of shape {shape}; "
                f"earlier files of {frames.field!r} hold {frames.dtype} {frames.frame_shape}"
            )


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
