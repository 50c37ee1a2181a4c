"""Models, builders, XML round trips, atomic writes and the ready-made layouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adtoolkit.adcore.xmlreader import parse_document
from adtoolkit.xml import (
    Attribute,
    Attributes,
    Dataset,
    Group,
    HardLink,
    Layout,
    LayoutAttribute,
    XMLStructureError,
    nexus_layout,
    nexus_layout_from_attributes,
    parse,
    parse_attributes,
    parse_layout,
    validate,
)

DATA = Path(__file__).parent / "data" / "xml"
EXAMPLES = sorted(DATA.glob("*.xml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_round_trips_exactly(path):
    model = parse(path)
    text = model.to_xml()
    again = type(model).parse(text)
    assert again == model
    assert again.to_xml() == text


def test_round_trip_keeps_every_xml_attribute_value():
    """Comments aside, the model keeps each element's XML attributes verbatim."""
    path = DATA / "ADSimDetector_iocHDF5Test_test1_layout.xml"
    original = parse_document(path)
    rewritten = parse_document(parse_layout(path).to_xml())

    def flat(node):
        out = [(node.tag, sorted(node.attrib.items()))]
        for child in node.children:
            out += flat(child)
        return out

    # attributes of an element are written before its sub-elements: compare as multisets
    assert sorted(map(repr, flat(original.root))) == sorted(map(repr, flat(rewritten.root)))


def test_attributes_builder_reads_naturally():
    attrs = (
        Attributes()
        .pv("Temp", "IOC:temp", dbrtype="DBR_DOUBLE", description="sample temperature")
        .param("Counter", "ARRAY_COUNTER", datatype="INT")
        .param("Gain", "GAIN", datatype="double")
        .const("Beamline", "BL-1")
        .function("Pi", "myAttrFunct1", param="PI")
    )
    assert attrs.names == ["Temp", "Counter", "Gain", "Beamline", "Pi"]
    assert attrs["Gain"].datatype == "DOUBLE"  # normalised to the case the IOC compares
    xml = attrs.to_xml()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Attributes>\n')
    assert (
        '<Attribute name="Temp" type="EPICS_PV" source="IOC:temp" dbrtype="DBR_DOUBLE" '
        'description="sample temperature"/>' in xml
    )
    assert '<Attribute name="Beamline" type="CONST" source="BL-1"/>' in xml
    assert parse_attributes(xml) == attrs
    assert validate(attrs) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: a.param("X", "GAIN", datatype="FLOAT"), "datatype 'FLOAT'"),
        (lambda a: a.pv("X", "P:x", dbrtype="DBR_TIME"), "dbrtype 'DBR_TIME'"),
        (lambda a: a.const("Temp", "again"), "already defined"),
    ],
)
def test_attributes_builder_refuses_what_the_ioc_would_not_use(call, message):
    attrs = Attributes().pv("Temp", "IOC:temp")
    with pytest.raises(ValueError, match=message):
        call(attrs)


def test_layout_builder_and_find():
    layout = Layout().add(
        Group("entry", nx_class="NXentry").add(
            Group("instrument", "NXinstrument").add(
                Group("detector", "NXdetector").add(
                    Dataset.detector("data").attr("signal", 1),
                    Dataset.from_ndattribute("temperature", "Temp", when="OnFileClose").attr(
                        "units", "K"
                    ),
                    Dataset.constant("pixel_size", [0.172, 0.172]).attr("units", "mm"),
                ),
                Group("NDAttributes", "NXcollection", ndattr_default=True),
            ),
            Group("data", "NXdata").add(HardLink("data", "/entry/instrument/detector/data")),
        )
    )
    data = layout.find("/entry/instrument/detector/data")
    assert isinstance(data, Dataset) and data.det_default
    assert data.attributes == [LayoutAttribute("signal", "constant", "1", "int")]
    pixel = layout.find("/entry/instrument/detector/pixel_size")
    assert (pixel.value, pixel.type) == ("0.172,0.172", "float")
    assert layout.find("/entry/data/data") == HardLink("data", "/entry/instrument/detector/data")
    assert layout.ndattributes() == ["Temp"]
    xml = layout.to_xml()
    assert (
        '<dataset name="temperature" source="ndattribute" ndattribute="Temp" when="OnFileClose">'
        in xml
    )
    assert parse_layout(xml) == layout
    assert validate(layout, ["Temp"]) == []
    with pytest.raises(KeyError):
        layout.find("/entry/nothing")


