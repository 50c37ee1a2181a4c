"""Check attributes and layout files against the rules the IOC's code really applies.

ADCore's XSDs are looser than the IOC in some places (a PARAM without
``datatype`` passes the XSD but writes nothing) and wrong in others (CONST is
missing from NDAttributes.xsd, ``when`` on datasets).  The rules here follow
``asynNDArrayDriver::readNDAttributesFile`` (ADApp/ADSrc/asynNDArrayDriver.cpp) and
NDFileHDF5's layout code (ADApp/pluginSrc/NDFileHDF5LayoutXML.cpp,
NDFileHDF5Layout.cpp, NDFileHDF5.cpp).  They run on the raw XML tree, so
every problem carries the file name and the line of the element at fault.

*Errors* are things the IOC rejects, or data it silently does not write.
*Warnings* are things it ignores or that only work under a run-time setting.

The real IOC (ADCore R3-14's simDetector, where the tests can run it) is the judge: every rule's
verdict is compared with what it does with the same file in
``tests/test_xml_real_ioc.py`` (table: ``tests/data/real_ioc_xml_verdicts.json``).
Where ADCore accepts what its XSD rejects, the rule is a warning saying so
(``--strict`` turns it into a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adtoolkit.adcore.macros import has_macro
from adtoolkit.adcore.vocabulary import (
    ATTRIBUTE_SOURCES,
    ATTRIBUTE_TYPES,
    AUTOMATIC_ATTRIBUTES,
    CONST_TYPES,
    DATASET_SOURCES,
    DBR_TYPES,
    DETECTOR_DATA_DESTINATION,
    DRIVER_ATTRIBUTES,
    PARAM_DATATYPES,
    WHEN_VALUES,
)
from adtoolkit.adcore.xmlreader import Document, Node, parse_document
from adtoolkit.xml.attributesfile import ATTRIBUTE_KEYS, Attributes
from adtoolkit.xml.layoutfile import DATASET_KEYS, LAYOUT_ATTRIBUTE_KEYS, Layout

ERROR = "error"
WARNING = "warning"
#: Appended where ADCore's XSD and ADCore's code disagree (the code wins).
XSD_ONLY = "the XSD rejects this but ADCore accepts it"
#: Where ophyd's AD_HDF5 handler (area_detector_handlers) reads the frames.
OPHYD_DATA_PATH = "/entry/data/data"


@dataclass(frozen=True)
class Problem:
    """One finding: ``file:line: severity: message``."""

    filename: str
    line: int
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.severity}: {self.message}"


class ValidationError(ValueError):
    """Raised by :func:`check` when there are errors; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _is_namespace_attr(key: str) -> bool:
    return key == "xmlns" or key.startswith("xmlns:") or key.startswith("xsi:")


def _case_hint(name: str, known: Iterable[str]) -> str:
    for k in sorted(known):
        if k.lower() == name.lower():
            return f" (the attributes define {k!r}: names are case-sensitive in the IOC)"
    return ""


def _numbers_ok(value: str, type_: str) -> bool:
    convert = int if type_ == "int" else float
    try:
        for item in value.split(","):
            convert(item.strip())
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- attributes


