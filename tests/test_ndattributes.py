"""NDAttributes files: parsing, macros, status codes, hostile XML, value collection."""

from __future__ import annotations

import math
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from adtoolkit.adcore import macros as nda
from adtoolkit.adcore.attributes import AttributeDefinition, load_attributes
from adtoolkit.adcore.macros import expand_macros, parse_macros
from adtoolkit.adcore.vocabulary import (
    STATUS_MACRO_ERROR,
    STATUS_NOT_FOUND,
    STATUS_OK,
    STATUS_XML_ERROR,
)
from adtoolkit.ioc.ndattributes import AttributeCollector

DATA = Path(__file__).parent / "data" / "hdf5"
sys.path.insert(0, str(DATA))
from ca_helpers import attr_ioc_context  # noqa: E402

# --------------------------------------------------------------------------- parsing


def test_sim_detector_attributes_file_parses_every_type():
    result = load_attributes(str(DATA / "simDetectorAttributes.xml"))
    assert result.status == STATUS_OK
    names = [d.name for d in result.definitions]
    assert names[:3] == ["AcquireTime", "RingCurrent", "RingCurrent_EGU"]
    assert len(names) == 20
    by_name = {d.name: d for d in result.definitions}
    assert by_name["AcquireTime"].type == "EPICS_PV"
    assert by_name["AcquireTime"].source == "13SIM1:cam1:AcquireTime"
    assert by_name["AttributesFileString"].dbrtype == "DBR_STRING"
    assert by_name["ImageCounter"].type == "PARAM"
    assert by_name["ImageCounter"].datatype == "INT"
    assert by_name["Pi"].type == "FUNCTION" and by_name["Pi"].param == "PI"
    assert by_name["Constant1"].type == "CONST" and by_name["Constant1"].source == "My constant #1"
    assert by_name["Constant1"].description == "Constant attribute #1"
    assert by_name["AcquireTime"].line == 7


@pytest.mark.parametrize(
    "name",
    [
        "test1_attributes.xml",
        "test2_attributes.xml",
        "test3_attributes.xml",
        "test4_attributes.xml",
        "test5_attributes.xml",
        "nexus_manual_attributes.xml",
        "testAttributeDataTypes.xml",
    ],
)
def test_example_attributes_files_parse(name):
    elements = ET.parse(DATA / name).getroot().findall("Attribute")
    result = load_attributes(str(DATA / name), "P=prj:")
    assert result.status == STATUS_OK, result.message
    assert [d.name for d in result.definitions] == [e.get("name") for e in elements]
    text = (DATA / name).read_text().splitlines()
    for d in result.definitions:  # reported lines point at the element
        assert f'name="{d.name}"' in text[d.line - 1]


def test_type_defaults_to_epics_pv_and_description_to_empty():
    result = load_attributes('<Attributes><Attribute name="a" source="X:Y"/></Attributes>')
    assert result.status == STATUS_OK
    (d,) = result.definitions
    assert (d.type, d.dbrtype, d.description, d.addr) == ("EPICS_PV", "DBR_NATIVE", "", 0)


def test_inline_xml_and_empty_value():
    assert load_attributes("").status == STATUS_OK
    assert load_attributes("").definitions == ()
    inline = '<Attributes><Attribute name="c" type="CONST" source="v"/></Attributes>'
    assert load_attributes(inline).definitions[0].source == "v"


def test_missing_file_gives_status_1(tmp_path):
    result = load_attributes(str(tmp_path / "nope.xml"))
    assert result.status == STATUS_NOT_FOUND
    assert "nope.xml" in result.message


@pytest.mark.parametrize(
    "xml, fragment",
    [
        ("<Attributes><Attribute name='a' source='b'></Attributes>", "line 1"),
        ("<AttributesX><Attribute name='a' source='b'/></AttributesX>", "<AttributesX>"),
        ("<Attributes><Attribute source='b'/></Attributes>", "without a name"),
        ("<Attributes><Attribute name='a'/></Attributes>", "no source"),
        ("<Attributes><Attribute name='a' source='b' type='SQL'/></Attributes>", "'SQL'"),
        ("<Attributes><Attribute name='a' source='b' dbrtype='DBR_X'/></Attributes>", "DBR_X"),
    ],
)
def test_bad_xml_gives_status_2(xml, fragment):
    result = load_attributes(xml)
    assert result.status == STATUS_XML_ERROR
    assert fragment in result.message
    assert result.definitions == ()


