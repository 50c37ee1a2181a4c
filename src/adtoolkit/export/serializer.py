"""Suitcase-style entry points: ``export()`` after the fact, ``NexusSerializer`` live.

``export(documents, directory)`` writes every run found in ``documents`` as
one NXentry of a single file.  ``NexusSerializer`` is a RunEngine callback that
writes one file per run when the run's stop document arrives.

Frames are usually not complete when the stop document arrives: ophyd plans
unstage the detector (closing the IOC's HDF5 file) *after* the run closes.
The serializer therefore writes in a worker thread that waits, up to
``timeout`` seconds, until every referenced frame can be read; ``wait()``
joins those writes and raises the first error.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py

from ..runs.documents import RunCollector, RunDocuments, collect_runs, iter_document_streams
from ..runs.frames import FrameError, image_fields, locate_frames
from ..runs.pathmap import PathMap, as_path_mapper
from .atomic import ExportError, atomic_h5
from .nexus import write_entry
from .rawcopy import BackgroundCopier

DEFAULT_PREFIX = "{scan_id}_{uid:.8}"


def file_name(file_prefix: str, start: Mapping[str, Any]) -> str:
    """``file_prefix`` formatted with the start document's keys (suitcase convention)."""
    fields = {"scan_id": "", **start}
    try:
        name = file_prefix.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"file_prefix {file_prefix!r} needs {exc} which run {start.get('uid')} lacks"
        ) from exc
    if not name or os.sep in name:
        raise ValueError(f"file_prefix {file_prefix!r} gives an invalid file name {name!r}")
    return name + ".h5"


def write_runs(
    runs: list[RunDocuments],
    path: str | os.PathLike,
    *,
    copy: bool = False,
    virtual: bool = True,
    path_map: PathMap = None,
    monitor: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``runs`` (one NXentry each) to ``path`` through ``<path>.tmp``."""
    if not runs:
        raise ValueError("no complete run (start ... stop) to export")
    mapper = as_path_mapper(path_map)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    names = ["entry"] if len(runs) == 1 else [f"entry_{i + 1}" for i in range(len(runs))]
    # the copier's block is inside atomic_h5's: copies end before the file closes
    with atomic_h5(path, overwrite=overwrite) as f, BackgroundCopier() as copier:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = names[0]
        f.attrs["file_name"] = path.name
        f.attrs["file_time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["creator"] = "adtoolkit"
        f.attrs["HDF5_Version"] = h5py.version.hdf5_version
        f.attrs["h5py_version"] = h5py.version.version
        for name, run in zip(names, runs, strict=True):
            write_entry(
                f,
                name,
                run,
                copy=copy,
                virtual=virtual,
                mapper=mapper,
                monitor=monitor,
                copier=copier,
            )
    return path


def export(
    documents: Any,
    directory: str | os.PathLike,
    file_prefix: str = DEFAULT_PREFIX,
    *,
    copy: bool = False,
    virtual: bool = True,
    path_map: PathMap = None,
    monitor: str | None = None,
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    """Export one or several runs to ``<directory>/<file_prefix>.h5``.

    ``documents`` is an iterable of ``(name, doc)`` pairs (one run, or several
    runs in a row), a databroker run, or a list of either; every run becomes
    one NXentry.  ``file_prefix`` is formatted with the first run's start
    document.  Frames are linked (one whole IOC file: external link; else a
    virtual dataset, or a copy with ``virtual=False``) or, with ``copy=True``,
    copied.  Returns suitcase-style artifacts ``{"nexus": [path]}``.
    """
    runs: list[RunDocuments] = []
    for docs in iter_document_streams(documents):
        runs.extend(collect_runs(docs))
    if not runs:
        raise ValueError("no complete run (start ... stop) in the documents given")
    directory = Path(directory)
    path = directory / file_name(file_prefix, runs[0].start)
    write_runs(
        runs,
        path,
        copy=copy,
        virtual=virtual,
        path_map=path_map,
        monitor=monitor,
        overwrite=overwrite,
    )
    return {"nexus": [path]}


class NexusSerializer:
    """RunEngine callback: one NeXus file per run, written when the run stops.

    >>> serializer = NexusSerializer("/data/nexus", copy=True)
    >>> RE.subscribe(serializer)
    >>> RE(scan([det], motor, 0, 1, 11))
    >>> serializer.wait()   # files of finished runs are complete after this
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        file_prefix: str = DEFAULT_PREFIX,
        *,
        copy: bool = False,
        virtual: bool = True,
        path_map: PathMap = None,
        monitor: str | None = None,
        overwrite: bool = False,
        timeout: float = 60.0,
        background: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.file_prefix = file_prefix
        self.copy = copy
        self.virtual = virtual
        self.path_map = path_map
        self.monitor = monitor
        self.overwrite = overwrite
        self.timeout = timeout
        self.background = background
        self.artifacts: dict[str, list[Path]] = {"nexus": []}
        self._stop_order: list[Path] = []  # files by run stop, whatever order threads end
        self.errors: list[BaseException] = []
        self._collector = RunCollector()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, doc: dict) -> None:
        self._collector(name, doc)
        if name == "stop":
            run = self._collector.runs.pop()
            self._stop_order.append(self.directory / file_name(self.file_prefix, run.start))
            if self.background:
                thread = threading.Thread(
                    target=self._write_guarded,
                    args=(run,),
                    name=f"nexus-{run.uid[:8]}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._write(run)

    def _write_guarded(self, run: RunDocuments) -> None:
        try:
            self._write(run)
        except BaseException as exc:  # reported by wait()
            with self._lock:
                self.errors.append(exc)

    def _write(self, run: RunDocuments) -> None:
        path = self.directory / file_name(self.file_prefix, run.start)
        self._wait_for_frames(run, path)
        write_runs(
            [run],
            path,
            copy=self.copy,
            virtual=self.virtual,
            path_map=self.path_map,
            monitor=self.monitor,
            overwrite=self.overwrite,
        )
        with self._lock:
            self.artifacts["nexus"].append(path)
            self.artifacts["nexus"].sort(key=self._stop_order.index)

    def _wait_for_frames(self, run: RunDocuments, path: Path) -> None:
        """Block until every frame of the run can be read, or raise after ``timeout``."""
        primary = run.primary
        if primary is None:
            return
        mapper = as_path_mapper(self.path_map)
        deadline = time.monotonic() + self.timeout
        pause = threading.Event()
        for key in image_fields(primary, run.resources, run.datums):
            while True:
                try:
                    locate_frames(run, primary, key, mapper)
                    break
                except FrameError as exc:
                    if time.monotonic() > deadline:
                        raise ExportError(
                            f"cannot write {path}: frames not readable after {self.timeout} s: {exc}"
                        ) from exc
                    pause.wait(0.05)

    def wait(self, timeout: float | None = None) -> dict[str, list[Path]]:
        """Join pending writes; raise the first error; return the artifacts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining if remaining is not None else self.timeout + 60)
            if thread.is_alive():
                raise TimeoutError(f"NeXus export {thread.name} still running")
            self._threads.remove(thread)
        if self.errors:
            raise self.errors.pop(0)
        return self.artifacts

    close = wait

    def __enter__(self) -> NexusSerializer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait()