def test_layout_builder_refuses_duplicates_and_top_level_datasets():
    group = Group("entry").add(Dataset.detector("data"))
    with pytest.raises(ValueError, match="already has a member named 'data'"):
        group.add(Group("data"))
    with pytest.raises(TypeError, match="never creates a top-level Dataset"):
        Layout().add(Dataset.detector("data"))
    with pytest.raises(ValueError, match="'when'|when"):
        Dataset.from_ndattribute("x", "X", when="OnFileWrite")


def test_constant_dataset_always_carries_a_type():
    assert Dataset.constant("n", 3).type == "int"
    assert Dataset.constant("s", "text").type == "string"
    assert Dataset.constant("f", 2.5).type == "float"
    with pytest.raises(ValueError, match="only hold numbers"):
        Dataset.constant("bad", [1, "a"])


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "layout.xml"
    target.write_text("old content")
    inode_before = target.stat().st_ino
    Layout.default().write(target)
    assert parse_layout(target) == Layout.default()
    assert target.stat().st_ino != inode_before  # replaced, not rewritten in place
    assert sorted(os.listdir(tmp_path)) == ["layout.xml"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "attrs.xml"
    target.write_text("old content")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        Attributes().pv("T", "P:t").write(target)
    assert target.read_text() == "old content"
    assert sorted(os.listdir(tmp_path)) == ["attrs.xml"]


def test_default_layout_is_adcores_builtin_one():
    layout = Layout.default()
    paths = [p for p, _ in layout.walk()]
    assert paths == [
        "/entry",
        "/entry/instrument",
        "/entry/instrument/detector",
        "/entry/instrument/detector/data",
        "/entry/instrument/detector/NDAttributes",
        "/entry/instrument/detector/NDAttributes/ColorMode",
        "/entry/instrument/NDAttributes",
        "/entry/instrument/performance",
        "/entry/instrument/performance/timestamp",
        "/entry/data",
        "/entry/data/data",
    ]
    # The C string DEFAULT_LAYOUT of NDFileHDF5LayoutXML.cpp, typed in by hand.
    builtin = """<hdf5_layout>
      <group name="entry">
        <attribute name="NX_class" source="constant" value="NXentry" type="string"></attribute>
        <group name="instrument">
          <attribute name="NX_class" source="constant" value="NXinstrument" type="string"></attribute>
          <group name="detector">
            <attribute name="NX_class" source="constant" value="NXdetector" type="string"></attribute>
            <dataset name="data" source="detector" det_default="true">
              <attribute name="signal" source="constant" value="1" type="int"></attribute>
            </dataset>
            <group name="NDAttributes">
              <attribute name="NX_class" source="constant" value="NXcollection" type="string"></attribute>
              <dataset name="ColorMode" source="ndattribute" ndattribute="ColorMode"></dataset>
            </group>
          </group>
          <group name="NDAttributes" ndattr_default="true">
            <attribute name="NX_class" source="constant" value="NXcollection" type="string"></attribute>
          </group>
          <group name="performance">
            <dataset name="timestamp"></dataset>
          </group>
        </group>
        <group name="data">
          <attribute name="NX_class" source="constant" value="NXdata" type="string"></attribute>
          <hardlink name="data" target="/entry/instrument/detector/data"></hardlink>
        </group>
      </group>
    </hdf5_layout>"""
    assert parse_layout(builtin) == layout
    assert validate(layout, []) == []


def test_nexus_layout_as_published_equals_the_manual_file():
    published = parse_layout(DATA / "nexus_definitions_manual_epics_layout.xml")
    assert nexus_layout(as_published=True) == published
    simdet = parse_layout(DATA / "ADSimDetector_iocSimDetector_hdf5_layout_nexus.xml")
    simdet.extra = {}  # only the xmlns:xsi schema location differs
    assert simdet == published
    fixed = nexus_layout()
    assert fixed.find("/entry/instrument/performance/timestamp").source is None
    assert validate(fixed, []) == []


def test_nexus_layout_from_attributes_places_detector_settings_in_nxdetector():
    attrs = parse_attributes(DATA / "ADSimDetector_iocSimDetector_simDetectorAttributes.xml")
    layout = nexus_layout_from_attributes(attrs)
    detector = layout.find("/entry/instrument/detector")
    collection = layout.find("/entry/instrument/NDAttributes")
    assert collection.ndattr_default
    assert [d.name for d in detector.datasets] == [
        "data",
        "AcquireTime",
        "MaxSizeX",
        "MaxSizeY",
        "CameraModel",
        "CameraManufacturer",
        "ColorMode",
    ]
    assert [d.name for d in collection.datasets] == [
        "RingCurrent",
        "RingCurrent_EGU",
        "ID_Energy",
        "ID_Energy_EGU",
        "ImageCounter",
        "AttributesFileParam",
        "AttributesFileNative",
        "AttributesFileString",
        "Pi",
        "E",
        "Ten",
        "Gettysburg",
        "Time64",
        "Constant1",
        "Constant2",
    ]
    assert layout.find("/entry/data/data").target == "/entry/instrument/detector/data"
    assert validate(layout, attrs) == []


def test_nexus_layout_from_attributes_placement_override():
    attrs = Attributes().pv("Temp", "IOC:temp").param("Gain", "GAIN", "DOUBLE")
    layout = nexus_layout_from_attributes(
        attrs, placement={"Temp": "detector", "Gain": "collection"}
    )
    assert isinstance(layout.find("/entry/instrument/detector/Temp"), Dataset)
    assert isinstance(layout.find("/entry/instrument/NDAttributes/Gain"), Dataset)
    with pytest.raises(ValueError, match="'detector' or 'collection'"):
        nexus_layout_from_attributes(attrs, placement={"Temp": "elsewhere"})


@pytest.mark.parametrize(
    "factory",
    [
        Layout.default,
        nexus_layout,
        lambda: nexus_layout_from_attributes(Attributes().pv("T", "P:T")),
    ],
)
def test_every_ready_made_layout_links_entry_data_data(factory):
    layout = factory()
    link = layout.find("/entry/data/data")
    assert isinstance(link, HardLink)
    target = layout.find(link.target)
    assert isinstance(target, Dataset) and target.source == "detector" and target.det_default


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "<hdf5_layout><dataset name='d' source='detector'/></hdf5_layout>",
            "directly in <hdf5_layout>",
        ),
        ("<hdf5_layout><group><dataset/></group></hdf5_layout>", "<group> has no name="),
        (
            "<hdf5_layout>\n<group name='g'>\n<dataset name='d'><group name='x'/></dataset></group></hdf5_layout>",
            "<string>:3: <group> inside <dataset>",
        ),
        ("<Attributes><Attr name='x'/></Attributes>", "unexpected <Attr>"),
        ("<NXroot/>", "neither <Attributes> nor <hdf5_layout>"),
    ],
)
def test_parse_reports_unrepresentable_structure_with_line(text, message):
    with pytest.raises(XMLStructureError, match=message):
        parse(text)


