"""One bluesky run -> one NXentry.

Layout of an entry (``entry`` for a single run, ``entry_1``, ``entry_2``... for
several)::

    entry              NXentry    @default=data; title, start_time, end_time,
                                  entry_identifier (run uid), program_name
      instrument       NXinstrument
        <detector>     NXdetector  data (frames), NDAttributes/, configuration/
      data             NXdata      @signal, @axes, <axis>_indices: what to plot
      measurement      NXcollection  scalar_data/, positioners/, devices/<det>/
      bluesky          NXcollection  start/, stop/ (metadata), streams/<name>/
                                     (every stream: primary, baseline, monitors)

Frames stay where the IOC wrote them (external link or virtual dataset, path
mapping applied) unless ``copy=True``.

Validating with punx 0.3.5: punx names every object by h5py's ``obj.name``,
which for a dataset reached through an external link is its path *in the IOC's
file* (``/entry/data/data``).  In a file with several entries its default-plot
check then looks up ``/entry_1/data/data`` and stops with a ``KeyError``
(``punx/validations/default_plot.py``, ``default_plot_v3``); in a one-entry
file the three links of an entry are silently reported as one.  The file is
valid NeXus; tests/test_export.py (``punx_view``) shows how to validate it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import h5py
import numpy as np

from ..runs.documents import RunDocuments, Stream
from ..runs.frames import DetectorFrames, image_fields, locate_frames
from .frames import read_ndattributes, write_frames
from .h5values import STR, write_value
from .image import IMAGE_AXES
from .measurement import scan_axes, scan_signals, write_measurement
from .rawcopy import BackgroundCopier


def iso_time(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def set_str_list(obj: h5py.HLObject, name: str, values: Sequence[str]) -> None:
    obj.attrs.create(name, np.array(list(values), dtype=object), dtype=STR)


def run_title(run: RunDocuments) -> str:
    start = run.start
    if start.get("title"):
        return str(start["title"])
    parts = [str(start.get("plan_name", "run"))]
    parts += [str(m) for m in start.get("motors", [])]
    if "num_points" in start:
        parts.append(str(start["num_points"]))
    if "scan_id" in start:
        parts.append(f"(scan {start['scan_id']})")
    return " ".join(parts)


def write_entry(
    f: h5py.File,
    name: str,
    run: RunDocuments,
    *,
    copy: bool = False,
    virtual: bool = True,
    mapper: Callable[[str], str] = str,
    monitor: str | None = None,
    copier: BackgroundCopier | None = None,
) -> h5py.Group:
    """Write ``run`` as the NXentry ``f[name]`` and return it.

    ``copier``: frame bytes are copied in its worker thread and complete only
    after ``copier.wait()``; the detectors are written first so that copy
    overlaps the rest of the entry.
    """
    entry = f.create_group(name)
    entry.attrs["NX_class"] = "NXentry"
    entry["title"] = run_title(run)
    entry["entry_identifier"] = run.uid
    entry["start_time"] = iso_time(run.start.get("time"))
    if run.stop is not None and run.stop.get("time") is not None:
        entry["end_time"] = iso_time(run.stop["time"])
    program = entry.create_dataset("program_name", data="bluesky")
    version = run.start.get("versions", {}).get("bluesky")
    if version:
        program.attrs["version"] = str(version)

    sample = run.start.get("sample")
    if sample:  # the one piece of start metadata NeXus has a place for
        nxsample = entry.create_group("sample")
        nxsample.attrs["NX_class"] = "NXsample"
        label = sample.get("name") if isinstance(sample, dict) else sample
        nxsample["name"] = str(label if label is not None else json.dumps(sample, default=repr))

    instrument = entry.create_group("instrument")
    instrument.attrs["NX_class"] = "NXinstrument"
    detectors: list[DetectorFrames] = []
    primary = run.primary
    if primary is not None:
        _warn_unplaced_externals(run, primary)
        for key in _ordered_image_fields(run, primary):
            frames = locate_frames(run, primary, key, mapper)
            det_name = frames.detector if frames.detector not in instrument else key
            write_detector(
                instrument, det_name, frames, primary, copy=copy, virtual=virtual, copier=copier
            )
            frames.detector = det_name
            detectors.append(frames)

    bluesky = entry.create_group("bluesky")
    bluesky.attrs["NX_class"] = "NXcollection"
    write_value(bluesky, "start", run.start)
    bluesky["start_json"] = json.dumps(run.start, default=repr)
    if run.stop is not None:
        write_value(bluesky, "stop", run.stop)
    streams = bluesky.create_group("streams")
    streams.attrs["NX_class"] = "NXcollection"
    for stream in run.streams.values():
        write_stream(streams, stream)

    axes = scan_axes(run)
    signals = scan_signals(run, axes)
    monitor = monitor or run.start.get("monitor")
    write_measurement(entry, run, detectors, axes, signals, str(monitor) if monitor else None)
    write_default_plot(entry, run, detectors, axes, signals)
    return entry


class ExportWarning(UserWarning):
    """Part of a run could not be exported; the message says what and why."""


def _warn_unplaced_externals(run: RunDocuments, primary: Stream) -> None:
    """Externally stored fields that are not AD_HDF5 frames are left out: say so."""
    images = set(image_fields(primary, run.resources, run.datums))
    for key, dk in primary.data_keys.items():
        if str(dk.get("external", "")).startswith("FILESTORE") and key not in images:
            datum = run.datums.get(next(iter(primary.data.get(key) or []), None), {})
            spec = run.resources.get(datum.get("resource"), {}).get("spec")
            warnings.warn(
                f"run {run.uid}: field {key!r} (spec {spec!r}) is not an AD_HDF5 image; "
                "it is left out of the NeXus file",
                ExportWarning,
                stacklevel=4,
            )


def _ordered_image_fields(run: RunDocuments, primary: Stream) -> list[str]:
    """Image fields, in the order of ``start['detectors']`` (the first is the default plot)."""
    fields = image_fields(primary, run.resources, run.datums)
    order = {name: i for i, name in enumerate(run.start.get("detectors", []))}
    keys = primary.data_keys
    return sorted(fields, key=lambda k: order.get(keys[k].get("object_name"), len(order)))


def write_stream(parent: h5py.Group, stream: Stream) -> h5py.Group:
    """One event stream as an NXcollection of columns (``time``, ``seq_num``, fields)."""
    group = parent.create_group(stream.name)
    group.attrs["NX_class"] = "NXcollection"
    group.create_dataset("time", data=np.asarray(stream.time, dtype="f8")).attrs["units"] = "s"
    group.create_dataset("seq_num", data=np.asarray(stream.seq_num, dtype="i8"))
    for key, dk in stream.data_keys.items():
        if key not in stream.data or key in group:
            continue
        if str(dk.get("external", "")).startswith("FILESTORE"):
            continue  # frames go to NXdetector; datum ids mean nothing outside databroker
        column = stream.data[key]
        if any(v is None for v in column):
            ds = write_value(group, key, column)
        else:
            ds = write_value(group, key, _column_array(column))
        for attr in ("source", "units", "precision", "object_name"):
            if dk.get(attr) is not None:
                ds.attrs[attr] = dk[attr]
    return group


def _column_array(column: list):
    try:
        arr = np.asarray(column)
    except ValueError:  # ragged
        return column
    return arr if arr.dtype != object else column


def write_detector(
    instrument: h5py.Group,
    name: str,
    frames: DetectorFrames,
    primary: Stream,
    *,
    copy: bool,
    virtual: bool = True,
    copier: BackgroundCopier | None = None,
) -> h5py.Group:
    det = instrument.create_group(name)
    det.attrs["NX_class"] = "NXdetector"
    write_frames(det, "data", frames, copy, virtual, copier)
    det["frames_per_point"] = np.int32(frames.frames_per_point)
    det["bluesky_field"] = frames.field
    ndattrs = det.create_group("NDAttributes")
    ndattrs.attrs["NX_class"] = "NXcollection"
    for attr_name, (values, attrs) in read_ndattributes(frames).items():
        ds = ndattrs.create_dataset(attr_name, data=values)
        for k, v in attrs.items():
            ds.attrs[k] = v
    config = primary.configuration.get(frames.detector, {}).get("data", {})
    if config:
        write_value(det, "configuration", dict(config))
    return det


def link_frames(instrument_det: h5py.Group, target: h5py.Group, name: str) -> None:
    """Make ``target[name]`` the detector's frames: the same external link, or a hard link."""
    link = instrument_det.get("data", getlink=True)
    if isinstance(link, h5py.ExternalLink):
        target[name] = h5py.ExternalLink(link.filename, link.path)
    else:
        target[name] = instrument_det["data"]


