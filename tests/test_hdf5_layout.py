"""The layout XML parser, the default layout and XMLFileName validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtoolkit.adcore.layout import (
    DEFAULT_LAYOUT_MESSAGE,
    LayoutError,
    validate_layout_param,
)
from adtoolkit.adcore.layout import default_layout_tree as default_layout
from adtoolkit.adcore.layout import parse_layout_tree as parse_layout
from adtoolkit.ioc.hdf5.writer import validate_layout_param as writer_validate

DATA = Path(__file__).parent / "data" / "hdf5"


def test_default_layout_structure():
    layout = default_layout()
    assert layout.auto_ndattr_default is True
    assert [g.path for g in layout.root.walk()] == [
        "/",
        "/entry",
        "/entry/data",
        "/entry/instrument",
        "/entry/instrument/NDAttributes",
        "/entry/instrument/detector",
        "/entry/instrument/detector/NDAttributes",
        "/entry/instrument/performance",
    ]
    assert layout.default_detector_dataset().path == "/entry/instrument/detector/data"
    assert layout.ndattr_default_group().path == "/entry/instrument/NDAttributes"
    assert layout.find_dataset_for_ndattribute("ColorMode").path == (
        "/entry/instrument/detector/NDAttributes/ColorMode"
    )
    assert layout.performance_dataset().path == "/entry/instrument/performance/timestamp"
    link = layout.root.groups["entry"].groups["data"].hardlinks["data"]
    assert link.target == "/entry/instrument/detector/data"
    data = layout.root.groups["entry"].groups["instrument"].groups["detector"].datasets["data"]
    assert list(data.attributes) == ["signal"]
    assert (data.attributes["signal"].value, data.attributes["signal"].type) == ("1", "int")


@pytest.mark.parametrize(
    "name, detector, default_group",
    [
        (
            "hdf5_layout_nexus.xml",
            "/entry/instrument/detector/data",
            "/entry/instrument/NDAttributes",
        ),
        ("hdf5_layout_demo.xml", "/entry/detector/data1", "/entry/instruments"),
        ("hdf5_layout_minimal.xml", "/detector/data1", None),
        ("test1_layout.xml", "/example/detector/data", "/example/metadata"),
        ("test2_layout.xml", "/entry/instrument/detector/data", "/entry/instrument/NDattributes"),
        ("test3_layout.xml", "/entry/instrument/detector/data", None),
        ("test4_layout.xml", "/entry/instrument/detector/data", None),
        ("test5_layout.xml", "/entry/instrument/detector/data", "/entry/instrument/NDattributes"),
        ("new_txm_sample.xml", "/exchange/data", "/measurement"),
    ],
)
def test_example_layouts(name, detector, default_group):
    layout = parse_layout(str(DATA / name))
    assert layout.default_detector_dataset().path == detector
    group = layout.ndattr_default_group()
    assert (group.path if group else None) == default_group
    assert validate_layout_param(str(DATA / name)) == (True, "")


def test_demo_layout_details():
    layout = parse_layout(str(DATA / "hdf5_layout_demo.xml"))
    assert layout.detector_data_destination == "DataDestination"
    assert [d.path for d in layout.detector_datasets()] == [
        "/entry/detector/data1",
        "/entry/detector/data2",
        "/entry/detector/data3",
    ]
    data3 = layout.root.groups["entry"].groups["detector"].datasets["data3"]
    assert data3.attributes["test_att_3"].when == "OnFileClose"
    data1 = layout.root.groups["entry"].groups["detector"].datasets["data1"]
    assert data1.attributes["test_att_1"].when == "OnFileOpen"  # unset: stored at open
    assert data1.attributes["test_att_1"].ndattribute == "ArrayCounter"


def test_first_detector_dataset_in_path_order_is_the_default_without_det_default():
    xml = (
        '<?xml version="1.0"?><hdf5_layout><group name="z"><dataset name="b" source="detector"/>'
        '</group><group name="a"><dataset name="c" source="detector"/></group></hdf5_layout>'
    )
    assert parse_layout(xml).default_detector_dataset().path == "/a/c"


def test_first_claimant_of_an_ndattribute_wins_in_map_order():
    xml = (
        '<?xml version="1.0"?><hdf5_layout><group name="g">'
        '<group name="sub"><dataset name="a" source="ndattribute" ndattribute="X"/></group>'
        '<dataset name="z" source="ndattribute" ndattribute="X"/>'
        '<dataset name="y" source="ndattribute" ndattribute="X"/>'
        "</group></hdf5_layout>"
    )
    assert parse_layout(xml).find_dataset_for_ndattribute("X").path == "/g/y"


def test_when_values():
    xml = (
        '<?xml version="1.0"?><hdf5_layout><group name="g">'
        '<dataset name="a" source="ndattribute" ndattribute="A" when="OnFileOpen"/>'
        '<dataset name="b" source="ndattribute" ndattribute="B" when="OnFileClose"/>'
        '<dataset name="c" source="ndattribute" ndattribute="C" when="OnFileWrite"/>'
        '<dataset name="d" source="ndattribute" when="OnFileClose"/>'
        "</group></hdf5_layout>"
    )
    ds = parse_layout(xml).root.groups["g"].datasets
    assert [ds[k].when for k in "abcd"] == ["OnFileOpen", "OnFileClose", "OnFrame", "OnFrame"]


def test_auto_ndattr_default_and_unknown_root_attributes():
    xml = '<?xml version="1.0"?><hdf5_layout auto_ndattr_default="false" other="1"/>'
    assert parse_layout(xml).auto_ndattr_default is False


def test_unknown_elements_are_ignored():
    xml = (
        '<?xml version="1.0"?><hdf5_layout><group name="g"><widget/>'
        '<dataset name="d" source="detector"><note/></dataset></group></hdf5_layout>'
    )
    assert parse_layout(xml).default_detector_dataset().path == "/g/d"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('<group name="g"><dataset name="a"/><dataset name="a"/></group>', "duplicate name 'a'"),
        ('<group name="g"/><group name="g"/>', "duplicate name 'g'"),
        ('<group name="g"><group name="a"/><hardlink name="a" target="/x"/></group>', "duplicate"),
        ("<group><dataset name='a'/></group>", "without a name"),
        ('<group name="g"><hardlink name="l" target="rel/path"/></group>', "absolute target"),
        ('<group name="g"><attribute name="a" source="constant" type="bool"/></group>', "'bool'"),
        ('<group name="g"><attribute name="a" source="ndattribute"/></group>', "no ndattribute"),
    ],
)
def test_invalid_layouts(body, fragment):
    xml = f'<?xml version="1.0"?><hdf5_layout>{body}</hdf5_layout>'
    with pytest.raises(LayoutError, match="XML description file parser error") as info:
        parse_layout(xml)
    assert fragment in str(info.value)
    valid, message = validate_layout_param(xml)
    assert not valid and fragment in message


def test_wrong_root_element():
    valid, message = validate_layout_param('<?xml version="1.0"?><layout/>')
    assert not valid and "<layout>" in message


def test_xml_file_name_validation_messages(tmp_path):
    assert validate_layout_param("") == (True, DEFAULT_LAYOUT_MESSAGE)
    assert validate_layout_param("   ") == (True, "Default layout selected")
    valid, message = validate_layout_param(str(tmp_path / "missing.xml"))
    assert not valid
    assert message.startswith("XML description file cannot be opened")
    assert "missing.xml" in message
    bad = tmp_path / "bad.xml"
    bad.write_text("<hdf5_layout>\n<group name='a'>\n</hdf5_layout>\n")
    valid, message = validate_layout_param(str(bad))
    assert not valid and "parser error" in message and "line 3" in message and str(bad) in message
    # the writer module re-exports the same function for the plugin
    assert writer_validate is validate_layout_param


def test_a_layout_file_without_xml_declaration_is_a_file_name(tmp_path):
    # no "<?xml": the value is taken as a file name, as in ADCore
    valid, message = validate_layout_param("<hdf5_layout/>")
    assert not valid and "cannot be opened" in message


HOSTILE = {
    "xxe": '<?xml version="1.0"?>\n<!DOCTYPE hdf5_layout [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<hdf5_layout><group name="&x;"/></hdf5_layout>',
    "laughs": '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    '<hdf5_layout><group name="&b;"/></hdf5_layout>',
    "external_dtd": '<?xml version="1.0"?>\n<!DOCTYPE hdf5_layout SYSTEM "http://127.0.0.1:9/x.dtd">'
    "<hdf5_layout/>",
    "parameter_entity": '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    "<hdf5_layout/>",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_layouts_are_refused(kind, tmp_path):
    xml = HOSTILE[kind]
    path = tmp_path / "hostile.xml"
    path.write_text(xml)
    for value in (xml, str(path)):
        valid, message = validate_layout_param(value)
        assert not valid
        assert "not allowed" in message
        assert "root:" not in message


def test_oversized_layout_is_refused(tmp_path):
    path = tmp_path / "big.xml"
    path.write_text(
        '<?xml version="1.0"?><hdf5_layout>' + "<!-- padding -->" * 70000 + "</hdf5_layout>"
    )
    valid, message = validate_layout_param(str(path))
    assert not valid and "1048576" in message
    inline = '<?xml version="1.0"?><hdf5_layout>' + " " * (1024 * 1024) + "</hdf5_layout>"
    valid, message = validate_layout_param(inline)
    assert not valid and "1048576" in message


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.xml"
    path.write_bytes(b'<?xml version="1.0"?><hdf5_layout><group name="\xe9"/></hdf5_layout>')
    valid, message = validate_layout_param(str(path))
    assert not valid and "utf-8" in message and "encoding" in message
    declared = tmp_path / "declared.xml"
    declared.write_bytes(
        b'<?xml version="1.0" encoding="ISO-8859-1"?><hdf5_layout><group name="\xe9">'
        b'<dataset name="d" source="detector"/></group></hdf5_layout>'
    )
    assert parse_layout(str(declared)).default_detector_dataset().path == "/\u00e9/d"