def validate_attributes_document(doc: Document) -> list[Problem]:
    """Problems of one attributes file, by ``readNDAttributesFile``'s rules."""
    problems: list[Problem] = []

    def report(node: Node, message: str, severity: str = ERROR) -> None:
        problems.append(Problem(doc.filename, node.line, message, severity))

    root = doc.root
    if root.tag != "Attributes":
        report(
            root, f"root element is <{root.tag}>: the IOC needs <Attributes> and rejects the file"
        )
        return problems
    seen: dict[str, Node] = {}
    for node in root.children:
        if node.tag != "Attribute":
            report(
                node,
                f"<{node.tag}> in <Attributes>: the IOC reads every child element as an "
                f"Attribute whatever its tag ({XSD_ONLY})",
                WARNING,
            )
        for key, value in node.attrib.items():
            if key not in ATTRIBUTE_KEYS:
                report(
                    node,
                    f"unknown XML attribute {key}= (ignored by the IOC; names are lower case)",
                    WARNING,
                )
            if has_macro(value):
                report(
                    node,
                    f"{key}={value!r} holds a macro: set NDAttributesMacros, or the IOC uses it literally",
                    WARNING,
                )
        name = node.get("name")
        if name is None:
            report(node, "Attribute without name=: the IOC rejects the whole file")
            continue
        if name in seen:
            report(
                node,
                f"attribute {name!r} is defined again (first at line {seen[name].line}): "
                "the IOC keeps only this last definition",
            )
        seen[name] = node
        if not name or "/" in name or name in (".", ".."):
            report(
                node,
                f"attribute name {name!r} cannot name an HDF5 dataset: the IOC accepts the file "
                "but NDFileHDF5 never writes this attribute",
            )
        if name in AUTOMATIC_ATTRIBUTES or name in DRIVER_ATTRIBUTES:
            report(node, f"attribute {name!r} has the name of one the IOC adds itself", WARNING)
        if node.get("source") is None:
            report(node, f"attribute {name!r} has no source=: the IOC rejects the whole file")
        type_ = node.get("type")
        if type_ is None:
            report(node, f"attribute {name!r} has no type=: the IOC assumes EPICS_PV", WARNING)
            type_ = "EPICS_PV"
        if type_ not in ATTRIBUTE_TYPES:
            hint = f" (did you mean {type_.upper()}?)" if type_.upper() in ATTRIBUTE_TYPES else ""
            report(
                node,
                f"attribute {name!r}: unknown type {type_!r}{hint}; the IOC rejects the whole file "
                f"(valid: {', '.join(ATTRIBUTE_TYPES)})",
            )
            continue
        dbrtype, datatype = node.get("dbrtype"), node.get("datatype")
        if type_ == "EPICS_PV":
            if dbrtype is not None and dbrtype not in DBR_TYPES:
                report(
                    node,
                    f"attribute {name!r}: unknown dbrtype {dbrtype!r}; the IOC rejects the whole file "
                    f"(valid: {', '.join(DBR_TYPES)})",
                )
        elif dbrtype is not None:
            report(
                node, f"attribute {name!r}: dbrtype= is only read for EPICS_PV (ignored)", WARNING
            )
        if type_ == "PARAM":
            if datatype is None:
                report(
                    node,
                    f"PARAM attribute {name!r} has no datatype=: the IOC then uses 'int', which "
                    f"matches nothing, so the attribute has no type and NDFileHDF5 writes a "
                    f"float32 NaN instead of its value (use one of {', '.join(PARAM_DATATYPES)}; "
                    f"{XSD_ONLY})",
                    WARNING,
                )
            elif datatype not in PARAM_DATATYPES:
                hint = (
                    f"; write {datatype.upper()!r} (the IOC compares upper case exactly)"
                    if datatype.upper() in PARAM_DATATYPES
                    else f" (valid: {', '.join(PARAM_DATATYPES)})"
                )
                report(
                    node,
                    f"PARAM attribute {name!r}: datatype {datatype!r} is not recognised, so the "
                    f"attribute has no type and NDFileHDF5 writes a float32 NaN instead of its "
                    f"value{hint}; {XSD_ONLY}",
                    WARNING,
                )
            addr = node.get("addr")
            if addr is not None:
                try:
                    int(addr, 0)
                except ValueError:
                    report(
                        node,
                        f"PARAM attribute {name!r}: addr {addr!r} is not an integer "
                        f"(the IOC reads 0; {XSD_ONLY})",
                        WARNING,
                    )
        elif datatype is not None:
            report(node, f"attribute {name!r}: datatype= is only read for PARAM (ignored)", WARNING)
        if type_ != "FUNCTION" and node.get("param") is not None:
            report(node, f"attribute {name!r}: param= is only read for FUNCTION (ignored)", WARNING)
    return problems


# --------------------------------------------------------------------------- layout


