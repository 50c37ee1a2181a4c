"""NDAttributes files as ADCore reads them: the definitions and NDAttributesStatus.

``asynNDArrayDriver::readNDAttributesFile`` takes NDAttributesFile (a file name,
or the XML itself when the value holds ``<Attributes``), expands the macros of
NDAttributesMacros (see :mod:`.macros`), parses the ``<Attribute>`` elements and
reports NDAttributesStatus: 0 OK, 1 file not found, 2 XML syntax error, 3 macro
substitution error.  The IOC's reading is lenient where ADCore's is (unknown
elements are skipped, a repeated name replaces the earlier one); the strict
checks of the same files are the validator's (``adtoolkit.xml``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from adtoolkit.adcore.macros import MacroError, expand_macros, expands, parse_macros
from adtoolkit.adcore.vocabulary import (
    ATTRIBUTE_TYPES,
    ATTRIBUTES_INLINE_MARKER,
    DBR_TYPES,
    STATUS_MACRO_ERROR,
    STATUS_NOT_FOUND,
    STATUS_OK,
    STATUS_STRINGS,
    STATUS_XML_ERROR,
)
from adtoolkit.adcore.xmlreader import (
    Document,
    XMLFileError,
    XMLParseError,
    decode,
    parse_text,
    read_source,
)

logger = logging.getLogger(__name__)


class NDAttributesError(ValueError):
    """An attributes file that cannot be used; ``status`` is the NDAttributesStatus."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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


def _xml_error(exc: XMLFileError) -> NDAttributesError:
    if isinstance(exc, XMLParseError):
        message = f"{exc.filename}: XML syntax error at line {exc.line}: {exc.message}"
    else:
        message = exc.phrase
    return NDAttributesError(message, STATUS_XML_ERROR)


def definitions_from_document(doc: Document) -> tuple[AttributeDefinition, ...]:
    """The attribute definitions of a parsed attributes file, as ADCore reads them.

    Raises :class:`NDAttributesError` (status 2) for content ADCore refuses.
    """
    source, root = doc.filename, doc.root
    if root.tag != "Attributes":
        raise NDAttributesError(
            f"{source}: the root element is <{root.tag}>, expected <Attributes>", STATUS_XML_ERROR
        )
    definitions: list[AttributeDefinition] = []
    seen: set[str] = set()
    for elem in root.children:
        where = f"{source}, line {elem.line}"
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
                line=elem.line,
            )
        )
    return tuple(definitions)


def parse_attributes_xml(text: str, source: str = "inline XML") -> tuple[AttributeDefinition, ...]:
    """Parse attribute definitions from XML text (macros already expanded).

    Raises :class:`NDAttributesError` with status 2 for bad XML or bad content.
    """
    try:
        doc = parse_text(text, source)
    except XMLFileError as exc:
        raise _xml_error(exc) from None
    return definitions_from_document(doc)


def load_attributes(file_or_xml: str, macros: str | Mapping[str, str] = "") -> AttributesFile:
    """Read NDAttributesFile the way ``asynNDArrayDriver::readNDAttributesFile`` does.

    ``file_or_xml`` is a path or XML text containing ``<Attributes``.  An empty value
    gives status 0 and no definitions (the caller clears its list).
    """
    if not file_or_xml.strip():
        return AttributesFile(STATUS_OK, "", ())
    try:
        data, source = read_source(file_or_xml, inline_marker=ATTRIBUTES_INLINE_MARKER)
        text = decode(data, source)
    except OSError as exc:
        return AttributesFile(STATUS_NOT_FOUND, str(exc), ())
    except XMLFileError as exc:
        return AttributesFile(STATUS_XML_ERROR, _xml_error(exc).args[0], ())
    try:
        if expands(macros):
            text = expand_macros(text, parse_macros(macros))
    except MacroError as exc:
        return AttributesFile(STATUS_MACRO_ERROR, f"{source}: {exc}", ())
    try:
        definitions = parse_attributes_xml(text, source)
    except NDAttributesError as exc:
        return AttributesFile(exc.status, str(exc), ())
    return AttributesFile(STATUS_OK, STATUS_STRINGS[STATUS_OK], definitions)
