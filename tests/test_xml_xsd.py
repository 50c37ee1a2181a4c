"""Generated files pass ADCore's own XSDs, except where the XSD is wrong.

The XSDs are read from the shared reference directory (``../shared`` beside the
clone, /work/shared for worktrees, or ``$ADTOOLKIT_SHARED``); the tests skip with
that reason when it is absent.  The XSD defects we excuse, each checked to be real
below so the excuse cannot hide anything else:

- NDAttributes.xsd lists types PARAM, EPICS_PV, FUNCTION only; the IOC also reads CONST
  (whose source is a free-text value, so the XSD's source pattern does not fit it either).
- NDAttributes.xsd lists datatypes INT, DOUBLE, STRING; the IOC also reads INT64.
- hdf5_xml_layout_schema.xsd requires ``source`` on every dataset, but ADCore's own
  built-in layout has ``performance/timestamp`` without one, which is how NDFileHDF5
  recognises the performance dataset.
- hdf5_xml_layout_schema.xsd's ``when`` on datasets lists OnFileWrite (which the IOC
  treats as OnFrame) and not OnFrame (ADCore issue 435); builders never emit OnFrame.
- hdf5_xml_layout_schema.xsd does not declare ``auto_ndattr_default`` on ``<hdf5_layout>``,
  the root's only attribute NDFileHDF5 reads (``LayoutXML::parse_root``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adtoolkit.xml import (
    Attributes,
    Dataset,
    Group,
    HardLink,
    Layout,
    nexus_layout,
    nexus_layout_from_attributes,
    parse,
)

xmlschema = pytest.importorskip("xmlschema", reason="xmlschema (test extra) is not installed")

DATA = Path(__file__).parent / "data" / "xml"


def shared_dir() -> Path | None:
    """$ADTOOLKIT_SHARED if set, else ../shared beside the clone (or beside the
    worktrees' directory, /work/wt/<name> -> /work/shared)."""
    here = Path(__file__).resolve()
    if os.environ.get("ADTOOLKIT_SHARED"):
        candidates = [Path(os.environ["ADTOOLKIT_SHARED"])]
    else:
        candidates = [here.parents[2] / "shared", here.parents[3] / "shared"]
    for candidate in candidates:
        if (candidate / "reference" / "adcore").is_dir():
            return candidate
    return None


SHARED = shared_dir()
pytestmark = pytest.mark.skipif(
    SHARED is None,
    reason="ADCore XSDs not found: no ../shared/reference/adcore beside the clone and no $ADTOOLKIT_SHARED",
)


@pytest.fixture(scope="module")
def layout_xsd():
    return xmlschema.XMLSchema(
        str(SHARED / "reference/adcore/ADCore_XML_schema_hdf5_xml_layout_schema.xsd")
    )


@pytest.fixture(scope="module")
def attributes_xsd():
    return xmlschema.XMLSchema(str(SHARED / "reference/adcore/ADCore_XML_schema_NDAttributes.xsd"))


def is_known_xsd_defect(error) -> bool:
    elem = error.elem
    attrib = dict(elem.attrib) if elem is not None else {}
    reason = error.reason or ""
    if elem is not None and elem.tag == "Attribute":
        if attrib.get("type") == "CONST" and (
            "attribute type='CONST'" in reason or "attribute source=" in reason
        ):
            return True
        if attrib.get("datatype") == "INT64" and "attribute datatype='INT64'" in reason:
            return True
    if elem is not None and elem.tag == "hdf5_layout":
        if "'auto_ndattr_default' attribute not allowed" in reason:
            return True
    if elem is not None and elem.tag == "dataset":
        if attrib.get("name") == "timestamp" and "source" not in attrib and "'source'" in reason:
            return True
    return False


def xsd_errors(schema, text: str) -> list[str]:
    return [f"{e.path}: {e.reason}" for e in schema.iter_errors(text) if not is_known_xsd_defect(e)]


def all_attributes_files():
    return sorted(p for p in DATA.glob("*.xml") if isinstance(parse(p), Attributes))


GENERATED_LAYOUTS = {
    "default": Layout.default,
    "nexus": nexus_layout,
    "nexus_as_published": lambda: nexus_layout(as_published=True),
    "builder": lambda: (
        Layout(auto_ndattr_default=False)
        .detector_data_destination("Dest")
        .add(
            Group("entry", "NXentry")
            .attr("numbers", [1, 2, 3])
            .attr_from("started", "StartTime", when="OnFileOpen")
            .add(
                Dataset.detector("data").attr("gain", 2.5),
                Dataset.detector("dark", default=False),
                Dataset.from_ndattribute("t", "Temp", when="OnFileClose"),
                Dataset.from_ndattribute("u", "Temp2", when="OnFrame"),
                Dataset.constant("title", "a title"),
                Group("links").add(HardLink("data", "/entry/data")),
                Group("meta", ndattr_default=True),
            )
        )
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED_LAYOUTS))
def test_generated_layouts_pass_the_xsd(layout_xsd, name):
    assert xsd_errors(layout_xsd, GENERATED_LAYOUTS[name]().to_xml()) == []


@pytest.mark.parametrize("path", all_attributes_files(), ids=lambda p: p.name)
def test_nexus_layouts_from_every_example_attributes_file_pass_the_xsd(layout_xsd, path):
    assert xsd_errors(layout_xsd, nexus_layout_from_attributes(parse(path)).to_xml()) == []


@pytest.mark.parametrize("path", all_attributes_files(), ids=lambda p: p.name)
def test_regenerated_example_attributes_pass_the_xsd(attributes_xsd, path):
    assert xsd_errors(attributes_xsd, parse(path).to_xml()) == []


def test_built_attributes_pass_the_xsd(attributes_xsd):
    attrs = (
        Attributes()
        .pv("T", "P:T", dbrtype="DBR_STRING", description="x")
        .param("C", "ARRAY_COUNTER", addr=0)
        .param("L", "BIG", datatype="INT64")
        .const("K", "value")
        .function("F", "myAttrFunct1", param="PI")
    )
    assert xsd_errors(attributes_xsd, attrs.to_xml()) == []


def test_excused_defects_are_real_and_nothing_else_is_excused(attributes_xsd, layout_xsd):
    attrs = Attributes().const("K", "v").param("L", "BIG", datatype="INT64")
    raw = list(attributes_xsd.iter_errors(attrs.to_xml()))
    assert len(raw) == 2 and all(is_known_xsd_defect(e) for e in raw)
    raw = list(layout_xsd.iter_errors(Layout.default().to_xml()))
    assert len(raw) == 1 and is_known_xsd_defect(raw[0])
    raw = list(layout_xsd.iter_errors(Layout(auto_ndattr_default=False).to_xml()))
    assert len(raw) == 1 and is_known_xsd_defect(raw[0])
    # a dataset without source other than performance/timestamp is not excused
    bad = Layout().add(Group("g").add(Dataset.detector(), Dataset("x", source=None)))
    assert len(xsd_errors(layout_xsd, bad.to_xml())) == 1
