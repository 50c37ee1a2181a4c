"""NDAttribute datasets: one 1-D dataset per NDAttribute of the file.

Each NDAttribute of a frame (the four automatic ones, the plugin's own, the
array's) gets a dataset, placed where the layout names it (``source=ndattribute``)
or in the ``ndattr_default`` group, with NDAttrName/Description/Source/SourceType.
Values are buffered and appended in batches, so that streaming costs little more
than a bare h5py append.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from adtoolkit.adcore.layout import LayoutTree, TreeAttribute
from adtoolkit.ioc.hdf5.params import int_param
from adtoolkit.ioc.hdf5.values import (
    ATTR_NUMPY,
    ATTR_STRING_SIZE,
    write_dataset_constants,
    write_ndattribute_attribute,
    write_string_attribute,
)
from adtoolkit.ioc.ndarray import NDArray, NDAttribute

logger = logging.getLogger(__name__)

#: NDAttribute values kept in memory before they are appended to their datasets
ATTR_BATCH = 256
#: NDAttributeChunk when it is 0 and NumCapture is 0 (unlimited)
ATTR_CHUNK_UNLIMITED = 16 * 1024


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


@dataclass
class AttributeDataset:
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


def create_attribute_datasets(
    file: h5py.File,
    layout: LayoutTree,
    file_attrs: Mapping[str, NDAttribute],
    params: Mapping[str, Any],
    multi: bool,
    num_capture: int,
    hostname: str,
) -> tuple[list[AttributeDataset], list[tuple[str, TreeAttribute]]]:
    """Create the dataset of every NDAttribute in ``file_attrs``.

    Returns the datasets, and the ``(path, attribute)`` of the layout's
    ndattribute-fed HDF5 attributes on them that are written at file close.
    """
    nodes: list[AttributeDataset] = []
    close_attrs: list[tuple[str, TreeAttribute]] = []
    chunk = int_param(params, "NDAttributeChunk", 0)
    if chunk <= 0:
        chunk = 1 if not multi else (num_capture if num_capture > 0 else ATTR_CHUNK_UNLIMITED)
    default_group: h5py.Group | None = None
    layout_default = layout.ndattr_default_group()
    if layout_default is not None:
        default_group = file[layout_default.path]
        if hostname:
            write_string_attribute(default_group, "hostname", hostname)
    elif layout.auto_ndattr_default:
        default_group = file
    ordered = [a for n, a in file_attrs.items() if n != "NDArrayUniqueId"]
    if "NDArrayUniqueId" in file_attrs:  # written last, for SWMR readers
        ordered.append(file_attrs["NDArrayUniqueId"])
    for nd in ordered:
        layout_dset = layout.find_dataset_for_ndattribute(nd.name)
        if layout_dset is not None:
            parent = file[layout_dset.path.rsplit("/", 1)[0] or "/"]
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
            write_dataset_constants(dset, layout_dset)
            for attr in layout_dset.attributes.values():
                if attr.source == "ndattribute":
                    if attr.when == "OnFileClose":
                        close_attrs.append((dset.name, attr))
                    else:
                        write_ndattribute_attribute(
                            dset, attr.name, file_attrs.get(attr.ndattribute)
                        )
        for key, text in (
            ("NDAttrName", nd.name),
            ("NDAttrDescription", nd.description),
            ("NDAttrSourceType", nd.source_type),
            ("NDAttrSource", nd.source),
        ):
            if text:
                write_string_attribute(dset, key, text)
        node = AttributeDataset(nd.name, dset, when, datatype, dtype)
        if when == "OnFileOpen":
            node.set_single(nd)
        nodes.append(node)
    return nodes, close_attrs
