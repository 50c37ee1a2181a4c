"""Build attributes and layout models from a short YAML or TOML spec.

Attributes spec (a list, or a mapping with an ``attributes`` list)::

    attributes:
      - {name: Temp, pv: "IOC:temp", dbrtype: DBR_DOUBLE, description: sample temperature}
      - {name: Counter, param: ARRAY_COUNTER, datatype: INT}
      - {name: Pi, function: myAttrFunct1, arg: PI}
      - {name: Beamline, const: BL-1}
      - {name: Raw, type: EPICS_PV, source: "IOC:raw"}     # the XML's own keys also work

Layout spec, one of::

    default: true                                  # ADCore's built-in layout
    nexus: true                                    # the NeXus manual's layout
    nexus: {attributes: attrs.xml, placement: {Temp: detector}}   # NeXus from attributes

or a tree (keys of a group are processed in the order written)::

    auto_ndattr_default: false                     # optional
    detector_data_destination: Dest                # optional
    groups:
      - name: entry
        nx_class: NXentry
        attributes: {title: "my run", started: {ndattribute: StartTime, when: OnFileOpen}}
        datasets:
          - {name: data, source: detector, det_default: true}
          - {name: temperature, ndattribute: Temp, when: OnFileClose}
          - {name: pixel_size, value: [0.172, 0.172], type: float}
        hardlinks: {data: /entry/instrument/detector/data}
        groups: [...]
        ndattr_default: true

Paths inside a spec are relative to the spec file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adtoolkit.xml.attributesfile import Attributes, parse_attributes
from adtoolkit.xml.layoutfile import Dataset, Group, HardLink, Layout, LayoutAttribute
from adtoolkit.xml.layouts import nexus_layout, nexus_layout_from_attributes


class SpecError(ValueError):
    """A spec that cannot be turned into a model; names the file and the key."""


def load_spec(path: str | os.PathLike) -> Any:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file; other extensions try YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec: {exc.strerror}") from None
    if len(text) > 1024 * 1024:
        raise SpecError(f"{path}: spec over 1 MiB")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: invalid TOML: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _mapping(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _no_extra(entry: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


# --------------------------------------------------------------------------- attributes

_SHORT_TYPES = {"pv": "EPICS_PV", "param": "PARAM", "function": "FUNCTION", "const": "CONST"}
_ATTRIBUTE_KEYS = {"name", "type", "source", "dbrtype", "datatype", "addr", "arg", "description"}


def attributes_from_spec(data: Any, where: str = "spec") -> Attributes:
    """Turn a parsed attributes spec into :class:`Attributes` (builders check values)."""
    entries = data.get("attributes") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise SpecError(f"{where}: expected a list of attributes (or a mapping with 'attributes:')")
    result = Attributes()
    for i, raw in enumerate(entries):
        here = f"{where}: attributes[{i}]"
        entry = dict(_mapping(raw, here))
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(f"{here}: needs a name")
        here = f"{where}: attribute {name!r}"
        shorts = [k for k in _SHORT_TYPES if k in entry]
        if len(shorts) > 1:
            raise SpecError(f"{here}: give only one of {', '.join(shorts)}")
        if shorts:
            if "type" in entry or "source" in entry:
                raise SpecError(f"{here}: use either {shorts[0]}: or type:/source:, not both")
            entry["type"] = _SHORT_TYPES[shorts[0]]
            entry["source"] = entry.pop(shorts[0])
        _no_extra(entry, _ATTRIBUTE_KEYS, here)
        type_ = str(entry.get("type", "EPICS_PV")).upper()
        source = entry.get("source")
        if source is None:
            raise SpecError(f"{here}: needs a source (pv:, param:, function: or const:)")
        description = entry.get("description")
        if description is not None:
            description = str(description)
        try:
            if type_ == "EPICS_PV":
                result.pv(name, str(source), entry.get("dbrtype", "DBR_NATIVE"), description)
            elif type_ == "PARAM":
                result.param(
                    name, str(source), entry.get("datatype", "INT"), entry.get("addr"), description
                )
            elif type_ == "FUNCTION":
                arg = entry.get("arg")
                result.function(name, str(source), None if arg is None else str(arg), description)
            elif type_ == "CONST":
                result.const(name, str(source), description)
            else:
                raise ValueError(f"type {type_!r} is not EPICS_PV, PARAM, FUNCTION or CONST")
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{here}: {exc}") from None
        for key, xml_key in (("dbrtype", "EPICS_PV"), ("datatype", "PARAM"), ("arg", "FUNCTION")):
            if key in entry and type_ != xml_key:
                raise SpecError(f"{here}: {key}: only applies to {xml_key} attributes")
    return result


# --------------------------------------------------------------------------- layout


def _layout_attributes(value: Any, where: str) -> list[LayoutAttribute]:
    out = []
    for name, spec in _mapping(value, where).items():
        here = f"{where}.{name}"
        try:
            if isinstance(spec, Mapping):
                _no_extra(spec, {"value", "type", "ndattribute", "when"}, here)
                if "ndattribute" in spec:
                    out.append(
                        LayoutAttribute.from_ndattribute(
                            str(name), spec["ndattribute"], spec.get("when")
                        )
                    )
                elif "value" in spec:
                    out.append(LayoutAttribute.constant(str(name), spec["value"], spec.get("type")))
                else:
                    raise SpecError(f"{here}: needs value: or ndattribute:")
            else:
                out.append(LayoutAttribute.constant(str(name), spec))
        except SpecError:
            raise
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{here}: {exc}") from None
    return out


_DATASET_KEYS = {
    "name",
    "source",
    "value",
    "type",
    "ndattribute",
    "when",
    "det_default",
    "attributes",
}


def _dataset(raw: Any, where: str) -> Dataset:
    entry = _mapping(raw, where)
    _no_extra(entry, _DATASET_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: needs a name")
    here = f"{where} ({name})"
    source = entry.get("source")
    if source is None:
        source = (
            "ndattribute"
            if "ndattribute" in entry
            else "constant"
            if "value" in entry
            else "detector"
        )
    try:
        if source == "detector":
            dataset = Dataset.detector(name, default=bool(entry.get("det_default", False)))
        elif source == "ndattribute":
            dataset = Dataset.from_ndattribute(name, entry.get("ndattribute"), entry.get("when"))
        elif source == "constant":
            if "value" not in entry:
                raise SpecError(f"{here}: a constant dataset needs value:")
            dataset = Dataset.constant(name, entry["value"], entry.get("type"))
        else:
            raise SpecError(
                f"{here}: source must be detector, ndattribute or constant, not {source!r}"
            )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{here}: {exc}") from None
    if "attributes" in entry:
        dataset.attributes += _layout_attributes(entry["attributes"], f"{here}.attributes")
    return dataset


_GROUP_KEYS = {
    "name",
    "nx_class",
    "ndattr_default",
    "attributes",
    "datasets",
    "groups",
    "hardlinks",
}


def _group(raw: Any, where: str) -> Group:
    entry = _mapping(raw, where)
    _no_extra(entry, _GROUP_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: needs a name")
    here = f"{where} ({name})"
    group = Group(
        name, entry.get("nx_class"), ndattr_default=bool(entry.get("ndattr_default", False))
    )
    try:
        for key, value in entry.items():
            if key == "attributes":
                group.attributes += _layout_attributes(value, f"{here}.attributes")
            elif key == "datasets":
                for i, d in enumerate(_list(value, f"{here}.datasets")):
                    group.add(_dataset(d, f"{here}.datasets[{i}]"))
            elif key == "groups":
                for i, g in enumerate(_list(value, f"{here}.groups")):
                    group.add(_group(g, f"{here}.groups[{i}]"))
            elif key == "hardlinks":
                for link, target in _mapping(value, f"{here}.hardlinks").items():
                    group.add(HardLink(str(link), str(target)))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{here}: {exc}") from None
    return group


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list")
    return value


def layout_from_spec(data: Any, where: str = "spec", base: Path | None = None) -> Layout:
    """Turn a parsed layout spec into a :class:`Layout`."""
    spec = _mapping(data, where)
    base = base or Path.cwd()
    if spec.get("default"):
        _no_extra(spec, {"default"}, where)
        return Layout.default()
    if "nexus" in spec:
        _no_extra(spec, {"nexus"}, where)
        nexus = spec["nexus"]
        if nexus is True:
            return nexus_layout()
        nexus = _mapping(nexus, f"{where}: nexus")
        _no_extra(nexus, {"attributes", "placement", "as_published"}, f"{where}: nexus")
        if "attributes" not in nexus:
            return nexus_layout(as_published=bool(nexus.get("as_published", False)))
        attrs = parse_attributes(base / str(nexus["attributes"]))
        try:
            return nexus_layout_from_attributes(attrs, placement=nexus.get("placement"))
        except ValueError as exc:
            raise SpecError(f"{where}: nexus: {exc}") from None
    _no_extra(spec, {"groups", "auto_ndattr_default", "detector_data_destination"}, where)
    layout = Layout(auto_ndattr_default=bool(spec.get("auto_ndattr_default", True)))
    if spec.get("detector_data_destination"):
        layout.detector_data_destination(str(spec["detector_data_destination"]))
    for i, g in enumerate(_list(spec.get("groups", []), f"{where}: groups")):
        try:
            layout.add(_group(g, f"{where}: groups[{i}]"))
        except ValueError as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(f"{where}: groups[{i}]: {exc}") from None
    return layout


__all__ = ["SpecError", "attributes_from_spec", "layout_from_spec", "load_spec"]
