"""``open_run``: frames and scalars of a run, lazily, from a NeXus export or databroker.

Analysis code should not care whether a run comes from the catalog or from an
exported file, nor where the IOC wrote the frames.  ``open_run`` returns an
``OpenedRun`` whose ``frames(detector)`` is a dask array shaped like
databroker's (points, frames_per_point, Y, X) and whose ``dataset()`` is an
xarray Dataset (dimension ``time``) of the scalars plus the frames.  Nothing is
read until it is computed.

The path mapping is applied to every file name that comes from the IOC: the
resources of a databroker run, and the external links and virtual-dataset
sources of an exported file (so an export can move to another machine too).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np

from ..runs.documents import collect_runs
from ..runs.frames import image_fields, locate_frames
from ..runs.pathmap import PathMap, as_path_mapper

_LOCK = threading.Lock()  # HDF5 is not thread-safe under dask's threaded scheduler


@dataclass
class OpenedRun:
    """A run opened for reading; close it (or use ``with``) to release the files."""

    uid: str
    start: dict
    scalars: dict[str, np.ndarray]
    time: np.ndarray
    detectors: dict[str, da.Array]  # name -> (points, fpp, Y, X)
    source: str = ""
    _files: list[h5py.File] = field(default_factory=list, repr=False)

    def frames(self, detector: str | None = None) -> da.Array:
        """The frames of ``detector`` (default: the first) as a lazy dask array."""
        if not self.detectors:
            raise KeyError(f"{self.source}: run {self.uid} has no area-detector frames")
        if detector is None:
            detector = next(iter(self.detectors))
        try:
            return self.detectors[detector]
        except KeyError:
            raise KeyError(
                f"{self.source}: no detector {detector!r}; detectors: {sorted(self.detectors)}"
            ) from None

    def dataset(self):
        """Scalars and frames as an xarray Dataset along ``time`` (frames stay lazy)."""
        import xarray as xr

        variables: dict[str, Any] = {k: ("time", v) for k, v in self.scalars.items()}
        for name, arr in self.detectors.items():
            dims = ("time", "frame", "y", "x", "color")[: arr.ndim]
            variables[name] = (dims, arr)
        return xr.Dataset(variables, coords={"time": self.time}, attrs={"uid": self.uid})

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def __enter__(self) -> OpenedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run(
    source: Any,
    *,
    entry: str | None = None,
    catalog: Any = None,
    path_map: PathMap = None,
) -> OpenedRun:
    """Open a run from an exported NeXus file, a databroker run, or a uid in ``catalog``.

    ``entry`` picks the NXentry of a file holding several runs (default: the
    file's ``@default``).  ``path_map`` maps IOC-side paths to local paths.
    """
    mapper = as_path_mapper(path_map)
    if isinstance(source, str | os.PathLike) and catalog is None:
        return _open_nexus(Path(source), entry, mapper)
    if catalog is not None:
        source = catalog[source]
    return _open_databroker(source, mapper)


# -- frames from (file, dataset, frame range) blocks --------------------------


def _open_h5(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"cannot read detector file {path}: {exc}") from exc


def _block_array(
    files: list[h5py.File], path: str, key: str, start: int, stop: int | None
) -> da.Array:
    f = _open_h5(path)
    files.append(f)
    ds = f[key]
    stop = ds.shape[0] if stop is None else stop
    if ds.shape[0] < stop:
        raise OSError(
            f"detector file {path} holds {ds.shape[0]} frames; frames up to {stop} needed"
        )
    arr = da.from_array(ds, chunks=(1, *ds.shape[1:]), lock=_LOCK)
    return arr[start:stop]


def _points(arr: da.Array, fpp: int) -> da.Array:
    return arr.reshape((arr.shape[0] // fpp, fpp, *arr.shape[1:]))


# -- exported NeXus files -----------------------------------------------------


def _open_nexus(path: Path, entry: str | None, mapper: Callable[[str], str]) -> OpenedRun:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"cannot open {path}: {exc}") from exc
    files = [f]
    try:
        name = entry or f.attrs.get("default") or next(iter(f))
        if name not in f:
            raise KeyError(f"{path}: no entry {name!r}; entries: {sorted(f)}")
        grp = f[name]
        uid = grp["entry_identifier"][()].decode()
        start_json = grp.get("bluesky/start_json")
        start = json.loads(start_json[()]) if start_json is not None else {}
        primary = grp.get("bluesky/streams/primary")
        scalars: dict[str, np.ndarray] = {}
        time = np.zeros(0)
        if primary is not None:
            time = primary["time"][()]
            scal = grp["measurement/scalar_data"]
            for k in scal:
                scalars[k] = scal[k][()]
        detectors: dict[str, da.Array] = {}
        for det_name, det in grp["instrument"].items():
            if det.attrs.get("NX_class") != "NXdetector" or "frames_per_point" not in det:
                continue
            fpp = int(det["frames_per_point"][()])
            detectors[det_name] = _points(_nexus_frames(det, files, mapper, path), fpp)
    except Exception:
        for h in files:
            h.close()
        raise
    return OpenedRun(uid, start, scalars, time, detectors, source=str(path), _files=files)


def _nexus_frames(
    det: h5py.Group, files: list[h5py.File], mapper: Callable[[str], str], path: Path
) -> da.Array:
    link = det.get("data", getlink=True)
    if isinstance(link, h5py.ExternalLink):
        return _block_array(files, mapper(link.filename), link.path, 0, None)
    ds = det["data"] if link is not None else None
    if ds is None:
        raise KeyError(f"{path}: {det.name} has no data")
    if not ds.is_virtual:
        return da.from_array(ds, chunks=(1, *ds.shape[1:]), lock=_LOCK)
    parts = []
    for vs in sorted(ds.virtual_sources(), key=lambda v: v.vspace.get_select_bounds()[0][0]):
        (v0, *_), (v1, *_) = vs.vspace.get_select_bounds()
        (s0, *_), (s1, *_) = vs.src_space.get_select_bounds()
        if v1 - v0 != s1 - s0:
            raise ValueError(f"{path}: {ds.name} maps frames with a stride; cannot read it lazily")
        parts.append(_block_array(files, mapper(vs.file_name), vs.dset_name, s0, s1 + 1))
    return da.concatenate(parts, axis=0)


# -- databroker runs ----------------------------------------------------------


def _open_databroker(run: Any, mapper: Callable[[str], str]) -> OpenedRun:
    (docs,) = collect_runs(run.documents(fill="no"))
    primary = docs.primary
    files: list[h5py.File] = []
    scalars: dict[str, np.ndarray] = {}
    detectors: dict[str, da.Array] = {}
    time = np.zeros(0)
    if primary is not None:
        time = np.asarray(primary.time)
        images = image_fields(primary, docs.resources, docs.datums)
        for key, dk in primary.data_keys.items():
            if not dk.get("shape") and key not in images and "external" not in dk:
                scalars[key] = np.asarray(primary.data[key])
        for key in images:
            frames = locate_frames(docs, primary, key, mapper)
            parts = [_block_array(files, b.path, b.key, b.start, b.stop) for b in frames.blocks]
            name = frames.detector if frames.detector not in detectors else key
            detectors[name] = _points(da.concatenate(parts, axis=0), frames.frames_per_point)
    return OpenedRun(
        docs.uid, docs.start, scalars, time, detectors, source=f"run {docs.uid}", _files=files
    )
