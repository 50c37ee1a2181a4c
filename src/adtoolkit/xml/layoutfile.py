"""An HDF5 layout file: its typed model, with builders, and its XML text.

A *layout file* (``<hdf5_layout>``) tells NDFileHDF5 where the image data and the
NDAttributes go in the HDF5 file.  The model holds values the way the IOC reads
them (strings for values, booleans for the flags the IOC compares with
``"true"``), so that parse -> model -> XML -> parse gives back an equal model.
Unknown XML attributes are kept in ``extra``; comments and blank text are not.
Writing emits an ``<?xml ...?>`` declaration: NDFileHDF5 recognises inline layout
XML by it.

ADCore's default layout belongs to the format (it is what an empty XMLFileName
gives), so :meth:`Layout.default` lives here; the NeXus recipes, which also read
attributes files, are in :mod:`.layouts`.

Example::

    layout = Layout().add(
        Group("entry", nx_class="NXentry").add(
            Group("data", nx_class="NXdata").add(Dataset.detector("data")),
        )
    )
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import InitVar, dataclass, field
from typing import Union

from adtoolkit.adcore.layout import default_layout_document
from adtoolkit.adcore.vocabulary import CONST_TYPES, DETECTOR_DATA_DESTINATION, WHEN_VALUES
from adtoolkit.adcore.xmlreader import Document, Node, parse_document
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

#: The XML attributes of ``<attribute>``, ``<dataset>`` and ``<group>`` the model has fields for.
LAYOUT_ATTRIBUTE_KEYS = ("name", "source", "value", "type", "ndattribute", "when")
DATASET_KEYS = ("name", "source", "value", "type", "ndattribute", "when", "det_default")
GROUP_KEYS = ("name", "ndattr_default")


def _const_value(value: object, type: str | None) -> tuple[str, str]:
    """Turn a Python value into the (value, type) strings of a layout constant."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an array constant needs at least one element")
        items = [_const_value(v, None) for v in value]
        types = {t for _, t in items}
        if "string" in types:
            raise ValueError(
                "array constants can only hold numbers (NDFileHDF5 has no string arrays)"
            )
        inferred = "float" if "float" in types else "int"
        return ",".join(v for v, _ in items), type or inferred
    if isinstance(value, bool):
        text, inferred = ("1" if value else "0"), "int"
    elif isinstance(value, int):
        text, inferred = str(value), "int"
    elif isinstance(value, float):
        text, inferred = repr(value), "float"
    else:
        text, inferred = str(value), "string"
    type = type or inferred
    if type in ("int", "float"):
        convert = int if type == "int" else float
        try:
            for item in text.split(","):
                convert(item.strip())
        except ValueError:
            raise ValueError(f"value {text!r} is not a comma list of {type} numbers") from None
    return text, type


def _when(when: str | None) -> str | None:
    """OnFrame is NDFileHDF5's default and not in the XSD, so builders leave it out."""
    return None if when == "OnFrame" else when


@dataclass
class LayoutAttribute:
    """An HDF5 attribute (``<attribute>``) on a group or dataset of a layout."""

    name: str
    source: str | None = "constant"
    value: str | None = None
    type: str | None = None
    ndattribute: str | None = None
    when: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def constant(cls, name: str, value: object, type: str | None = None) -> LayoutAttribute:
        """A constant; Python ints, floats and lists of numbers get ``int``/``float``."""
        check_choice("type", type, CONST_TYPES)
        text, inferred = _const_value(value, type)
        return cls(name, "constant", value=text, type=inferred)

    @classmethod
    def from_ndattribute(
        cls, name: str, ndattribute: str, when: str | None = None
    ) -> LayoutAttribute:
        """The value of NDAttribute ``ndattribute``, written at file open or close."""
        check_choice("when", when, WHEN_VALUES)
        return cls(name, "ndattribute", ndattribute=ndattribute, when=_when(when))


class _HasAttributes:
    attributes: list[LayoutAttribute]

    def attr(self, name: str, value: object, type: str | None = None):
        """Add a constant HDF5 attribute; returns self."""
        attribute = LayoutAttribute.constant(name, value, type)
        check_writable("attribute", attribute)
        self.attributes.append(attribute)
        return self

    def attr_from(self, name: str, ndattribute: str, when: str | None = None):
        """Add an HDF5 attribute holding the value of an NDAttribute; returns self."""
        attribute = LayoutAttribute.from_ndattribute(name, ndattribute, when)
        check_writable("attribute", attribute)
        self.attributes.append(attribute)
        return self


