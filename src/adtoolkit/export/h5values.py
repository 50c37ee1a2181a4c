"""Store arbitrary metadata values in HDF5, losing nothing silently.

Bluesky metadata and NDAttributes hold numbers, strings, lists, nested dicts
and sometimes ``None`` or objects.  h5py stores numbers, strings and
homogeneous arrays natively; anything else is written as its JSON (or
``repr``) text with an ``@encoding`` attribute saying so, and, where the caller
asks for it, a warning, so a change of type is never silent.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

STR = h5py.string_dtype()


class MetadataWarning(UserWarning):
    """A metadata value was stored as text because HDF5 cannot hold it natively."""


def native(value: Any) -> np.ndarray | None:
    """The value as an array h5py stores natively, or None if there is none."""
    if isinstance(value, bool | np.bool_):
        return np.asarray(value, dtype=bool)
    if isinstance(value, str):
        return np.asarray(value, dtype=object)
    if isinstance(value, bytes):
        return np.asarray(np.bytes_(value))
    if isinstance(value, int | float | complex | np.number):
        return np.asarray(value)
    if isinstance(value, list | tuple | np.ndarray):
        if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            return value
        items = list(np.asarray(value, dtype=object).ravel()) if len(value) else []
        if not items:
            return None  # an empty list has no type: keep it as JSON
        if all(isinstance(v, str) for v in items):
            try:
                return np.asarray(value, dtype=object)
            except ValueError:
                return None
        if all(isinstance(v, bool | int | float | np.number) for v in items):
            try:
                arr = np.asarray(value)
            except ValueError:
                return None
            return arr if arr.dtype.kind in "biuf" else None
    return None


def write_value(
    group: h5py.Group, name: str, value: Any, *, warn: bool = False, where: str = ""
) -> h5py.Dataset | h5py.Group:
    """Write ``value`` as ``group[name]``; dicts become NXcollection sub-groups."""
    if isinstance(value, Mapping):
        sub = group.create_group(name)
        sub.attrs["NX_class"] = "NXcollection"
        for k, v in value.items():
            write_value(sub, str(k).replace("/", "_"), v, warn=warn, where=f"{where}/{name}")
        return sub
    arr = native(value)
    if arr is not None:
        if arr.dtype == object:
            return group.create_dataset(name, data=arr, dtype=STR)
        return group.create_dataset(name, data=arr)
    try:
        text, encoding = json.dumps(value), "json"
    except (TypeError, ValueError):
        text, encoding = repr(value), "repr"
    if warn:
        warnings.warn(
            f"{where}/{name}: {type(value).__name__} value {text[:60]} cannot be stored "
            f"natively in HDF5; stored as {encoding} text",
            MetadataWarning,
            stacklevel=3,
        )
    ds = group.create_dataset(name, data=text, dtype=STR)
    ds.attrs["encoding"] = encoding
    return ds
