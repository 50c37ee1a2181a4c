"""Write one in-memory image as a small, complete NeXus file.

For the image a user grabbed interactively (a demo, a notebook, one NDArray
from a plugin) and wants to open in NeXpy or silx, without a RunEngine::

    /            NXroot        @default=entry
    entry        NXentry       @default=data
      instrument NXinstrument
        detector NXdetector    data (compressed, @units), metadata/ (NXcollection)
      data       NXdata        @signal=data, @axes=[y_pixel, x_pixel(, color)]

The file is written through ``<path>.tmp`` and renamed when complete.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_h5
from .h5values import STR, write_value

#: names of the NXdata axes for the image dimensions (Y, X) or (Y, X, RGB)
IMAGE_AXES = ("y_pixel", "x_pixel", "color")


def _split_ndarray(image: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Accept a numpy array or an NDArray-like object (``.data`` + ``.attributes``)."""
    if hasattr(image, "data") and hasattr(image, "attributes"):
        extra: dict[str, Any] = {
            "NDArrayUniqueId": int(getattr(image, "unique_id", 0)),
            "NDArrayTimeStamp": float(getattr(image, "timestamp", 0.0)),
        }
        for name, attr in image.attributes.items():
            extra[name] = getattr(attr, "value", attr)
        return np.asarray(image.data), {"NDAttributes": extra}
    return np.asarray(image), {}


def write_nexus_image(
    path: str | os.PathLike,
    image: Any,
    metadata: Mapping[str, Any] | None = None,
    *,
    units: str = "counts",
    compression: str | Mapping[str, Any] | None = "gzip",
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` ((Y, X) or (Y, X, 3) array, or an NDArray) to a NeXus file at ``path``.

    ``metadata`` goes into ``entry/instrument/detector/metadata``; nested
    mappings become NXcollection sub-groups.  Values HDF5 cannot hold natively
    (None, mixed lists, objects) are stored as JSON or repr text with an
    ``@encoding`` attribute and a ``MetadataWarning``.  ``compression`` is an
    h5py compression name or an hdf5plugin filter (a mapping of dataset
    options), or None.
    """
    data, extra = _split_ndarray(image)
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] not in (3, 4)):
        raise ValueError(f"{path}: an image must be (Y, X) or (Y, X, 3), not shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path}: image dtype {data.dtype} is not numeric")
    options: dict[str, Any]
    if compression is None:
        options = {}
    elif isinstance(compression, Mapping):
        options = dict(compression)
    else:
        options = {"compression": compression}
    path = Path(path)
    with atomic_h5(path, overwrite=overwrite) as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = "entry"
        f.attrs["file_name"] = path.name
        f.attrs["file_time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["creator"] = "adtoolkit"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        entry.create_dataset("title", data=title or path.stem, dtype=STR)
        entry.create_dataset("start_time", data=time.strftime("%Y-%m-%dT%H:%M:%S%z"), dtype=STR)
        instrument = entry.create_group("instrument")
        instrument.attrs["NX_class"] = "NXinstrument"
        det = instrument.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        ds = det.create_dataset("data", data=data, chunks=data.shape, **options)
        ds.attrs["units"] = units
        ds.attrs["target"] = ds.name
        collection = dict(metadata or {})
        collection.update(extra)
        write_value(
            det, "metadata", collection, warn=True, where=f"{path}:/entry/instrument/detector"
        )
        nxdata = entry.create_group("data")
        nxdata.attrs["NX_class"] = "NXdata"
        nxdata["data"] = ds
        nxdata.attrs["signal"] = "data"
        axes = list(IMAGE_AXES[: data.ndim])
        for i, (axis, size) in enumerate(zip(axes, data.shape, strict=True)):
            nxdata.create_dataset(axis, data=np.arange(size, dtype="i8"))
            nxdata.attrs[f"{axis}_indices"] = np.int32(i)
        nxdata.attrs.create("axes", np.array(axes, dtype=object), dtype=STR)
    return path
