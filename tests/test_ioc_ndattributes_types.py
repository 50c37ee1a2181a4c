"""EPICS_PV attributes before their first value: the type comes from the connection.

ADCore's PVAttribute fixes its NDAttribute type in the CA connection callback,
from the channel's native DBF type and the requested dbrtype (ADCore's
ADApp/ADSrc/PVAttribute.cpp: string->String, short/enum->Int16, float->Float32,
char->Int8 or String for DBR_STRING, long->Int32, double->Float64); the value is
0 until the first monitor arrives.  The expected pairs below are that table,
written out here, not computed by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from adtoolkit.ioc.ndattributes import typed_zero

CASES = [
    # (native DBF type, element count, dbrtype) -> (datatype, value)
    ("DOUBLE", 1, "DBR_NATIVE", "FLOAT64", 0.0),
    ("FLOAT", 1, "DBR_NATIVE", "FLOAT32", 0.0),
    ("LONG", 1, "DBR_NATIVE", "INT32", 0),
    ("SHORT", 1, "DBR_NATIVE", "INT16", 0),
    ("ENUM", 1, "DBR_NATIVE", "INT16", 0),
    ("CHAR", 1, "DBR_NATIVE", "INT8", 0),
    ("STRING", 1, "DBR_NATIVE", "STRING", ""),
    ("DOUBLE", 1, "DBR_STRING", "STRING", ""),
    ("CHAR", 256, "DBR_STRING", "STRING", ""),
    ("ENUM", 1, "DBR_STRING", "STRING", ""),
    ("LONG", 1, "DBR_DOUBLE", "FLOAT64", 0.0),
    ("DOUBLE", 1, "DBR_LONG", "INT32", 0),
    ("DOUBLE", 1, "DBR_FLOAT", "FLOAT32", 0.0),
    ("DOUBLE", 1, "DBR_SHORT", "INT16", 0),
    ("DOUBLE", 1, "DBR_CHAR", "INT8", 0),
    ("STRING", 1, "DBR_DOUBLE", "FLOAT64", 0.0),
]

NUMPY = {
    "FLOAT64": np.float64,
    "FLOAT32": np.float32,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
}


@pytest.mark.parametrize(("native", "count", "dbrtype", "datatype", "value"), CASES)
def test_connected_pv_without_a_value_has_its_native_type(native, count, dbrtype, datatype, value):
    got_value, got_type = typed_zero(native, count, dbrtype)
    assert got_type == datatype
    assert got_value == value
    if datatype in NUMPY:  # the value has the type's width (dataset dtypes follow it)
        assert np.asarray(got_value).dtype == NUMPY[datatype]


def test_unknown_native_type_stays_undefined():
    assert typed_zero("NO_ACCESS", 1, "DBR_NATIVE") == (None, "UNDEFINED")
