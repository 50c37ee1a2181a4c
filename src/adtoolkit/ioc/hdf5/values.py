"""Values as NDFileHDF5 stores them: C strings, layout constants, NDAttribute values.

NDFileHDF5 writes strings as fixed-length NULLTERM C strings (not h5py's variable
length ones), layout constants parsed the way its ``stringstream`` loop parses
them, and NDAttribute values with the numpy type of their NDAttribute datatype.
"""

from __future__ import annotations

import logging
from typing import Any

import h5py
import numpy as np

from adtoolkit.adcore.layout import TreeAttribute, TreeDataset
from adtoolkit.ioc.ndarray import NDAttribute

logger = logging.getLogger(__name__)

#: NDAttribute datatype -> numpy dtype of its dataset
ATTR_NUMPY = {
    "INT8": np.dtype("i1"),
    "UINT8": np.dtype("u1"),
    "INT16": np.dtype("i2"),
    "UINT16": np.dtype("u2"),
    "INT32": np.dtype("i4"),
    "UINT32": np.dtype("u4"),
    "INT64": np.dtype("i8"),
    "UINT64": np.dtype("u8"),
    "FLOAT32": np.dtype("f4"),
    "FLOAT64": np.dtype("f8"),
    "STRING": np.dtype("S256"),
    "UNDEFINED": np.dtype("f4"),
}
#: ADCore's MAX_ATTRIBUTE_STRING_SIZE
ATTR_STRING_SIZE = 256


def _c_string_type(size: int) -> h5py.h5t.TypeID:
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(max(1, size))
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    return tid


def write_string_attribute(obj: h5py.HLObject, name: str, value: str) -> None:
    """A scalar fixed-length NULLTERM C string attribute, as NDFileHDF5 writes them."""
    raw = value.encode("utf-8")
    tid = _c_string_type(len(raw))
    if name in obj.attrs:
        del obj.attrs[name]
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    attr = h5py.h5a.create(obj.id, name.encode("utf-8"), tid, space)
    attr.write(np.array(raw, dtype=f"S{max(1, len(raw))}"), mtype=tid)


def write_string_dataset(group: h5py.Group, name: str, value: str) -> h5py.Dataset:
    """A shape (1,) fixed-length NULLTERM C string dataset (writeH5dsetStr)."""
    raw = value.encode("utf-8")
    tid = _c_string_type(len(raw))
    space = h5py.h5s.create_simple((1,))
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([raw], dtype=f"S{max(1, len(raw))}"), mtype=tid)
    return h5py.Dataset(dsid)


def _parse_numbers(text: str, kind: str) -> list[float] | list[int]:
    """Parse "1,2,3" like the C++ stringstream loop: stop at the first non-number."""
    values: list = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            break
        try:
            values.append(int(float(item)) if kind == "int" else float(item))
        except ValueError:
            break
    return values


def constant_value(value: str, kind: str | None) -> Any:
    """A layout constant as the numpy value NDFileHDF5 writes (scalar or 1-D array)."""
    if kind == "int":
        numbers = _parse_numbers(value, "int")
        arr = np.array(numbers or [0], dtype="i4")
        return arr[0] if arr.size == 1 else arr
    if kind == "float":
        numbers = _parse_numbers(value, "float")
        arr = np.array(numbers or [0.0], dtype="f8")
        return arr[0] if arr.size == 1 else arr
    return value


def write_constant_attribute(obj: h5py.HLObject, attr: TreeAttribute) -> None:
    value = constant_value(attr.value, attr.type)
    if isinstance(value, str):
        write_string_attribute(obj, attr.name, value)
    else:
        obj.attrs[attr.name] = value


def write_ndattribute_attribute(obj: h5py.HLObject, name: str, nd: NDAttribute | None) -> None:
    """An HDF5 attribute whose value comes from an NDAttribute (scalar of its type)."""
    if nd is None or nd.datatype == "UNDEFINED" or nd.value is None:
        logger.warning("HDF5 attribute %s on %s: NDAttribute not available", name, obj.name)
        return
    if nd.datatype == "STRING":
        write_string_attribute(obj, name, str(nd.value))
    else:
        obj.attrs.create(name, np.asarray(nd.value, dtype=ATTR_NUMPY[nd.datatype]))


def write_dataset_constants(h5obj: h5py.HLObject, d: TreeDataset) -> None:
    """The constant HDF5 attributes the layout puts on dataset ``d``."""
    for attr in d.attributes.values():
        if attr.source == "constant":
            write_constant_attribute(h5obj, attr)
