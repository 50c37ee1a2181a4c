"""Record fields served as rsrv serves them: ``NAME.RTYP``, ``NAME.PROC`` ...

A display manager, a script's ``caput NAME.PROC 1`` or a client's describe()
(``.PREC``, ``.EGU``) reads a record's fields, not only its value.  Building a
channel for every field of every record would multiply the IOC's start-up cost,
so a field's channel is made the first time a client asks for it (caproto's
server resolves ``NAME.FIELD`` through the record's ``get_field``) and kept.

Field values follow the record's table (:class:`~adtoolkit.ioc.records.RecordSpec`)
and the asyn device support the real templates use; ``.PROC`` processes the
record: an output record writes its value to the driver again, an input record
reads its parameter again.
"""

from __future__ import annotations

from typing import Any

from caproto import (
    ChannelByte,
    ChannelDouble,
    ChannelEnum,
    ChannelInteger,
    ChannelShort,
    ChannelString,
    SkipWrite,
)

from adtoolkit.ioc.records import ARRAY_TYPES, RecordSpec

SCAN_MENU = (
    "Passive",
    "Event",
    "I/O Intr",
    "10 second",
    "5 second",
    "2 second",
    "1 second",
    ".5 second",
    ".2 second",
    ".1 second",
)
PINI_MENU = ("NO", "YES", "RUNNING", "RUNNING_NOT_CA", "PAUSE", "PAUSED")
SEVR_MENU = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
STAT_MENU = (
    "NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS", "COMM",
    "TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB", "UDF", "DISABLE",
    "SIMM", "READ_ACCESS", "WRITE_ACCESS",
)  # fmt: skip

#: record types with display fields (EGU, HOPR, LOPR) / precision / drive limits
DISPLAY_TYPES = frozenset(
    {"ai", "ao", "longin", "longout", "calc", "calcout", "dfanout", "seq", "sseq"} | ARRAY_TYPES
)
PREC_TYPES = frozenset({"ai", "ao", "calc", "calcout", "dfanout", "seq", "sseq"} | ARRAY_TYPES)
DRIVE_TYPES = frozenset({"ao", "longout"})
ARRAY_DTYP = {
    "CHAR": "Int8",
    "UCHAR": "Int8",
    "SHORT": "Int16",
    "USHORT": "Int16",
    "LONG": "Int32",
    "ULONG": "Int32",
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
}


def device_type(spec: RecordSpec) -> str:
    """DTYP: the asyn interface the template's device support uses."""
    if not spec.drvinfo:
        return "Soft Channel"
    out = spec.writable
    if spec.rtype in ("stringin", "stringout") or spec.is_char_string:
        return "asynOctetWrite" if out else "asynOctetRead"
    if spec.rtype in ARRAY_TYPES:
        return f"asyn{ARRAY_DTYP.get(spec.ftvl, 'Float64')}Array{'Out' if out else 'In'}"
    if spec.rtype in ("ao", "ai"):
        return "asynFloat64"
    return "asynInt32"


def scan(spec: RecordSpec) -> str:
    """SCAN: asyn input records follow the driver (I/O Intr); ArrayRate_RBV is
    the 1-second calc of NDArrayBase; everything else is Passive."""
    if spec.name == "ArrayRate_RBV":
        return "1 second"
    if spec.drvinfo and not spec.writable:
        return "I/O Intr"
    return "Passive"


def pini(spec: RecordSpec) -> str:
    """PINI: asyn output settings process at iocInit; commands (busy records,
    Acquire, WriteFile ...) do not."""
    if spec.drvinfo and spec.writable and spec.rtype != "busy" and not spec.follows_driver:
        return "YES"
    return "NO"


class ProcField(ChannelByte):
    """``.PROC``: a put of anything processes the record."""

    def __init__(self, record: Any, **kwargs: Any) -> None:
        super().__init__(value=0, **kwargs)
        self._record = record

    async def verify_value(self, data: Any) -> Any:
        await process(self._record)
        return 0


async def process(record: Any) -> None:
    """Process a record once, as dbProcess does for a put to ``.PROC``."""
    binding = record._adt_binding
    spec: RecordSpec | None = record._adt_spec
    if binding is None or spec is None:
        return  # a soft record: its value stays
    if spec.writable:
        try:
            await binding.put(record, record.value)
        except SkipWrite:
            pass
        return
    await record.write(binding.to_channel(binding.param.value))


def make_field(record: Any, field: str) -> Any:
    """The channel serving ``record.FIELD``; KeyError if the record type has none."""
    spec: RecordSpec | None = record._adt_spec
    if spec is None:
        raise KeyError(field)
    rtype = spec.rtype
    numeric_long = rtype in ("longin", "longout")
    if field == "VAL":
        return record
    if field == "RTYP":
        return ChannelString(value=rtype)
    if field == "NAME":
        return ChannelString(value=record.pvname)
    if field == "DESC":
        return ChannelString(value=spec.desc)
    if field == "DTYP":
        # record types without device support show an empty DTYP
        soft = rtype in ("calc", "dfanout", "seq", "sseq", "fanout")
        return ChannelString(value="" if soft else device_type(spec))
    if field == "SCAN":
        return ChannelEnum(value=scan(spec), enum_strings=SCAN_MENU)
    if field == "PINI":
        return ChannelEnum(value=pini(spec), enum_strings=PINI_MENU)
    if field == "PROC":
        return ProcField(record)
    if field == "SEVR":
        return ChannelEnum(value=SEVR_MENU[int(record.alarm.severity)], enum_strings=SEVR_MENU)
    if field == "STAT":
        # a CA enum carries at most 16 strings: the first 16 of menuAlarmStat
        states = STAT_MENU[:16]
        status = int(record.alarm.status)
        return ChannelEnum(value=states[status if status < 16 else 0], enum_strings=states)
    if field == "EGU" and rtype in DISPLAY_TYPES:
        return ChannelString(value=spec.egu)
    if field == "PREC" and rtype in PREC_TYPES:
        return ChannelShort(value=spec.prec)
    limits = {"HOPR": spec.hopr, "LOPR": spec.lopr, "DRVH": spec.drvh, "DRVL": spec.drvl}
    if (
        field in ("HOPR", "LOPR")
        and rtype in DISPLAY_TYPES
        or (field in ("DRVH", "DRVL") and rtype in DRIVE_TYPES)
    ):
        value = limits[field]
        return ChannelInteger(value=int(value)) if numeric_long else ChannelDouble(value=value)
    if field in ("NELM", "NORD") and rtype in ARRAY_TYPES:
        count = spec.nelm if field == "NELM" else _length(record.value)
        return ChannelDouble(value=float(count))  # DBF_ULONG reaches CA as a double
    raise KeyError(field)


def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value) + 1 if value else 0
    try:
        return len(value)
    except TypeError:
        return 1
