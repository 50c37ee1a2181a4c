"""Device support: what binds records to a driver's asyn parameters.

The layer between records (:mod:`adtoolkit.ioc.pvgroups`) and drivers
(:mod:`adtoolkit.ioc.driver`), as asyn's device support sits between EPICS
records and an asynPortDriver in ADCore.  It knows both sides; neither side
knows it, so records and drivers stay testable on their own and nothing
imports in a circle.

- :func:`bind_records` creates a port's parameters from its records (an output
  record's template VAL is the boot value) and binds every record at iocInit.
- :class:`Binding` carries a client's put to the driver and answers it as the
  record would (a busy record completes when the driver sets it back to 0).
- :data:`DERIVED` lists records fed by other records (subArray/calc chains).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from caproto import SkipWrite
from caproto.server import PVGroup

from adtoolkit.ioc.driver import PortDriver
from adtoolkit.ioc.params import coerce
from adtoolkit.ioc.pvgroups import MAX_STRING, iter_records
from adtoolkit.ioc.records import RecordSpec


def _element(n: int) -> Callable[[Any], int]:
    return lambda dims: int(dims[n]) if n < len(dims) else 0


#: records fed by other records (subArray/calc chains) -> (drvInfo, converter)
DERIVED: dict[str, tuple[str, Callable[[Any], Any]]] = {}


def _sub_array(n: int) -> Callable[[Any], list[int]]:
    # a subArray record (MALM 10, NELM 1): one element of the Dimensions waveform
    return lambda dims: [int(dims[n]) if n < len(dims) else 0]


for _n in range(10):
    DERIVED[f"Dim{_n}SA_RBV"] = ("ARRAY_DIMENSIONS", _sub_array(_n))
    DERIVED[f"ArraySize{_n}_RBV"] = ("ARRAY_DIMENSIONS", _element(_n))
DERIVED["AcquireBusy"] = ("ACQUIRE_BUSY", lambda v: ("Done", "Acquiring")[1 if v else 0])
DERIVED["ArrayRate_RBV"] = ("ARRAY_RATE", float)
DERIVED["MaxArrayRate_RBV"] = ("MIN_CALLBACK_TIME", lambda t: 1.0 / t if t > 0 else 0.0)


def bind_records(driver: PortDriver, group: PVGroup) -> None:
    """Create the port's parameters from its records and bind each record to
    its parameter (what iocInit does with asyn device support), then tell the
    driver (:meth:`PortDriver.bind`)."""
    driver.group = group
    records = list(iter_records(group))
    # parameters: an output record's template VAL is the boot value
    for sub, channel in records:
        spec = channel._adt_spec
        if not spec or not spec.drvinfo:
            continue
        plist = driver.lists[sub.addr]
        kind = spec.param_kind
        value = None
        if spec.writable and spec.value not in (None, ""):
            value = float(spec.value) if kind == "float" else spec.value
            if kind == "int":
                value = int(float(spec.value))
        existing = plist.params.get(spec.drvinfo)
        if existing is None:
            plist.define(spec.drvinfo, kind, value)
        elif value is not None and spec.writable:
            existing.value = plist.params[spec.drvinfo].value = coerce(kind, value)
    for name, value in driver.defaults.items():
        for plist in driver.lists:
            if name in plist:
                plist.params[name].value = coerce(plist.params[name].kind, value)
    driver.init_params()
    init_batch = []
    now = time.time()
    for sub, channel in records:
        spec = channel._adt_spec
        if not spec:
            continue
        if not spec.drvinfo:
            derived = DERIVED.get(spec.name)
            if derived is not None:
                drvinfo, convert = derived
                param = driver.lists[sub.addr].params.get(drvinfo)
                if param is not None:
                    param.bindings.append((channel, convert))
                    init_batch.append((channel, convert(param.value), now))
            continue
        binding = Binding(driver, sub.addr, spec, channel)
        channel._adt_binding = binding
        if spec.follows_driver:
            binding.param.bindings.append((channel, binding.to_channel))
        # asyn output records read the driver value at iocInit, except
        # string waveforms (no initial readback; PINI writes "")
        if spec.follows_driver or not spec.is_char_string:
            init_batch.append((channel, binding.to_channel(binding.param.value), now))
    driver.publisher.publish(init_batch)
    for plist in driver.lists:
        plist._changed.clear()
    driver.bind(group)


class Binding:
    """Connects one record to one asyn parameter of a driver."""

    def __init__(self, driver: PortDriver, addr: int, spec: RecordSpec, channel: Any) -> None:
        self.driver = driver
        self.addr = addr
        self.spec = spec
        self.channel = channel
        self.params = driver.param_list(addr)
        self.param = self.params.params[spec.drvinfo]
        self.to_channel = _to_channel(spec, channel)
        self.from_channel = _from_channel(spec, channel)

    async def put(self, instance: Any, value: Any) -> Any:
        """A client put: validate, hand to the driver, answer like the record."""
        raw = self.from_channel(value)
        await self.driver.write_async(self.addr, self.spec.drvinfo, raw)
        # like asyn, the write's callbacks are done before the put completes
        await self.driver.publisher.flush()
        if not self.spec.follows_driver:
            return value
        if self.spec.rtype == "busy" and raw:
            await self._wait_done(instance)
        raise SkipWrite()

    async def _wait_done(self, instance: Any) -> None:
        """A busy record's put completes when the driver sets it back to 0."""
        await self.driver.publisher.flush()
        if self.param.value == 0:
            return
        done = asyncio.Event()

        def waiter(value: Any) -> None:
            if value in (0, self.spec.enum_strings[0] if self.spec.enum_strings else 0):
                done.set()

        waiters = instance.__dict__.setdefault("_adt_waiters", [])
        waiters.append(waiter)
        try:
            await done.wait()
        finally:
            waiters.remove(waiter)


def _to_channel(spec: RecordSpec, channel: Any) -> Callable[[Any], Any]:
    if spec.is_enum:
        strings = channel.enum_strings
        table = dict(zip(spec.enum_values, strings, strict=False))

        def conv(v: Any) -> Any:
            v = int(v)
            if v in table:
                return table[v]
            return strings[v] if 0 <= v < len(strings) else strings[0]

        return conv
    if spec.rtype in ("stringin", "stringout"):
        return lambda v: str(v)[:MAX_STRING]
    if spec.is_char_string:
        return str
    if spec.param_kind == "array":
        return lambda v: v
    if spec.param_kind == "float":
        return float
    return int


def _from_channel(spec: RecordSpec, channel: Any) -> Callable[[Any], Any]:
    name = spec.name
    if spec.is_enum:
        strings = list(channel.enum_strings)
        values = list(spec.enum_values) or list(range(len(strings)))

        def conv(v: Any) -> int:
            if isinstance(v, str):
                if v in strings:
                    return values[strings.index(v)]
                raise ValueError(f"{name}: {v!r} is not one of {strings}")
            i = int(v)
            if 0 <= i < len(strings):
                return values[i]
            raise ValueError(f"{name}: state {i} is out of range 0..{len(strings) - 1}")

        return conv
    if spec.rtype in ("stringin", "stringout") or spec.is_char_string:
        return lambda v: channel.preprocess_value(v)
    if spec.param_kind == "float":
        return float
    if spec.param_kind == "array":
        return lambda v: v

    def to_int(v: Any) -> int:
        i = int(v)
        if not -(2**31) <= i < 2**31:
            raise ValueError(f"{name}: {i} does not fit a 32-bit integer")
        return i

    return to_int