@dataclass
class Dataset(_HasAttributes):
    """A ``<dataset>``: detector data, an NDAttribute's values, or a constant."""

    name: str
    source: str | None = "detector"
    value: str | None = None
    type: str | None = None
    ndattribute: str | None = None
    when: str | None = None
    det_default: bool = False
    attributes: list[LayoutAttribute] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def detector(cls, name: str = "data", default: bool = True) -> Dataset:
        """Where the image frames go; ``default`` marks it det_default."""
        return cls(name, "detector", det_default=default)

    @classmethod
    def from_ndattribute(
        cls, name: str, ndattribute: str | None = None, when: str | None = None
    ) -> Dataset:
        """The values of NDAttribute ``ndattribute`` (default: same as ``name``)."""
        check_choice("when", when, WHEN_VALUES)
        return cls(name, "ndattribute", ndattribute=ndattribute or name, when=_when(when))

    @classmethod
    def constant(cls, name: str, value: object, type: str | None = None) -> Dataset:
        """A constant; ``type`` is always written (without it the IOC writes "")."""
        check_choice("type", type, CONST_TYPES)
        text, inferred = _const_value(value, type)
        return cls(name, "constant", value=text, type=inferred)


@dataclass
class HardLink:
    """A ``<hardlink>``: a second name for the object at absolute path ``target``."""

    name: str
    target: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Global:
    """A ``<global>``; only ``detector_data_destination`` means anything to the IOC."""

    name: str = DETECTOR_DATA_DESTINATION
    ndattribute: str = ""
    extra: dict[str, str] = field(default_factory=dict)


Child = Union["Group", Dataset, HardLink]


@dataclass
class Group(_HasAttributes):
    """A ``<group>``.  ``nx_class`` adds the constant ``NX_class`` attribute."""

    name: str
    nx_class: InitVar[str | None] = None
    ndattr_default: bool = False
    children: list[Child] = field(default_factory=list)
    attributes: list[LayoutAttribute] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self, nx_class: str | None) -> None:
        if nx_class is not None:
            self.attributes.insert(0, LayoutAttribute.constant("NX_class", nx_class, "string"))

    def add(self, *children: Child) -> Group:
        """Append groups, datasets or hard links; names must be unique in a group."""
        names = {c.name for c in self.children}
        for child in children:
            if not isinstance(child, (Group, Dataset, HardLink)):
                raise TypeError(
                    f"a group holds Group, Dataset or HardLink, not {type(child).__name__}"
                )
            if child.name in names:
                raise ValueError(f"group {self.name!r} already has a member named {child.name!r}")
            check_writable(type(child).__name__.lower(), child)
            self.children.append(child)
            names.add(child.name)
        return self

    def group(self, name: str, nx_class: str | None = None, ndattr_default: bool = False) -> Group:
        """Create, add and return a sub-group (for building downwards)."""
        child = Group(name, nx_class, ndattr_default=ndattr_default)
        self.add(child)
        return child

    @property
    def groups(self) -> list[Group]:
        return [c for c in self.children if isinstance(c, Group)]

    @property
    def datasets(self) -> list[Dataset]:
        return [c for c in self.children if isinstance(c, Dataset)]

    @property
    def hardlinks(self) -> list[HardLink]:
        return [c for c in self.children if isinstance(c, HardLink)]

    def get(self, name: str) -> Child:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(f"{self.name!r} has no member {name!r}")


