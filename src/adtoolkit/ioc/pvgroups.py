"""caproto PVGroups built from the record tables, one class per ADCore template.

Thousands of hand-written ``pvproperty`` lines would drift from ADCore; instead
:func:`template_group` turns a table (``db/NDFile.txt`` ...) into a PVGroup
class, and :func:`port_group` composes the templates one asyn port loads
(e.g. a Stats plugin = NDArrayBase + NDPluginBase + NDStats) with
``SubGroup(prefix="")``, as ``dbLoadRecords`` stacks templates on one
``$(P)$(R)``.

Records are bound to the port's asyn parameters after the group is
instantiated, by the device-support layer (:mod:`adtoolkit.ioc.devsup`); this
module knows records only, never drivers.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
from caproto import (
    AlarmSeverity,
    AlarmStatus,
    ChannelType,
    SubscriptionType,
    native_type,
)
from caproto.server import PVGroup, SubGroup, pvproperty
from caproto.server.server import (
    PvpropertyByte,
    PvpropertyByteRO,
    PvpropertyChar,
    PvpropertyCharRO,
    PvpropertyDouble,
    PvpropertyDoubleRO,
    PvpropertyEnum,
    PvpropertyEnumRO,
    PvpropertyInteger,
    PvpropertyIntegerRO,
    PvpropertyShort,
    PvpropertyShortRO,
    PvpropertyString,
    PvpropertyStringRO,
)

from adtoolkit.ioc.fields import make_field
from adtoolkit.ioc.records import RecordSpec, compose

logger = logging.getLogger(__name__)

#: DBR_STRING holds at most 39 characters plus the NUL
MAX_STRING = 39


class RecordSupport(Protocol):
    """What binds a record to its driver (device support, :mod:`adtoolkit.ioc.devsup`)."""

    async def put(self, instance: Any, value: Any) -> Any: ...


class _RecordMixin:
    """Behaviour shared by every served record.

    A refused put must answer the client with a CA error and leave the record
    alone; caproto would also latch a WRITE/MAJOR alarm, which a real record
    does not do for a rejected value, so it is cleared again here.
    """

    _adt_spec: RecordSpec | None = None
    _adt_binding: RecordSupport | None = None

    def get_field(self, field: str) -> Any:
        """``NAME.FIELD``: made on first use (see :mod:`adtoolkit.ioc.fields`)."""
        if not field:
            return self
        if field in getattr(self, "fields", {}):  # caproto record fields (record=...)
            return self.fields[field]
        cache = self.__dict__.setdefault("_adt_fields", {})
        channel = cache.get(field)
        if channel is None:
            try:
                channel = cache[field] = make_field(self, field)
            except KeyError:
                raise
            except Exception as exc:  # a field we cannot serve: "not found", logged
                logger.warning("%s.%s: %s", self.pvname, field, exc)
                raise KeyError(field) from None
        return channel

    async def verify_value(self, data):
        # an output record with DRVL/DRVH clamps to them as ao/longout do
        # (caproto would refuse the put); display limits never refuse a value
        spec = self._adt_spec
        limited = getattr(self, "lower_ctrl_limit", 0) != getattr(self, "upper_ctrl_limit", 0)
        if limited and not isinstance(data, int | float | str | np.number) and len(data) == 1:
            data = data[0]  # a scalar put arrives as a one-element array
        if isinstance(data, int | float | np.number) and spec is not None and limited:
            if spec.writable and (spec.drvh or spec.drvl):
                data = type(data)(min(max(data, spec.drvl), spec.drvh))
            # skip caproto's limit check, keep the rest of the put (the putter)
            return await self.putter(self, data) if self.putter is not None else data
        return await super().verify_value(data)

    async def write(self, value, **kwargs):
        try:
            return await super().write(value, **kwargs)
        except Exception:
            if self.alarm.status == AlarmStatus.WRITE:
                await self.alarm.write(status=AlarmStatus.NO_ALARM, severity=AlarmSeverity.NO_ALARM)
            raise


class _CharStringMixin(_RecordMixin):
    """A CHAR waveform used as a string: truncated to NELM-1 characters like
    asyn's octet readback, and trimmed at the first NUL."""

    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        # decode here: caproto's own CHAR conversion fails on an all-NUL array
        # (the empty string ophyd writes when it restores FileTemplate "")
        native = native_type(data_type)
        if native in (ChannelType.CHAR, ChannelType.STRING):
            if native == ChannelType.STRING:
                raw = bytes(data[0]) if len(data) else b""
            else:
                raw = np.asarray(data, dtype=np.uint8).tobytes()
            value = raw.split(b"\0", 1)[0].decode(self.string_encoding, errors="replace")
            flags |= SubscriptionType.DBE_LOG | SubscriptionType.DBE_VALUE
            return await self.write(value, flags=flags)
        return await super().write_from_dbr(data, data_type, metadata, flags=flags)

    def preprocess_value(self, value):
        if isinstance(value, bytes | bytearray):
            value = bytes(value).split(b"\0", 1)[0].decode(self.string_encoding)
        elif not isinstance(value, str):
            try:
                value = bytes(int(v) & 0xFF for v in value)
                value = value.split(b"\0", 1)[0].decode(self.string_encoding)
            except TypeError:
                value = str(value)
        value = value.split("\0", 1)[0]
        # an output waveform keeps all NELM characters written to it (no terminator
        # is needed in the record); the driver's string, shown by the readback,
        # keeps one fewer, as asyn's octet parameter does
        spec = getattr(self, "_adt_spec", None)
        limit = self.max_length if spec is not None and spec.writable else self.max_length - 1
        limit = max(limit, 1)
        if len(value) > limit:
            value = value[:limit]
        return value