class _LayoutChecker:
    """Walks a layout the way NDFileHDF5's LayoutXML builds its tree."""

    def __init__(self, doc: Document, known: set[str] | None, ophyd: bool = False):
        self.doc = doc
        self.known = known
        self.ophyd = ophyd
        self.problems: list[Problem] = []
        self.paths: dict[str, tuple[str, Node]] = {}  # path -> (kind, node)
        self.ndattr_datasets: list[tuple[str, str, Node]] = []  # (ndattribute, path, node)
        self.hardlinks: list[tuple[str, Node]] = []
        self.det_defaults: list[tuple[str, Node]] = []
        self.detectors: list[tuple[str, Node]] = []
        self.ndattr_default_groups: list[tuple[str, Node]] = []

    def report(self, node: Node, message: str, severity: str = ERROR) -> None:
        self.problems.append(Problem(self.doc.filename, node.line, message, severity))

    # -- helpers
    def check_ndattribute(self, node: Node, name: str, where: str) -> None:
        if self.known is None or name in self.known:
            return
        self.report(
            node,
            f"{where}: NDAttribute {name!r} is not defined by the attributes files nor added by "
            f"the IOC, so nothing is written{_case_hint(name, self.known)}",
        )

    def check_when(self, node: Node, where: str) -> None:
        when = node.get("when")
        if when is not None and when not in WHEN_VALUES:
            self.report(
                node,
                f"{where}: when={when!r} is not known to NDFileHDF5, which treats it as OnFrame "
                f"(valid: {', '.join(WHEN_VALUES)}; {XSD_ONLY})",
                WARNING,
            )

    def check_name(self, node: Node, taken: dict[str, Node], kind: str) -> str | None:
        name = node.get("name")
        # LayoutXML still "closes" a group/dataset it refused, so what follows it in
        # the same group is attached one level up.
        shifted = (
            " (and, as it still closes it, what follows it in this group lands in the parent group)"
            if kind in ("group", "dataset")
            else ""
        )
        if name is None:
            if kind in ("group", "dataset"):
                self.report(
                    node,
                    f"<{kind}> without name=: the IOC (ADCore R3-14) "
                    + ("can crash" if kind == "group" else "crashes")
                    + " when it opens a file with this layout",
                )
            else:
                self.report(node, f"<{kind}> without name=: NDFileHDF5 ignores it")
            return None
        if not name or "/" in name or name in (".", ".."):
            self.report(node, f"<{kind}> name {name!r} is not a valid HDF5 link name")
        if name in taken:
            self.report(
                node,
                f"duplicate name {name!r} in this group (first at line {taken[name].line}): "
                f"NDFileHDF5 rejects the second one and its contents{shifted}",
            )
            return None
        taken[name] = node
        return name

    def check_attributes_of(self, owner: Node, path: str) -> None:
        names: dict[str, Node] = {}
        for node in owner.children:
            if node.tag != "attribute":
                continue
            name = node.get("name")
            where = f"attribute {path}@{name}"
            if name is None:
                self.report(node, "<attribute> without name=: NDFileHDF5 ignores it")
                continue
            if name in names:
                self.report(
                    node,
                    f"duplicate attribute {name!r} on {path or '/'} (first at line {names[name].line}): "
                    "NDFileHDF5 keeps only the first",
                )
            names[name] = node
            for key in node.attrib:
                if key not in LAYOUT_ATTRIBUTE_KEYS:
                    self.report(node, f"{where}: unknown XML attribute {key}= (ignored)", WARNING)
            source = node.get("source")
            if source not in ATTRIBUTE_SOURCES:
                self.report(
                    node,
                    f"{where}: source={source!r} is not one of {', '.join(ATTRIBUTE_SOURCES)}, "
                    "so nothing is written",
                )
                continue
            if source == "ndattribute":
                ndattr = node.get("ndattribute")
                if not ndattr:
                    self.report(
                        node,
                        f"{where}: source='ndattribute' without ndattribute=, nothing is written",
                    )
                else:
                    self.check_ndattribute(node, ndattr, where)
                self.check_when(node, where)
            else:
                self.check_constant(node, where, dataset=False)

    def check_constant(self, node: Node, where: str, dataset: bool) -> None:
        type_ = node.get("type")
        value = node.get("value")
        if type_ is None:
            if dataset:
                self.report(
                    node,
                    f"{where}: constant dataset without type=: NDFileHDF5 writes an empty string "
                    'instead of the value (add type="string", "int" or "float")',
                )
            return
        if type_ not in CONST_TYPES:
            self.report(
                node,
                f"{where}: type={type_!r} is not one of {', '.join(CONST_TYPES)} "
                f"(NDFileHDF5 writes it as a string; {XSD_ONLY})",
                WARNING,
            )
            return
        if value is None:
            self.report(node, f"{where}: constant without value=", WARNING)
        elif type_ in ("int", "float") and not _numbers_ok(value, type_):
            self.report(
                node,
                f"{where}: value {value!r} is not a comma list of {type_} numbers "
                "(NDFileHDF5 writes an empty dataset)",
            )

    # -- walking
    def run(self) -> list[Problem]:
        root = self.doc.root
        if root.tag != "hdf5_layout":
            self.report(
                root,
                f"root element is <{root.tag}>: NDFileHDF5 does not check the root's name and "
                f"reads it as <hdf5_layout> ({XSD_ONLY})",
                WARNING,
            )
        for key, value in root.attrib.items():
            if key == "auto_ndattr_default":
                if value not in ("true", "false"):
                    self.report(
                        root,
                        f"auto_ndattr_default={value!r}: NDFileHDF5 only understands 'true' or 'false' "
                        "(it keeps true)",
                    )
            elif not _is_namespace_attr(key):
                self.report(
                    root, f"unknown XML attribute {key}= on <hdf5_layout> (ignored)", WARNING
                )
        taken: dict[str, Node] = {}
        globals_seen: dict[str, Node] = {}
        for node in root.children:
            if node.tag == "global" and node.get("name") in globals_seen:
                first = globals_seen[node.get("name")]
                self.report(
                    node,
                    f"<global name={node.get('name')!r}> again (first at line {first.line}): "
                    "NDFileHDF5 keeps only this last one",
                    WARNING,
                )
            if node.tag == "global" and node.get("name") is not None:
                globals_seen.setdefault(node.get("name"), node)
            if node.tag == "group":
                name = self.check_name(node, taken, "group")
                if name is not None:
                    self.walk_group(node, f"/{name}")
            elif node.tag == "global":
                self.check_global(node)
            elif node.tag in ("dataset", "hardlink", "attribute"):
                self.report(
                    node,
                    f"<{node.tag}> directly in <hdf5_layout>: the IOC (ADCore R3-14) crashes "
                    "when it opens a file with this layout (put it in a group)",
                )
            else:
                self.report(
                    node,
                    f"unknown element <{node.tag}>: NDFileHDF5 ignores it ({XSD_ONLY})",
                    WARNING,
                )
        self.check_tree()
        if self.ophyd:
            self.check_ophyd_link()
        return self.problems

    def check_ophyd_link(self) -> None:
        """ophyd's AD_HDF5 handler (area_detector_handlers) reads /entry/data/data."""
        kind, node = self.paths.get(OPHYD_DATA_PATH, (None, None))
        if kind == "hardlink":
            target = node.get("target") or ""
            norm = "/" + "/".join(p for p in target.split("/") if p)
            kind = self.paths.get(norm, (None, None))[0]
        if kind != "detector":
            self.report(
                node or self.doc.root,
                f"{OPHYD_DATA_PATH} is not the detector data: ophyd's AD_HDF5 handler reads "
                "the frames from there (add a hardlink to the detector dataset)",
                WARNING,
            )

    def check_global(self, node: Node) -> None:
        name, ndattr = node.get("name"), node.get("ndattribute")
        if name != DETECTOR_DATA_DESTINATION:
            self.report(
                node, f"<global name={name!r}>: only {DETECTOR_DATA_DESTINATION!r} is used", WARNING
            )
        if not ndattr:
            self.report(node, "<global> without ndattribute=: NDFileHDF5 ignores it")
        else:
            self.check_ndattribute(node, ndattr, f"global {name}")

    def walk_group(self, node: Node, path: str) -> None:
        self.paths[path] = ("group", node)
        for key, value in node.attrib.items():
            if key == "ndattr_default":
                if value == "true":
                    self.ndattr_default_groups.append((path, node))
                elif value != "false":
                    self.report(
                        node,
                        f"group {path}: ndattr_default={value!r}, only 'true' is recognised "
                        f"(NDAttributes go to the default place; {XSD_ONLY})",
                        WARNING,
                    )
            elif key != "name":
                self.report(node, f"group {path}: unknown XML attribute {key}= (ignored)", WARNING)
        self.check_attributes_of(node, path)
        taken: dict[str, Node] = {}
        for child in node.children:
            if child.tag == "attribute":
                continue
            if child.tag not in ("group", "dataset", "hardlink"):
                self.report(
                    child,
                    f"unknown element <{child.tag}> in group {path}: NDFileHDF5 ignores it "
                    f"({XSD_ONLY})",
                    WARNING,
                )
                continue
            name = self.check_name(child, taken, child.tag)
            if name is None:
                continue
            child_path = f"{path}/{name}"
            if child.tag == "group":
                self.walk_group(child, child_path)
            elif child.tag == "dataset":
                self.walk_dataset(child, child_path)
            else:
                self.paths[child_path] = ("hardlink", child)
                target = child.get("target")
                if target is None:
                    self.report(
                        child, f"hardlink {child_path} without target=: NDFileHDF5 ignores it"
                    )
                else:
                    self.hardlinks.append((child_path, child))

    def walk_dataset(self, node: Node, path: str) -> None:
        where = f"dataset {path}"
        for key in node.attrib:
            if key not in DATASET_KEYS:
                self.report(node, f"{where}: unknown XML attribute {key}= (ignored)", WARNING)
        for child in node.children:
            if child.tag != "attribute":
                self.report(
                    child,
                    f"<{child.tag}> inside {where}: a dataset holds only <attribute> "
                    "(the IOC, ADCore R3-14, crashes when it opens a file with this layout)",
                )
        self.check_attributes_of(node, path)
        source = node.get("source")
        det_default = node.get("det_default")
        if det_default is not None and det_default not in ("true", "false"):
            self.report(node, f"{where}: det_default={det_default!r}, only 'true' is recognised")
        is_perf = path.endswith("/performance/timestamp")
        if source is None:
            if is_perf:
                self.paths[path] = ("performance", node)
            else:
                self.report(
                    node,
                    f"{where} has no source=, nothing is written (use {', '.join(DATASET_SOURCES)})",
                )
            return
        if source not in DATASET_SOURCES:
            self.report(
                node, f"{where}: source={source!r} is not one of {', '.join(DATASET_SOURCES)}"
            )
            return
        if node.get("when") is not None and source != "ndattribute":
            self.report(
                node, f"{where}: when= is only read for source='ndattribute' (ignored)", WARNING
            )
        if source == "detector":
            self.paths[path] = ("detector", node)
            self.detectors.append((path, node))
            if det_default == "true":
                self.det_defaults.append((path, node))
        elif source == "ndattribute":
            ndattr = node.get("ndattribute")
            if not ndattr:
                extra = (
                    "; NDFileHDF5 never creates it and writes the performance timing into the "
                    "ndattr_default group instead (drop source= for a performance dataset)"
                    if is_perf
                    else ", so it is never created"
                )
                self.report(node, f"{where}: source='ndattribute' without ndattribute={extra}")
                return
            self.paths[path] = ("ndattribute", node)
            self.check_ndattribute(node, ndattr, where)
            self.check_when(node, where)
            self.ndattr_datasets.append((ndattr, path, node))
        else:
            self.paths[path] = ("constant", node)
            self.check_constant(node, where, dataset=True)

    def _ioc_search_order(self, path: str) -> tuple:
        """Sort key of NDFileHDF5's find_dset_ndattr: datasets of a group (by name)
        before its sub-groups (by name), depth first."""
        parts = path.strip("/").split("/")
        key = []
        for i, part in enumerate(parts):
            is_last = i == len(parts) - 1
            key.append((0 if is_last else 1, part))
        return tuple(key)

    def check_tree(self) -> None:
        # one dataset per NDAttribute: NDFileHDF5 fills the first it finds
        by_name: dict[str, list[tuple[str, Node]]] = {}
        for ndattr, path, node in self.ndattr_datasets:
            by_name.setdefault(ndattr, []).append((path, node))
        for ndattr, uses in by_name.items():
            if len(uses) < 2:
                continue
            winner = min(uses, key=lambda u: self._ioc_search_order(u[0]))
            for path, node in uses:
                if path != winner[0]:
                    self.report(
                        node,
                        f"dataset {path}: NDAttribute {ndattr!r} is already the source of "
                        f"{winner[0]} (line {winner[1].line}); NDFileHDF5 fills only that one "
                        "and never creates this dataset",
                    )
        # detector datasets
        root = self.doc.root
        if not self.detectors:
            self.report(
                root, "no dataset with source='detector': NDFileHDF5 fails to open the file"
            )
        if len(self.det_defaults) > 1:
            first = self.det_defaults[0]
            for path, node in self.det_defaults[1:]:
                self.report(
                    node,
                    f"dataset {path}: a second det_default (first: {first[0]}, line {first[1].line}); "
                    f"only one dataset can be the default ({XSD_ONLY})",
                    WARNING,
                )
        has_global = any(c.tag == "global" for c in root.children)
        if len(self.detectors) > 1 and not self.det_defaults:
            first = min(self.detectors, key=lambda u: self._ioc_search_order(u[0]))
            self.report(
                self.detectors[0][1],
                f"several detector datasets and no det_default: NDFileHDF5 uses {first[0]}"
                + ("" if has_global else " for every frame"),
                WARNING,
            )
        if len(self.ndattr_default_groups) > 1:
            for path, node in self.ndattr_default_groups[1:]:
                self.report(
                    node,
                    f"group {path}: another ndattr_default group (first: "
                    f"{self.ndattr_default_groups[0][0]}); NDFileHDF5 uses only one",
                    WARNING,
                )
        # NDAttributes with no place at all
        auto_default = root.get("auto_ndattr_default") != "false"
        if not self.ndattr_default_groups and not auto_default and self.known is not None:
            placed_names = {n for n, _, _ in self.ndattr_datasets}
            lost = sorted(self.known - placed_names - set(AUTOMATIC_ATTRIBUTES))
            if lost:
                self.report(
                    root,
                    "auto_ndattr_default='false' and no ndattr_default group: NDAttributes "
                    f"without a dataset are not written ({', '.join(lost)}, and the NDArray* ones)",
                    WARNING,
                )
        # hard links
        default_group = self.ndattr_default_groups[0][0] if self.ndattr_default_groups else None
        placed = {n for n, _, _ in self.ndattr_datasets}
        unplaced = self.known - placed if self.known is not None else set()
        for path, node in self.hardlinks:
            target = node.get("target") or ""
            where = f"hardlink {path}"
            if not target.startswith("/"):
                self.report(node, f"{where}: target {target!r} must be an absolute path")
                continue
            norm = "/" + "/".join(p for p in target.split("/") if p)
            kind = self.paths.get(norm, (None, None))[0]
            auto = (
                default_group is not None
                and norm.rsplit("/", 1)[0] == default_group
                and norm.rsplit("/", 1)[1] in unplaced
            )
            if kind is None and auto:
                kind = "ndattribute"
            if kind is None:
                self.report(node, f"{where}: target {target} does not exist in the layout")
            elif kind == "ndattribute":
                self.report(
                    node,
                    f"{where}: target {target} is an NDAttribute dataset, which exists only "
                    "when StoreAttr=Yes (otherwise the link fails)",
                    WARNING,
                )
            elif kind == "performance":
                self.report(
                    node,
                    f"{where}: target {target} exists only when StorePerform=Yes",
                    WARNING,
                )


