"""NDAttributes files: parse them, then collect the attribute values for each frame.

A real ADCore driver or plugin reads an XML list of ``<Attribute>`` definitions
(``NDAttributesFile``, a file name or the XML itself), expands ``$(MACRO)``
references from ``NDAttributesMacros`` and reports ``NDAttributesStatus``
(0 OK, 1 file not found, 2 XML syntax error, 3 macro substitution error).  For
every frame it then reads each attribute from its source and attaches an
``NDAttribute`` to the array; file writers store them.

Four source types exist (ADCORE_BEHAVIOUR.md B.5):

``EPICS_PV``
    a PV read over Channel Access.  Real ADCore keeps a CA monitor on it and
    uses the last value; we do the same with caproto's threading client, so
    collecting never blocks, even for PVs served by this same IOC (a blocking
    ``get`` issued from the server's own thread would deadlock it).  As in
    ADCore the type is known at connection (the channel's native type), the
    value is 0 until the first update, and undefined while disconnected.  The
    code about to use the values (cam frame, file open) first calls
    :meth:`AttributeCollector.settle`, a bounded once-per-file wait for first
    values, so a file's attribute datasets are not typed from "no value yet".
``PARAM``
    a driver parameter looked up by its asyn drvInfo string (``ARRAY_COUNTER``,
    ``MODEL``...) through a callable the owner of the parameters provides.
``FUNCTION``
    a registered Python function (ADSimDetector's ``myAttrFunct1`` and friends).
``CONST``
    a constant string.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtoolkit.ioc.hdf5.safexml import XMLInputError, load_xml, parse_xml_text, read_xml_text
from adtoolkit.ioc.ndarray import POSIX_TIME_AT_EPICS_EPOCH, NDArray, NDAttribute

logger = logging.getLogger(__name__)

#: NDAttributesStatus values and their mbbi strings (NDArrayBase.template)
STATUS_OK = 0
STATUS_NOT_FOUND = 1
STATUS_XML_ERROR = 2
STATUS_MACRO_ERROR = 3
STATUS_STRINGS = (
    "Attributes file OK",
    "File not found",
    "XML syntax error",
    "Macro substitution error",
)

ATTRIBUTE_TYPES = ("EPICS_PV", "PARAM", "FUNCTION", "CONST")
DBR_TYPES = (
    "DBR_NATIVE",
    "DBR_STRING",
    "DBR_CHAR",
    "DBR_SHORT",
    "DBR_INT",
    "DBR_ENUM",
    "DBR_LONG",
    "DBR_FLOAT",
    "DBR_DOUBLE",
)
#: PARAM ``datatype`` values and the NDAttribute type they give.  ADCore compares
#: them case-sensitively, and its default ("int") matches none of them.
PARAM_DATATYPES = {"INT": "INT32", "INT64": "INT64", "DOUBLE": "FLOAT64", "STRING": "STRING"}

SOURCE_TYPES = {
    "EPICS_PV": "NDAttrSourceEPICSPV",
    "PARAM": "NDAttrSourceParam",
    "FUNCTION": "NDAttrSourceFunct",
    "CONST": "NDAttrSourceConst",
}

#: where ADCore tells inline XML from a file name
INLINE_MARKER = "<Attributes"


class NDAttributesError(ValueError):
    """An attributes file that cannot be used; ``status`` is the NDAttributesStatus."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class MacroError(ValueError):
    """A ``$(NAME)`` reference with no definition, or a malformed definition list."""


@dataclass(frozen=True)
class AttributeDefinition:
    """One ``<Attribute>`` element of an NDAttributes file, after macro expansion."""

    name: str
    type: str
    source: str
    description: str = ""
    dbrtype: str = "DBR_NATIVE"
    datatype: str = "int"
    addr: int = 0
    param: str = ""
    line: int = 0


@dataclass(frozen=True)
class AttributesFile:
    """Result of reading NDAttributesFile: the status PV value, a message, the definitions."""

    status: int
    message: str
    definitions: tuple[AttributeDefinition, ...]


# --------------------------------------------------------------------------- macros