class _StringMixin(_RecordMixin):
    def preprocess_value(self, value):
        value = super().preprocess_value(value)
        if isinstance(value, str) and len(value) > MAX_STRING:
            value = value[:MAX_STRING]
        return value


def _cls(name: str, *bases: type) -> type:
    return type(name, bases, {})


Double = _cls("RecordDouble", _RecordMixin, PvpropertyDouble)
DoubleRO = _cls("RecordDoubleRO", _RecordMixin, PvpropertyDoubleRO)
Long = _cls("RecordLong", _RecordMixin, PvpropertyInteger)
LongRO = _cls("RecordLongRO", _RecordMixin, PvpropertyIntegerRO)
Short = _cls("RecordShort", _RecordMixin, PvpropertyShort)
ShortRO = _cls("RecordShortRO", _RecordMixin, PvpropertyShortRO)
Enum = _cls("RecordEnum", _RecordMixin, PvpropertyEnum)
EnumRO = _cls("RecordEnumRO", _RecordMixin, PvpropertyEnumRO)
String = _cls("RecordString", _StringMixin, PvpropertyString)
StringRO = _cls("RecordStringRO", _StringMixin, PvpropertyStringRO)
CharString = _cls("RecordCharString", _CharStringMixin, PvpropertyChar)
CharStringRO = _cls("RecordCharStringRO", _CharStringMixin, PvpropertyCharRO)
Bytes = _cls("RecordBytes", _RecordMixin, PvpropertyByte)
BytesRO = _cls("RecordBytesRO", _RecordMixin, PvpropertyByteRO)


def _channel_class(spec: RecordSpec) -> tuple[type, dict[str, Any]]:
    """caproto data class and keyword arguments for one record."""
    rw = spec.writable
    kw: dict[str, Any] = {}
    if spec.is_enum:
        kw["enum_strings"] = list(spec.enum_strings)
        return (Enum if rw else EnumRO), kw
    if spec.rtype in ("stringin", "stringout"):
        return (String if rw else StringRO), kw
    if spec.param_kind == "array" or spec.is_char_string:
        kw["max_length"] = spec.nelm
        if spec.is_char_string:
            kw["report_as_string"] = False
            return (CharString if rw else CharStringRO), kw
        if spec.ftvl in ("CHAR", "UCHAR"):
            kw["strip_null_terminator"] = False  # image bytes, not text
            return (Bytes if rw else BytesRO), kw
        display(spec, kw)
        if spec.ftvl in ("SHORT", "USHORT"):
            return (Short if rw else ShortRO), kw
        if spec.ftvl in ("LONG", "ULONG"):
            return (Long if rw else LongRO), kw
        return (Double if rw else DoubleRO), kw
    display(spec, kw)
    if spec.param_kind == "float":
        kw["precision"] = spec.prec
        return (Double if rw else DoubleRO), kw
    return (Long if rw else LongRO), kw


def display(spec: RecordSpec, kw: dict[str, Any]) -> None:
    """DBR_CTRL metadata as the record gives it: EGU, HOPR/LOPR, and the drive
    limits (DRVH/DRVL of an output record, HOPR/LOPR of an input one)."""
    if spec.egu:
        kw["units"] = spec.egu
    if spec.hopr or spec.lopr:
        kw["upper_disp_limit"] = spec.hopr
        kw["lower_disp_limit"] = spec.lopr
    # an output record's drive limits, else (as dbAccess does) its display limits
    drive = spec.writable and (spec.drvh or spec.drvl)
    high, low = (spec.drvh, spec.drvl) if drive else (spec.hopr, spec.lopr)
    if high or low:
        kw["upper_ctrl_limit"] = high
        kw["lower_ctrl_limit"] = low


