"""Reading and writing the models as XML text (the only place that knows the syntax).

Writing emits an ``<?xml ...?>`` declaration (NDFileHDF5 recognises inline layout
XML by it) and a root ``<Attributes>`` without XML attributes unless the model
carries some (``readNDAttributesFile`` recognises inline attributes XML by the
literal text ``<Attributes>``).  Files are written atomically.

Reading goes through :mod:`adtoolkit.adcore.xmlreader`; anything the models cannot
represent raises :class:`XMLStructureError` with ``file:line``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

from adtoolkit.adcore.xmlreader import Document, Node, XMLFileError, parse_document
from adtoolkit.xml.chars import check_element
from adtoolkit.xml.models import (
    Attribute,
    Attributes,
    Dataset,
    Global,
    Group,
    HardLink,
    Layout,
    LayoutAttribute,
)

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
INDENT = "  "


class XMLStructureError(XMLFileError):
    """The XML is well-formed but not an attributes or layout file we can model."""


# --------------------------------------------------------------------------- writing


def _attrs(tag: str, pairs: list[tuple[str, str | None]], extra: dict[str, str]) -> str:
    """The XML attributes of ``<tag>``, refusing what XML 1.0 cannot carry (see .chars).

    ``pairs`` are the element's own attributes (all of them, ``None`` when absent), so
    an ``extra`` key that repeats one of them, which would be a duplicate XML attribute,
    is refused too.
    """
    check_element(tag, pairs, extra)
    items = [(k, v) for k, v in pairs if v is not None] + list(extra.items())
    return "".join(
        f" {k}={quoteattr(v, {chr(10): '&#10;', chr(13): '&#13;', chr(9): '&#9;'})}"
        for k, v in items
    )


def attributes_to_xml(attributes: Attributes) -> str:
    lines = [
        XML_DECLARATION.rstrip("\n"),
        f"<Attributes{_attrs('Attributes', [], attributes.extra)}>",
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
        lines.append(f"{INDENT}<Attribute{_attrs('Attribute', pairs, a.extra)}/>")
    lines.append("</Attributes>")
    return "\n".join(lines) + "\n"


def _layout_attribute(a: LayoutAttribute, depth: int) -> str:
    pairs = [
        ("name", a.name),
        ("source", a.source),
        ("value", a.value),
        ("type", a.type),
        ("ndattribute", a.ndattribute),
        ("when", a.when),
    ]
    return f"{INDENT * depth}<attribute{_attrs('attribute', pairs, a.extra)}/>"


def _element(out: list[str], element, depth: int) -> None:
    pad = INDENT * depth
    if isinstance(element, HardLink):
        pairs = [("name", element.name), ("target", element.target)]
        out.append(f"{pad}<hardlink{_attrs('hardlink', pairs, element.extra)}/>")
        return
    if isinstance(element, Global):
        pairs = [("name", element.name), ("ndattribute", element.ndattribute)]
        out.append(f"{pad}<global{_attrs('global', pairs, element.extra)}/>")
        return
    if isinstance(element, Dataset):
        tag = "dataset"
        pairs = [
            ("name", element.name),
            ("source", element.source),
            ("value", element.value),
            ("type", element.type),
            ("ndattribute", element.ndattribute),
            ("when", element.when),
            ("det_default", "true" if element.det_default else None),
        ]
        children: list = []
    else:
        tag = "group"
        pairs = [
            ("name", element.name),
            ("ndattr_default", "true" if element.ndattr_default else None),
        ]
        children = element.children
    head = f"{pad}<{tag}{_attrs(tag, pairs, element.extra)}"
    if not element.attributes and not children:
        out.append(head + "/>")
        return
    out.append(head + ">")
    for a in element.attributes:
        out.append(_layout_attribute(a, depth + 1))
    for child in children:
        _element(out, child, depth + 1)
    out.append(f"{pad}</{tag}>")


def layout_to_xml(layout: Layout) -> str:
    root_pairs = [("auto_ndattr_default", None if layout.auto_ndattr_default else "false")]
    out = [
        XML_DECLARATION.rstrip("\n"),
        f"<hdf5_layout{_attrs('hdf5_layout', root_pairs, layout.extra)}>",
    ]
    for child in layout.children:
        _element(out, child, 1)
    out.append("</hdf5_layout>")
    return "\n".join(out) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half.

    The IOC may re-read the file at any time (every file open), so we write a
    temporary file in the same directory and ``os.replace`` it into place.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- reading

ATTRIBUTE_KEYS = ("name", "type", "source", "dbrtype", "datatype", "addr", "param", "description")
LAYOUT_ATTRIBUTE_KEYS = ("name", "source", "value", "type", "ndattribute", "when")
DATASET_KEYS = ("name", "source", "value", "type", "ndattribute", "when", "det_default")
GROUP_KEYS = ("name", "ndattr_default")


def _extra(node: Node, known: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in node.attrib.items() if k not in known}


def _required(doc: Document, node: Node, key: str) -> str:
    value = node.get(key)
    if value is None:
        raise XMLStructureError(doc.filename, node.line, f"<{node.tag}> has no {key}=")
    return value


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
                name=_required(doc, node, "name"),
                type=node.get("type", "EPICS_PV"),
                source=node.get("source", ""),
                dbrtype=node.get("dbrtype"),
                datatype=node.get("datatype"),
                addr=node.get("addr"),
                param=node.get("param"),
                description=node.get("description"),
                extra=_extra(node, ATTRIBUTE_KEYS),
                line=node.line,
            )
        )
    return result


def _layout_attribute_from(doc: Document, node: Node) -> LayoutAttribute:
    return LayoutAttribute(
        name=_required(doc, node, "name"),
        source=node.get("source"),
        value=node.get("value"),
        type=node.get("type"),
        ndattribute=node.get("ndattribute"),
        when=node.get("when"),
        extra=_extra(node, LAYOUT_ATTRIBUTE_KEYS),
    )


def _dataset_from(doc: Document, node: Node) -> Dataset:
    dataset = Dataset(
        name=_required(doc, node, "name"),
        source=node.get("source"),
        value=node.get("value"),
        type=node.get("type"),
        ndattribute=node.get("ndattribute"),
        when=node.get("when"),
        det_default=node.get("det_default") == "true",  # the IOC compares with "true"
        extra=_extra(node, DATASET_KEYS),
    )
    for child in node.children:
        if child.tag != "attribute":
            raise XMLStructureError(
                doc.filename,
                child.line,
                f"<{child.tag}> inside <dataset>: a dataset holds only <attribute>",
            )
        dataset.attributes.append(_layout_attribute_from(doc, child))
    return dataset


def _group_from(doc: Document, node: Node) -> Group:
    group = Group(
        name=_required(doc, node, "name"),
        ndattr_default=node.get("ndattr_default") == "true",
        extra=_extra(node, GROUP_KEYS),
    )
    for child in node.children:
        if child.tag == "attribute":
            group.attributes.append(_layout_attribute_from(doc, child))
        elif child.tag == "group":
            group.children.append(_group_from(doc, child))
        elif child.tag == "dataset":
            group.children.append(_dataset_from(doc, child))
        elif child.tag == "hardlink":
            group.children.append(
                HardLink(
                    _required(doc, child, "name"),
                    _required(doc, child, "target"),
                    extra=_extra(child, ("name", "target")),
                )
            )
        else:
            raise XMLStructureError(
                doc.filename, child.line, f"unknown element <{child.tag}> in <group>"
            )
    return group


def layout_from_document(doc: Document) -> Layout:
    root = doc.root
    if root.tag != "hdf5_layout":
        raise XMLStructureError(
            doc.filename,
            root.line,
            f"root element is <{root.tag}>, a layout file needs <hdf5_layout>",
        )
    layout = Layout(
        auto_ndattr_default=root.get("auto_ndattr_default") != "false",
        extra=_extra(root, ("auto_ndattr_default",)),
    )
    for node in root.children:
        if node.tag == "group":
            layout.children.append(_group_from(doc, node))
        elif node.tag == "global":
            layout.children.append(
                Global(
                    _required(doc, node, "name"),
                    _required(doc, node, "ndattribute"),
                    extra=_extra(node, ("name", "ndattribute")),
                )
            )
        else:
            raise XMLStructureError(
                doc.filename,
                node.line,
                f"<{node.tag}> directly in <hdf5_layout>: NDFileHDF5 only creates groups and globals there",
            )
    return layout


def parse_attributes(source: str | bytes | os.PathLike) -> Attributes:
    """Parse an attributes file (path or literal XML) into :class:`Attributes`."""
    return attributes_from_document(parse_document(source))


def parse_layout(source: str | bytes | os.PathLike) -> Layout:
    """Parse a layout file (path or literal XML) into :class:`Layout`."""
    return layout_from_document(parse_document(source))


def parse(source: str | bytes | os.PathLike) -> Attributes | Layout:
    """Parse either kind of file, recognised by its root element."""
    doc = parse_document(source)
    if doc.root.tag == "Attributes":
        return attributes_from_document(doc)
    if doc.root.tag == "hdf5_layout":
        return layout_from_document(doc)
    raise XMLStructureError(
        doc.filename,
        doc.root.line,
        f"root element <{doc.root.tag}> is neither <Attributes> nor <hdf5_layout>",
    )


__all__ = [
    "XMLStructureError",
    "attributes_to_xml",
    "layout_to_xml",
    "parse",
    "parse_attributes",
    "parse_layout",
    "write_atomic",
]