_MACRO_REF = re.compile(r"\$(?:\(([^()=]*)(?:=([^()]*))?\)|\{([^{}=]*)(?:=([^{}]*))?\})")


def parse_macros(macros: str | Mapping[str, str]) -> dict[str, str]:
    """Parse an EPICS macro definition string ``"A=1,B=x"`` into a dict."""
    if isinstance(macros, Mapping):
        return {str(k): str(v) for k, v in macros.items()}
    result: dict[str, str] = {}
    for item in _split_definitions(macros):
        if not item.strip():
            continue
        if "=" not in item:
            raise MacroError(f"macro definition {item.strip()!r} has no '='")
        name, value = item.split("=", 1)
        name = name.strip()
        if not name:
            raise MacroError(f"macro definition {item.strip()!r} has no name")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[name] = value
    return result


def _split_definitions(text: str) -> list[str]:
    """Split on commas outside quotes."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def expand_macros(text: str, macros: Mapping[str, str], _depth: int = 0) -> str:
    """Expand ``$(NAME)``, ``${NAME}`` and ``$(NAME=default)``; undefined names raise."""
    if _depth > 10:
        raise MacroError("macro expansion nested more than 10 levels (recursive definition?)")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(3)
        default = match.group(2) if match.group(1) is not None else match.group(4)
        if name in macros:
            return expand_macros(macros[name], macros, _depth + 1)
        if default is not None:
            return default
        line = text.count("\n", 0, match.start()) + 1
        raise MacroError(f"undefined macro $({name}) at line {line}")

    return _MACRO_REF.sub(replace, text)


# --------------------------------------------------------------------------- parsing


def parse_attributes_xml(text: str, source: str = "inline XML") -> tuple[AttributeDefinition, ...]:
    """Parse attribute definitions from XML text (macros already expanded).

    Raises :class:`NDAttributesError` with status 2 for bad XML or bad content.
    """
    try:
        root = parse_xml_text(text, source)
    except XMLInputError as exc:
        raise NDAttributesError(str(exc), STATUS_XML_ERROR) from None
    if root.tag != "Attributes":
        raise NDAttributesError(
            f"{source}: the root element is <{root.tag}>, expected <Attributes>", STATUS_XML_ERROR
        )
    lines = _element_lines(text)
    definitions: list[AttributeDefinition] = []
    seen: set[str] = set()
    for index, elem in enumerate(e for e in root if isinstance(e.tag, str)):
        line = lines[index] if index < len(lines) else 0
        where = f"{source}, line {line}" if line else source
        if elem.tag != "Attribute":
            logger.warning("%s: ignoring element <%s>", where, elem.tag)
            continue
        name = elem.get("name")
        if not name:
            raise NDAttributesError(f"{where}: <Attribute> without a name", STATUS_XML_ERROR)
        src = elem.get("source")
        if src is None:
            raise NDAttributesError(f"{where}: attribute {name!r} has no source", STATUS_XML_ERROR)
        attr_type = elem.get("type", "EPICS_PV")
        if attr_type not in ATTRIBUTE_TYPES:
            raise NDAttributesError(
                f"{where}: attribute {name!r} has unknown type {attr_type!r} "
                f"(expected one of {', '.join(ATTRIBUTE_TYPES)})",
                STATUS_XML_ERROR,
            )
        dbrtype = elem.get("dbrtype", "DBR_NATIVE")
        if attr_type == "EPICS_PV" and dbrtype not in DBR_TYPES:
            raise NDAttributesError(
                f"{where}: attribute {name!r} has unknown dbrtype {dbrtype!r}", STATUS_XML_ERROR
            )
        try:
            addr = int(elem.get("addr", "0"))
        except ValueError:
            raise NDAttributesError(
                f"{where}: attribute {name!r} has a non-integer addr {elem.get('addr')!r}",
                STATUS_XML_ERROR,
            ) from None
        if name in seen:
            # NDAttributeList::add replaces an attribute of the same name
            definitions = [d for d in definitions if d.name != name]
        seen.add(name)
        definitions.append(
            AttributeDefinition(
                name=name,
                type=attr_type,
                source=src,
                description=elem.get("description", ""),
                dbrtype=dbrtype,
                datatype=elem.get("datatype", "int"),
                addr=addr,
                param=elem.get("param", ""),
                line=line,
            )
        )
    return tuple(definitions)


def _element_lines(text: str) -> list[int]:
    """Line numbers of the <Attribute ...> (any child) start tags, best effort."""
    # blank out comments and CDATA, keeping their newlines, so tags inside them don't count
    text = re.sub(
        r"<!--.*?-->|<!\[CDATA\[.*?\]\]>",
        lambda m: "\n" * m.group(0).count("\n"),
        text,
        flags=re.DOTALL,
    )
    lines = []
    for match in re.finditer(r"<(?![?!/])(\w[\w:.-]*)", text):
        if match.group(1) != "Attributes":
            lines.append(text.count("\n", 0, match.start()) + 1)
    # the first tag in document order is the root
    return lines


def load_attributes(file_or_xml: str, macros: str | Mapping[str, str] = "") -> AttributesFile:
    """Read NDAttributesFile the way ``asynNDArrayDriver::readNDAttributesFile`` does.

    ``file_or_xml`` is a path or XML text containing ``<Attributes``.  An empty value
    gives status 0 and no definitions (the caller clears its list).
    """
    if not file_or_xml.strip():
        return AttributesFile(STATUS_OK, "", ())
    try:
        text, source, _ = read_xml_text(file_or_xml, INLINE_MARKER)
    except XMLInputError as exc:
        status = STATUS_NOT_FOUND if exc.kind == "not_found" else STATUS_XML_ERROR
        return AttributesFile(status, str(exc), ())
    try:
        macro_map = parse_macros(macros)
        if isinstance(macros, Mapping) or macros.strip():
            text = expand_macros(text, macro_map)
    except MacroError as exc:
        return AttributesFile(STATUS_MACRO_ERROR, f"{source}: {exc}", ())
    try:
        definitions = parse_attributes_xml(text, source)
    except NDAttributesError as exc:
        return AttributesFile(exc.status, str(exc), ())
    return AttributesFile(STATUS_OK, STATUS_STRINGS[STATUS_OK], definitions)


# --------------------------------------------------------------------------- functions

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


# --------------------------------------------------------------------------- EPICS_PV

_shared_context = None
_shared_context_lock = threading.Lock()


def shared_ca_context():
    """One caproto threading client Context per process (they are costly)."""
    global _shared_context
    with _shared_context_lock:
        if _shared_context is None:
            from caproto.threading.client import Context

            _shared_context = Context()
        return _shared_context


def _convert_pv_value(data: Any, native: str, count: int, dbrtype: str) -> tuple[Any, str]:
    """Convert a CA monitor payload to (value, NDAttribute datatype) like PVAttribute."""
    if native == "STRING":
        first = data[0] if len(data) else b""
        text = first.decode("latin-1") if isinstance(first, bytes) else str(first)
        if dbrtype in ("DBR_NATIVE", "DBR_STRING"):
            return text, "STRING"
        try:
            number = float(text)
        except ValueError:
            return None, "UNDEFINED"
        return _numeric_as(number, dbrtype)
    arr = np.asarray(data)
    if dbrtype == "DBR_STRING":
        if native == "CHAR" and count > 1:
            raw = arr.astype(np.uint8).tobytes()
            return raw.split(b"\0", 1)[0].decode("latin-1"), "STRING"
        if arr.size == 0:
            return "", "STRING"
        value = arr.flat[0]
        if native in ("FLOAT", "DOUBLE"):
            return f"{float(value):g}", "STRING"
        return str(int(value)), "STRING"
    if arr.size == 0:
        return None, "UNDEFINED"
    value = arr.flat[0]
    if dbrtype == "DBR_NATIVE":
        dbrtype = {
            "SHORT": "DBR_SHORT",
            "ENUM": "DBR_ENUM",
            "FLOAT": "DBR_FLOAT",
            "CHAR": "DBR_CHAR",
            "LONG": "DBR_LONG",
            "DOUBLE": "DBR_DOUBLE",
        }.get(native, "DBR_DOUBLE")
    return _numeric_as(value, dbrtype)


def _numeric_as(value: Any, dbrtype: str) -> tuple[Any, str]:
    """Cast like a CA server converting to the requested DBR type (C casts wrap)."""
    datatype = {
        "DBR_CHAR": "INT8",
        "DBR_SHORT": "INT16",
        "DBR_INT": "INT16",
        "DBR_ENUM": "INT16",
        "DBR_LONG": "INT32",
        "DBR_FLOAT": "FLOAT32",
    }.get(dbrtype, "FLOAT64")
    dtype = {"INT8": "i1", "INT16": "i2", "INT32": "i4", "FLOAT32": "f4", "FLOAT64": "f8"}[datatype]
    source = np.asarray(value)
    if dtype.startswith("i") and source.dtype.kind == "f":
        source = np.trunc(source).astype("i8")
    return source.astype(dtype)[()], datatype


def _native_name(data_type: Any) -> str:
    """caproto's ChannelType name without TIME_/STS_/... prefix; INT is DBR_SHORT."""
    native = getattr(data_type, "name", str(data_type))
    for prefix in ("TIME_", "STS_", "CTRL_", "GR_"):
        native = native.removeprefix(prefix)
    return "SHORT" if native == "INT" else native


