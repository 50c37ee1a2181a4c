"""HDF5Writer: the file-format half of the simulated NDFileHDF5 plugin.

The NDFile plugin base (file names, modes, Capture/WriteFile, TempSuffix) decides
*when* to open, write and close; this class decides *what* goes in the file,
following ADCore's NDFileHDF5 (ADApp/pluginSrc/NDFileHDF5.cpp), from the layout tree of
:mod:`adtoolkit.adcore.layout` (the XML the validator checks, or the built-in
default): groups, constant datasets and attributes, hard links, and

* the detector dataset(s) (:mod:`.datasets`), compressed as asked (:mod:`.filters`);
* a 1-D dataset per NDAttribute of the frame (:mod:`.attribute_datasets`);
* the performance ``timestamp`` (N, 5) dataset and RunTime/IOSpeed readbacks;
* SWMR mode with periodic flushes, so a reader (or a post-mortem after SIGKILL)
  sees every flushed frame;
* a check before each frame that it fits on the disk (:mod:`.space`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import h5py
import numpy as np

from adtoolkit.adcore.layout import (
    DEFAULT_LAYOUT_MESSAGE,
    LAYOUT_OK_MESSAGE,
    LayoutError,
    LayoutTree,
    TreeAttribute,
    TreeGroup,
    parse_layout_tree,
    validate_layout_param,
)
from adtoolkit.ioc.hdf5.attribute_datasets import (
    ATTR_BATCH,
    AttributeDataset,
    automatic_attributes,
    create_attribute_datasets,
)
from adtoolkit.ioc.hdf5.datasets import DetectorDataset, chunk_shape, create_detector_dataset
from adtoolkit.ioc.hdf5.errors import HDF5WriterError, detached
from adtoolkit.ioc.hdf5.filters import (
    BLOSC_COMPRESSORS,
    BLOSC_SHUFFLES,
    COMPRESSIONS,
    blosc_supports,
    compression_filters,
)
from adtoolkit.ioc.hdf5.params import int_param, yes
from adtoolkit.ioc.hdf5.space import SpaceGuard
from adtoolkit.ioc.hdf5.values import (
    constant_value,
    write_constant_attribute,
    write_dataset_constants,
    write_ndattribute_attribute,
    write_string_dataset,
)
from adtoolkit.ioc.ndarray import NDArray, NDAttribute, NDDimension
from adtoolkit.ioc.ndattributes.collector import AttributeCollector

logger = logging.getLogger(__name__)

#: re-exported: the plugin and the tests know them from here
__all__ = [
    "BLOSC_COMPRESSORS",
    "BLOSC_SHUFFLES",
    "COMPRESSIONS",
    "HDF5Writer",
    "HDF5WriterError",
    "blosc_supports",
    "validate_layout_param",
]


def _close_file(file: h5py.File) -> None:
    """Close through the file id only.

    h5py's ``File.close`` also walks every open object of the file; after a
    failed write (disk full) that walk can crash the interpreter, while the
    plain ``H5Fclose`` reports the error and leaves the process healthy.
    """
    fid = file.id
    del file
    fid.close()


class HDF5Writer:
    """Write NDArrays to one HDF5 file at a time, the way NDFileHDF5 does.

    ``on_readback(name, value)`` receives the values the plugin shows in its
    readback PVs (XMLValid, XMLErrorMsg, NumColChunks, NumRowChunks,
    NumFramesChunks, SWMRActive, SWMRCbCounter, RunTime, IOSpeed).
    ``plugin_attributes()`` returns the plugin's own NDAttributes collector (from
    its NDAttributesFile), or None when it has none.  It is asked at file open and
    for every frame, as NDPluginFile asks the plugin's current attribute list for
    each array, so a new NDAttributesFile takes effect on the next frame.  The
    plugin owns the collector (its monitors, its closing); the writer only reads.
    """

    def __init__(
        self,
        on_readback: Callable[[str, Any], None] | None = None,
        plugin_attributes: Callable[[], AttributeCollector | None] | None = None,
        hostname: str | None = None,
    ) -> None:
        self.on_readback = on_readback
        self.plugin_attributes = plugin_attributes
        self.hostname = socket.gethostname() if hostname is None else hostname
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
        self._detectors: dict[str, DetectorDataset] = {}
        self._default_det: DetectorDataset | None = None
        self._attr_dsets: list[AttributeDataset] = []
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
    def _collect_plugin_attributes(self, array: NDArray) -> dict[str, NDAttribute]:
        collector = self._plugin_collector()
        return collector.collect(array) if collector is not None else {}

    def _plugin_collector(self) -> AttributeCollector | None:
        """The plugin's own AttributeCollector now, if it has one."""
        return self.plugin_attributes() if self.plugin_attributes is not None else None

    def _gather_attributes(self, array: NDArray) -> dict[str, NDAttribute]:
        """The file's attribute list: automatic ones, the plugin's, then the array's."""
        attrs = {a.name: a for a in automatic_attributes(array)}
        attrs.update(self._collect_plugin_attributes(array))
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
        self._store_attr = yes(params.get("StoreAttr", 1))
        self._store_perf = yes(params.get("StorePerform", 1))
        self._swmr = yes(params.get("SWMRMode", 0))
        self._flush_every = max(0, int_param(params, "NumFramesFlush", 0))
        data = np.asarray(array.data)
        filters, self.open_message = compression_filters(params, data.dtype)
        if self.open_message:
            logger.warning("%s", self.open_message)
        chunks, (cols, rows, frames) = chunk_shape(params, data.shape, multi, num_capture)
        self._readback("NumColChunks", cols)
        self._readback("NumRowChunks", rows)
        self._readback("NumFramesChunks", frames)
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
                self._attr_dsets, close_attrs = create_attribute_datasets(
                    self.file, layout, self._file_attrs, params, multi, num_capture, self.hostname
                )
                self._close_attrs.extend(close_attrs)
            self._create_hardlinks(layout.root)
            if self._swmr:
                self.file.swmr_mode = True
        except Exception as exc:
            error: Exception | None = detached(exc)
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
                self._detectors[d.path] = create_detector_dataset(
                    d, h5group, data, self._open_dims, self._params, multi, num_capture, chunks,
                    filters,
                )  # fmt: skip
                write_dataset_constants(h5group[d.name], d)
            elif d.source == "constant":
                if d.type in ("int", "float"):
                    h5group.create_dataset(d.name, data=constant_value(d.value, d.type))
                else:  # untyped constants are written as an empty string
                    write_string_dataset(h5group, d.name, d.value if d.type == "string" else "")
                write_dataset_constants(h5group[d.name], d)
            # ndattribute datasets are created once the NDAttribute types are known;
            # a dataset without source is only a placeholder (performance/timestamp)
        if self._store_attr:
            for attr in group.attributes.values():
                if attr.source == "constant" and group.path != "/":
                    write_constant_attribute(h5group, attr)
        for sub in group.sorted_groups():
            h5sub = h5group.create_group(sub.name)
            self._create_tree(sub, h5sub, data, multi, num_capture, chunks, filters)

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
                    write_ndattribute_attribute(
                        self.file[path], attr.name, self._file_attrs.get(attr.ndattribute)
                    )

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

    def _destination(self, array: NDArray) -> DetectorDataset:
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
                    write_ndattribute_attribute(
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
            error = detached(exc)
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
        """Close any open file (the plugin closes its own attribute collector)."""
        if self.file is not None:
            try:
                self.close()
            except Exception:
                self._abort()