def initial_value(spec: RecordSpec) -> Any:
    """The value a record holds before any driver callback (template VAL)."""
    if spec.is_enum:
        strings = spec.enum_strings
        raw = int(float(spec.value)) if spec.value not in (None, "") else 0
        if raw in spec.enum_values:
            return strings[spec.enum_values.index(raw)]
        return strings[0]
    kind = spec.param_kind
    if spec.param_kind == "array":
        # one element, never an empty array: pyepics crashes (SIGSEGV) on a
        # zero-length monitor update of a channel it subscribed with a count
        if spec.ftvl in ("CHAR", "UCHAR"):
            return np.zeros(1, np.uint8)
        return [0.0] if spec.ftvl in ("FLOAT", "DOUBLE") else [0]
    if kind == "str":
        return spec.value or ""
    if kind == "float":
        return float(spec.value) if spec.value not in (None, "") else 0.0
    return int(float(spec.value)) if spec.value not in (None, "") else 0


def _attr_name(name: str) -> str:
    attr = "".join(c if c.isalnum() else "_" for c in name)
    return "r_" + attr


class RecordGroup(PVGroup):
    """Base of every template group.

    ``addr`` is the asyn address the records talk to (0, except for the eight
    overlays of NDOverlay, which are addresses 0-7 of the same port).
    """

    _template: str = ""
    _specs: dict[str, RecordSpec] = {}

    def __init__(self, *args: Any, addr: int = 0, **kwargs: Any) -> None:
        self.addr = addr
        super().__init__(*args, **kwargs)
        for attr, spec in self._specs.items():
            self.attr_pvdb[attr]._adt_spec = spec

    async def group_write(self, instance: Any, value: Any) -> Any:
        binding = instance._adt_binding
        if binding is None:
            return value  # soft record (calcout, fanout, ...): keep the value
        return await binding.put(instance, value)


@functools.cache
def template_group(
    template: str, names: tuple[str, ...], overrides: tuple[tuple[str, str, Any], ...] = ()
) -> type[RecordGroup]:
    """A PVGroup class serving ``names`` of a template table.

    ``overrides`` are (record, field, value) macro substitutions, e.g.
    ``("ArrayData", "nelm", 3 * 1024 * 1024)`` like NDStdArrays' NELEMENTS.
    """
    specs = {spec.name: spec for _, spec in compose(template, legacy=True).values()}
    for name, key, value in overrides:
        specs[name] = dataclasses.replace(specs[name], **{key: value})
    attrs: dict[str, Any] = {"_template": template, "_specs": {}}
    for name in names:
        spec = specs[name]
        cls, kw = _channel_class(spec)
        if spec.record_fields:
            kw["record"] = spec.record_fields
        attr = _attr_name(name)
        attrs[attr] = pvproperty(
            name=name,
            dtype=cls,
            value=initial_value(spec),
            alarm_group=name,
            doc=f"{spec.rtype} {template}.template {spec.drvinfo}".strip(),
            **kw,
        )
        attrs["_specs"][attr] = spec
    return type(f"{template}Group", (RecordGroup,), attrs)


def port_group(
    name: str,
    templates: Iterable[str],
    addr_templates: Iterable[tuple[str, str, int]] = (),
    overrides: tuple[tuple[str, str, Any], ...] = (),
    legacy: bool = False,
) -> type[PVGroup]:
    """Compose the templates one port loads into a single PVGroup class.

    ``addr_templates`` adds (template, prefix, addr) subgroups such as the
    overlays ``Over1:1:`` ... of NDOverlay; ``legacy`` adds the records of
    older ADCore versions.
    """
    merged = compose(*templates, legacy=legacy)
    by_template: dict[str, list[str]] = {}
    for rec_name, (template, _) in merged.items():
        by_template.setdefault(template, []).append(rec_name)
    attrs: dict[str, Any] = {}
    for template, names in by_template.items():
        mine = tuple(o for o in overrides if o[0] in names)
        attrs[template] = SubGroup(template_group(template, tuple(names), mine), prefix="")
    for template, prefix, addr in addr_templates:
        names = tuple(spec.name for _, spec in compose(template, legacy=legacy).values())
        attrs[f"{template}_{addr}"] = SubGroup(
            template_group(template, names), prefix=prefix, addr=addr
        )
    return type(f"{name}PortGroup", (PVGroup,), attrs)


def iter_records(group: PVGroup) -> Iterable[tuple[RecordGroup, Any]]:
    """(template group, channel) for every record of a composed port group."""
    for sub in group.groups.values():
        if isinstance(sub, RecordGroup):
            for channel in sub.attr_pvdb.values():
                yield sub, channel