def typed_zero(native: str, count: int, dbrtype: str) -> tuple[Any, str]:
    """The value of a connected PVAttribute before its first monitor update.

    ADCore's PVAttribute decides its NDAttribute type in the CA *connection*
    callback, from ``ca_field_type`` (the channel's native DBF type) and the
    requested dbrtype; the value stays 0 (an empty string) until the first
    monitor arrives.  This gives that pair for a channel's native type.
    """
    if dbrtype == "DBR_STRING" or (native == "STRING" and dbrtype == "DBR_NATIVE"):
        return "", "STRING"
    if native == "STRING":  # a string PV read as a number: 0 of that type
        return _numeric_as(0, dbrtype)
    if native not in ("SHORT", "ENUM", "FLOAT", "CHAR", "LONG", "DOUBLE"):
        return None, "UNDEFINED"  # ADCore: "unknown DBF type", nothing subscribed
    zero = np.zeros(1, dtype="i4")
    return _convert_pv_value(zero, native, count, dbrtype)


class PVMonitor:
    """A CA monitor on one PV that keeps the last value, as ADCore's PVAttribute does.

    Like PVAttribute, the attribute's type is known as soon as the channel
    connects (from its native type), before the first value: until that value
    arrives it reads as 0 of that type.  Before the connection, and after a
    disconnection, it is undefined.
    """

    def __init__(self, pvname: str, dbrtype: str, context: Any = None) -> None:
        self.pvname = pvname
        self.dbrtype = dbrtype
        self._value: tuple[Any, str] = (None, "UNDEFINED")
        self._has_value = False  # a monitor value arrived since the last connection
        self._updated = threading.Event()
        self._lock = threading.Lock()
        self._context = context or shared_ca_context()
        (self._pv,) = self._context.get_pvs(pvname, timeout=2.0)
        # the PV object is shared by every monitor of this name in the context:
        # remove our callback again in close()
        self._conn_token = self._pv.connection_state_callback.add_callback(
            self._on_connection, run=True
        )
        # DBR_STRING asks for the control structure: it carries an enum's strings
        self._sub = self._pv.subscribe(data_type="control" if dbrtype == "DBR_STRING" else None)
        self._sub.add_callback(self._on_update)

    def _on_connection(self, pv: Any, state: str) -> None:
        if state != "connected":
            with self._lock:
                self._value = (None, "UNDEFINED")
                self._has_value = False
            self._updated.clear()

    def _on_update(self, sub: Any, response: Any) -> None:
        try:
            native = _native_name(response.data_type)
            if native == "ENUM" and self.dbrtype == "DBR_STRING":
                strings = list(getattr(response.metadata, "enum_strings", []) or [])
                index = int(np.asarray(response.data).flat[0])
                text = strings[index] if 0 <= index < len(strings) else str(index)
                if isinstance(text, bytes):
                    text = text.decode("latin-1")
                value: tuple[Any, str] = (text, "STRING")
            else:
                value = _convert_pv_value(response.data, native, response.data_count, self.dbrtype)
        except Exception:  # never let a bad payload kill the client thread
            logger.exception("EPICS_PV attribute %s: cannot convert the monitor value", self.pvname)
            return
        with self._lock:
            self._value = value
            self._has_value = True
        self._updated.set()

    @property
    def connected(self) -> bool:
        return bool(self._pv.connected)

    @property
    def has_value(self) -> bool:
        return self._has_value

    @property
    def value(self) -> tuple[Any, str]:
        with self._lock:
            if self._has_value:
                return self._value
        channel = self._pv.channel
        if channel is None or not self._pv.connected:
            return None, "UNDEFINED"
        # connected, first value not here yet: the type is the channel's native one
        native = _native_name(channel.native_data_type)
        return typed_zero(native, int(channel.native_data_count or 1), self.dbrtype)

    def wait(self, timeout: float) -> bool:
        """Wait (in a thread that is not the server's) for the first value."""
        return self._updated.wait(timeout)

    def close(self) -> None:
        try:
            self._pv.connection_state_callback.remove_callback(self._conn_token)
            self._sub.clear()
        except Exception:  # the context may already be gone at interpreter exit
            logger.debug("clearing subscription of %s failed", self.pvname, exc_info=True)


