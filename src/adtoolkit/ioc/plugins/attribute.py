"""NDPluginAttribute (``Attr1:``): the values of up to eight NDAttributes of each array.

Each attribute is one asyn address (``Attr1:1:`` is address 0 ... ``Attr1:8:``
address 7), as in ADCore R3-14's NDPluginAttribute:

- AttrName names an attribute of the array (the NDAttributesFile ones, or the
  built-in NDArrayUniqueId, NDArrayTimeStamp, NDArrayEpicsTSSec,
  NDArrayEpicsTSnSec); Value_RBV is its value as a double and ValueSum_RBV the
  sum since the last Reset.  An empty or unknown name leaves the address alone;
  a value that is not a number is logged and skipped;
- every array, the eight current values go as one 1-D Float64 array on address
  1 to the time-series port ``Attr1:TS:`` (NDTimeSeriesConfigure("ATTR1_TS",
  ..., "ATTR1", 1, 8)), whose series are ``Attr1:n:TSArrayValue``;
- Reset zeroes the value and sum of the address it is written to: Attr1:Reset
  (address 0) only the first attribute's, as the real IOC does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adtoolkit.ioc.ndarray import NDArray
from adtoolkit.ioc.plugin import PluginDriver
from adtoolkit.ioc.plugins.timeseries import time_series_point

NUM_ATTRIBUTES = 8

#: attributes every array has without an NDAttributesFile
BUILT_IN = {
    "NDArrayUniqueId": lambda a: a.unique_id,
    "NDArrayTimeStamp": lambda a: a.timestamp,
    "NDArrayEpicsTSSec": lambda a: a.epics_ts_sec,
    "NDArrayEpicsTSnSec": lambda a: a.epics_ts_nsec,
}


class NDAttribute(PluginDriver):
    plugin_type = "NDPluginAttribute"
    templates = ("NDAttribute",)

    def __init__(self, *args: Any, num_attributes: int = NUM_ATTRIBUTES, **kwargs: Any) -> None:
        self.num_attributes = num_attributes
        kwargs["num_addr"] = num_attributes
        super().__init__(*args, **kwargs)
        self._sums = [0.0] * num_attributes

    def addr_templates(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(("NDAttributeN", f"{i + 1}:", i) for i in range(self.num_attributes))

    @classmethod
    def instance_options(cls, definition: dict[str, Any], ioc: Any) -> dict[str, Any]:
        return {"num_attributes": int(definition.get("num_attributes", NUM_ATTRIBUTES))}

    def write_param(self, addr: int, name: str, value: Any) -> None:
        super().write_param(addr, name, value)
        if name == "ATTR_RESET":  # only the address written (Attr1:Reset: the first attribute)
            self._sums[addr] = 0.0
            plist = self.lists[addr]
            plist.set("ATTR_VAL", 0.0)
            plist.set("ATTR_VAL_SUM", 0.0)

    def process(self, array: NDArray) -> None:
        self.count_array()
        values = np.zeros(self.num_attributes)
        for i, plist in enumerate(self.lists):
            name = plist.get("ATTR_ATTRNAME").strip()
            value = self._value(array, name) if name else None
            if value is not None:
                self._sums[i] += value
                plist.set("ATTR_VAL", value)
                plist.set("ATTR_VAL_SUM", self._sums[i])
                plist.call_callbacks()
            values[i] = plist.get("ATTR_VAL")
        if self.clients.get(1):  # the time-series port listens (Attr1:TS:)
            point = time_series_point(array, values)
            self.do_callbacks(point, addr=1, origin=self._origin or self)
        self.emit(array)

    def _value(self, array: NDArray, name: str) -> float | None:
        attribute = array.attributes.get(name)
        if attribute is None:
            getter = BUILT_IN.get(name)
            return float(getter(array)) if getter is not None else None
        try:
            return float(attribute.value)
        except (TypeError, ValueError):
            self.log.error("attribute %s: value %r is not a number", name, attribute.value)
            return None
