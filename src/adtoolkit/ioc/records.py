"""Record tables: what each ADCore template serves, read from ``ioc/db/*.txt``.

The real IOC builds its records from ``.template`` files; we keep the same
information (name, record type, asyn drvInfo, boot value, waveform length, enum
strings) as small text tables in ``adtoolkit/ioc/db`` and build caproto groups
from them (see :mod:`adtoolkit.ioc.pvgroups`).  One table per template keeps
the structure of ADCore visible: a plugin serves ``NDArrayBase + NDPluginBase +
its own template``, the cam serves ``NDArrayBase + ADBase + simDetector``.

Table format, one record per line::

    name | record type | asyn drvInfo | options | enums

Options are ``key=value`` words (shell quoting for spaces): val, nelm, ftvl,
and the display fields egu, prec, hopr, lopr, drvh, drvl, desc; the word
``legacy`` marks a record of an older ADCore that R3-14 does not have.  Every
record of a ``*Compat`` table is legacy.

Enum strings are ``;``-separated; ``RGB1=2`` gives a state whose raw value
(the mbbo ``ONVL``...) differs from its index.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
from dataclasses import dataclass
from importlib import resources

#: record types that clients write to (the others are read-only from CA)
OUTPUT_TYPES = frozenset(
    {"ao", "longout", "bo", "mbbo", "stringout", "busy", "calcout", "fanout", "asyn"}
)
ENUM_TYPES = frozenset({"bo", "bi", "mbbo", "mbbi", "busy"})
#: record types whose VAL is an array of NELM elements (subArray: MALM)
ARRAY_TYPES = frozenset({"waveform", "subArray"})

#: records whose output record follows driver callbacks (asyn:READBACK info tag
#: or busy device support), so a driver-side change shows on the setpoint too
READBACK_OUTPUTS = frozenset(
    {"Acquire", "AcquireBusy", "WriteFile", "ReadFile", "Capture", "FlushNow", "PreAllocBuffers"}
)


@dataclass(frozen=True)
class RecordSpec:
    """One EPICS record as the templates define it."""

    name: str
    rtype: str
    drvinfo: str = ""
    value: str | None = None
    nelm: int = 1
    ftvl: str = ""
    enum_strings: tuple[str, ...] = ()
    enum_values: tuple[int, ...] = ()
    #: serve the record's fields too (e.g. "mbbi" for ``.DISA``); costly, so opt-in
    record_fields: str = ""
    #: display fields as the template sets them (DBR_CTRL metadata and .EGU ...)
    egu: str = ""
    prec: int = 0
    hopr: float = 0.0
    lopr: float = 0.0
    drvh: float = 0.0
    drvl: float = 0.0
    desc: str = ""
    #: a record of an older ADCore that R3-14 no longer has (served only with
    #: ``adtoolkit ioc --adcore 3.4`` and the like, see :func:`compose`)
    legacy: bool = False

    @property
    def writable(self) -> bool:
        """Clients may put to this record (waveforms only if asyn writes them)."""
        if self.rtype in ARRAY_TYPES:
            return (
                self.drvinfo != ""
                and not self.name.endswith("_RBV")
                and (self.name not in ("WriteMessage", "ArrayData", "Dimensions"))
            )
        return self.rtype in OUTPUT_TYPES

    @property
    def is_enum(self) -> bool:
        return self.rtype in ENUM_TYPES

    def __post_init__(self) -> None:
        # a bo/mbbo without state strings still has enum type on the wire; name
        # the states by their numbers so reads and writes stay unambiguous
        if self.rtype in ENUM_TYPES and not self.enum_strings:
            n = 16 if self.rtype.startswith("mbb") else 2
            object.__setattr__(self, "enum_strings", tuple(str(i) for i in range(n)))
            object.__setattr__(self, "enum_values", tuple(range(n)))

    @property
    def is_char_string(self) -> bool:
        """A CHAR waveform used as a long string (FilePath, WriteMessage, ...)."""
        return self.rtype == "waveform" and self.ftvl == "CHAR" and self.name != "ArrayData"

    @property
    def follows_driver(self) -> bool:
        """Does the record show driver-side changes of its parameter?"""
        return not self.writable or self.name in READBACK_OUTPUTS

    @property
    def param_kind(self) -> str:
        """The asyn interface of the parameter behind this record."""
        if self.rtype in ("ao", "ai", "calc", "calcout", "dfanout"):
            return "float"
        if self.rtype in ("stringin", "stringout") or self.is_char_string:
            return "str"
        if self.rtype in ARRAY_TYPES:
            return "array"
        return "int"


def _parse_line(line: str) -> RecordSpec:
    cols = [c.strip() for c in line.split("|")]
    cols += [""] * (5 - len(cols))
    name, rtype, drvinfo, options, enums = cols[:5]
    kwargs: dict = {}
    for opt in shlex.split(options):
        key, _, val = opt.partition("=")
        if key == "legacy":
            kwargs["legacy"] = True
        elif key == "val":
            kwargs["value"] = val
        elif key in ("nelm", "prec"):
            kwargs[key] = int(val)
        elif key in ("ftvl", "egu", "desc"):
            kwargs[key] = val
        elif key in ("hopr", "lopr", "drvh", "drvl"):
            kwargs[key] = float(val)
        else:
            raise ValueError(f"unknown option {opt!r} for record {name}")
    if enums:
        strings, values = [], []
        for i, item in enumerate(enums.split(";")):
            text, eq, raw = item.rpartition("=")
            if eq and raw.lstrip("-").isdigit():
                strings.append(text)
                values.append(int(raw))
            else:
                strings.append(item)
                values.append(i)
        kwargs["enum_strings"] = tuple(strings)
        kwargs["enum_values"] = tuple(values)
    return RecordSpec(name=name, rtype=rtype, drvinfo=drvinfo, **kwargs)


@functools.cache
def load_template(template: str) -> tuple[RecordSpec, ...]:
    """Records of one template table (e.g. ``"NDFile"``), in table order."""
    text = resources.files("adtoolkit.ioc").joinpath("db", f"{template}.txt").read_text()
    specs = []
    compat = template.endswith("Compat")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            spec = _parse_line(line)
            specs.append(dataclasses.replace(spec, legacy=True) if compat else spec)
        except ValueError as exc:
            raise ValueError(f"db/{template}.txt line {lineno}: {exc}") from None
    return tuple(specs)


#: the ADCore version whose record surface the IOC serves by default
ADCORE_DEFAULT = "3.14.0"


def adcore_version(text: str) -> tuple[int, ...]:
    """``"3.4"`` -> (3, 4); a clear error for anything else."""
    try:
        parts = tuple(int(p) for p in text.strip().lstrip("Rr").replace("-", ".").split("."))
    except ValueError:
        raise ValueError(f"ADCore version {text!r} is not like 3.14 or R3-4") from None
    if not parts or len(parts) > 3:
        raise ValueError(f"ADCore version {text!r} is not like 3.14 or R3-4")
    return parts


def serves_legacy(version: str) -> bool:
    """Does an IOC of this ADCore version serve the legacy records?"""
    return adcore_version(version)[:2] < (3, 14)


def compose(*templates: str, legacy: bool = False) -> dict[str, tuple[str, RecordSpec]]:
    """Merge templates in load order: a later template redefines a record of an
    earlier one (NDFileHDF5 redefines FileFormat, simDetector ColorMode), as
    ``dbLoadRecords`` of a later template does.  Returns name -> (template, spec).
    Legacy records (older ADCore) are left out unless ``legacy``.
    """
    merged: dict[str, tuple[str, RecordSpec]] = {}
    for template in templates:
        for spec in load_template(template):
            if spec.legacy and not legacy:
                continue
            merged[spec.name] = (template, spec)
    return merged