# --------------------------------------------------------------------------- collection

ParamGetter = Callable[[str, int], Any]


#: longest the frame path waits, once per attributes file, for EPICS_PV values
SETTLE_TIMEOUT = 5.0
#: least time between two forced re-searches of unconnected EPICS_PV channels
RESEARCH_INTERVAL = 0.5


class AttributeCollector:
    """Produce the NDAttributes of one frame from a list of definitions.

    ``param_getter(drv_info, addr)`` returns a driver parameter's current value and
    raises ``KeyError`` for an unknown drvInfo.  EPICS_PV monitors are created once,
    here, and reused for every frame.

    Creating the collector (a put of NDAttributesFile) does not wait for Channel
    Access unless ``connect_timeout`` > 0.  Instead the code that is about to use
    the values -- the cam before it stamps a frame, a file writer before it opens
    a file and fixes its attribute dataset types -- calls :meth:`settle`, which
    waits (bounded) for the EPICS_PV attributes that have no value yet.  Each
    monitor gets that wait once: a PV that never connects stays undefined without
    slowing later frames.
    """

    def __init__(
        self,
        definitions: Iterable[AttributeDefinition],
        param_getter: ParamGetter | None = None,
        ca_context: Any = None,
        connect_timeout: float = 0.0,
    ) -> None:
        self.definitions: tuple[AttributeDefinition, ...] = tuple(definitions)
        self.param_getter = param_getter
        self._context = ca_context
        self._monitors: dict[str, PVMonitor] = {}
        self._warned: set[str] = set()
        #: monitors still worth waiting for in settle()
        self._pending: dict[str, PVMonitor] = {}
        self._settle_lock = threading.Lock()
        self._last_research = 0.0
        for d in self.definitions:
            if d.type == "EPICS_PV" and d.name not in self._monitors:
                try:
                    self._monitors[d.name] = PVMonitor(d.source, d.dbrtype, ca_context)
                except Exception as exc:  # bad PV name, no CA: value stays undefined
                    logger.warning("EPICS_PV attribute %s (%s): %s", d.name, d.source, exc)
        self._pending = dict(self._monitors)
        if self._monitors and connect_timeout > 0 and not _in_event_loop():
            self.wait_connected(connect_timeout)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Wait until every EPICS_PV attribute has a value (not from the server thread)."""
        deadline = time.monotonic() + timeout
        ok = True
        for monitor in self._monitors.values():
            ok = monitor.wait(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Before values are used: wait up to ``timeout`` s for EPICS_PV first values.

        Returns at once when every monitor has a value, or has already had its
        wait.  Unconnected channels are searched for again first (an IOC started
        after the attributes were loaded is found now, not at the client's next
        back-off search).  Never waits in an asyncio loop thread.  Returns True
        when every EPICS_PV attribute has a value.
        """
        if not self._pending:
            return True
        if _in_event_loop():
            return False
        with self._settle_lock:  # one waiter; the others find the work done
            pending = {n: m for n, m in self._pending.items() if not m.has_value}
            if pending:
                self._research(pending.values())
                deadline = time.monotonic() + timeout
                for name, monitor in pending.items():
                    if not monitor.wait(max(0.0, deadline - time.monotonic())):
                        logger.warning(
                            "EPICS_PV attribute %s: no value from %s after %.1f s",
                            name,
                            monitor.pvname,
                            timeout,
                        )
            self._pending.clear()
        return all(m.has_value for m in self._monitors.values())

    def _research(self, monitors: Iterable[PVMonitor]) -> None:
        """Ask the CA client to re-send its unanswered searches now (rate-limited)."""
        if all(m.connected for m in monitors):
            return
        now = time.monotonic()
        if now - self._last_research < RESEARCH_INTERVAL:
            return
        self._last_research = now
        context = self._context or shared_ca_context()
        try:
            context.broadcaster.search_now()
        except Exception:  # a context without a broadcaster: wait for its own retries
            logger.debug("search_now failed", exc_info=True)

    def collect(self, array: NDArray | None = None) -> dict[str, NDAttribute]:
        """Read every attribute now; never blocks on Channel Access."""
        result: dict[str, NDAttribute] = {}
        for d in self.definitions:
            value, datatype = self._read(d, array)
            result[d.name] = NDAttribute(
                name=d.name,
                value=value,
                datatype=datatype,
                description=d.description,
                source=d.source,
                source_type=SOURCE_TYPES[d.type],
            )
        return result

    def _read(self, d: AttributeDefinition, array: NDArray | None) -> tuple[Any, str]:
        if d.type == "CONST":
            return d.source, "STRING"
        if d.type == "EPICS_PV":
            monitor = self._monitors.get(d.name)
            return monitor.value if monitor is not None else (None, "UNDEFINED")
        if d.type == "PARAM":
            datatype = PARAM_DATATYPES.get(d.datatype)
            if datatype is None or self.param_getter is None:
                return None, "UNDEFINED"
            try:
                raw = self.param_getter(d.source, d.addr)
            except KeyError:
                self._warn_once(d.name, f"PARAM attribute {d.name}: unknown drvInfo {d.source!r}")
                return None, "UNDEFINED"
            return _cast_param(raw, datatype), datatype
        function = FUNCTIONS.get(d.source)
        if function is None:
            self._warn_once(d.name, f"FUNCTION attribute {d.name}: no function {d.source!r}")
            return None, "UNDEFINED"
        return function(d.param, array)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def close(self) -> None:
        for monitor in self._monitors.values():
            monitor.close()
        self._monitors.clear()


