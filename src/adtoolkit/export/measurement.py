"""The ``measurement`` group: the scan as spec-style tools see it.

A program that knows nothing about the instrument finds, under
``<entry>/measurement``:

* ``scalar_data``: every scalar column of the primary stream, 1-D, with the
  attributes ``axes`` (scan axes), ``signals`` (detector signals) and
  ``monitor`` (normalisation counter, "" if none was named); ``axes`` and
  ``signals`` are absent when the run has none;
* ``positioners``: the start position of every motor in the baseline (the
  first baseline reading), one scalar each;
* ``devices/<detector>``: ``data`` (the detector's frames, the same link as in
  NXdetector) and its NDAttributes, one value per frame.

The datasets are hard links into the rest of the entry, so nothing is stored
twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import h5py
import numpy as np

from ..runs.documents import RunDocuments, Stream
from ..runs.frames import DetectorFrames
from .h5values import STR


def _is_scalar(dk: dict) -> bool:
    return not dk.get("shape") and not str(dk.get("external", "")).startswith("FILESTORE")


def scalar_fields(stream: Stream) -> list[str]:
    return [k for k, dk in stream.data_keys.items() if _is_scalar(dk) and k in stream.data]


def scan_axes(run: RunDocuments) -> list[str]:
    """The primary-stream fields the scan moved, from the start hints or ``motors``."""
    primary = run.primary
    if primary is None:
        return []
    scalars = set(scalar_fields(primary))
    axes: list[str] = []
    for fields, stream_name in run.start.get("hints", {}).get("dimensions", []):
        if stream_name == "primary":
            axes += [f for f in fields if f in scalars and f not in axes]
    if axes:
        return axes
    hints = primary.hints
    for motor in run.start.get("motors", []):
        for f in hints.get(motor, {}).get("fields", [motor]):
            if f in scalars and f not in axes:
                axes.append(f)
    return axes


def scan_signals(run: RunDocuments, axes: Sequence[str]) -> list[str]:
    """Detector scalars: hinted fields of ``start['detectors']``, else all their scalars."""
    primary = run.primary
    if primary is None:
        return []
    scalars = [f for f in scalar_fields(primary) if f not in axes]
    hints = primary.hints
    keys = primary.data_keys
    signals: list[str] = []
    for det in run.start.get("detectors", []):
        hinted = [f for f in hints.get(det, {}).get("fields", []) if f in scalars]
        owned = [f for f in scalars if keys[f].get("object_name") == det]
        signals += [f for f in (hinted or owned) if f not in signals]
    return signals


def _str_attr(obj: h5py.HLObject, name: str, values: Sequence[str]) -> None:
    """A list-of-names attribute; left out when empty (punx crashes on an empty @axes)."""
    if values:
        obj.attrs.create(name, np.array(list(values), dtype=object), dtype=STR)


def write_measurement(
    entry: h5py.Group,
    run: RunDocuments,
    detectors: list[DetectorFrames],
    axes: Sequence[str],
    signals: Sequence[str],
    monitor: str | None,
) -> h5py.Group:
    meas = entry.create_group("measurement")
    meas.attrs["NX_class"] = "NXcollection"

    scalars = meas.create_group("scalar_data")
    scalars.attrs["NX_class"] = "NXcollection"
    streams = entry["bluesky/streams"]
    if run.primary is not None:
        primary = streams["primary"]
        for key in scalar_fields(run.primary):
            if key in primary:
                scalars[key] = primary[key]
    _str_attr(scalars, "axes", axes)
    _str_attr(scalars, "signals", signals)
    scalars.attrs["monitor"] = monitor or ""

    positioners = meas.create_group("positioners")
    positioners.attrs["NX_class"] = "NXcollection"
    baseline = run.streams.get("baseline")
    if baseline is not None and len(baseline):
        for key in scalar_fields(baseline):
            value = baseline.data[key][0]
            if isinstance(value, bool | int | float | np.number):
                ds = positioners.create_dataset(key, data=value)
                units = baseline.data_keys[key].get("units")
                if units:
                    ds.attrs["units"] = units

    devices = meas.create_group("devices")
    devices.attrs["NX_class"] = "NXcollection"
    for frames in detectors:
        det = entry["instrument"][frames.detector]
        dev = devices.create_group(frames.detector)
        dev.attrs["NX_class"] = "NXcollection"
        link = det.get("data", getlink=True)
        if isinstance(link, h5py.ExternalLink):
            dev["data"] = h5py.ExternalLink(link.filename, link.path)
        else:
            dev["data"] = det["data"]
        for name, ds in det["NDAttributes"].items():
            # "in" would follow the external link (opening the IOC file read-write): use getlink
            if dev.get(name, getlink=True) is None:  # an NDAttribute "data" must not hide frames
                dev[name] = ds
    return meas
