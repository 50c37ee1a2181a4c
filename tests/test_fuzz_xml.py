"""Random attributes and layout models, and random XML text, against adtoolkit.xml.

- generate -> parse is an exact round trip for any model the generator accepts; a model
  it cannot write (e.g. a control character no XML can carry) is refused with a
  ValueError naming the value, never written as a file that cannot be read back;
- the validator never crashes: it returns problems (with file:line) for any model and
  any well-formed file;
- random or mutated XML text only ever raises the package's own clear errors.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adtoolkit.adcore.vocabulary import (
    ATTRIBUTE_TYPES,
    CONST_TYPES,
    DATASET_SOURCES,
    DBR_TYPES,
    PARAM_DATATYPES,
    WHEN_VALUES,
)
from adtoolkit.xml import (
    Attribute,
    Attributes,
    Dataset,
    Global,
    Group,
    HardLink,
    Layout,
    LayoutAttribute,
    XMLParseError,
    XMLSecurityError,
    XMLStructureError,
    nexus_layout_from_attributes,
    parse,
    validate,
    validate_files,
)

#: CI keeps the fuzz short; ADTOOLKIT_FUZZ_EXAMPLES=1000 for a deep run
EXAMPLES = int(os.environ.get("ADTOOLKIT_FUZZ_EXAMPLES", "40"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Text as users really type it, plus the characters XML treats specially.
plain = st.text(string.ascii_letters + string.digits + "_-:.$()/ ", min_size=1, max_size=20)
# Any unicode, incl. < > & " ' \n \t \r and what XML 1.0 cannot carry (other C0 controls,
# U+FFFE/U+FFFF, lone surrogates): the writer must refuse those with a ValueError.
awkward = st.text(st.characters(), max_size=20)
text = st.one_of(plain, plain, awkward)
xml_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,10}\Z")
# Any text as keys of ``extra``: one that is not an XML name must be refused at write.
extra_key = st.one_of(xml_name, xml_name, st.text(max_size=6))
reserved = {
    "name",
    "type",
    "source",
    "dbrtype",
    "datatype",
    "addr",
    "param",
    "description",
    "value",
    "ndattribute",
    "when",
    "det_default",
    "ndattr_default",
    "target",
    "auto_ndattr_default",
}
extras = st.dictionaries(extra_key.filter(lambda k: k not in reserved), text, max_size=2)


def maybe(strategy):
    return st.one_of(st.none(), strategy)


attributes = st.builds(
    Attribute,
    name=text,
    type=st.one_of(st.sampled_from(ATTRIBUTE_TYPES), text),
    source=text,
    dbrtype=maybe(st.one_of(st.sampled_from(DBR_TYPES), text)),
    datatype=maybe(st.one_of(st.sampled_from(PARAM_DATATYPES), text)),
    addr=maybe(st.one_of(st.integers(0, 9).map(str), text)),
    param=maybe(text),
    description=maybe(text),
    extra=extras,
).map(lambda a: a)

attribute_files = st.builds(
    Attributes,
    attributes=st.lists(attributes, max_size=6, unique_by=lambda a: a.name),
    extra=extras,
)

layout_attributes = st.builds(
    LayoutAttribute,
    name=text,
    source=maybe(st.one_of(st.sampled_from(["constant", "ndattribute"]), text)),
    value=maybe(text),
    type=maybe(st.one_of(st.sampled_from(CONST_TYPES), text)),
    ndattribute=maybe(text),
    when=maybe(st.one_of(st.sampled_from(WHEN_VALUES), text)),
    extra=extras,
)

datasets = st.builds(
    Dataset,
    name=text,
    source=maybe(st.one_of(st.sampled_from(DATASET_SOURCES), text)),
    value=maybe(text),
    type=maybe(st.one_of(st.sampled_from(CONST_TYPES), text)),
    ndattribute=maybe(text),
    when=maybe(st.one_of(st.sampled_from(WHEN_VALUES), text)),
    det_default=st.booleans(),
    attributes=st.lists(layout_attributes, max_size=2),
    extra=extras,
)
hardlinks = st.builds(HardLink, name=text, target=text, extra=extras)


def _group(children):
    return st.builds(
        lambda name, nd, kids, attrs, extra: Group(
            name, None, ndattr_default=nd, children=kids, attributes=attrs, extra=extra
        ),
        text,
        st.booleans(),
        st.lists(children, max_size=4),
        st.lists(layout_attributes, max_size=2),
        extras,
    )


groups = st.recursive(
    st.one_of(datasets, hardlinks),
    lambda children: _group(children),
    max_leaves=12,
).filter(lambda g: isinstance(g, Group))

layouts = st.builds(
    Layout,
    children=st.lists(
        st.one_of(groups, st.builds(Global, name=text, ndattribute=text, extra=extras)),
        max_size=3,
    ),
    auto_ndattr_default=st.booleans(),
    extra=extras,
)

CLEAR_ERRORS = (XMLParseError, XMLSecurityError, XMLStructureError)


def _round_trip(model):
    """to_xml -> parse, or a ValueError at to_xml naming the offending value."""
    try:
        xml = model.to_xml()
    except ValueError as exc:
        assert str(exc), "a refused model needs a message"
        return None
    try:
        back = parse(xml)
    except CLEAR_ERRORS as exc:
        pytest.fail(f"the generator wrote XML it cannot read back ({exc}):\n{xml}")
    return xml, back


@SETTINGS
@given(model=attribute_files)
def test_attributes_round_trip_and_validate(model):
    result = _round_trip(model)
    if result is None:
        return
    xml, back = result
    assert back == model, xml
    assert back.to_xml() == xml
    problems = validate(back)
    assert all(p.line >= 1 and p.message for p in problems)


@SETTINGS
@given(model=layouts, names=st.lists(text, max_size=4))
def test_layouts_round_trip_and_validate(model, names):
    result = _round_trip(model)
    if result is None:
        return
    xml, back = result
    assert back == model, xml
    assert back.to_xml() == xml
    for known in (None, names):
        problems = validate(back, known)
        assert all(p.line >= 1 and p.message for p in problems)


@SETTINGS
@given(
    attrs=st.lists(
        st.tuples(
            st.sampled_from(["pv", "param", "const", "function"]),
            xml_name,
            plain,
        ),
        max_size=6,
        unique_by=lambda t: t[1],
    )
)
def test_builders_give_files_the_validator_accepts(attrs):
    """What the notebook builders produce is always valid for the IOC."""
    model = Attributes()
    for kind, name, source in attrs:
        getattr(model, kind)(name, source)
    errors = [p for p in validate(model) if p.severity == "error"]
    assert errors == []
    layout = nexus_layout_from_attributes(model)
    errors = [p for p in validate(layout, model) if p.severity == "error"]
    assert errors == [], [str(p) for p in errors]
    assert parse(layout.to_xml()) == layout


# -- random and mutated text -----------------------------------------------------------------

SAMPLE_ATTRIBUTES = Attributes().pv("T", "IOC:temp").param("N", "ARRAY_COUNTER").to_xml()
SAMPLE_LAYOUT = Layout.default().to_xml()


def _mutate(data: bytes, edits):
    buf = bytearray(data)
    for pos, kind, byte in edits:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:
            del buf[i]
        elif kind == 1:
            buf.insert(i, byte)
        else:
            buf[i] = byte
    return bytes(buf)


edits = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 2), st.integers(0, 255)), max_size=8
)


@SETTINGS
@given(
    base=st.sampled_from([SAMPLE_ATTRIBUTES, SAMPLE_LAYOUT]).map(str.encode),
    edits=edits,
)
def test_mutated_files_raise_only_clear_errors(base, edits, tmp_path_factory):
    data = _mutate(base, edits)
    try:
        parse(data)
    except CLEAR_ERRORS as exc:
        assert str(exc)
    except ValueError as exc:  # e.g. a value the model rejects: still a clear message
        assert str(exc)
    path = tmp_path_factory.mktemp("fuzz") / "mutated.xml"
    path.write_bytes(data)
    problems = validate_files([path])  # never raises: problems carry file and line
    assert all(str(path) in p.filename or p.filename.startswith("<") for p in problems)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_random_bytes_raise_only_clear_errors(data):
    try:
        parse(b"<" + data)
    except (*CLEAR_ERRORS, ValueError) as exc:
        assert str(exc)


# -- bugs this fuzzing found, kept as regression tests ---------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        Attributes(extra={"0": "x"}),
        Layout(extra={"a b": "x"}),
        Attributes([Attribute("T", description="\x1f")]),
        Layout([Global("detector_data_destination", "\x01")]),
    ],
    ids=["attributes-key", "layout-key", "attribute-value", "global-value"],
)
def test_what_xml_cannot_carry_is_refused_at_write(model):
    with pytest.raises(ValueError, match=r"0|a b|\\x1f|\\x01"):
        model.to_xml()


def test_unknown_encoding_is_a_clear_parse_error(tmp_path):
    bad = SAMPLE_ATTRIBUTES.replace("UTF-8", "TF-8")
    with pytest.raises(XMLParseError, match=r"<string>:1"):
        parse(bad)
    path = tmp_path / "bad.xml"
    path.write_text(bad)
    problems = validate_files([path])
    assert [p.line for p in problems] == [1]


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: Attributes().pv("T", "IOC:\x07temp"), r"<Attribute name='T'>: source=.*U\+0007"),
        (lambda: Attributes().const("C", "a\ufffeb"), r"<Attribute name='C'>: source=.*U\+FFFE"),
        (lambda: Group("entry").attr("bad\x00", 1), r"<attribute name='bad\\x00'>: name="),
        (lambda: Group("entry").add(HardLink("h", "/a", extra={"a b": "x"})), r"'a b' is not"),
        (lambda: Layout().add(Global(ndattribute="\x1b")), r"<global .*U\+001B"),
    ],
    ids=["pv-source", "const-ufffe", "layout-attribute-name", "hardlink-key", "global-value"],
)
def test_builders_refuse_what_xml_cannot_carry(build, expected):
    """The notebook builders refuse at the line that adds the value, not at write time."""
    with pytest.raises(ValueError, match=expected):
        build()


def test_extra_key_repeating_an_own_attribute_is_refused():
    """A duplicate XML attribute is not well-formed: refused, naming element and key."""
    model = Attributes([Attribute("T", extra={"source": "x"})])
    with pytest.raises(ValueError, match=r"<Attribute name='T'>: extra key 'source'"):
        model.to_xml()


def test_non_ascii_names_expat_reads_are_written(tmp_path):
    model = Attributes([Attribute("T", extra={"\u00e9t\u00e9": "\u00e9"})])
    assert parse(model.to_xml()) == model


@pytest.mark.parametrize("encoding", ["TF-8", "base64", "shift_jis", "undefined"])
def test_encodings_python_cannot_give_expat_are_clear_parse_errors(encoding, tmp_path):
    """Unknown, bytes-to-bytes and multi-byte codecs all end as XMLParseError at line 1."""
    bad = SAMPLE_ATTRIBUTES.replace("UTF-8", encoding).encode("ascii")
    with pytest.raises(XMLParseError, match=r"<string>:1: .*encoding"):
        parse(bad)
    path = tmp_path / "bad.xml"
    path.write_bytes(bad)
    problems = validate_files([path])
    assert [(p.filename, p.line) for p in problems] == [(str(path), 1)]
    assert encoding in problems[0].message or "encoding" in problems[0].message
