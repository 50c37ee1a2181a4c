"""Build, check and install ADCore's attributes.xml and HDF5 layout.xml files.

The user-facing, strict package: typed models with notebook-friendly builders,
each with its XML reading and writing (:mod:`.attributesfile`, :mod:`.layoutfile`),
ready-made layouts (:mod:`.layouts`), a validator applying the
IOC's real rules with file:line messages (:mod:`.validator`) and installation on
a detector (:mod:`.install`).  Reading XML, the vocabulary and ADCore's default
layout come from :mod:`adtoolkit.adcore`, shared with the simulated IOC.
"""

from adtoolkit.adcore.xmlreader import XMLParseError, XMLSecurityError
from adtoolkit.xml.attributesfile import Attribute, Attributes, parse_attributes
from adtoolkit.xml.layoutfile import (
    Dataset,
    Global,
    Group,
    HardLink,
    Layout,
    LayoutAttribute,
    parse_layout,
)
from adtoolkit.xml.layouts import (
    default_layout,
    is_detector_setting,
    nexus_layout,
    nexus_layout_from_attributes,
)
from adtoolkit.xml.parsing import parse
from adtoolkit.xml.validator import Problem, ValidationError, check, validate, validate_files
from adtoolkit.xml.xmltext import XMLStructureError

__all__ = [
    "Attribute",
    "Attributes",
    "Dataset",
    "Global",
    "Group",
    "HardLink",
    "Layout",
    "LayoutAttribute",
    "Problem",
    "ValidationError",
    "XMLParseError",
    "XMLSecurityError",
    "XMLStructureError",
    "check",
    "default_layout",
    "is_detector_setting",
    "nexus_layout",
    "nexus_layout_from_attributes",
    "parse",
    "parse_attributes",
    "parse_layout",
    "validate",
    "validate_files",
]
