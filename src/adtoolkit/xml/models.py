"""Typed models of ADCore's two XML files, with builders that read well in a notebook.

- An *attributes file* (``<Attributes><Attribute .../></Attributes>``) tells a
  driver or plugin which NDAttributes to attach to every array
  (``asynNDArrayDriver::readNDAttributesFile``).
- A *layout file* (``<hdf5_layout>``) tells NDFileHDF5 where the image data and
  those NDAttributes go in the HDF5 file.

The models hold values the way the IOC reads them (strings for values, booleans
for the flags the IOC compares with ``"true"``), so that parse -> model -> XML ->
parse gives back an equal model.  Unknown XML attributes are kept in ``extra`` so
that nothing a user wrote is lost; comments and blank text are not kept.

Example::

    attrs = (Attributes()
             .pv("Temp", "IOC:temp", dbrtype="DBR_DOUBLE")
             .param("Counter", "ARRAY_COUNTER", datatype="INT"))
    layout = Layout().add(
        Group("entry", nx_class="NXentry").add(
            Group("data", nx_class="NXdata").add(Dataset.detector("data")),
        )
    )
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import InitVar, dataclass, field, fields
from typing import Union

from adtoolkit.adcore.vocabulary import (
    CONST_TYPES,
    DBR_TYPES,
    DETECTOR_DATA_DESTINATION,
    PARAM_DATATYPES,
    WHEN_VALUES,
)


def _check_choice(what: str, value: str | None, choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")


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


def _check_writable(tag: str, element: object) -> None:
    """Refuse, when a builder adds it, a value the XML writer could not write (see .chars)."""
    from adtoolkit.xml.chars import check_element

    pairs = [
        (f.name, value)
        for f in fields(element)
        if f.name != "extra" and isinstance(value := getattr(element, f.name), str)
    ]
    check_element(tag, pairs, getattr(element, "extra", {}))


def _when(when: str | None) -> str | None:
    """OnFrame is NDFileHDF5's default and not in the XSD, so builders leave it out."""
    return None if when == "OnFrame" else when


# --------------------------------------------------------------------------- attributes


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
            _check_writable("Attribute", attribute)
            self.attributes.append(attribute)
            names.add(attribute.name)
        return self

    def pv(
        self, name: str, pv: str, dbrtype: str = "DBR_NATIVE", description: str | None = None
    ) -> Attributes:
        """Add an EPICS_PV attribute read from ``pv`` over Channel Access."""
        dbrtype = dbrtype.upper()
        _check_choice("dbrtype", dbrtype, DBR_TYPES)
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
        _check_choice("datatype", datatype, PARAM_DATATYPES)
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
        from adtoolkit.xml.xmlio import attributes_to_xml

        return attributes_to_xml(self)

    def write(self, path: str | os.PathLike) -> None:
        from adtoolkit.xml.xmlio import write_atomic

        write_atomic(path, self.to_xml())

    @classmethod
    def parse(cls, source: str | bytes | os.PathLike) -> Attributes:
        from adtoolkit.xml.xmlio import parse_attributes

        return parse_attributes(source)


# --------------------------------------------------------------------------- layout


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
        _check_choice("type", type, CONST_TYPES)
        text, inferred = _const_value(value, type)
        return cls(name, "constant", value=text, type=inferred)

    @classmethod
    def from_ndattribute(
        cls, name: str, ndattribute: str, when: str | None = None
    ) -> LayoutAttribute:
        """The value of NDAttribute ``ndattribute``, written at file open or close."""
        _check_choice("when", when, WHEN_VALUES)
        return cls(name, "ndattribute", ndattribute=ndattribute, when=_when(when))


class _HasAttributes:
    attributes: list[LayoutAttribute]

    def attr(self, name: str, value: object, type: str | None = None):
        """Add a constant HDF5 attribute; returns self."""
        attribute = LayoutAttribute.constant(name, value, type)
        _check_writable("attribute", attribute)
        self.attributes.append(attribute)
        return self

    def attr_from(self, name: str, ndattribute: str, when: str | None = None):
        """Add an HDF5 attribute holding the value of an NDAttribute; returns self."""
        attribute = LayoutAttribute.from_ndattribute(name, ndattribute, when)
        _check_writable("attribute", attribute)
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
        _check_choice("when", when, WHEN_VALUES)
        return cls(name, "ndattribute", ndattribute=ndattribute or name, when=_when(when))

    @classmethod
    def constant(cls, name: str, value: object, type: str | None = None) -> Dataset:
        """A constant; ``type`` is always written (without it the IOC writes "")."""
        _check_choice("type", type, CONST_TYPES)
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
            _check_writable(type(child).__name__.lower(), child)
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
            _check_writable(type(child).__name__.lower(), child)
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
        from adtoolkit.xml.xmlio import layout_to_xml

        return layout_to_xml(self)

    def write(self, path: str | os.PathLike) -> None:
        from adtoolkit.xml.xmlio import write_atomic

        write_atomic(path, self.to_xml())

    @classmethod
    def parse(cls, source: str | bytes | os.PathLike) -> Layout:
        from adtoolkit.xml.xmlio import parse_layout

        return parse_layout(source)

    # -- ready-made layouts
    @classmethod
    def default(cls) -> Layout:
        """ADCore's built-in layout (what an empty XMLFileName gives)."""
        from adtoolkit.xml.layouts import default_layout

        return default_layout()

    @classmethod
    def nexus(cls, attributes: Attributes | Iterable[Attribute] | None = None, **kwargs) -> Layout:
        """A NeXus layout; with ``attributes``, each NDAttribute gets its NeXus place."""
        from adtoolkit.xml.layouts import nexus_layout, nexus_layout_from_attributes

        if attributes is None:
            return nexus_layout(**kwargs)
        return nexus_layout_from_attributes(attributes, **kwargs)
