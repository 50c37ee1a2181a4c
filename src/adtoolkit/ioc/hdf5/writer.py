"""HDF5Writer: the file-format half of the simulated NDFileHDF5 plugin.

The NDFile plugin base (file names, modes, Capture/WriteFile, TempSuffix) decides
*when* to open, write and close; this class decides *what* goes in the file,
following ADCore's NDFileHDF5 (ADCORE_BEHAVIOUR.md B.4):

* the layout XML (or the built-in default) gives groups, constant datasets and
  attributes, hard links and the detector dataset(s);
* detector frames are appended along a leading frame axis (none in Single mode),
  chunked and compressed as the plugin's parameters say;
* every NDAttribute of the frame gets a 1-D dataset (placed by the layout, or in
  the ``ndattr_default`` group) with NDAttrName/Description/Source/SourceType;
* the performance ``timestamp`` (N, 5) dataset and RunTime/IOSpeed readbacks;
* SWMR mode with periodic flushes, so a reader (or a post-mortem after SIGKILL)
  sees every flushed frame.

Speed: detector frames whose chunk spans whole frames are written with
``write_direct_chunk`` (compressed with ``zlib`` ourselves for the zlib filter),
and NDAttribute values are buffered and appended in batches, so that streaming
costs little more than a bare h5py append.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import resource
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from adtoolkit.adcore.attributes import definitions_from
from adtoolkit.adcore.layout import (
    DEFAULT_LAYOUT_MESSAGE,
    LAYOUT_OK_MESSAGE,
    LayoutError,
    LayoutTree,
    TreeAttribute,
    TreeDataset,
    TreeGroup,
    parse_layout_tree,
    validate_layout_param,
)
from adtoolkit.ioc.ndarray import NDArray, NDAttribute, NDDimension

logger = logging.getLogger(__name__)

__all__ = [
    "BLOSC_COMPRESSORS",
    "BLOSC_SHUFFLES",
    "COMPRESSIONS",
    "HDF5Writer",
    "HDF5WriterError",
    "validate_layout_param",
]

#: Compression mbbo strings, in record order
COMPRESSIONS = ("None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG")
BLOSC_COMPRESSORS = ("BloscLZ", "LZ4", "LZ4HC", "SNAPPY", "ZLIB", "ZSTD")
BLOSC_SHUFFLES = ("None", "Byte", "Bit")

#: NDAttribute datatype -> numpy dtype of its dataset
ATTR_NUMPY = {
    "INT8": np.dtype("i1"),
    "UINT8": np.dtype("u1"),
    "INT16": np.dtype("i2"),
    "UINT16": np.dtype("u2"),
    "INT32": np.dtype("i4"),
    "UINT32": np.dtype("u4"),
    "INT64": np.dtype("i8"),
    "UINT64": np.dtype("u8"),
    "FLOAT32": np.dtype("f4"),
    "FLOAT64": np.dtype("f8"),
    "STRING": np.dtype("S256"),
    "UNDEFINED": np.dtype("f4"),
}
#: ADCore's MAX_ATTRIBUTE_STRING_SIZE
ATTR_STRING_SIZE = 256
#: NDAttribute values kept in memory before they are appended to their datasets
ATTR_BATCH = 256
#: NDAttributeChunk when it is 0 and NumCapture is 0 (unlimited)
ATTR_CHUNK_UNLIMITED = 16 * 1024


#: Blosc header compressor codes (flags byte bits 5-7) of the BloscCompressor choices
BLOSC_FORMAT_CODES = {"blosclz": 0, "lz4": 1, "lz4hc": 1, "snappy": 2, "zlib": 3, "zstd": 4}


@functools.cache
def blosc_supports(cname: str) -> bool:
    """Does the installed hdf5plugin's Blosc filter really compress with ``cname``?

    Snappy is only built into hdf5plugin when it was compiled with C++11
    (``hdf5plugin.get_config().build_config.cpp11``); without it the Blosc filter
    fails and HDF5 stores the chunk raw.  Rather than trust build flags, write one
    compressible chunk to an in-memory file and read the Blosc header back.

    The chunk is large on purpose: c-blosc gives Snappy up only when the output
    buffer may exceed the input (``snappy_max_compressed_length``), so a chunk
    of one Blosc block (up to ~128 kB of 8-bit data) is never Snappy-compressed
    -- the HDF5 filter then skips it and the chunk is stored raw, in real ADCore
    as here.  Bigger chunks (whole frames of real images) are compressed.
    """
    import hdf5plugin

    data = (np.arange(512 * 1024) % 251).astype("u1")
    try:
        with h5py.File(f"blosc-probe-{cname}", "w", driver="core", backing_store=False) as f:
            dset = f.create_dataset(
                "d", data=data, chunks=data.shape, **hdf5plugin.Blosc(cname=cname, clevel=5)
            )
            mask, raw = dset.id.read_direct_chunk((0,))
    except Exception:  # the filter refused the compressor outright
        logger.debug("Blosc %s probe failed", cname, exc_info=True)
        return False
    return mask == 0 and len(raw) > 2 and raw[2] >> 5 == BLOSC_FORMAT_CODES.get(cname, -1)


class HDF5WriterError(RuntimeError):
    """A failure the plugin reports as WriteStatus=Write error with this WriteMessage."""


# --------------------------------------------------------------------------- helpers


def _enum_index(value: Any, names: Sequence[str], what: str) -> int:
    """An mbbo/bo value given as its index or its string (case-insensitive)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        index = int(value)
    else:
        text = str(value).strip()
        lowered = [n.lower() for n in names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        try:
            index = int(float(text))
        except ValueError:
            raise HDF5WriterError(f"{what}: unknown value {value!r}") from None
    if not 0 <= index < len(names):
        raise HDF5WriterError(f"{what}: value {index} out of range 0..{len(names) - 1}")
    return index


def _yes(value: Any) -> bool:
    """A No/Yes (Off/On, Disable/Enable) parameter as bool."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("yes", "on", "enable", "true", "capture", "active"):
            return True
        if text in ("no", "off", "disable", "false", "done", ""):
            return False
        return bool(int(float(text)))
    return bool(value)


def _int(params: Mapping[str, Any], key: str, default: int) -> int:
    value = params.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _c_string_type(size: int) -> h5py.h5t.TypeID:
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(max(1, size))
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    return tid


def write_string_attribute(obj: h5py.HLObject, name: str, value: str) -> None:
    """A scalar fixed-length NULLTERM C string attribute, as NDFileHDF5 writes them."""
    raw = value.encode("utf-8")
    tid = _c_string_type(len(raw))
    if name in obj.attrs:
        del obj.attrs[name]
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    attr = h5py.h5a.create(obj.id, name.encode("utf-8"), tid, space)
    attr.write(np.array(raw, dtype=f"S{max(1, len(raw))}"), mtype=tid)


def _write_string_dataset(group: h5py.Group, name: str, value: str) -> h5py.Dataset:
    """A shape (1,) fixed-length NULLTERM C string dataset (writeH5dsetStr)."""
    raw = value.encode("utf-8")
    tid = _c_string_type(len(raw))
    space = h5py.h5s.create_simple((1,))
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([raw], dtype=f"S{max(1, len(raw))}"), mtype=tid)
    return h5py.Dataset(dsid)


def _parse_numbers(text: str, kind: str) -> list[float] | list[int]:
    """Parse "1,2,3" like the C++ stringstream loop: stop at the first non-number."""
    values: list = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            break
        try:
            values.append(int(float(item)) if kind == "int" else float(item))
        except ValueError:
            break
    return values


def _constant_value(value: str, kind: str | None) -> Any:
    """A layout constant as the numpy value NDFileHDF5 writes (scalar or 1-D array)."""
    if kind == "int":
        numbers = _parse_numbers(value, "int")
        arr = np.array(numbers or [0], dtype="i4")
        return arr[0] if arr.size == 1 else arr
    if kind == "float":
        numbers = _parse_numbers(value, "float")
        arr = np.array(numbers or [0.0], dtype="f8")
        return arr[0] if arr.size == 1 else arr
    return value


def _write_constant_attribute(obj: h5py.HLObject, attr: TreeAttribute) -> None:
    value = _constant_value(attr.value, attr.type)
    if isinstance(value, str):
        write_string_attribute(obj, attr.name, value)
    else:
        obj.attrs[attr.name] = value


def _write_ndattribute_attribute(obj: h5py.HLObject, name: str, nd: NDAttribute | None) -> None:
    """An HDF5 attribute whose value comes from an NDAttribute (scalar of its type)."""
    if nd is None or nd.datatype == "UNDEFINED" or nd.value is None:
        logger.warning("HDF5 attribute %s on %s: NDAttribute not available", name, obj.name)
        return
    if nd.datatype == "STRING":
        write_string_attribute(obj, name, str(nd.value))
    else:
        obj.attrs.create(name, np.asarray(nd.value, dtype=ATTR_NUMPY[nd.datatype]))


def automatic_attributes(array: NDArray) -> list[NDAttribute]:
    """The four NDArray properties NDFileHDF5 stores as NDAttributes of every file."""
    return [
        NDAttribute(
            "NDArrayUniqueId",
            int(array.unique_id),
            "INT32",
            "The unique ID of the NDArray",
            "Driver",
            "NDAttrSourceDriver",
        ),
        NDAttribute(
            "NDArrayTimeStamp",
            float(array.timestamp),
            "FLOAT64",
            "The timestamp of the NDArray as float64",
            "Driver",
            "NDAttrSourceDriver",
        ),
        NDAttribute(
            "NDArrayEpicsTSSec",
            int(array.epics_ts_sec),
            "UINT32",
            "The NDArray EPICS timestamp seconds past epoch",
            "Driver",
            "NDAttrSourceDriver",
        ),
        NDAttribute(
            "NDArrayEpicsTSnSec",
            int(array.epics_ts_nsec),
            "UINT32",
            "The NDArray EPICS timestamp nanoseconds",
            "Driver",
            "NDAttrSourceDriver",
        ),
    ]


#: room kept free for the metadata HDF5 writes at close (NDAttributes, performance)
SPACE_MARGIN = 4 * 1024 * 1024


def check_space(path: str, nbytes: int) -> None:
    """Raise OSError (EFBIG / ENOSPC) if ``nbytes`` more would not fit in ``path``.

    HDF5 reports a failed write, but a file whose writes failed can no longer be
    closed cleanly, and the library can even crash the process on the following
    operations.  Checking the file-size limit (RLIMIT_FSIZE) and the free space
    first, with a margin for the metadata written at close, turns "disk full"
    into a clean error with the OS message, and a valid file with every frame
    written so far.
    """
    SpaceGuard(path).check(nbytes)


class SpaceGuard:
    """:func:`check_space` for the frames of one file, without a ``statvfs`` per frame.

    The file-size limit is checked every time (a ``stat``; the limit may be
    lowered while the IOC runs).  The free space is asked from the file system
    again only when what was free at the last look, less what this file wrote
    since, comes near the need (``RECHECK_FRAMES`` frames plus the margin), or
    after ``RECHECK_SECONDS`` (other writers share the disk): a disk that fills
    up is still caught at the exact frame, a roomy one costs nothing per frame.
    """

    RECHECK_FRAMES = 64
    RECHECK_SECONDS = 0.5

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self._free = -1  # at the last statvfs; -1: never looked
        self._written = 0  # bytes announced since then
        self._checked_at = 0.0

    def check(self, nbytes: int) -> None:
        path = self.path
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            if size + nbytes + SPACE_MARGIN > soft:
                raise OSError(
                    errno.EFBIG,
                    f"{os.strerror(errno.EFBIG)}: {path} ({size} bytes) cannot take {nbytes} "
                    f"more bytes within the process file size limit of {soft} bytes",
                )
        now = time.monotonic()
        left = self._free - self._written
        if (
            self._free < 0
            or left < self.RECHECK_FRAMES * nbytes + 2 * SPACE_MARGIN
            or now - self._checked_at > self.RECHECK_SECONDS
        ):
            st = os.statvfs(self.folder)
            self._free = left = st.f_bavail * st.f_frsize
            self._written = 0
            self._checked_at = now
        if left < nbytes + SPACE_MARGIN:
            raise OSError(
                errno.ENOSPC,
                f"{os.strerror(errno.ENOSPC)}: {left} bytes free in {self.folder}, "
                f"{nbytes} needed for {path}",
            )
        self._written += nbytes


def _create_nbit_dataset(
    group: h5py.Group,
    name: str,
    shape: tuple[int, ...],
    maxshape: tuple[int | None, ...],
    dtype: np.dtype,
    chunks: tuple[int, ...],
    fillvalue: Any,
    bits: int,
    offset: int,
) -> h5py.Dataset:
    """An integer dataset stored with ``bits`` significant bits from ``offset`` (N-bit filter).

    The file datatype carries the precision (NumDataBits) and offset
    (DataBitsOffset), as NDFileHDF5 sets them; HDF5's N-bit filter then packs
    only those bits.
    """
    tid = h5py.h5t.py_create(dtype).copy()
    tid.set_offset(0)
    tid.set_precision(bits)
    tid.set_offset(offset)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_fill_value(np.array(fillvalue, dtype=dtype))
    dcpl.set_filter(h5py.h5z.FILTER_NBIT, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple(
        shape, tuple(h5py.h5s.UNLIMITED if m is None else m for m in maxshape)
    )
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
    return h5py.Dataset(dsid)


def _close_file(file: h5py.File) -> None:
    """Close through the file id only.

    h5py's ``File.close`` also walks every open object of the file; after a
    failed write (disk full) that walk can crash the interpreter, while the
    plain ``H5Fclose`` reports the error and leaves the process healthy.
    """
    fid = file.id
    del file
    fid.close()


def _detached(exc: Exception) -> Exception:
    """The same error without its traceback (whose frames hold HDF5 objects alive)."""
    if isinstance(exc, HDF5WriterError):
        return HDF5WriterError(str(exc))
    if isinstance(exc, OSError):
        if exc.errno is not None:
            return type(exc)(exc.errno, exc.strerror or str(exc))
        return OSError(str(exc))
    return HDF5WriterError(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- datasets


@dataclass
class _DetectorDataset:
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


@dataclass
class _AttributeDataset:
    """The dataset of one NDAttribute, with values buffered for batched appends."""

    name: str
    dset: h5py.Dataset
    when: str
    datatype: str
    dtype: np.dtype
    written: int = 0
    pending: list = field(default_factory=list)

    def coerce(self, nd: NDAttribute | None) -> Any:
        if nd is None or nd.value is None or self.datatype == "UNDEFINED":
            if self.datatype == "STRING":
                return b""
            return np.nan if self.dtype.kind == "f" else 0
        if self.datatype == "STRING":
            if nd.datatype == "STRING":
                raw = str(nd.value).encode("utf-8")
            else:
                raw = str(nd.value).encode("utf-8")
            return raw[: ATTR_STRING_SIZE - 1]
        if nd.datatype == "STRING":
            try:
                return np.asarray(float(nd.value)).astype(self.dtype)[()]
            except ValueError:
                return 0
        return nd.value

    def add(self, nd: NDAttribute | None) -> None:
        self.pending.append(self.coerce(nd))

    def set_single(self, nd: NDAttribute | None) -> None:
        """OnFileOpen / OnFileClose: one value at index 0."""
        self.dset[0] = np.asarray(self.coerce(nd), dtype=self.dtype)
        self.written = 1

    def flush(self) -> None:
        if not self.pending:
            return
        values = np.asarray(self.pending, dtype=self.dtype)
        start = self.written
        end = start + len(values)
        if end > self.dset.shape[0]:
            self.dset.resize((end,))
        self.dset[start:end] = values
        self.written = end
        self.pending.clear()


# --------------------------------------------------------------------------- writer


class HDF5Writer:
    """Write NDArrays to one HDF5 file at a time, the way NDFileHDF5 does.

    ``on_readback(name, value)`` receives the values the plugin shows in its
    readback PVs (XMLValid, XMLErrorMsg, NumColChunks, NumRowChunks,
    NumFramesChunks, SWMRActive, SWMRCbCounter, RunTime, IOSpeed).
    ``param_getter(drv_info, addr)`` serves PARAM attributes of the plugin's own
    NDAttributes file; ``ca_context`` is an optional caproto threading Context for
    its EPICS_PV attributes.
    """

    def __init__(
        self,
        on_readback: Callable[[str, Any], None] | None = None,
        param_getter: Callable[[str, int], Any] | None = None,
        ca_context: Any = None,
        hostname: str | None = None,
    ) -> None:
        self.on_readback = on_readback
        self.param_getter = param_getter
        self.ca_context = ca_context
        self.hostname = socket.gethostname() if hostname is None else hostname
        self._collector: Any = None
        self._collector_key: tuple = ()
        # FlushNow arrives from a CA put while the plugin thread writes frames
        self._lock = threading.RLock()
        self._reset()

    # -- state
    def _reset(self) -> None:
        self.file: h5py.File | None = None
        self.path: str = ""
        #: a warning about the open file for WriteMessage (WriteStatus stays OK)
        self.open_message = ""
        self._space = SpaceGuard("")
        self.layout: LayoutTree | None = None
        self.mode = "Single"
        self._params: Mapping[str, Any] = {}
        self._detectors: dict[str, _DetectorDataset] = {}
        self._default_det: _DetectorDataset | None = None
        self._attr_dsets: list[_AttributeDataset] = []
        self._close_attrs: list[tuple[str, TreeAttribute]] = []
        self._file_attrs: dict[str, NDAttribute] = {}
        self._perf_rows: list[tuple[float, float, float, float, float]] = []
        self._store_attr = True
        self._store_perf = True
        self._swmr = False
        self._flush_every = 0
        self._open_time = 0.0
        self._last_time = 0.0
        self._bytes = 0
        self._frames = 0
        self._frame_mbit = 0.0
        self._swmr_counter = 0
        self._open_dims: list[NDDimension] = []

    @property
    def is_open(self) -> bool:
        return self.file is not None

    def _readback(self, name: str, value: Any) -> None:
        if self.on_readback is not None:
            try:
                self.on_readback(name, value)
            except Exception:  # a broken callback must not corrupt the file
                logger.exception("on_readback(%s) failed", name)

    # -- plugin attributes
    def _plugin_attributes(self, array: NDArray) -> dict[str, NDAttribute]:
        collector = self._plugin_collector()
        return collector.collect(array) if collector is not None else {}

    def _plugin_collector(self) -> Any:
        """The plugin's own AttributeCollector (given, or built from definitions)."""
        from adtoolkit.ioc.ndattributes import AttributeCollector

        given = self._params.get("_plugin_attributes")
        if isinstance(given, AttributeCollector):  # the plugin's own, monitors and all
            return given
        definitions = definitions_from(given)
        if not definitions:
            return None
        if self._collector is None or self._collector_key != definitions:
            if self._collector is not None:
                self._collector.close()
            self._collector = AttributeCollector(definitions, self.param_getter, self.ca_context)
            self._collector_key = definitions
        return self._collector

    def _gather_attributes(self, array: NDArray) -> dict[str, NDAttribute]:
        """The file's attribute list: automatic ones, the plugin's, then the array's."""
        attrs = {a.name: a for a in automatic_attributes(array)}
        attrs.update(self._plugin_attributes(array))
        attrs.update(array.attributes)
        return attrs

    # -- open
    def _open_locked(
        self,
        path: str,
        array: NDArray,
        params: Mapping[str, Any],
        num_capture: int,
        mode: str,
    ) -> None:
        """Create ``path`` with the layout's tree, ready for ``array``-shaped frames."""
        if self.file is not None:  # NDFileHDF5::checkForOpenFile
            self._close_locked()
        if mode not in ("Single", "Capture", "Stream"):
            raise HDF5WriterError(f"unknown file write mode {mode!r}")
        self._reset()
        self._params = params
        self.mode = mode
        xml_name = str(params.get("XMLFileName", "") or "")
        try:
            layout = parse_layout_tree(xml_name)
        except LayoutError as exc:
            self._readback("XMLValid", 0)
            self._readback("XMLErrorMsg", str(exc))
            raise HDF5WriterError(str(exc)) from None
        self._readback("XMLValid", 1)
        self._readback(
            "XMLErrorMsg", DEFAULT_LAYOUT_MESSAGE if not xml_name.strip() else LAYOUT_OK_MESSAGE
        )
        if not layout.detector_datasets():
            raise HDF5WriterError(f"No detector datasets found in {layout.source}, cannot continue")
        self.layout = layout
        multi = mode != "Single"
        num_capture = max(0, int(num_capture))
        self._store_attr = _yes(params.get("StoreAttr", 1))
        self._store_perf = _yes(params.get("StorePerform", 1))
        self._swmr = _yes(params.get("SWMRMode", 0))
        self._flush_every = max(0, _int(params, "NumFramesFlush", 0))
        data = np.asarray(array.data)
        filters = self._compression(params, data.dtype)
        chunks = self._chunking(params, data.shape, multi, num_capture)
        collector = self._plugin_collector()
        if collector is not None:
            # the attribute datasets' types are fixed now: EPICS_PV attributes
            # loaded just before get their first values first (bounded, once)
            collector.settle()
        self._file_attrs = self._gather_attributes(array)
        self._open_dims = list(array.dims)

        self.path = path
        self._space = SpaceGuard(path)
        self._space.check(0)
        self.file = h5py.File(path, "w", libver="latest" if self._swmr else None)
        try:
            self._create_tree(layout.root, self.file, data, multi, num_capture, chunks, filters)
            dest_default = layout.default_detector_dataset()
            self._default_det = self._detectors[dest_default.path] if dest_default else None
            self._write_open_attributes(layout.root, self.file)
            if self._store_attr:
                self._create_attribute_datasets(multi, num_capture)
            self._create_hardlinks(layout.root)
            if self._swmr:
                self.file.swmr_mode = True
        except Exception as exc:
            error: Exception | None = _detached(exc)
        else:
            error = None
        if error is not None:
            self._abort()
            raise error
        self._readback("SWMRActive", 1 if self._swmr else 0)
        self._swmr_counter = 0
        self._readback("SWMRCbCounter", 0)
        self._open_time = self._last_time = time.perf_counter()
        self._frame_mbit = 8.0 * data.nbytes / (1024.0 * 1024.0)

    def _compression(self, params: Mapping[str, Any], dtype: np.dtype) -> dict[str, Any]:
        """h5py create_dataset keywords for the Compression parameters, plus our zlib level."""
        index = _enum_index(params.get("Compression", 0), COMPRESSIONS, "Compression")
        name = COMPRESSIONS[index]
        if name == "None":
            return {}
        if name == "zlib":
            level = min(9, max(0, _int(params, "ZLevel", 6)))
            return {"compression": "gzip", "compression_opts": level, "_zlib": level}
        import hdf5plugin

        if name == "Blosc":
            choice = BLOSC_COMPRESSORS[
                _enum_index(params.get("BloscCompressor", 0), BLOSC_COMPRESSORS, "BloscCompressor")
            ]
            cname = choice.lower()
            shuffle = _enum_index(params.get("BloscShuffle", 0), BLOSC_SHUFFLES, "BloscShuffle")
            level = min(9, max(0, _int(params, "BloscLevel", 5)))
            if not blosc_supports(cname):
                # keep the Blosc filter (readers see what was asked for) but with
                # level 0, Blosc's "store as is": never a filter failure mid-file
                self.open_message = (
                    f"Blosc {choice} is not in this hdf5plugin build: "
                    "chunks stored uncompressed (Blosc level 0)"
                )
                logger.warning("%s", self.open_message)
                return dict(hdf5plugin.Blosc(cname="blosclz", clevel=0, shuffle=shuffle))
            return dict(hdf5plugin.Blosc(cname=cname, clevel=level, shuffle=shuffle))
        if name == "BSLZ4":
            return dict(hdf5plugin.Bitshuffle(cname="lz4"))
        if name == "LZ4":
            return dict(hdf5plugin.LZ4())
        if name == "szip":
            pixels = _int(params, "SZipNumPixels", 16)
            pixels = min(32, max(2, pixels - pixels % 2))  # even, 2..32
            return {"compression": "szip", "compression_opts": ("nn", pixels)}
        if name == "N-bit":
            if dtype.kind not in "iu":
                self.open_message = (
                    f"N-bit compression of {dtype} data is not simulated: uncompressed"
                )
                logger.warning("%s", self.open_message)
                return {}
            width = dtype.itemsize * 8
            offset = min(max(_int(params, "DataBitsOffset", 0), 0), width - 1)
            bits = _int(params, "NumDataBits", 0)
            bits = width - offset if bits <= 0 else min(bits, width - offset)
            return {"_nbit": (bits, offset)}
        # JPEG: hdf5plugin has no JPEG filter
        self.open_message = f"{name} compression is not available here: frames stored uncompressed"
        logger.warning("%s", self.open_message)
        return {}

    def _chunking(
        self, params: Mapping[str, Any], frame_shape: tuple[int, ...], multi: bool, num_capture: int
    ) -> tuple[int, ...]:
        """Chunk shape of the detector datasets; report the chosen values."""
        rows = frame_shape[0] if len(frame_shape) >= 1 else 1
        cols = frame_shape[1] if len(frame_shape) >= 2 else 1
        frames = max(1, _int(params, "NumFramesChunks", 1))
        if not _yes(params.get("ChunkSizeAuto", 1)):
            col_req = _int(params, "NumColChunks", 0)
            row_req = _int(params, "NumRowChunks", 0)
            cols = cols if col_req <= 0 else min(col_req, cols)
            rows = rows if row_req <= 0 else min(row_req, rows)
        if not multi:
            frames = 1
        elif num_capture > 0:
            frames = min(frames, num_capture)
        self._readback("NumColChunks", cols)
        self._readback("NumRowChunks", rows)
        self._readback("NumFramesChunks", frames)
        chunk_frame = list(frame_shape)
        if len(chunk_frame) >= 1:
            chunk_frame[0] = rows
        if len(chunk_frame) >= 2:
            chunk_frame[1] = cols
        return ((frames,) if multi else ()) + tuple(chunk_frame)

    def _create_tree(
        self,
        group: TreeGroup,
        h5group: h5py.Group,
        data: np.ndarray,
        multi: bool,
        num_capture: int,
        chunks: tuple[int, ...],
        filters: dict[str, Any],
    ) -> None:
        for d in group.sorted_datasets():
            if d.source == "detector":
                self._create_detector(d, h5group, data, multi, num_capture, chunks, filters)
                self._write_dataset_constants(h5group[d.name], d)
            elif d.source == "constant":
                if d.type in ("int", "float"):
                    h5group.create_dataset(d.name, data=_constant_value(d.value, d.type))
                else:  # untyped constants are written as an empty string
                    _write_string_dataset(h5group, d.name, d.value if d.type == "string" else "")
                self._write_dataset_constants(h5group[d.name], d)
            # ndattribute datasets are created once the NDAttribute types are known;
            # a dataset without source is only a placeholder (performance/timestamp)
        if self._store_attr:
            for attr in group.attributes.values():
                if attr.source == "constant" and group.path != "/":
                    _write_constant_attribute(h5group, attr)
        for sub in group.sorted_groups():
            h5sub = h5group.create_group(sub.name)
            self._create_tree(sub, h5sub, data, multi, num_capture, chunks, filters)

    @staticmethod
    def _write_dataset_constants(h5obj: h5py.HLObject, d: TreeDataset) -> None:
        for attr in d.attributes.values():
            if attr.source == "constant":
                _write_constant_attribute(h5obj, attr)

    def _create_detector(
        self,
        d: TreeDataset,
        h5group: h5py.Group,
        data: np.ndarray,
        multi: bool,
        num_capture: int,
        chunks: tuple[int, ...],
        filters: dict[str, Any],
    ) -> None:
        params = self._params
        fill_raw = params.get("FillValue", 0) or 0
        try:
            fillvalue = np.asarray(fill_raw).astype(data.dtype)[()]
        except (TypeError, ValueError):
            fillvalue = np.zeros((), dtype=data.dtype)[()]
        frame_shape = tuple(data.shape)
        zlib_level = filters.get("_zlib")
        kwargs = {k: v for k, v in filters.items() if not k.startswith("_")}
        extra_sizes = self._extra_sizes() if multi else ()
        if extra_sizes:
            shape = (1,) * len(extra_sizes) + frame_shape
            maxshape = (None,) * len(extra_sizes) + frame_shape
            chunks = (1,) * (len(extra_sizes) - 1) + chunks
        elif multi:
            shape = (1, *frame_shape)
            maxshape = (num_capture if num_capture > 0 else None, *frame_shape)
        else:
            shape = maxshape = frame_shape
        nbit = filters.get("_nbit")
        if nbit is not None:
            dset = _create_nbit_dataset(
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
        dset.attrs.create("NDArrayNumDims", np.int32(data.ndim))
        dims = self._dims_source(data)
        dset.attrs.create("NDArrayDimOffset", np.array([x.offset for x in dims], dtype="i4"))
        dset.attrs.create("NDArrayDimBinning", np.array([x.binning for x in dims], dtype="i4"))
        dset.attrs.create("NDArrayDimReverse", np.array([x.reverse for x in dims], dtype="i4"))
        whole_frames = chunks[-len(frame_shape) :] == frame_shape
        direct = (
            multi
            and not extra_sizes
            and whole_frames
            and nbit is None
            and (not kwargs or zlib_level is not None)
        )
        self._detectors[d.path] = _DetectorDataset(
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
            extra_sizes=extra_sizes,
        )

    def _extra_sizes(self) -> tuple[int, ...]:
        """Virtual dims for NumExtraDims 1 or 2: (X, N) or (Y, X, N); () otherwise."""
        n_extra = min(max(_int(self._params, "NumExtraDims", 0), 0), 2)
        if n_extra == 0:
            return ()
        sizes = [max(1, _int(self._params, f"ExtraDimSize{k}", 1)) for k in ("Y", "X", "N")]
        return tuple(sizes[2 - n_extra :])

    def _dims_source(self, data: np.ndarray) -> list[NDDimension]:
        if len(self._open_dims) == data.ndim:
            return self._open_dims
        return [NDDimension(n) for n in reversed(data.shape)]

    def _write_open_attributes(self, group: TreeGroup, h5group: h5py.Group) -> None:
        """ndattribute-sourced HDF5 attributes: OnFileOpen now, OnFileClose remembered."""
        elements: list[tuple[str, dict[str, TreeAttribute]]] = []
        for g in group.walk():
            if g.path != "/":
                elements.append((g.path, g.attributes))
            for d in g.sorted_datasets():
                if d.source in ("detector", "constant"):
                    elements.append((d.path, d.attributes))
        for path, attributes in elements:
            for attr in attributes.values():
                if attr.source != "ndattribute" or not self._store_attr:
                    continue
                if attr.when == "OnFileClose":
                    self._close_attrs.append((path, attr))
                else:
                    _write_ndattribute_attribute(
                        self.file[path], attr.name, self._file_attrs.get(attr.ndattribute)
                    )

    def _create_attribute_datasets(self, multi: bool, num_capture: int) -> None:
        assert self.file is not None and self.layout is not None
        chunk = _int(self._params, "NDAttributeChunk", 0)
        if chunk <= 0:
            chunk = 1 if not multi else (num_capture if num_capture > 0 else ATTR_CHUNK_UNLIMITED)
        default_group: h5py.Group | None = None
        layout_default = self.layout.ndattr_default_group()
        if layout_default is not None:
            default_group = self.file[layout_default.path]
            if self.hostname:
                write_string_attribute(default_group, "hostname", self.hostname)
        elif self.layout.auto_ndattr_default:
            default_group = self.file
        ordered = [a for n, a in self._file_attrs.items() if n != "NDArrayUniqueId"]
        if "NDArrayUniqueId" in self._file_attrs:  # written last, for SWMR readers
            ordered.append(self._file_attrs["NDArrayUniqueId"])
        for nd in ordered:
            layout_dset = self.layout.find_dataset_for_ndattribute(nd.name)
            if layout_dset is not None:
                parent = self.file[layout_dset.path.rsplit("/", 1)[0] or "/"]
                name, when = layout_dset.name, layout_dset.when
            elif default_group is not None:
                parent, name, when = default_group, nd.name, "OnFrame"
            else:
                continue
            if name in parent:
                logger.warning("NDAttribute %s: %s/%s already exists", nd.name, parent.name, name)
                continue
            datatype = nd.datatype if nd.datatype in ATTR_NUMPY else "UNDEFINED"
            dtype = ATTR_NUMPY[datatype]
            fill = np.nan if datatype == "UNDEFINED" else None
            dset = parent.create_dataset(
                name,
                shape=(1,),
                maxshape=(None,),
                chunks=(chunk,),
                dtype=dtype,
                fillvalue=fill,
            )
            if layout_dset is not None:
                self._write_dataset_constants(dset, layout_dset)
                for attr in layout_dset.attributes.values():
                    if attr.source == "ndattribute":
                        if attr.when == "OnFileClose":
                            self._close_attrs.append((dset.name, attr))
                        else:
                            _write_ndattribute_attribute(
                                dset, attr.name, self._file_attrs.get(attr.ndattribute)
                            )
            for key, text in (
                ("NDAttrName", nd.name),
                ("NDAttrDescription", nd.description),
                ("NDAttrSourceType", nd.source_type),
                ("NDAttrSource", nd.source),
            ):
                if text:
                    write_string_attribute(dset, key, text)
            node = _AttributeDataset(nd.name, dset, when, datatype, dtype)
            if when == "OnFileOpen":
                node.set_single(nd)
            self._attr_dsets.append(node)

    def _create_hardlinks(self, group: TreeGroup) -> None:
        assert self.file is not None
        for g in group.walk():
            for link in (g.hardlinks[k] for k in sorted(g.hardlinks)):
                try:
                    self.file[link.path] = self.file[link.target]
                except (KeyError, ValueError, RuntimeError, OSError) as exc:
                    logger.warning(
                        "error creating hard link from %s to %s: %s", link.target, link.path, exc
                    )

    # -- write
    def _write_locked(self, array: NDArray) -> None:
        """Append one frame (and its NDAttributes) to the open file."""
        if self.file is None or self.layout is None:
            raise HDF5WriterError("no file is open")
        t0 = time.perf_counter()
        data = np.asarray(array.data)
        target = self._destination(array)
        if data.shape != target.frame_shape or data.dtype != target.dtype:
            raise HDF5WriterError(
                f"frame {array.unique_id} is {data.dtype}{list(data.shape)}, the file expects "
                f"{target.dtype}{list(target.frame_shape)}"
            )
        self._space.check(data.nbytes)
        target.append(data)
        if self._attr_dsets:
            self._file_attrs = self._gather_attributes(array)
            for node in self._attr_dsets:
                if node.when == "OnFrame":
                    node.add(self._file_attrs.get(node.name))
                    if len(node.pending) >= ATTR_BATCH:
                        node.flush()
        self._frames += 1
        self._bytes += data.nbytes
        now = time.perf_counter()
        if self._store_perf:
            period = now - self._last_time
            runtime = now - self._open_time
            self._perf_rows.append(
                (
                    now - t0,
                    period,
                    runtime,
                    self._frame_mbit / period if period > 0 else 0.0,
                    self._frame_mbit * self._frames / runtime if runtime > 0 else 0.0,
                )
            )
        self._last_time = now
        if self._flush_every and self._frames % self._flush_every == 0:
            self._flush_locked()

    def _destination(self, array: NDArray) -> _DetectorDataset:
        assert self.layout is not None
        name = self.layout.detector_data_destination
        if name:
            nd = array.attributes.get(name)
            if nd is not None and nd.value is not None:
                value = nd.value
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                found = self._detectors.get(str(value))
                if found is not None:
                    return found
        if self._default_det is None:
            raise HDF5WriterError("no detector dataset to write to")
        return self._default_det

    # -- flush / close
    def _flush_locked(self) -> None:
        """Push buffered frames and NDAttribute values to the file (FlushNow)."""
        if self.file is None:
            return
        for det in self._detectors.values():
            det.flush_partial()
        for node in self._attr_dsets:
            node.flush()
        self.file.flush()
        if self._swmr:
            self._swmr_counter += 1
            self._readback("SWMRCbCounter", self._swmr_counter)

    def _close_locked(self) -> dict[str, float]:
        """Finish the file: OnFileClose values, performance data; return RunTime/IOSpeed."""
        if self.file is None:
            return {}
        error: BaseException | None = None
        try:
            for det in self._detectors.values():
                det.flush_partial()
            for node in self._attr_dsets:
                node.flush()
                if node.when == "OnFileClose":
                    node.set_single(self._file_attrs.get(node.name))
            if self._swmr:
                # SWMR forbids new objects and attributes: finish in a normal session
                self._release_objects()
                file, self.file = self.file, None
                _close_file(file)
                self.file = h5py.File(self.path, "r+", libver="latest")
            for path, attr in self._close_attrs:
                if path in self.file:
                    _write_ndattribute_attribute(
                        self.file[path], attr.name, self._file_attrs.get(attr.ndattribute)
                    )
            if self._store_perf:
                self._write_performance()
            runtime = time.perf_counter() - self._open_time
            speed = (8.0 * self._bytes / (1024.0 * 1024.0)) / runtime if runtime > 0 else 0.0
            self._release_objects()
            file, self.file = self.file, None
            _close_file(file)
        except Exception as exc:
            error = _detached(exc)
        if error is not None:
            self._abort()
            raise error
        self.file = None  # the attribute collector stays: its PV monitors serve the next file
        self._readback("RunTime", runtime)
        self._readback("IOSpeed", speed)
        if self._swmr:
            self._readback("SWMRActive", 0)
        return {"RunTime": runtime, "IOSpeed": speed}

    def open(
        self,
        path: str,
        array: NDArray,
        params: Mapping[str, Any],
        num_capture: int,
        mode: str,
    ) -> None:
        """Create ``path`` with the layout's tree, ready for ``array``-shaped frames.

        ``mode`` is "Single" (no frame axis), "Capture" or "Stream"; ``num_capture``
        bounds the frame axis (0: unlimited).  Raises :class:`HDF5WriterError` for a
        bad layout or parameters; OSError from the file system passes through.
        """
        with self._lock:
            self._open_locked(path, array, params, num_capture, mode)

    def write(self, array: NDArray) -> None:
        """Append one frame (and its NDAttributes) to the open file."""
        with self._lock:
            self._write_locked(array)

    def flush(self) -> None:
        """Push buffered frames and NDAttribute values to the file (FlushNow)."""
        with self._lock:
            self._flush_locked()

    def close(self) -> dict[str, float]:
        """Finish the file: OnFileClose values, performance data; return RunTime/IOSpeed."""
        with self._lock:
            return self._close_locked()

    def _write_performance(self) -> None:
        assert self.file is not None and self.layout is not None
        perf = self.layout.performance_dataset()
        if perf is not None:
            parent = self.file[perf.path.rsplit("/", 1)[0] or "/"]
        else:
            default = self.layout.ndattr_default_group()
            if default is not None:
                parent = self.file[default.path]
            elif self.layout.auto_ndattr_default:
                parent = self.file
            else:
                return
        if "timestamp" in parent:
            logger.warning("performance dataset: %s/timestamp already exists", parent.name)
            return
        rows = np.array(self._perf_rows, dtype="f8").reshape(-1, 5)
        parent.create_dataset("timestamp", data=rows)

    def _release_objects(self) -> None:
        """Drop our references to datasets, before their file is closed."""
        self._detectors = {}
        self._default_det = None
        self._attr_dsets = []

    def _abort(self) -> None:
        """Close the file after an error without raising again.

        Every reference to an HDF5 object is dropped *before* the file is closed:
        objects left alive after a failed close (disk full) are otherwise
        deallocated later against a half-closed file, which can crash the process.
        """
        self._release_objects()
        file, self.file = self.file, None
        if file is None:
            return
        try:
            _close_file(file)
        except Exception:
            logger.debug("closing %s after an error failed", self.path, exc_info=True)

    def abort(self) -> None:
        """Drop the open file after an error (what is on disk stays as it is)."""
        self._abort()
        if self._swmr:
            self._readback("SWMRActive", 0)

    def shutdown(self) -> None:
        """Close any open file and the EPICS_PV monitors of the plugin's attributes."""
        if self.file is not None:
            try:
                self.close()
            except Exception:
                self._abort()
        if self._collector is not None:
            self._collector.close()
            self._collector = None