def write_default_plot(
    entry: h5py.Group,
    run: RunDocuments,
    detectors: list[DetectorFrames],
    axes: list[str],
    signals: list[str],
) -> None:
    """The NXdata that viewers plot: the first detector's frames, else the first signal."""
    primary = run.primary
    scalars = entry["measurement/scalar_data"]
    if not detectors and not signals:
        return
    nxdata = entry.create_group("data")
    nxdata.attrs["NX_class"] = "NXdata"
    axis = axes[0] if axes else None
    n_points = len(primary) if primary is not None else 0
    if detectors:
        frames = detectors[0]
        link_frames(entry["instrument"][frames.detector], nxdata, "data")
        signal = "data"
        # punx rejects "." in @axes, so every dimension gets a real axis: the scan
        # axis when there is one value per frame, else the frame number, then pixels
        if axis is not None and frames.frames_per_point == 1 and frames.num_frames == n_points:
            nxdata[axis] = scalars[axis]
        else:
            axis = "frame_number"
            nxdata[axis] = np.arange(frames.num_frames, dtype="i8")
        axis_names = [axis]
        for dim, size in zip(IMAGE_AXES, frames.frame_shape, strict=False):
            nxdata[dim] = np.arange(size, dtype="i8")
            nxdata[dim].attrs["units"] = "pixel" if dim != "color" else ""
            axis_names.append(dim)
    else:
        signal = signals[0]
        nxdata[signal] = scalars[signal]
        if axis is None:
            axis = "point_number"
            nxdata[axis] = np.arange(n_points, dtype="i8")
        else:
            nxdata[axis] = scalars[axis]
        axis_names = [axis]
    for i, name in enumerate(axis_names):
        nxdata.attrs[f"{name}_indices"] = np.int32(i)
    nxdata.attrs["signal"] = signal
    set_str_list(nxdata, "axes", axis_names)
    entry.attrs["default"] = "data"
