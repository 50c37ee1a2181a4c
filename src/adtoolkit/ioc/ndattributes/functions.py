"""FUNCTION NDAttributes: values computed by registered functions.

ADSimDetector registers ``myAttrFunct1`` with ADCore's function registry so that
``<Attribute type="FUNCTION" source="myAttrFunct1" param="PI"/>`` gives a value
per frame; here a function is ``f(param, array) -> (value, NDAttribute datatype)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import POSIX_TIME_AT_EPICS_EPOCH, NDArray

#: fixed sample values of each type, returned by myAttrFunct1 for the type names
_TYPED_SAMPLES: dict[str, tuple[Any, str]] = {
    "INT8": (np.int8(-8), "INT8"),
    "UINT8": (np.uint8(8), "UINT8"),
    "INT16": (np.int16(-16), "INT16"),
    "UINT16": (np.uint16(16), "UINT16"),
    "INT32": (np.int32(-32), "INT32"),
    "UINT32": (np.uint32(32), "UINT32"),
    "INT64": (np.int64(-64), "INT64"),
    "UINT64": (np.uint64(64), "UINT64"),
    "FLOAT32": (np.float32(-32.5), "FLOAT32"),
    "FLOAT64": (np.float64(64.25), "FLOAT64"),
}


def my_attr_funct1(param: str, array: NDArray | None) -> tuple[Any, str]:
    """ADSimDetector's example attribute function: a value chosen by ``param``.

    PI and E give float64 constants, GETTYSBURG a string, TIME64 the current EPICS
    time in nanoseconds (int64), a type name (INT8 ... FLOAT64) a fixed sample of
    that type, an integer string its int32 value.
    """
    key = param.strip().upper()
    if key == "PI":
        return math.pi, "FLOAT64"
    if key == "E":
        return math.e, "FLOAT64"
    if key == "GETTYSBURG":
        return "Four score and seven years ago our fathers", "STRING"
    if key == "TIME64":
        return time.time_ns() - POSIX_TIME_AT_EPICS_EPOCH * 1_000_000_000, "INT64"
    if key in _TYPED_SAMPLES:
        return _TYPED_SAMPLES[key]
    try:
        return int(param, 0), "INT32"
    except ValueError:
        return None, "UNDEFINED"


def array_counter_function(param: str, array: NDArray | None) -> tuple[Any, str]:
    """Return the unique id of the array being stamped (int32), for tests and demos."""
    return (array.unique_id if array is not None else 0), "INT32"


#: FUNCTION sources: name -> f(param, array) -> (value, NDAttribute datatype)
FUNCTIONS: dict[str, Callable[[str, NDArray | None], tuple[Any, str]]] = {
    "myAttrFunct1": my_attr_funct1,
    "myAttrFunctUniqueId": array_counter_function,
}


def register_function(
    name: str, function: Callable[[str, NDArray | None], tuple[Any, str]]
) -> None:
    """Make ``function`` available as ``<Attribute type="FUNCTION" source="name">``."""
    FUNCTIONS[name] = function