@dataclass
class Layout:
    """An ``<hdf5_layout>``: top-level groups and globals."""

    children: list[Group | Global] = field(default_factory=list)
    auto_ndattr_default: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def add(self, *children: Group | Global) -> Layout:
        for child in children:
            if isinstance(child, Group):
                if any(isinstance(c, Group) and c.name == child.name for c in self.children):
                    raise ValueError(f"the layout already has a top-level group {child.name!r}")
            elif not isinstance(child, Global):
                raise TypeError(
                    f"the layout root holds Group or Global (NDFileHDF5 never creates a "
                    f"top-level {type(child).__name__}), not {type(child).__name__}"
                )
            check_writable(type(child).__name__.lower(), child)
            self.children.append(child)
        return self

    def detector_data_destination(self, ndattribute: str) -> Layout:
        """Route each frame to the dataset named by the string NDAttribute ``ndattribute``."""
        self.children = [c for c in self.children if not isinstance(c, Global)]
        self.children.insert(0, Global(DETECTOR_DATA_DESTINATION, ndattribute))
        return self

    @property
    def groups(self) -> list[Group]:
        return [c for c in self.children if isinstance(c, Group)]

    @property
    def globals(self) -> list[Global]:
        return [c for c in self.children if isinstance(c, Global)]

    def find(self, path: str) -> Child:
        """The group, dataset or hard link at absolute ``path`` (e.g. ``/entry/data/data``)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise KeyError(path)
        node: Group | None = None
        for g in self.groups:
            if g.name == parts[0]:
                node = g
        if node is None:
            raise KeyError(path)
        current: Child = node
        for part in parts[1:]:
            if not isinstance(current, Group):
                raise KeyError(path)
            try:
                current = current.get(part)
            except KeyError:
                raise KeyError(path) from None
        return current

    def walk(self) -> Iterator[tuple[str, Child]]:
        """Yield ``(absolute path, element)`` for every group, dataset and hard link."""

        def visit(prefix: str, group: Group) -> Iterator[tuple[str, Child]]:
            path = f"{prefix}/{group.name}"
            yield path, group
            for child in group.children:
                if isinstance(child, Group):
                    yield from visit(path, child)
                else:
                    yield f"{path}/{child.name}", child

        for group in self.groups:
            yield from visit("", group)

    def ndattributes(self) -> list[str]:
        """Every NDAttribute name the layout refers to, in document order."""
        names: list[str] = [g.ndattribute for g in self.globals if g.ndattribute]
        for _, element in self.walk():
            if isinstance(element, Dataset) and element.ndattribute:
                names.append(element.ndattribute)
            for attribute in getattr(element, "attributes", ()):
                if attribute.ndattribute:
                    names.append(attribute.ndattribute)
        return names

    # -- XML
    def to_xml(self) -> str:
        return layout_to_xml(self)

    def write(self, path: str | os.PathLike) -> None:
        write_atomic(path, self.to_xml())

    @classmethod
    def parse(cls, source: str | bytes | os.PathLike) -> Layout:
        return parse_layout(source)

    @classmethod
    def default(cls) -> Layout:
        """ADCore's built-in layout (``LayoutXML::DEFAULT_LAYOUT``), element for element.

        Read from the one copy of that XML in :mod:`adtoolkit.adcore.layout`, the one the
        simulated IOC writes files from.  ``performance/timestamp`` has no ``source`` on
        purpose: that is how NDFileHDF5 recognises the dataset for the StorePerform rows.
        """
        return layout_from_document(default_layout_document())


# --------------------------------------------------------------------------- writing


def _layout_attribute(a: LayoutAttribute, depth: int) -> str:
    pairs = [
        ("name", a.name),
        ("source", a.source),
        ("value", a.value),
        ("type", a.type),
        ("ndattribute", a.ndattribute),
        ("when", a.when),
    ]
    return f"{INDENT * depth}<attribute{xml_attributes('attribute', pairs, a.extra)}/>"


def _element(out: list[str], element, depth: int) -> None:
    pad = INDENT * depth
    if isinstance(element, HardLink):
        pairs = [("name", element.name), ("target", element.target)]
        out.append(f"{pad}<hardlink{xml_attributes('hardlink', pairs, element.extra)}/>")
        return
    if isinstance(element, Global):
        pairs = [("name", element.name), ("ndattribute", element.ndattribute)]
        out.append(f"{pad}<global{xml_attributes('global', pairs, element.extra)}/>")
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
    head = f"{pad}<{tag}{xml_attributes(tag, pairs, element.extra)}"
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
        f"<hdf5_layout{xml_attributes('hdf5_layout', root_pairs, layout.extra)}>",
    ]
    for child in layout.children:
        _element(out, child, 1)
    out.append("</hdf5_layout>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- reading


def _layout_attribute_from(doc: Document, node: Node) -> LayoutAttribute:
    return LayoutAttribute(
        name=required(doc, node, "name"),
        source=node.get("source"),
        value=node.get("value"),
        type=node.get("type"),
        ndattribute=node.get("ndattribute"),
        when=node.get("when"),
        extra=extra_of(node, LAYOUT_ATTRIBUTE_KEYS),
    )


def _dataset_from(doc: Document, node: Node) -> Dataset:
    dataset = Dataset(
        name=required(doc, node, "name"),
        source=node.get("source"),
        value=node.get("value"),
        type=node.get("type"),
        ndattribute=node.get("ndattribute"),
        when=node.get("when"),
        det_default=node.get("det_default") == "true",  # the IOC compares with "true"
        extra=extra_of(node, DATASET_KEYS),
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
        name=required(doc, node, "name"),
        ndattr_default=node.get("ndattr_default") == "true",
        extra=extra_of(node, GROUP_KEYS),
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
                    required(doc, child, "name"),
                    required(doc, child, "target"),
                    extra=extra_of(child, ("name", "target")),
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
        extra=extra_of(root, ("auto_ndattr_default",)),
    )
    for node in root.children:
        if node.tag == "group":
            layout.children.append(_group_from(doc, node))
        elif node.tag == "global":
            layout.children.append(
                Global(
                    required(doc, node, "name"),
                    required(doc, node, "ndattribute"),
                    extra=extra_of(node, ("name", "ndattribute")),
                )
            )
        else:
            raise XMLStructureError(
                doc.filename,
                node.line,
                f"<{node.tag}> directly in <hdf5_layout>: NDFileHDF5 only creates groups and globals there",
            )
    return layout


def parse_layout(source: str | bytes | os.PathLike) -> Layout:
    """Parse a layout file (path or literal XML) into :class:`Layout`."""
    return layout_from_document(parse_document(source))