def validate_layout_document(
    doc: Document, attributes: Iterable[str] | None = None, ophyd: bool = False
) -> list[Problem]:
    """Problems of one layout file, by NDFileHDF5's layout rules.

    ``attributes`` are the NDAttribute names the files define; the IOC's own
    (NDArray* and ColorMode) are added.  With ``None`` the ``ndattribute=``
    names are not checked.  ``ophyd=True`` also warns when ``/entry/data/data``
    is not the detector data, where ophyd's AD_HDF5 handler reads frames.
    """
    known = None
    if attributes is not None:
        known = set(attributes) | set(AUTOMATIC_ATTRIBUTES) | set(DRIVER_ATTRIBUTES)
    return _LayoutChecker(doc, known, ophyd).run()


# --------------------------------------------------------------------------- front ends


def validate(
    obj: Attributes | Layout,
    attributes: Attributes | Iterable[str] | None = None,
    ophyd: bool = False,
) -> list[Problem]:
    """Validate a model (checked on its XML, so line numbers refer to ``obj.to_xml()``)."""
    name = "<layout>" if isinstance(obj, Layout) else "<attributes>"
    doc = parse_document(obj.to_xml(), filename=name)
    if isinstance(obj, Attributes):
        return validate_attributes_document(doc)
    names = None
    if attributes is not None:
        names = attributes.names if isinstance(attributes, Attributes) else list(attributes)
    return validate_layout_document(doc, names, ophyd)