def _in_event_loop() -> bool:
    """True in a thread running an asyncio loop (e.g. the CA server's): never block there."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _cast_param(raw: Any, datatype: str) -> Any:
    if datatype == "STRING":
        if isinstance(raw, bytes):
            return raw.split(b"\0", 1)[0].decode("latin-1")
        return "" if raw is None else str(raw)
    try:
        if datatype == "FLOAT64":
            return np.float64(raw)
        if datatype == "INT64":
            return np.int64(int(raw))
        return np.int32(int(raw))
    except (TypeError, ValueError):
        return None


def definitions_from(
    value: Sequence[AttributeDefinition] | AttributesFile | None,
) -> tuple[AttributeDefinition, ...]:
    """Accept a definitions sequence or an :class:`AttributesFile` (or None)."""
    if value is None:
        return ()
    if isinstance(value, AttributesFile):
        return value.definitions
    return tuple(value)


__all__ = [
    "ATTRIBUTE_TYPES",
    "AttributeCollector",
    "AttributeDefinition",
    "AttributesFile",
    "FUNCTIONS",
    "MacroError",
    "NDAttributesError",
    "STATUS_MACRO_ERROR",
    "STATUS_NOT_FOUND",
    "STATUS_OK",
    "STATUS_STRINGS",
    "STATUS_XML_ERROR",
    "definitions_from",
    "expand_macros",
    "load_attributes",
    "load_xml",
    "parse_attributes_xml",
    "parse_macros",
    "register_function",
    "shared_ca_context",
]
