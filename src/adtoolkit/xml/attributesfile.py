"""An NDAttributes file: its typed model, with builders, and its XML text.

An *attributes file* (``<Attributes><Attribute .../></Attributes>``) tells a
driver or plugin which NDAttributes to attach to every array
(``asynNDArrayDriver::readNDAttributesFile``).

The model holds values the way the IOC reads them (strings), so that
parse -> model -> XML -> parse gives back an equal model.  Unknown XML attributes
are kept in ``extra`` so that nothing a user wrote is lost; comments and blank
text are not kept.  Writing emits an ``<?xml ...?>`` declaration and a root
``<Attributes>`` without XML attributes unless the model carries some
(``readNDAttributesFile`` recognises inline XML by the literal text
``<Attributes>``).

Example::

    attrs = (Attributes()
             .pv("Temp", "IOC:temp", dbrtype="DBR_DOUBLE")
             .param("Counter", "ARRAY_COUNTER", datatype="INT"))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from adtoolkit.adcore.vocabulary import DBR_TYPES, PARAM_DATATYPES
from adtoolkit.adcore.xmlreader import Document, parse_document
from adtoolkit.xml.xmltext import (
    INDENT,
    XML_DECLARATION,
    XMLStructureError,
    check_choice,
    check_writable,
    extra_of,
    required,
    write_atomic,
    xml_attributes,
)

#: The XML attributes of ``<Attribute>`` the model has fields for.
ATTRIBUTE_KEYS = ("name", "type", "source", "dbrtype", "datatype", "addr", "param", "description")


@dataclass
class Attribute:
    """One ``<Attribute>`` of an attributes file.

    ``source`` means, by ``type``: the PV name (EPICS_PV), the asyn drvInfo string
    (PARAM, e.g. ``ARRAY_COUNTER``), the function name (FUNCTION) or the value
    itself (CONST).  Optional XML attributes are ``None`` when absent.
    """

    name: str
    type: str = "EPICS_PV"
    source: str = ""
    dbrtype: str | None = None
    datatype: str | None = None
    addr: str | None = None
    param: str | None = None
    description: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False, repr=False)


@dataclass
class Attributes:
    """An attributes file: an ordered list of :class:`Attribute`."""

    attributes: list[Attribute] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    # -- builders (each returns self so calls chain)
    def add(self, *attributes: Attribute) -> Attributes:
        names = set(self.names)
        for attribute in attributes:
            if attribute.name in names:
                raise ValueError(
                    f"attribute {attribute.name!r} is already defined (the IOC keeps only the last one)"
                )
            check_writable("Attribute", attribute)
            self.attributes.append(attribute)
            names.add(attribute.name)
        return self

    def pv(
        self, name: str, pv: str, dbrtype: str = "DBR_NATIVE", description: str | None = None
    ) -> Attributes:
        """Add an EPICS_PV attribute read from ``pv`` over Channel Access."""
        dbrtype = dbrtype.upper()
        check_choice("dbrtype", dbrtype, DBR_TYPES)
        return self.add(Attribute(name, "EPICS_PV", pv, dbrtype=dbrtype, description=description))

    def param(
        self,
        name: str,
        drvinfo: str,
        datatype: str = "INT",
        addr: int | None = None,
        description: str | None = None,
    ) -> Attributes:
        """Add a PARAM attribute read from the driver's asyn parameter ``drvinfo``."""
        datatype = datatype.upper()  # the IOC compares upper case; "int" would write nothing
        check_choice("datatype", datatype, PARAM_DATATYPES)
        return self.add(
            Attribute(
                name,
                "PARAM",
                drvinfo,
                datatype=datatype,
                addr=None if addr is None else str(int(addr)),
                description=description,
            )
        )

    def const(self, name: str, value: str, description: str | None = None) -> Attributes:
        """Add a CONST attribute (always a string NDAttribute)."""
        return self.add(Attribute(name, "CONST", str(value), description=description))

    def function(
        self, name: str, function: str, param: str | None = None, description: str | None = None
    ) -> Attributes:
        """Add a FUNCTION attribute computed by the registered C function ``function``."""
        return self.add(Attribute(name, "FUNCTION", function, param=param, description=description))

    # -- access
    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def __getitem__(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    # -- XML
    def to_xml(self) -> str:
        return attributes_to_xml(self)

    def write(self, path: str | os.PathLike) -> None:
        write_atomic(path, self.to_xml())

    @classmethod
    def parse(cls, source: str | bytes | os.PathLike) -> Attributes:
        return parse_attributes(source)


def attributes_to_xml(attributes: Attributes) -> str:
    lines = [
        XML_DECLARATION.rstrip("\n"),
        f"<Attributes{xml_attributes('Attributes', [], attributes.extra)}>",
    ]
    for a in attributes.attributes:
        pairs = [
            ("name", a.name),
            ("type", a.type),
            ("source", a.source),
            ("dbrtype", a.dbrtype),
            ("datatype", a.datatype),
            ("addr", a.addr),
            ("param", a.param),
            ("description", a.description),
        ]
        lines.append(f"{INDENT}<Attribute{xml_attributes('Attribute', pairs, a.extra)}/>")
    lines.append("</Attributes>")
    return "\n".join(lines) + "\n"


def attributes_from_document(doc: Document) -> Attributes:
    root = doc.root
    if root.tag != "Attributes":
        raise XMLStructureError(
            doc.filename,
            root.line,
            f"root element is <{root.tag}>, an attributes file needs <Attributes>",
        )
    result = Attributes(extra=dict(root.attrib))
    for node in root.children:
        if node.tag != "Attribute":
            raise XMLStructureError(
                doc.filename, node.line, f"unexpected <{node.tag}> in <Attributes>"
            )
        result.attributes.append(
            Attribute(
                name=required(doc, node, "name"),
                type=node.get("type", "EPICS_PV"),
                source=node.get("source", ""),
                dbrtype=node.get("dbrtype"),
                datatype=node.get("datatype"),
                addr=node.get("addr"),
                param=node.get("param"),
                description=node.get("description"),
                extra=extra_of(node, ATTRIBUTE_KEYS),
                line=node.line,
            )
        )
    return result


def parse_attributes(source: str | bytes | os.PathLike) -> Attributes:
    """Parse an attributes file (path or literal XML) into :class:`Attributes`."""
    return attributes_from_document(parse_document(source))