def check(obj: Attributes | Layout, attributes: Attributes | Iterable[str] | None = None) -> None:
    """Raise :class:`ValidationError` if :func:`validate` finds errors."""
    errors = [p for p in validate(obj, attributes) if p.severity == ERROR]
    if errors:
        raise ValidationError(errors)


def validate_files(paths: Sequence[str | os.PathLike], ophyd: bool = False) -> list[Problem]:
    """Validate attributes and layout files together: every layout is cross-checked
    against the NDAttributes of all the attributes files given (cam + plugins)."""
    from adtoolkit.adcore.xmlreader import XMLParseError, XMLSecurityError

    problems: list[Problem] = []
    layouts: list[Document] = []
    names: list[str] = []
    have_attributes = False
    for path in paths:
        try:
            doc = parse_document(path)
        except (XMLParseError, XMLSecurityError, FileNotFoundError) as exc:
            line = getattr(exc, "line", 0)
            text = getattr(exc, "message", None) or str(exc).split(": ", 1)[-1]
            if isinstance(exc, XMLSecurityError) and "entity declaration" in text:
                # measured: libxml2 in ADCore expands internal entities and accepts the file
                text += (
                    " (ADCore itself would expand this internal entity and accept the file; "
                    "adtoolkit refuses entities on purpose)"
                )
            problems.append(Problem(str(path), line, text))
            continue
        if doc.root.tag == "Attributes":
            have_attributes = True
            problems += validate_attributes_document(doc)
            names += [n.get("name") for n in doc.root.children if n.get("name")]
        elif doc.root.tag == "hdf5_layout" or any(c.tag == "group" for c in doc.root.children):
            # NDFileHDF5 reads any root as a layout (measured: <layout> is accepted)
            layouts.append(doc)
        else:
            problems.append(
                Problem(
                    doc.filename,
                    doc.root.line,
                    f"root element <{doc.root.tag}> is neither <Attributes> nor <hdf5_layout>"
                    + (
                        " (this is a template for the NDFileNexus plugin, not NDFileHDF5)"
                        if doc.root.tag == "NXroot"
                        else ""
                    ),
                )
            )
    for doc in layouts:
        problems += validate_layout_document(doc, names if have_attributes else None, ophyd)
    return problems
