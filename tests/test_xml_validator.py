"""The validator: the IOC's real rules, each finding with file name and line.

The expectations on ADCore's, ADSimDetector's and the NeXus manual's example files
are written out by hand from reading NDFileHDF5 / readNDAttributesFile (see the
comments); they are not produced by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adtoolkit.adcore.xmlreader import parse_document
from adtoolkit.xml import (
    Attributes,
    Layout,
    ValidationError,
    check,
    nexus_layout,
    nexus_layout_from_attributes,
    validate,
    validate_files,
)
from adtoolkit.xml.validator import validate_attributes_document, validate_layout_document

DATA = Path(__file__).parent / "data" / "xml"


def summary(problems):
    """(file name, line, severity, a distinctive part of the message) per problem."""
    return sorted((Path(p.filename).name, p.line, p.severity) for p in problems)


def lay(text: str, attributes=None):
    return validate_layout_document(parse_document(text, "layout.xml"), attributes)


def att(text: str):
    return validate_attributes_document(parse_document(text, "attrs.xml"))


def only(problems, severity="error"):
    return [p for p in problems if p.severity == severity]


# --------------------------------------------------------------------------- example files


def test_simdetector_test1_pair():
    """test1_layout.xml marks its PROBLEM cases in comments.  Against current NDFileHDF5:

    - the two hard links to /example/temperature (lines 23, 39) target an NDAttribute
      dataset, created only with StoreAttr=Yes and only just before the links: warnings;
    - the link to /example/detector/data (line 20) is fine;
    - this_file_name, temperature, ArrayCounter datasets and the EGU/Manufacturer/Model
      attributes all name attributes defined in test1_attributes.xml with matching
      case, so nothing is lost: no errors (temperature_EGU used by two HDF5
      attributes is fine: each attribute looks the NDAttribute up by name).
    """
    problems = validate_files(
        [
            DATA / "ADSimDetector_iocHDF5Test_test1_attributes.xml",
            DATA / "ADSimDetector_iocHDF5Test_test1_layout.xml",
        ]
    )
    assert summary(problems) == [
        ("ADSimDetector_iocHDF5Test_test1_layout.xml", 23, "warning"),
        ("ADSimDetector_iocHDF5Test_test1_layout.xml", 39, "warning"),
    ]
    assert all(
        "/example/temperature" in p.message and "StoreAttr=Yes" in p.message for p in problems
    )


@pytest.mark.parametrize(
    "n, lines",
    [
        # two datasets fed by the same NDAttribute: find_dset_ndattr fills the first in
        # map order (datasets of a group by name, then sub-groups by name), the other is
        # never created.  title(19) beats sample/name; beam_center_x/y beat
        # pin_ccd_center_x/y; pin_ccd_pixel_size_x/y beat x/y_pixel_size;
        # data/description beats data/model.
        (2, {97, 100, 105, 106, 160, 169}),
        (3, {97, 100, 105, 106, 160, 169}),
        (4, {97, 100, 105, 106, 155, 164}),
        (5, {97, 100, 105, 106, 160, 169}),
    ],
)
def test_simdetector_test2_to_5_pairs(n, lines):
    layout = DATA / f"ADSimDetector_iocHDF5Test_test{n}_layout.xml"
    problems = validate_files([DATA / f"ADSimDetector_iocHDF5Test_test{n}_attributes.xml", layout])
    errors = only(problems)
    assert {p.line for p in errors} == lines
    assert all("already the source of" in p.message for p in errors)
    # hard links to NDAttribute datasets (attenuator thickness_*, SDD): StoreAttr warnings
    assert {p.line for p in only(problems, "warning")} == {65, 66, 67, 68, 89}
    by_line = {p.line: p.message for p in errors}
    model_line = 155 if n == 4 else 160
    assert "/entry/data/model" in by_line[model_line] and "'Model'" in by_line[model_line]


def test_nexus_manual_pair():
    """performance/timestamp says source="ndattribute" without ndattribute=: NDFileHDF5
    never creates it and stores the timing in the ndattr_default group (mrinal_001.h5
    shows exactly that).  The example attributes use $(P) without macros defined."""
    problems = validate_files(
        [
            DATA / "nexus_definitions_manual_epics_attributes.xml",
            DATA / "nexus_definitions_manual_epics_layout.xml",
        ]
    )
    assert summary(problems) == [
        ("nexus_definitions_manual_epics_attributes.xml", 9, "warning"),
        ("nexus_definitions_manual_epics_attributes.xml", 10, "warning"),
        ("nexus_definitions_manual_epics_layout.xml", 23, "error"),
    ]
    assert "performance" in problems[-1].message or any(
        "performance" in p.message for p in problems
    )


def test_simdetector_nexus_layout_has_the_same_timestamp_problem():
    problems = validate_files([DATA / "ADSimDetector_iocSimDetector_hdf5_layout_nexus.xml"])
    assert summary(problems) == [
        ("ADSimDetector_iocSimDetector_hdf5_layout_nexus.xml", 27, "error")
    ]


def test_txm_sample_with_adcore_example_attributes():
    """new_txm_sample.xml names driver settings (BinX, AcqTime, Gain...) that
    example_attributes.xml does not define, and its global needs an 'Images' attribute."""
    problems = validate_files(
        [
            DATA / "ADCore_XML_schema_example_attributes.xml",
            DATA / "ADCore_XML_schema_new_txm_sample.xml",
        ]
    )
    errors = only(problems)
    assert {(Path(p.filename).name, p.line) for p in errors} == {
        ("ADCore_XML_schema_new_txm_sample.xml", line)
        for line in (2, 27, 28, 29, 30, 31, 33, 34, 35, 36)
    }
    # three detector datasets, none det_default: warned, the first by name is used
    warnings = {(Path(p.filename).name, p.line) for p in only(problems, "warning")}
    assert warnings == {
        ("ADCore_XML_schema_example_attributes.xml", 9),
        ("ADCore_XML_schema_example_attributes.xml", 10),
        ("ADCore_XML_schema_new_txm_sample.xml", 4),
    }


@pytest.mark.parametrize(
    "name",
    [
        "ADSimDetector_iocSimDetector_hdf5_layout_demo.xml",
        "ADSimDetector_iocSimDetector_hdf5_layout_minimal.xml",
        "ADCore_XML_schema_new_txm_sample.xml",
    ],
)
def test_layouts_alone_are_structurally_sound(name):
    """Without attributes files, ndattribute= names are not checked; the structure is fine
    (new_txm_sample only gets its 'no det_default' warning)."""
    problems = validate_files([DATA / name])
    assert only(problems) == []


@pytest.mark.parametrize(
    "name, warning_lines",
    [
        ("ADSimDetector_iocSimDetector_simDetectorAttributes.xml", []),
        ("ADSimDetector_iocSimDetector_simDetectorAttributesMacros.xml", [7, 10, 11]),
        ("ADSimDetector_iocSimDetector_testAttributeDataTypes.xml", []),
        ("ADSimDetector_iocSimDetector_single_string_attribute.xml", []),
        ("ADSimDetector_iocSimDetector_ROIAttributes.xml", []),
        ("ADSimDetector_iocSimDetector_ROIStatAttributes.xml", []),
        ("ADSimDetector_iocSimDetector_StatsAttributes.xml", []),
        ("ADSimDetector_iocSimDetector_netCDFAttributes.xml", []),
        ("ADCore_XML_schema_example_attributes.xml", [9, 10]),
        ("nexus_definitions_manual_epics_attributes-reformatted.xml", [18, 23]),
    ],
)
def test_example_attributes_files(name, warning_lines):
    """All example attributes files are accepted by the IOC; the only findings are
    unexpanded $(...) macros, which need NDAttributesMacros."""
    problems = validate_files([DATA / name])
    assert only(problems) == []
    assert [p.line for p in problems] == warning_lines
    assert all("macro" in p.message for p in problems)


def test_demo_layout_cross_checked_against_sim_attributes():
    problems = validate_files(
        [
            DATA / "ADSimDetector_iocSimDetector_simDetectorAttributes.xml",
            DATA / "ADSimDetector_iocSimDetector_hdf5_layout_demo.xml",
        ]
    )
    # DataDestination, ArrayCounter (x3) and AcqTime (x2) are not in simDetectorAttributes
    assert [p.line for p in only(problems)] == [6, 12, 13, 21, 22, 30]


# --------------------------------------------------------------------------- attributes rules


def test_param_without_datatype_is_a_warning():
    # the real IOC accepts the file and writes a float32 NaN for the attribute
    problems = att(
        '<Attributes>\n<Attribute name="C" type="PARAM" source="ARRAY_COUNTER"/>\n</Attributes>'
    )
    assert [(p.filename, p.line, p.severity) for p in problems] == [("attrs.xml", 2, "warning")]
    assert "no datatype=" in problems[0].message and "NaN" in problems[0].message


def test_param_lower_case_datatype_is_a_warning_with_hint():
    (problem,) = att(
        '<Attributes><Attribute name="C" type="PARAM" source="X" datatype="int"/></Attributes>'
    )
    assert "write 'INT'" in problem.message
    assert str(problem).startswith("attrs.xml:1: warning: ")
    assert "the XSD rejects this but ADCore accepts it" in problem.message


@pytest.mark.parametrize(
    "xml, fragment",
    [
        (
            '<Attribute name="T" type="PARAM" source="X" datatype="INT" addr="one"/>',
            "not an integer",
        ),
        ('<Attribute name="T" type="PARAM" source="X" datatype="FLOAT"/>', "datatype 'FLOAT'"),
        ('<Attr name="T" type="CONST" source="x"/>', "reads every child element"),
    ],
)
def test_attribute_xsd_only_warnings(xml, fragment):
    """What the real IOC accepts (tests/data/real_ioc_xml_verdicts.json) is only a warning."""
    (problem,) = att(f"<Attributes>{xml}</Attributes>")
    assert problem.severity == "warning" and fragment in problem.message
    assert "the XSD rejects this but ADCore accepts it" in problem.message


@pytest.mark.parametrize("name", ["", "a/b"])
def test_attribute_names_hdf5_cannot_hold(name):
    (problem,) = att(f'<Attributes><Attribute name="{name}" type="CONST" source="x"/></Attributes>')
    assert problem.severity == "error" and "cannot name an HDF5 dataset" in problem.message


@pytest.mark.parametrize(
    "xml, fragment",
    [
        (
            '<Attribute name="T" type="EPICS_PV" source="P:T" dbrtype="DBR_TIME_DOUBLE"/>',
            "unknown dbrtype",
        ),
        ('<Attribute name="T" type="PV" source="P:T"/>', "unknown type 'PV'"),
        ('<Attribute name="T" type="param" source="P:T"/>', "did you mean PARAM"),
        ('<Attribute type="CONST" source="x"/>', "without name="),
        ('<Attribute name="T" type="CONST"/>', "no source="),
    ],
)
def test_attribute_errors(xml, fragment):
    problems = only(att(f"<Attributes>{xml}</Attributes>"))
    assert len(problems) == 1 and fragment in problems[0].message


def test_duplicate_attribute_names():
    problems = att(
        "<Attributes>\n"
        '<Attribute name="T" type="CONST" source="a"/>\n'
        '<Attribute name="T" type="CONST" source="b"/>\n'
        "</Attributes>"
    )
    assert [(p.line, p.severity) for p in problems] == [(3, "error")]
    assert "first at line 2" in problems[0].message


@pytest.mark.parametrize(
    "xml, fragment",
    [
        ('<Attribute name="T" source="P:T"/>', "assumes EPICS_PV"),
        (
            '<Attribute name="T" type="EPICS_PV" source="P:T" NAME="x"/>',
            "unknown XML attribute NAME=",
        ),
        ('<Attribute name="T" type="CONST" source="x" datatype="INT"/>', "only read for PARAM"),
        ('<Attribute name="ColorMode" type="CONST" source="x"/>', "adds itself"),
    ],
)
def test_attribute_warnings(xml, fragment):
    problems = att(f"<Attributes>{xml}</Attributes>")
    assert [p.severity for p in problems] == ["warning"] and fragment in problems[0].message


# --------------------------------------------------------------------------- layout rules

GOOD_HEAD = '<hdf5_layout>\n<group name="entry">\n<dataset name="data" source="detector" det_default="true"/>\n'
GOOD_TAIL = "</group>\n</hdf5_layout>"


def body(text: str, attributes=("Temp",)):
    return lay(GOOD_HEAD + text + "\n" + GOOD_TAIL, attributes)


def test_minimal_good_layout_has_no_problem():
    assert body("") == []


def test_ndattribute_must_exist_case_sensitively():
    problems = body('<dataset name="t" source="ndattribute" ndattribute="temp"/>')
    assert [(p.line, p.severity) for p in problems] == [(4, "error")]
    assert "'temp' is not defined" in problems[0].message and "'Temp'" in problems[0].message


@pytest.mark.parametrize(
    "name",
    ["NDArrayUniqueId", "NDArrayTimeStamp", "NDArrayEpicsTSSec", "NDArrayEpicsTSnSec", "ColorMode"],
)
def test_automatic_attributes_count_as_defined(name):
    assert body(f'<dataset name="x" source="ndattribute" ndattribute="{name}"/>') == []
    assert only(body(f'<dataset name="x" source="ndattribute" ndattribute="{name.lower()}"/>'))


def test_ndattribute_names_unchecked_without_attributes():
    assert body('<dataset name="x" source="ndattribute" ndattribute="Anything"/>', None) == []


def test_duplicate_names_in_a_group():
    problems = body(
        '<group name="data"/>\n<hardlink name="x" target="/entry/data"/>\n<dataset name="x" source="constant" value="1" type="int"/>'
    )
    assert [(p.line, p.severity) for p in only(problems)] == [(4, "error"), (6, "error")]
    assert "duplicate name 'data'" in problems[0].message
    assert "lands in the parent group" in problems[0].message  # a group: LayoutXML pops it
    assert "lands in the parent group" in problems[1].message  # a dataset: same


def test_duplicate_attribute_on_an_element():
    problems = body(
        '<attribute name="a" source="constant" value="1"/>\n<attribute name="a" source="constant" value="2"/>'
    )
    assert [(p.line, p.severity) for p in problems] == [(5, "error")]


def test_second_det_default_is_a_warning():
    # the real IOC writes both datasets
    problems = body('<dataset name="data2" source="detector" det_default="true"/>')
    assert [(p.line, p.severity) for p in problems] == [(4, "warning")]
    assert "second det_default" in problems[0].message


def test_det_default_capitalised_is_not_recognised():
    problems = lay(
        '<hdf5_layout><group name="g"><dataset name="d" source="detector" det_default="True"/></group></hdf5_layout>'
    )
    assert [p.severity for p in problems] == ["error"] and "only 'true'" in problems[0].message


def test_no_detector_dataset_is_an_error():
    problems = lay('<hdf5_layout>\n<group name="g"/>\n</hdf5_layout>')
    assert [(p.line, p.severity) for p in problems] == [(1, "error")]
    assert "fails to open" in problems[0].message


def test_hardlink_targets_must_exist():
    problems = body(
        '<hardlink name="l1" target="/entry/nothing"/>\n<hardlink name="l2" target="entry/data"/>\n<hardlink name="l3" target="/entry/data"/>'
    )
    assert [(p.line, p.severity) for p in problems] == [(4, "error"), (5, "error")]
    assert "does not exist" in problems[0].message and "absolute" in problems[1].message


def test_hardlink_to_an_auto_placed_ndattribute_dataset_is_a_storeattr_warning():
    problems = body(
        '<group name="attrs" ndattr_default="true"/>\n<hardlink name="t" target="/entry/attrs/Temp"/>'
    )
    assert [(p.line, p.severity) for p in problems] == [(5, "warning")]


def test_constant_dataset_needs_type():
    problems = body('<dataset name="c" source="constant" value="3"/>')
    assert [(p.line, p.severity) for p in problems] == [(4, "error")]
    assert "empty string" in problems[0].message


@pytest.mark.parametrize(
    "xml, fragment",
    [
        ('<dataset name="c" source="constant" value="1,x" type="int"/>', "not a comma list of int"),
        ('<dataset name="c" source="constants" value="1" type="int"/>', "source='constants'"),
        ('<dataset name="c"/>', "has no source="),
        ('<dataset name="c" source="ndattribute"/>', "without ndattribute="),
        ('<attribute name="a" source="ndattribute"/>', "without ndattribute="),
        ('<attribute name="a" value="1"/>', "source=None"),
        (
            '<attribute name="a" source="constant" value="x" type="float"/>',
            "not a comma list of float",
        ),
        (
            '<dataset name="c" source="detector"><hardlink name="h" target="/entry/data"/></dataset>',
            "holds only <attribute>",
        ),
        (
            '<dataset name="a/b" source="constant" value="1" type="int"/>',
            "not a valid HDF5 link name",
        ),
    ],
)
def test_layout_errors(xml, fragment):
    problems = only(body(xml))
    assert len(problems) == 1, problems
    assert fragment in problems[0].message and problems[0].line == 4


@pytest.mark.parametrize(
    "xml, fragment",
    [
        ('<dataset name="c" source="constant" value="1" type="double"/>', "type='double'"),
        (
            '<dataset name="c" source="ndattribute" ndattribute="Temp" when="OnFileWrite"/>',
            "when='OnFileWrite'",
        ),
        (
            '<attribute name="a" source="ndattribute" ndattribute="Temp" when="onfileclose"/>',
            "when='onfileclose'",
        ),
        ('<group name="g" ndattr_default="yes"/>', "only 'true'"),
        ('<foo name="x"/>', "unknown element <foo>"),
    ],
)
def test_layout_xsd_only_warnings(xml, fragment):
    """What the real IOC accepts (tests/data/real_ioc_xml_verdicts.json) is only a warning."""
    (problem,) = [p for p in body(xml) if p.severity == "warning" and fragment in p.message]
    assert problem.line == 4 and "the XSD rejects this but ADCore accepts it" in problem.message
    assert only(body(xml)) == []


def test_two_datasets_from_one_ndattribute():
    problems = body(
        '<group name="a"><dataset name="t" source="ndattribute" ndattribute="Temp"/></group>\n<dataset name="z" source="ndattribute" ndattribute="Temp"/>'
    )
    # NDFileHDF5 looks in a group's datasets (z) before its sub-groups (a/t)
    assert [(p.line, p.severity) for p in problems] == [(4, "error")]
    assert "/entry/a/t" in problems[0].message and "/entry/z" in problems[0].message


def test_root_level_elements_are_never_created():
    problems = lay(
        '<hdf5_layout>\n<group name="g"><dataset name="d" source="detector"/></group>\n<hardlink name="h" target="/g/d"/>\n</hdf5_layout>'
    )
    assert [(p.line, p.severity) for p in problems] == [(3, "error")]


@pytest.mark.parametrize(
    "root, severity",
    [
        ('auto_ndattr_default="False"', "error"),
        ('version="2"', "warning"),
        ('xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"', None),
    ],
)
def test_root_attributes(root, severity):
    problems = lay(
        f'<hdf5_layout {root}><group name="g"><dataset name="d" source="detector"/></group></hdf5_layout>'
    )
    assert [p.severity for p in problems] == ([severity] if severity else [])


def test_global_must_name_a_known_attribute():
    problems = lay(
        '<hdf5_layout>\n<global name="detector_data_destination" ndattribute="Dest"/>\n'
        '<group name="g"><dataset name="d" source="detector"/></group></hdf5_layout>',
        ["Other"],
    )
    assert [(p.line, p.severity) for p in problems] == [(2, "error")]


# --------------------------------------------------------------------------- model front ends


def test_validate_and_check_on_models():
    layout = nexus_layout_from_attributes(Attributes().pv("Temp", "P:T"))
    assert validate(layout, ["Temp"]) == []
    with pytest.raises(ValidationError) as info:
        check(layout, ["temp"])
    assert "'Temp' is not defined" in str(info.value)
    assert info.value.problems[0].filename == "<layout>"


def test_repeated_global_is_a_warning():
    problems = lay(
        '<hdf5_layout>\n<global name="detector_data_destination" ndattribute="A"/>\n'
        '<global name="detector_data_destination" ndattribute="B"/>\n'
        '<group name="g"><dataset name="d" source="detector"/></group></hdf5_layout>',
        ["A", "B"],
    )
    assert [(p.line, p.severity) for p in problems] == [(3, "warning")]
    assert "first at line 2" in problems[0].message


@pytest.mark.parametrize(
    "name, flagged",
    [
        ("ADSimDetector_iocSimDetector_hdf5_layout_nexus.xml", False),
        ("nexus_definitions_manual_epics_layout.xml", False),
        ("ADSimDetector_iocSimDetector_hdf5_layout_minimal.xml", True),
        ("ADSimDetector_iocHDF5Test_test1_layout.xml", True),
        ("ADCore_XML_schema_new_txm_sample.xml", True),
    ],
)
def test_ophyd_option_checks_entry_data_data(name, flagged):
    plain = validate_files([DATA / name])
    with_ophyd = validate_files([DATA / name], ophyd=True)
    extra = [p for p in with_ophyd if p not in plain]
    assert len(extra) == (1 if flagged else 0)
    assert all("/entry/data/data" in p.message and p.severity == "warning" for p in extra)


def test_ophyd_option_link_to_a_non_detector_dataset():
    problems = lay(
        '<hdf5_layout><group name="entry">\n<dataset name="d" source="detector"/>\n'
        '<dataset name="c" source="constant" value="1" type="int"/>\n'
        '<group name="data">\n<hardlink name="data" target="/entry/c"/>\n</group></group></hdf5_layout>'
    )
    assert problems == []
    problems = validate_layout_document(
        parse_document(
            '<hdf5_layout><group name="entry">\n<dataset name="d" source="detector"/>\n'
            '<dataset name="c" source="constant" value="1" type="int"/>\n'
            '<group name="data">\n<hardlink name="data" target="/entry/c"/>\n</group></group></hdf5_layout>',
            "l.xml",
        ),
        None,
        ophyd=True,
    )
    assert [(p.line, p.severity) for p in problems] == [(5, "warning")]


@pytest.mark.parametrize(
    "factory",
    [
        Layout.default,
        nexus_layout,
        lambda: nexus_layout_from_attributes(Attributes().pv("T", "P:T")),
    ],
)
def test_ready_made_layouts_satisfy_the_ophyd_check(factory):
    assert validate(factory(), ophyd=True) == []


def test_ndfilenexus_template_is_recognised_as_not_a_layout():
    path = DATA / "nexus_plugin" / "ADSimDetector_iocSimDetector_NexusTemplate.xml"
    (problem,) = validate_files([path])
    assert problem.severity == "error" and problem.line == 3
    assert "NDFileNexus plugin" in problem.message


def test_unplaced_attributes_without_default_group_are_reported():
    text = (
        '<hdf5_layout auto_ndattr_default="false">\n<group name="g">\n'
        '<dataset name="d" source="detector"/>\n'
        '<dataset name="t" source="ndattribute" ndattribute="Temp"/>\n</group>\n</hdf5_layout>'
    )
    problems = lay(text, ["Temp", "Gain"])
    assert [(p.line, p.severity) for p in problems] == [(1, "warning")]
    assert "(ColorMode, Gain, and the NDArray* ones)" in problems[0].message
    # with auto_ndattr_default true (the default) they go to the file root: nothing to say
    assert lay(text.replace(' auto_ndattr_default="false"', ""), ["Temp", "Gain"]) == []
