"""orGUI backend for adtoolkit NeXus exports (needs ``pip install adtoolkit[orgui]``).

orGUI (surface-diffraction orientation and integration) reads scans through
backend classes, subclasses of ``orgui.backend.scans.Scan``.  This module
defines exactly one, ``AdtoolkitScan``, so the file itself can be loaded in
orGUI with "Load backend" (orGUI accepts a file holding a single Scan
subclass).  From Python, register a configured class::

    from orgui.backend import backends
    from adtoolkit.readers.orgui_backend import AdtoolkitScan
    backends.fscans["adtoolkit"] = AdtoolkitScan.with_motors(th="eta", mu="mu")

The scan axis comes from ``measurement/scalar_data@axes``; it must be the
``th`` or the ``mu`` motor.  The other angle is its start position from
``measurement/positioners`` (0 if it was not recorded).  Frames are read
lazily through ``open_run`` (path mapping applied); with several frames per
point, ``get_raw_img`` returns their sum.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

try:
    from orgui.backend.scans import Scan, h5_Image
except ImportError as exc:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "the orGUI backend needs the orgui package: pip install 'adtoolkit[orgui]'"
    ) from exc

from adtoolkit.readers.run import open_run
from adtoolkit.runs.pathmap import PathMap  # absolute: orGUI loads this file by path


def _entry_for(f: h5py.File, scanno: Any) -> str:
    """Entry for ``scanno``: an entry name, a bluesky scan_id, the N of ``entry_N``, or None.

    None picks the file's default entry.  An int is first matched against the
    runs' scan_id, then against the entry numbers (``entry_N``), which is what
    ``parse_h5_node`` returns for runs without a scan_id.
    """
    if scanno is None:
        return str(f.attrs.get("default") or next(iter(f)))
    if isinstance(scanno, str) and scanno.strip("/") in f:
        return scanno.strip("/")
    for name, entry in f.items():
        scan_id = entry.get("bluesky/start/scan_id")
        if scan_id is not None and str(scan_id[()]) == str(scanno):
            return name
    if f"entry_{scanno}" in f:
        return f"entry_{scanno}"
    raise KeyError(f"{f.filename}: no entry for scan {scanno!r}; entries: {sorted(f)}")


def _entry_number(name: str) -> int:
    head, _, number = name.rpartition("_")
    return int(number) if head and number.isdigit() else 0


class AdtoolkitScan(Scan):
    """One exported run (NXentry) as an orGUI scan."""

    #: motor (field) names in the export for orGUI's th and mu angles
    th_motor = "th"
    mu_motor = "mu"

    def __init__(
        self,
        hdffilepath_orNode: Any = None,
        scanno: Any = None,
        *,
        th: str | None = None,
        mu: str | None = None,
        detector: str | None = None,
        path_map: PathMap = None,
    ) -> None:
        if hdffilepath_orNode is None:
            raise ValueError("AdtoolkitScan needs the path of an exported NeXus file")
        if isinstance(hdffilepath_orNode, str | os.PathLike):
            path = Path(hdffilepath_orNode)
        else:  # a silx tree node, as orGUI's file browser hands it over
            path = Path(hdffilepath_orNode.local_filename)
        self.th_motor = th or self.th_motor
        self.mu_motor = mu or self.mu_motor
        with h5py.File(path, "r") as f:
            self.entry = _entry_for(f, scanno)
            entry = f[self.entry]
            self.title = entry["title"][()].decode() if "title" in entry else self.entry
            scal = entry["measurement/scalar_data"]
            axes = [str(a) for a in scal.attrs.get("axes", [])]
            signals = [str(s) for s in scal.attrs.get("signals", [])]
            monitor = str(scal.attrs.get("monitor", ""))
            counters = {k: scal[k][()] for k in scal}
            pos = entry["measurement/positioners"]
            positioners = {k: float(pos[k][()]) for k in pos}
        where = f"{path}:/{self.entry}"
        if not axes:
            raise ValueError(f"{where}: the run has no scan axis (measurement/scalar_data@axes)")
        axis = axes[0]
        values = np.asarray(counters[axis], dtype=float)
        if axis == self.th_motor:
            self.axisname = "th"
            self.th = values
            self.mu = positioners.get(self.mu_motor, 0.0)
        elif axis == self.mu_motor:
            self.axisname = "mu"
            self.mu = values
            self.th = positioners.get(self.th_motor, 0.0)
        else:
            raise ValueError(
                f"{where}: scan axis {axis!r} is neither the th motor {self.th_motor!r} "
                f"nor the mu motor {self.mu_motor!r} (configure th=/mu=)"
            )
        self.axis = values
        self.omega = -1 * np.asarray(self.th)
        self.name = f"{path.stem}/{self.entry}"
        self.path = path
        self.counters = counters
        self._run = open_run(path, entry=self.entry, path_map=path_map)
        self._frames = self._run.frames(detector)
        self._aux = []
        for name in [*signals, *([monitor] if monitor else [])]:
            if name in counters and not hasattr(self, name):
                setattr(self, name, np.asarray(counters[name]))
                self._aux.append(name)

    @classmethod
    def with_motors(cls, th: str = "th", mu: str = "mu") -> type[AdtoolkitScan]:
        """A subclass whose th/mu motor names are ``th``/``mu`` (for orGUI's registry)."""
        return type(f"AdtoolkitScan_{th}_{mu}", (cls,), {"th_motor": th, "mu_motor": mu})

    @property
    def auxillary_counters(self) -> list[str]:  # orGUI's spelling
        return list(self._aux)

    @classmethod
    def parse_h5_node(cls, node: Any) -> dict:
        """orGUI file-browser node -> ``{'scanno': int, 'name': entry}``.

        orGUI puts ``scanno`` into an integer spin box, so it is the run's
        scan_id, or the entry number when the run has none.
        """
        entry_name = str(node.local_name).strip("/").split("/")[0]
        target = node.h5py_target.file[entry_name]
        scan_id = target.get("bluesky/start/scan_id")
        if scan_id is not None and np.issubdtype(scan_id.dtype, np.integer):
            scanno = int(scan_id[()])
        else:
            scanno = _entry_number(entry_name)
        return {"scanno": scanno, "name": entry_name}

    def __len__(self) -> int:
        return int(self._frames.shape[0])

    def get_raw_img(self, i: int) -> h5_Image:
        frames = np.asarray(self._frames[i])  # (frames_per_point, Y, X)
        img = frames[0] if frames.shape[0] == 1 else frames.sum(axis=0)
        image = h5_Image(img)
        image.motors = {self.axisname: float(self.axis[i])}
        image.counters = {k: v[i] for k, v in self.counters.items() if np.ndim(v) == 1}
        return image

    def __getitem__(self, i: int) -> h5_Image:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: image {i} out of range (scan has {len(self)})")
        return self.get_raw_img(i % len(self))

    def close(self) -> None:
        self._run.close()