def test_attribute_model_keeps_unknown_xml_attributes():
    attrs = parse_attributes('<Attributes><Attribute name="a" source="s" units="mm"/></Attributes>')
    assert attrs["a"] == Attribute("a", "EPICS_PV", "s", extra={"units": "mm"})
    assert 'units="mm"' in attrs.to_xml()


def test_values_with_quotes_and_newlines_survive():
    attrs = Attributes().const("c", 'say "hi" <now> & then\nnext line')
    assert parse_attributes(attrs.to_xml()) == attrs


def test_constant_builders_check_numbers():
    with pytest.raises(ValueError, match="not a comma list of int numbers"):
        Dataset.constant("n", "1,x", "int")
    with pytest.raises(ValueError, match="not a comma list of float numbers"):
        LayoutAttribute.constant("f", "abc", "float")
    assert LayoutAttribute.constant("f", "1.5,2", "float").value == "1.5,2"


def test_literal_xml_with_byte_order_mark_is_text_not_a_path():
    attrs = parse_attributes(
        '\ufeff<Attributes><Attribute name="a" type="CONST" source="1"/></Attributes>'
    )
    assert attrs.names == ["a"]


def test_nexus_from_attributes_refuses_a_name_clash_with_the_detector_data():
    with pytest.raises(ValueError, match="'data' clashes with detector/data"):
        nexus_layout_from_attributes(Attributes().param("data", "GAIN", "DOUBLE"))
