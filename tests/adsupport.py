"""A test-support ophyd detector that writes frames like an ADCore HDF5 plugin.

The export and reader code must work on what a real area detector leaves
behind: bluesky documents from a real RunEngine plus HDF5 files in the ADCore
default layout.  Until the simulated IOC is ready, this device produces exactly
that, in-process:

* ``stage`` opens ``<write_root>/<name>_<n>.h5`` with the ADCore default layout
  (``/entry/instrument/detector/data`` hard-linked as ``/entry/data/data``,
  ``/entry/instrument/NDAttributes/*``) and emits a ``resource`` document with
  spec ``AD_HDF5``, ``root`` / ``resource_path`` split as ophyd's
  ``FileStoreHDF5`` does, and ``resource_kwargs={"frame_per_point": fpp}``;
* each ``trigger`` appends ``fpp`` frames along axis 0 and emits one ``datum``
  with ``datum_kwargs={"point_number": i}``, so area_detector_handlers'
  ``AD_HDF5`` handler reads ``/entry/data/data[i*fpp:(i+1)*fpp]``;
* ``unstage`` closes the file, as ``Capture=0`` does on the IOC.

``ioc_root`` is the directory the resource documents *claim* (the IOC-side
path); files really go to ``write_root``.  Tests that check path mapping make
the two differ.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
from ophyd import Component, Device, Signal
from ophyd.status import DeviceStatus

FrameFactory = Callable[[int, tuple[int, int], np.dtype], np.ndarray]


def ramp_frame(index: int, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """A frame that differs from every other frame: a ramp offset by the frame index."""
    y, x = np.indices(shape)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    values = (x + 3 * y + 7 * index) % (int(info.max) + 1 if info else 1 << 16)
    return values.astype(dtype)


class HDF5FrameDetector(Device):
    """Writes ``frames_per_point`` frames per trigger into one HDF5 file per stage."""

    image = Component(Signal, value="", kind="normal")
    total = Component(Signal, value=0.0, kind="hinted")
    acquire_time = Component(Signal, value=0.1, kind="config")

    def __init__(
        self,
        *args,
        write_root: Path,
        ioc_root: str | None = None,
        shape: tuple[int, int] = (48, 64),
        dtype: str = "uint16",
        frames_per_point: int = 1,
        chunk_frames: int = 1,
        compression: str | None = None,
        frame_factory: FrameFactory = ramp_frame,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.write_root = Path(write_root)
        self.ioc_root = ioc_root if ioc_root is not None else str(self.write_root)
        self.frame_shape = tuple(shape)
        self.frame_dtype = np.dtype(dtype)
        self.frames_per_point = frames_per_point
        self.chunk_frames = chunk_frames
        self.compression = compression
        self.frame_factory = frame_factory
        self.files: list[Path] = []  # every file written, in order
        self._file: h5py.File | None = None
        self._asset_docs: list[tuple[str, dict]] = []
        self._resource_uid: str | None = None
        self._datum_counter = itertools.count()
        self._frame_counter = 0  # frames written by this device, ever

    # -- ophyd staging -------------------------------------------------
    def stage(self):
        staged = super().stage()
        self.write_root.mkdir(parents=True, exist_ok=True)
        name = f"{self.name}_{len(self.files):06d}.h5"
        path = self.write_root / name
        self._open_file(path)
        self.files.append(path)
        self._resource_uid = str(uuid.uuid4())
        self._datum_counter = itertools.count()
        root = PurePosixPath(self.ioc_root)
        self._asset_docs.append(
            (
                "resource",
                {
                    "spec": "AD_HDF5",
                    "root": str(root),
                    "resource_path": name,
                    "resource_kwargs": {"frame_per_point": self.frames_per_point},
                    "path_semantics": "posix",
                    "uid": self._resource_uid,
                },
            )
        )
        return staged

    def unstage(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._resource_uid = None
        return super().unstage()

    def _open_file(self, path: Path) -> None:
        f = h5py.File(path, "w")
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        det = inst.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        y, x = self.frame_shape
        data = det.create_dataset(
            "data",
            shape=(0, y, x),
            maxshape=(None, y, x),
            chunks=(self.chunk_frames, y, x),
            dtype=self.frame_dtype,
            compression=self.compression,
        )
        data.attrs["signal"] = np.int32(1)
        ndattr = inst.create_group("NDAttributes")
        ndattr.attrs["NX_class"] = "NXcollection"
        ndattr.attrs["hostname"] = "adsupport"
        for name, dtype, desc, source in (
            ("NDArrayUniqueId", "i4", "The unique ID of the NDArray", "Driver"),
            ("NDArrayTimeStamp", "f8", "The timestamp of the NDArray as float64", "Driver"),
            ("CameraModel", "S256", "Camera model", "SIM:cam1:Model_RBV"),
        ):
            ds = ndattr.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(16,)
            )
            ds.attrs["NDAttrName"] = name
            ds.attrs["NDAttrDescription"] = desc
            ds.attrs["NDAttrSource"] = source
            ds.attrs["NDAttrSourceType"] = (
                "NDAttrSourceEPICSPV" if ":" in source else "NDAttrSourceDriver"
            )
        perf = inst.create_group("performance")
        perf.create_dataset(
            "timestamp", shape=(0, 5), maxshape=(None, 5), dtype="f8", chunks=(16, 5)
        )
        nxdata = entry.create_group("data")
        nxdata.attrs["NX_class"] = "NXdata"
        nxdata["data"] = data  # hard link, as the default layout makes
        self._file = f

    # -- acquisition ---------------------------------------------------
    def trigger(self):
        if self._file is None:
            raise RuntimeError(f"{self.name}: trigger() before stage()")
        data = self._file["entry/data/data"]
        ndattr = self._file["entry/instrument/NDAttributes"]
        start = data.shape[0]
        n = self.frames_per_point
        frames = np.stack(
            [
                self.frame_factory(self._frame_counter + k, self.frame_shape, self.frame_dtype)
                for k in range(n)
            ]
        )
        data.resize(start + n, axis=0)
        data[start:] = frames
        for ds in ndattr.values():
            ds.resize(start + n, axis=0)
        uids = np.arange(self._frame_counter + 1, self._frame_counter + n + 1)
        ndattr["NDArrayUniqueId"][start:] = uids
        ndattr["NDArrayTimeStamp"][start:] = uids * 0.1
        ndattr["CameraModel"][start:] = b"Basic simulator"
        self._frame_counter += n
        self._file.flush()

        point = next(self._datum_counter)
        datum_id = f"{self._resource_uid}/{point}"
        self._asset_docs.append(
            (
                "datum",
                {
                    "resource": self._resource_uid,
                    "datum_id": datum_id,
                    "datum_kwargs": {"point_number": point},
                },
            )
        )
        self.image.put(datum_id)
        self.total.put(float(frames.sum(dtype=np.float64)))
        status = DeviceStatus(self)
        status.set_finished()
        return status

    def collect_asset_docs(self):
        items, self._asset_docs = self._asset_docs, []
        yield from items

    def describe(self):
        desc = super().describe()
        key = self.image.name
        desc[key].update(
            shape=[self.frames_per_point, *self.frame_shape],
            dtype="array",
            dtype_numpy=self.frame_dtype.str,
            external="FILESTORE:",
        )
        return desc


class World:
    """A RunEngine, a real databroker catalog and an ``HDF5FrameDetector`` wired together.

    Motors are fresh ``ophyd.sim`` axes: ``motor`` is scanned, ``motor1`` (at
    0.25) and ``motor2`` (at -3) are read as baseline.  ``documents`` keeps
    every document the RunEngine emitted, in order.  When ``ioc_root`` differs
    from where the files are written, the catalog gets the matching
    ``root_map`` so databroker reads the same files the exporter must find.
    """

    def __init__(self, tmp_path: Path, *, ioc_root: str | None = None, **det_kwargs) -> None:
        from bluesky import RunEngine
        from bluesky.preprocessors import SupplementalData
        from databroker._drivers.msgpack import BlueskyMsgpackCatalog
        from databroker.core import discover_handlers
        from ophyd.sim import SynAxis, SynGauss

        write_root = tmp_path / "ioc"
        root_map = {ioc_root: str(write_root)} if ioc_root else None
        (tmp_path / "catalog").mkdir(exist_ok=True)
        self.catalog = BlueskyMsgpackCatalog(
            f"{tmp_path / 'catalog'}/*.msgpack",
            name="test",
            handler_registry=discover_handlers(),
            root_map=root_map,
        )
        self.motor = SynAxis(name="motor")
        self.motor1 = SynAxis(name="motor1")
        self.motor2 = SynAxis(name="motor2")
        self.motor1.set(0.25)
        self.motor2.set(-3.0)
        self.gauss = SynGauss("det", self.motor, "motor", center=0, Imax=1)
        self.det = HDF5FrameDetector(
            name="adsim", write_root=write_root, ioc_root=ioc_root, **det_kwargs
        )
        self.documents: list[tuple[str, dict]] = []
        self.RE = RunEngine({}, call_returns_result=False)
        self.RE.subscribe(self.catalog.v1.insert)
        self.RE.subscribe(lambda name, doc: self.documents.append((name, doc)))
        self.RE.preprocessors.append(SupplementalData(baseline=[self.motor1, self.motor2]))

    def scan(self, points: int = 5, **md) -> str:
        from bluesky import plans as bp

        md.setdefault("monitor", "I0")
        (uid,) = self.RE(bp.scan([self.det, self.gauss], self.motor, -1, 1, points, md=md))
        return uid

    def count(self, num: int = 2) -> str:
        from bluesky import plans as bp

        (uid,) = self.RE(bp.count([self.det], num=num))
        return uid
