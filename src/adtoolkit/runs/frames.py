"""Where an area detector's frames are: datum -> (file, dataset, frame range).

An image field in a bluesky event holds a datum id.  The datum's resource names
the file (``root`` + ``resource_path``, written from the IOC's point of view)
and, for the ``AD_HDF5`` family of specs, the frames are
``/entry/data/data[point_number*fpp:(point_number+1)*fpp]``.  This module turns
a run's datum ids into a list of contiguous :class:`FrameBlock` ranges with the
path mapping applied; the readers read them (:mod:`adtoolkit.readers.run`) and the
exporter links, virtualises or copies them (:mod:`adtoolkit.export.frames`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

import h5py
import numpy as np

from .documents import RunDocuments, Stream

__all__ = [
    "AD_HDF5_KEY",
    "AD_HDF5_SPECS",
    "DetectorFrames",
    "FrameBlock",
    "FrameError",
    "image_fields",
    "locate_frames",
    "open_source",
    "resource_path",
]

#: specs whose frames live in one (N, Y, X) dataset at /entry/data/data
AD_HDF5_SPECS = {"AD_HDF5", "AD_HDF5_SWMR", "AD_HDF5_SWMR_STREAM"}
AD_HDF5_KEY = "/entry/data/data"


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
