"""NDFileHDF5 layouts as ADCore reads them: the layout tree and the default layout.

The layout file (XMLFileName) tells NDFileHDF5 which groups, datasets,
attributes and hard links to create, where the detector frames go and where
each NDAttribute is stored (ADCore's NDFileHDF5LayoutXML.cpp reads it into the
tree of NDFileHDF5Layout.cpp).  This module turns the
document of :mod:`.xmlreader` (the tree the validator checks too) into the
:class:`LayoutTree` the simulated IOC writes its files from.  ADCore's own reader
is lenient: unknown root attributes (``xmlns:xsi``...) and unknown elements only
log a warning.  We mirror that, but refuse what would make the file ambiguous
(duplicate names in one group, missing names, a relative hard-link target).

Children are kept in dicts and visited in *sorted name order* (the ordered views
of :class:`TreeGroup` and :class:`LayoutTree`), because ADCore stores them in
``std::map``: that order decides which dataset wins when two claim the same
NDAttribute, and which detector dataset is the default when none is marked
``det_default``.

ADCore's built-in layout (used when XMLFileName is empty) is written here once,
as XML: the IOC, the validator and ``adtoolkit.xml.default_layout()`` all read it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from adtoolkit.adcore.vocabulary import (
    ATTRIBUTE_SOURCES,
    CONST_TYPES,
    DATASET_SOURCES,
    DETECTOR_DATA_DESTINATION,
    LAYOUT_INLINE_MARKER,
)
from adtoolkit.adcore.xmlreader import (
    Document,
    Node,
    XMLFileError,
    XMLParseError,
    parse_document,
    parse_text,
)

logger = logging.getLogger(__name__)

#: value of XMLErrorMsg_RBV when XMLFileName is empty
DEFAULT_LAYOUT_MESSAGE = "Default layout selected"
#: value of XMLErrorMsg_RBV after a layout parsed cleanly
LAYOUT_OK_MESSAGE = ""

#: how the built-in layout is named in messages
DEFAULT_LAYOUT_NAME = "default layout"

#: ``LayoutXML::DEFAULT_LAYOUT``: what NDFileHDF5 writes when XMLFileName is empty
DEFAULT_LAYOUT_XML = """<?xml version="1.0" standalone="no" ?>
<hdf5_layout>
  <group name="entry">
    <attribute name="NX_class" source="constant" value="NXentry" type="string"/>
    <group name="instrument">
      <attribute name="NX_class" source="constant" value="NXinstrument" type="string"/>
      <group name="detector">
        <attribute name="NX_class" source="constant" value="NXdetector" type="string"/>
        <dataset name="data" source="detector" det_default="true">
          <attribute name="signal" source="constant" value="1" type="int"/>
        </dataset>
        <group name="NDAttributes">
          <attribute name="NX_class" source="constant" value="NXcollection" type="string"/>
          <dataset name="ColorMode" source="ndattribute" ndattribute="ColorMode"/>
        </group>
      </group>
      <group name="NDAttributes" ndattr_default="true">
        <attribute name="NX_class" source="constant" value="NXcollection" type="string"/>
      </group>
      <group name="performance">
        <dataset name="timestamp"/>
      </group>
    </group>
    <group name="data">
      <attribute name="NX_class" source="constant" value="NXdata" type="string"/>
      <hardlink name="data" target="/entry/instrument/detector/data"/>
    </group>
  </group>
