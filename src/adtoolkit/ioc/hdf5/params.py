"""The plugin's parameters as the writer reads them (mbbo/bo values, integers).

The writer gets the NDFileHDF5 parameters as a mapping of record names to values,
given either as numbers or, from a test or a CA string put, as their strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adtoolkit.ioc.hdf5.errors import HDF5WriterError


def enum_index(value: Any, names: Sequence[str], what: str) -> int:
    """An mbbo/bo value given as its index or its string (case-insensitive)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        index = int(value)
    else:
        text = str(value).strip()
        lowered = [n.lower() for n in names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        try:
            index = int(float(text))
        except ValueError:
            raise HDF5WriterError(f"{what}: unknown value {value!r}") from None
    if not 0 <= index < len(names):
        raise HDF5WriterError(f"{what}: value {index} out of range 0..{len(names) - 1}")
    return index


def yes(value: Any) -> bool:
    """A No/Yes (Off/On, Disable/Enable) parameter as bool."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("yes", "on", "enable", "true", "capture", "active"):
            return True
        if text in ("no", "off", "disable", "false", "done", ""):
            return False
        return bool(int(float(text)))
    return bool(value)


def int_param(params: Mapping[str, Any], key: str, default: int) -> int:
    value = params.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