def test_syntax_error_message_names_file_and_line(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<Attributes>\n  <Attribute name="a" source="b">\n</Attributes>\n')
    result = load_attributes(str(path))
    assert result.status == STATUS_XML_ERROR
    assert str(path) in result.message and "line 3" in result.message


# --------------------------------------------------------------------------- macros


def test_macros_are_expanded():
    result = load_attributes(
        str(DATA / "simDetectorAttributesMacros.xml"), "CAMERA=13SIM1:cam1:,ID=ID34:"
    )
    assert result.status == STATUS_OK
    sources = {d.name: d.source for d in result.definitions}
    assert sources["AcquireTime"] == "13SIM1:cam1:AcquireTime"
    assert sources["ID_Energy_EGU"] == "ID34:Energy.EGU"


def test_undefined_macro_gives_status_3_naming_it():
    result = load_attributes(str(DATA / "simDetectorAttributesMacros.xml"), "CAMERA=cam1:")
    assert result.status == STATUS_MACRO_ERROR
    assert "$(ID)" in result.message and "line 10" in result.message


def test_malformed_macro_definitions_give_status_3():
    result = load_attributes(str(DATA / "simDetectorAttributesMacros.xml"), "CAMERA")
    assert result.status == STATUS_MACRO_ERROR


def test_macro_forms():
    macros = parse_macros("A=1, B='x,y' ,C=$(A)2")
    assert macros == {"A": "1", "B": "x,y", "C": "$(A)2"}
    assert expand_macros("$(A)-${B}-$(C)-$(D=dflt)", macros) == "1-x,y-12-dflt"
    with pytest.raises(nda.MacroError):
        expand_macros("$(X)", {"X": "$(X)"})


def test_no_macros_leaves_references_alone():
    result = load_attributes(str(DATA / "nexus_manual_attributes.xml"))
    assert result.status == STATUS_OK
    assert {d.name: d.source for d in result.definitions}["calc1_val"] == "$(P)userCalc1.VAL"


# --------------------------------------------------------------------------- hostile XML

XXE = """<?xml version="1.0"?>
<!DOCTYPE Attributes [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Attributes><Attribute name="a" type="CONST" source="&secret;"/></Attributes>
"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Attributes><Attribute name="a" type="CONST" source="&lol3;"/></Attributes>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Attributes SYSTEM "http://127.0.0.1:9/evil.dtd">
<Attributes><Attribute name="a" type="CONST" source="x"/></Attributes>
"""


@pytest.mark.parametrize("xml", [XXE, LAUGHS, EXTERNAL_DTD], ids=["xxe", "laughs", "dtd"])
def test_hostile_xml_is_refused(xml, tmp_path):
    path = tmp_path / "hostile.xml"
    path.write_text(xml)
    for value in (str(path), xml):
        result = load_attributes(value)
        assert result.status == STATUS_XML_ERROR
        assert "not allowed" in result.message
        assert "root:" not in result.message  # nothing of /etc/passwd leaks


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.xml"
    line = '<Attribute name="a" type="CONST" source="x"/>\n'
    path.write_text("<Attributes>" + line * (1024 * 1024 // len(line) + 10) + "</Attributes>")
    result = load_attributes(str(path))
    assert result.status == STATUS_XML_ERROR
    assert "1048576" in result.message


# --------------------------------------------------------------------------- collection


def _defs(xml: str) -> tuple[AttributeDefinition, ...]:
    result = load_attributes(xml)
    assert result.status == STATUS_OK, result.message
    return result.definitions


def test_param_attributes_from_a_dict_backed_getter():
    params = {
        ("ARRAY_COUNTER", 0): 42,
        ("MODEL", 0): "Basic simulator",
        ("ACQ_TIME", 0): 0.125,
        ("BIG", 0): 2**40,
        ("MAX_SIZE_X", 1): 1024,
    }
    collector = AttributeCollector(
        _defs(
            "<Attributes>"
            '<Attribute name="n" type="PARAM" source="ARRAY_COUNTER" datatype="INT" description="d"/>'
            '<Attribute name="m" type="PARAM" source="MODEL" datatype="STRING"/>'
            '<Attribute name="t" type="PARAM" source="ACQ_TIME" datatype="DOUBLE"/>'
            '<Attribute name="b" type="PARAM" source="BIG" datatype="INT64"/>'
            '<Attribute name="x" type="PARAM" source="MAX_SIZE_X" datatype="INT" addr="1"/>'
            '<Attribute name="lower" type="PARAM" source="ARRAY_COUNTER" datatype="int"/>'
            '<Attribute name="missing" type="PARAM" source="NO_SUCH" datatype="INT"/>'
            "</Attributes>"
        ),
        param_getter=lambda drv, addr: params[(drv, addr)],
    )
    got = collector.collect()
    assert [got[k].datatype for k in "nmtbx"] == ["INT32", "STRING", "FLOAT64", "INT64", "INT32"]
    assert got["n"].value == 42 and got["n"].description == "d"
    assert got["n"].source == "ARRAY_COUNTER" and got["n"].source_type == "NDAttrSourceParam"
    assert got["m"].value == "Basic simulator"
    assert got["t"].value == 0.125
    assert got["b"].value == 2**40
    assert got["x"].value == 1024
    # lowercase datatype does not match in ADCore: the type stays undefined
    assert got["lower"].datatype == "UNDEFINED" and got["lower"].value is None
    assert got["missing"].datatype == "UNDEFINED"
    params[("ARRAY_COUNTER", 0)] = 43
    assert collector.collect()["n"].value == 43


def test_const_attribute():
    got = AttributeCollector(
        _defs('<Attributes><Attribute name="c" type="CONST" source="My constant"/></Attributes>')
    ).collect()
    assert (got["c"].value, got["c"].datatype, got["c"].source_type) == (
        "My constant",
        "STRING",
        "NDAttrSourceConst",
    )


def test_function_attributes_of_every_type():
    result = load_attributes(str(DATA / "testAttributeDataTypes.xml"))
    got = AttributeCollector(result.definitions).collect()
    expected = {
        "Int8": ("INT8", np.int8),
        "UInt8": ("UINT8", np.uint8),
        "Int16": ("INT16", np.int16),
        "UInt16": ("UINT16", np.uint16),
        "Int32": ("INT32", np.int32),
        "UInt32": ("UINT32", np.uint32),
        "Int64": ("INT64", np.int64),
        "UInt64": ("UINT64", np.uint64),
        "Float32": ("FLOAT32", np.float32),
        "Float64": ("FLOAT64", np.float64),
    }
    for name, (datatype, np_type) in expected.items():
        assert got[name].datatype == datatype
        assert isinstance(got[name].value, np_type)
        assert got[name].source_type == "NDAttrSourceFunct"
        assert got[name].source == "myAttrFunct1"


def test_sim_detector_functions():
    result = load_attributes(str(DATA / "simDetectorAttributes.xml"))
    defs = [d for d in result.definitions if d.type == "FUNCTION"]
    got = AttributeCollector(defs).collect()
    assert got["Pi"].value == pytest.approx(math.pi) and got["Pi"].datatype == "FLOAT64"
    assert got["E"].value == pytest.approx(math.e)
    assert (got["Ten"].value, got["Ten"].datatype) == (10, "INT32")
    assert got["Gettysburg"].value.startswith("Four score")
    epics_now_ns = (time.time() - 631152000) * 1e9
    assert got["Time64"].datatype == "INT64"
    assert abs(got["Time64"].value - epics_now_ns) < 60e9


def test_unknown_function_is_undefined():
    got = AttributeCollector(
        _defs('<Attributes><Attribute name="f" type="FUNCTION" source="nope"/></Attributes>')
    ).collect()
    assert got["f"].datatype == "UNDEFINED"


# --------------------------------------------------------------------------- EPICS_PV


@pytest.fixture(scope="module")
def attr_ioc():
    """The typed-PV caproto server of tests/data/hdf5/attr_ioc.py and a client context."""
    with attr_ioc_context() as context:
        yield context


PV_CASES = [
    # (PV, dbrtype, expected datatype, expected value)
    ("13SIM1:cam1:AcquireTime", "DBR_NATIVE", "FLOAT64", 0.25),
    ("13SIM1:cam1:AcquireTime", "DBR_STRING", "STRING", "0.25"),
    ("adtattr:double", "DBR_FLOAT", "FLOAT32", 3.5),
    ("adtattr:float", "DBR_NATIVE", "FLOAT32", 1.25),
    ("adtattr:float", "DBR_DOUBLE", "FLOAT64", 1.25),
    ("adtattr:short", "DBR_NATIVE", "INT16", -123),
    ("adtattr:short", "DBR_INT", "INT16", -123),
    ("adtattr:short", "DBR_LONG", "INT32", -123),
    ("adtattr:long", "DBR_NATIVE", "INT32", 123456),
    ("adtattr:long", "DBR_SHORT", "INT16", np.int16(np.int32(123456).astype(np.int16))),
    ("adtattr:enum", "DBR_NATIVE", "INT16", 1),
    ("adtattr:enum", "DBR_ENUM", "INT16", 1),
    ("adtattr:enum", "DBR_STRING", "STRING", "Two"),
    ("adtattr:char", "DBR_NATIVE", "INT8", 65),
    ("adtattr:char", "DBR_CHAR", "INT8", 65),
    ("adtattr:string", "DBR_NATIVE", "STRING", "hello world"),
    ("adtattr:string", "DBR_STRING", "STRING", "hello world"),
    ("13SIM1:HDF1:FullFileName_RBV", "DBR_STRING", "STRING", "/data/run_001.h5"),
]


def test_epics_pv_attributes_with_dbrtype(attr_ioc):
    xml = "<Attributes>" + "".join(
        f'<Attribute name="a{i}" type="EPICS_PV" source="{pv}" dbrtype="{dbr}" description="d{i}"/>'
        for i, (pv, dbr, _, _) in enumerate(PV_CASES)
    )
    xml += "</Attributes>"
    collector = AttributeCollector(_defs(xml), ca_context=attr_ioc)
    try:
        assert collector.wait_connected(20), "EPICS_PV attributes did not connect"
        got = collector.collect()
    finally:
        collector.close()
    for i, (pv, dbr, datatype, value) in enumerate(PV_CASES):
        attr = got[f"a{i}"]
        assert (attr.datatype, attr.source, attr.source_type) == (
            datatype,
            pv,
            "NDAttrSourceEPICSPV",
        ), (pv, dbr)
        if isinstance(value, str):
            assert attr.value == value, (pv, dbr)
        else:
            assert attr.value == pytest.approx(value), (pv, dbr)


def test_epics_pv_attribute_follows_the_pv_without_blocking(attr_ioc):
    collector = AttributeCollector(
        _defs('<Attributes><Attribute name="t" source="13SIM1:cam1:Temperature"/></Attributes>'),
        ca_context=attr_ioc,
    )
    try:
        assert collector.wait_connected(20)
        assert collector.collect()["t"].value == pytest.approx(21.5)
        (pv,) = attr_ioc.get_pvs("13SIM1:cam1:Temperature")
        pv.write([30.25], wait=True, timeout=10)
        deadline = time.monotonic() + 10
        while collector.collect()["t"].value != pytest.approx(30.25):
            assert time.monotonic() < deadline, "monitor update never arrived"
            time.sleep(0.02)
        pv.write([21.5], wait=True, timeout=10)
    finally:
        collector.close()


def test_unreachable_pv_is_undefined_and_collect_returns_at_once(attr_ioc):
    collector = AttributeCollector(
        _defs('<Attributes><Attribute name="u" source="adtattr:does_not_exist"/></Attributes>'),
        ca_context=attr_ioc,
    )
    try:
        got = collector.collect()  # no CA wait happens here: the value is just undefined
        assert got["u"].datatype == "UNDEFINED" and got["u"].value is None
    finally:
        collector.close()