</hdf5_layout>
"""


class LayoutError(ValueError):
    """A layout that NDFileHDF5 would reject (XMLValid_RBV = No)."""


@dataclass
class TreeAttribute:
    """``<attribute name source=constant|ndattribute [value type] [ndattribute when]>``."""

    name: str
    source: str
    value: str = ""
    type: str = "string"
    ndattribute: str = ""
    when: str = "OnFileOpen"


@dataclass
class TreeDataset:
    """``<dataset name source=detector|ndattribute|constant ...>``; ``source`` may be ''."""

    name: str
    path: str
    source: str = ""
    det_default: bool = False
    ndattribute: str = ""
    when: str = "OnFrame"
    value: str = ""
    type: str | None = None
    attributes: dict[str, TreeAttribute] = field(default_factory=dict)


@dataclass
class TreeHardlink:
    """``<hardlink name target=/absolute/path>``."""

    name: str
    path: str
    target: str


@dataclass
class TreeGroup:
    """``<group name [ndattr_default=true]>``; the root group has path '/'."""

    name: str
    path: str
    ndattr_default: bool = False
    attributes: dict[str, TreeAttribute] = field(default_factory=dict)
    groups: dict[str, TreeGroup] = field(default_factory=dict)
    datasets: dict[str, TreeDataset] = field(default_factory=dict)
    hardlinks: dict[str, TreeHardlink] = field(default_factory=dict)

    def sorted_groups(self) -> list[TreeGroup]:
        return [self.groups[k] for k in sorted(self.groups)]

    def sorted_datasets(self) -> list[TreeDataset]:
        return [self.datasets[k] for k in sorted(self.datasets)]

    def walk(self) -> Iterator[TreeGroup]:
        """This group and every subgroup, depth first, in map (sorted) order."""
        yield self
        for g in self.sorted_groups():
            yield from g.walk()


@dataclass
class LayoutTree:
    """A parsed layout: the group tree plus the root options."""

    root: TreeGroup
    auto_ndattr_default: bool = True
    globals: dict[str, str] = field(default_factory=dict)
    source: str = DEFAULT_LAYOUT_NAME

    # -- queries mirroring hdf5::Root / Group in NDFileHDF5Layout.cpp
    def detector_datasets(self) -> list[TreeDataset]:
        """Every ``source=detector`` dataset, ordered by full path (``detDataMap``)."""
        found = [d for g in self.root.walk() for d in g.datasets.values() if d.source == "detector"]
        return sorted(found, key=lambda d: d.path)

    def default_detector_dataset(self) -> TreeDataset | None:
        for g in self.root.walk():
            for d in g.sorted_datasets():
                if d.source == "detector" and d.det_default:
                    return d
        dets = self.detector_datasets()
        return dets[0] if dets else None

    def ndattr_default_group(self) -> TreeGroup | None:
        for g in self.root.walk():
            if g.ndattr_default:
                return g
        return None

    def find_dataset_for_ndattribute(self, name: str) -> TreeDataset | None:
        """The first dataset (map order, datasets before subgroups) fed by NDAttribute ``name``."""
        return _find_ndattr(self.root, name)

    def performance_dataset(self) -> TreeDataset | None:
        """A ``performance/timestamp`` dataset not fed by an NDAttribute, if any."""
        for g in self.root.walk():
            if g.name == "performance":
                d = g.datasets.get("timestamp")
                if d is not None and d.source != "ndattribute":
                    return d
        return None

    @property
    def detector_data_destination(self) -> str:
        return self.globals.get(DETECTOR_DATA_DESTINATION, "")


def _find_ndattr(group: TreeGroup, name: str) -> TreeDataset | None:
    for d in group.sorted_datasets():
        if d.source == "ndattribute" and d.ndattribute == name:
            return d
    for g in group.sorted_groups():
        found = _find_ndattr(g, name)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- parser


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _parse_when(elem: Node, default: str) -> str:
    when = elem.get("when")
    if when in ("OnFileOpen", "OnFileClose"):
        return when
    return default if when is None else "OnFrame"


def _parse_attribute(elem: Node, source: str) -> TreeAttribute:
    name = elem.get("name")
    if not name:
        raise LayoutError(f"{source}: <attribute> without a name")
    src = elem.get("source", "constant")
    if src not in ATTRIBUTE_SOURCES:
        logger.warning("%s: attribute %r has unknown source %r, using constant", source, name, src)
        src = "constant"
    attr = TreeAttribute(name=name, source=src)
    if src == "ndattribute":
        attr.ndattribute = elem.get("ndattribute", "")
        if not attr.ndattribute:
            raise LayoutError(
                f"{source}: attribute {name!r} has source=ndattribute but no ndattribute"
            )
        # an unset 'when' behaves as OnFrame, which NDFileHDF5 stores at file open
        attr.when = _parse_when(elem, "OnFileOpen")
        if attr.when == "OnFrame":
            attr.when = "OnFileOpen"
    else:
        attr.value = elem.get("value", "")
        attr.type = elem.get("type", "string")
        if attr.type not in CONST_TYPES:
            raise LayoutError(
                f"{source}: attribute {name!r} has unknown type {attr.type!r} (string, int or float)"
            )
    return attr


def _add_attribute(owner: TreeGroup | TreeDataset, attr: TreeAttribute, source: str) -> None:
    if attr.name in owner.attributes:
        raise LayoutError(f"{source}: duplicate attribute {attr.name!r} on {owner.path}")
    owner.attributes[attr.name] = attr


def _check_new_name(group: TreeGroup, name: str, source: str) -> None:
    if not name:
        raise LayoutError(f"{source}: element without a name in group {group.path}")
    if "/" in name:
        raise LayoutError(f"{source}: name {name!r} in group {group.path} contains '/'")
    if name in group.groups or name in group.datasets or name in group.hardlinks:
        raise LayoutError(f"{source}: duplicate name {name!r} in group {group.path}")


def _child_path(group: TreeGroup, name: str) -> str:
    return f"{group.path.rstrip('/')}/{name}"


def _parse_dataset(elem: Node, group: TreeGroup, source: str) -> TreeDataset:
    name = elem.get("name", "")
    _check_new_name(group, name, source)
    d = TreeDataset(name=name, path=_child_path(group, name))
    d.source = elem.get("source", "")
    if d.source and d.source not in DATASET_SOURCES:
        logger.warning("%s: dataset %r has unknown source %r", source, name, d.source)
    d.det_default = _is_true(elem.get("det_default"))
    d.ndattribute = elem.get("ndattribute", "")
    if d.ndattribute:
        d.when = _parse_when(elem, "OnFrame")
    if d.source == "constant":
        d.value = elem.get("value", "")
        d.type = elem.get("type")
        if d.type is not None and d.type not in CONST_TYPES:
            raise LayoutError(
                f"{source}: dataset {d.path} has unknown type {d.type!r} (string, int or float)"
            )
    for child in elem.children:
        if child.tag == "attribute":
            _add_attribute(d, _parse_attribute(child, source), source)
        else:
            logger.warning("%s: ignoring <%s> inside dataset %s", source, child.tag, d.path)
    return d


def _parse_group(elem: Node, group: TreeGroup, source: str, layout: LayoutTree) -> None:
    for child in elem.children:
        tag = child.tag
        if tag == "group":
            name = child.get("name", "")
            _check_new_name(group, name, source)
            sub = TreeGroup(
                name=name,
                path=_child_path(group, name),
                ndattr_default=_is_true(child.get("ndattr_default")),
            )
            group.groups[name] = sub
            _parse_group(child, sub, source, layout)
        elif tag == "dataset":
            d = _parse_dataset(child, group, source)
            group.datasets[d.name] = d
        elif tag == "attribute":
            _add_attribute(group, _parse_attribute(child, source), source)
        elif tag == "hardlink":
            name = child.get("name", "")
            _check_new_name(group, name, source)
            target = child.get("target", "")
            if not target.startswith("/"):
                raise LayoutError(
                    f"{source}: hardlink {_child_path(group, name)} needs an absolute target, "
                    f"got {target!r}"
                )
            group.hardlinks[name] = TreeHardlink(name, _child_path(group, name), target)
        elif tag == "global":
            gname = child.get("name", "")
            if gname == DETECTOR_DATA_DESTINATION:
                layout.globals[gname] = child.get("ndattribute", "")
            else:
                logger.warning("%s: ignoring unknown global %r", source, gname)
        else:
            logger.warning("%s: ignoring unknown element <%s> in %s", source, tag, group.path)


def parse_layout_element(root: Node, source: str) -> LayoutTree:
    """Build a :class:`LayoutTree` from a parsed ``<hdf5_layout>`` element."""
    if root.tag != "hdf5_layout":
        raise LayoutError(f"{source}: the root element is <{root.tag}>, expected <hdf5_layout>")
    layout = LayoutTree(root=TreeGroup(name="", path="/"), source=source)
    for key, value in root.attrib.items():
        if key == "auto_ndattr_default":
            layout.auto_ndattr_default = value.strip().lower() != "false"
        else:  # e.g. xmlns:xsi / xsi:noNamespaceSchemaLocation in the demo files
            logger.debug("%s: ignoring root attribute %s", source, key)
    _parse_group(root, layout.root, source, layout)
    return layout


def layout_tree_from_document(doc: Document) -> LayoutTree:
    """The layout NDFileHDF5 builds from a parsed ``<hdf5_layout>`` document."""
    return parse_layout_element(doc.root, doc.filename)


def _parser_error(exc: XMLFileError) -> LayoutError:
    if isinstance(exc, XMLParseError):
        detail = f"{exc.filename}: XML syntax error at line {exc.line}: {exc.message}"
    else:
        detail = exc.phrase
    return LayoutError(f"XML description file parser error: {detail}")


def parse_layout_tree(file_or_xml: str) -> LayoutTree:
    """Parse XMLFileName's value: empty (default layout), inline ``<?xml`` text, or a path.

    Raises :class:`LayoutError` (with an ADCore-like message prefix) on any problem.
    """
    if not file_or_xml.strip():
        return default_layout_tree()
    try:
        doc = parse_document(file_or_xml, inline_marker=LAYOUT_INLINE_MARKER)
    except OSError as exc:
        raise LayoutError(f"XML description file cannot be opened: {exc}") from None
    except XMLFileError as exc:
        raise _parser_error(exc) from None
    try:
        return layout_tree_from_document(doc)
    except LayoutError as exc:
        raise LayoutError(f"XML description file parser error: {exc}") from None


def default_layout_document() -> Document:
    """ADCore's built-in layout as a parsed document (the validator checks this tree too)."""
    return parse_text(DEFAULT_LAYOUT_XML, DEFAULT_LAYOUT_NAME)


def default_layout_tree() -> LayoutTree:
    """The built-in layout used when XMLFileName is empty (a fresh copy each time)."""
    return layout_tree_from_document(default_layout_document())


def validate_layout_param(xml_file_name: str) -> tuple[bool, str]:
    """What NDFileHDF5 puts in (XMLValid_RBV, XMLErrorMsg_RBV) after an XMLFileName put."""
    if not xml_file_name.strip():
        return True, DEFAULT_LAYOUT_MESSAGE
    try:
        layout = parse_layout_tree(xml_file_name)
    except LayoutError as exc:
        return False, str(exc)
    del layout  # detector datasets are only required when a file is opened, as in ADCore
    return True, LAYOUT_OK_MESSAGE
