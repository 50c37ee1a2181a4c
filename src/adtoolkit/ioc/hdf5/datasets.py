"""The detector dataset: where the frames go, and how each frame is appended.

Frames are appended along a leading frame axis (none in Single mode; NumExtraDims
adds virtual N/X/Y axes), chunked and compressed as the plugin's parameters say.
Speed: when a chunk spans whole frames, frames are written with
``write_direct_chunk`` (compressed with ``zlib`` ourselves for the zlib filter),
so that streaming costs little more than a bare h5py append.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from adtoolkit.adcore.layout import TreeDataset
from adtoolkit.ioc.hdf5.errors import HDF5WriterError
from adtoolkit.ioc.hdf5.filters import create_nbit_dataset
from adtoolkit.ioc.hdf5.params import int_param, yes
from adtoolkit.ioc.ndarray import NDDimension


@dataclass
class DetectorDataset:
    """One ``source=detector`` dataset and its append state."""

    path: str
    dset: h5py.Dataset
    frame_shape: tuple[int, ...]
    dtype: np.dtype
    multi: bool
    maxframes: int | None
    direct: bool  # chunks span whole frames: use write_direct_chunk
    frames_per_chunk: int
    zlib_level: int | None  # compress chunks ourselves with zlib at this level
    fillvalue: Any
    count: int = 0
    chunk_buf: np.ndarray | None = None
    chunk_fill: int = 0  # frames of chunk_buf not yet written
    chunk_start: int = 0  # frame index of chunk_buf[0]
    #: NumExtraDims > 0: sizes of the virtual dims (outermost first, N last)
    extra_sizes: tuple[int, ...] = ()

    def append(self, data: np.ndarray) -> None:
        if not self.multi:
            self.dset[...] = data
            self.count = 1
            return
        if self.extra_sizes:
            self._append_extra(data)
            return
        index = self.count
        if self.maxframes is not None and index >= self.maxframes:
            raise HDF5WriterError(
                f"dataset {self.path} is full: NumCapture={self.maxframes} frames already written"
            )
        if index > 0:  # low-level set_extent: Dataset.resize's checks cost more than it
            self.dset.id.set_extent((index + 1, *self.frame_shape))
        if self.direct:
            self._append_direct(index, data)
        else:
            self.dset[index] = data
        self.count = index + 1

    def _append_extra(self, data: np.ndarray) -> None:
        """Frames fill N first, then X, then Y (ExtraDimSizeN/X/Y), like configureDims."""
        rest = self.count
        index = []
        for size in reversed(self.extra_sizes[1:]):
            index.append(rest % size)
            rest //= size
        index.append(rest)  # the outermost virtual dim just grows
        index.reverse()
        shape = list(self.dset.shape)
        grown = [max(shape[i], index[i] + 1) for i in range(len(index))]
        if grown != shape[: len(index)]:
            self.dset.resize(tuple(grown) + tuple(shape[len(index) :]))
        self.dset[tuple(index)] = data
        self.count += 1

    def _append_direct(self, index: int, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data, dtype=self.dtype)
        if self.frames_per_chunk == 1:
            self._write_chunk(index, data)
            return
        if self.chunk_buf is None:
            self.chunk_buf = np.full(
                (self.frames_per_chunk, *self.frame_shape), self.fillvalue, dtype=self.dtype
            )
        if self.chunk_fill == 0:
            self.chunk_start = index
        self.chunk_buf[index - self.chunk_start] = data
        self.chunk_fill = index - self.chunk_start + 1
        if self.chunk_fill == self.frames_per_chunk:
            self._write_chunk(self.chunk_start, self.chunk_buf)
            self.chunk_fill = 0
            self.chunk_buf.fill(self.fillvalue)

    def _write_chunk(self, index: int, block: np.ndarray) -> None:
        payload: Any = memoryview(block).cast("B")
        if self.zlib_level is not None:
            payload = zlib.compress(payload, self.zlib_level)
        offset = (index,) + (0,) * len(self.frame_shape)
        self.dset.id.write_direct_chunk(offset, payload)

    def flush_partial(self) -> None:
        """Write a partly filled multi-frame chunk (it is rewritten when it fills up)."""
        if self.chunk_buf is not None and self.chunk_fill:
            self._write_chunk(self.chunk_start, self.chunk_buf)
            if self.chunk_fill == self.frames_per_chunk:
                self.chunk_fill = 0


def chunk_shape(
    params: Mapping[str, Any], frame_shape: tuple[int, ...], multi: bool, num_capture: int
) -> tuple[tuple[int, ...], tuple[int, int, int]]:
    """Chunk shape of the detector datasets, and the (NumColChunks, NumRowChunks,
    NumFramesChunks) readbacks it gives."""
    rows = frame_shape[0] if len(frame_shape) >= 1 else 1
    cols = frame_shape[1] if len(frame_shape) >= 2 else 1
    frames = max(1, int_param(params, "NumFramesChunks", 1))
    if not yes(params.get("ChunkSizeAuto", 1)):
        col_req = int_param(params, "NumColChunks", 0)
        row_req = int_param(params, "NumRowChunks", 0)
        cols = cols if col_req <= 0 else min(col_req, cols)
        rows = rows if row_req <= 0 else min(row_req, rows)
    if not multi:
        frames = 1
    elif num_capture > 0:
        frames = min(frames, num_capture)
    chunk_frame = list(frame_shape)
    if len(chunk_frame) >= 1:
        chunk_frame[0] = rows
    if len(chunk_frame) >= 2:
        chunk_frame[1] = cols
    return ((frames,) if multi else ()) + tuple(chunk_frame), (cols, rows, frames)


def extra_sizes(params: Mapping[str, Any]) -> tuple[int, ...]:
    """Virtual dims for NumExtraDims 1 or 2: (X, N) or (Y, X, N); () otherwise."""
    n_extra = min(max(int_param(params, "NumExtraDims", 0), 0), 2)
    if n_extra == 0:
        return ()
    sizes = [max(1, int_param(params, f"ExtraDimSize{k}", 1)) for k in ("Y", "X", "N")]
    return tuple(sizes[2 - n_extra :])


def create_detector_dataset(
    d: TreeDataset,
    h5group: h5py.Group,
    data: np.ndarray,
    dims: Sequence[NDDimension],
    params: Mapping[str, Any],
    multi: bool,
    num_capture: int,
    chunks: tuple[int, ...],
    filters: dict[str, Any],
) -> DetectorDataset:
    """Create the HDF5 dataset of layout dataset ``d`` for frames like ``data``."""
    fill_raw = params.get("FillValue", 0) or 0
    try:
        fillvalue = np.asarray(fill_raw).astype(data.dtype)[()]
    except (TypeError, ValueError):
        fillvalue = np.zeros((), dtype=data.dtype)[()]
    frame_shape = tuple(data.shape)
    zlib_level = filters.get("_zlib")
    kwargs = {k: v for k, v in filters.items() if not k.startswith("_")}
    extra = extra_sizes(params) if multi else ()
    if extra:
        shape = (1,) * len(extra) + frame_shape
        maxshape = (None,) * len(extra) + frame_shape
        chunks = (1,) * (len(extra) - 1) + chunks
    elif multi:
        shape = (1, *frame_shape)
        maxshape = (num_capture if num_capture > 0 else None, *frame_shape)
    else:
        shape = maxshape = frame_shape
    nbit = filters.get("_nbit")
    if nbit is not None:
        dset = create_nbit_dataset(
            h5group, d.name, shape, maxshape, data.dtype, chunks, fillvalue, *nbit
        )
    else:
        dset = h5group.create_dataset(
            d.name,
            shape=shape,
            maxshape=maxshape,
            dtype=data.dtype,
            chunks=chunks,
            fillvalue=fillvalue,
            **kwargs,
        )
    if len(dims) != data.ndim:
        dims = [NDDimension(n) for n in reversed(data.shape)]
    dset.attrs.create("NDArrayNumDims", np.int32(data.ndim))
    dset.attrs.create("NDArrayDimOffset", np.array([x.offset for x in dims], dtype="i4"))
    dset.attrs.create("NDArrayDimBinning", np.array([x.binning for x in dims], dtype="i4"))
    dset.attrs.create("NDArrayDimReverse", np.array([x.reverse for x in dims], dtype="i4"))
    whole_frames = chunks[-len(frame_shape) :] == frame_shape
    direct = (
        multi
        and not extra
        and whole_frames
        and nbit is None
        and (not kwargs or zlib_level is not None)
    )
    return DetectorDataset(
        path=d.path,
        dset=dset,
        frame_shape=frame_shape,
        dtype=data.dtype,
        multi=multi,
        maxframes=num_capture if (multi and num_capture > 0) else None,
        direct=direct,
        frames_per_chunk=chunks[0] if multi else 1,
        zlib_level=zlib_level,
        fillvalue=fillvalue,
        extra_sizes=extra,
    )
