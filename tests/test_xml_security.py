"""Hostile inputs: entity bombs, XXE, external DTDs, oversize and over-deep files.

Each must fail fast with a clear error and never read another file or URL.
"""

from __future__ import annotations

import socket
import threading

import pytest

from adtoolkit.adcore.xmlreader import MAX_BYTES, MAX_DEPTH, parse_document
from adtoolkit.xml import XMLParseError, XMLSecurityError, parse, parse_attributes, validate_files

pytestmark = pytest.mark.timeout(30)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE Attributes [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Attributes><Attribute name="x" type="CONST" source="&lol9;"/></Attributes>
"""


def test_billion_laughs_is_refused():
    with pytest.raises(XMLSecurityError, match="entity declaration 'lol' refused.*bomb"):
        parse(BILLION_LAUGHS)


def test_quadratic_blowup_is_refused():
    text = (
        '<!DOCTYPE Attributes [<!ENTITY a "' + "x" * 10000 + '">]>'
        '<Attributes><Attribute name="x" type="CONST" source="' + "&a;" * 1000 + '"/></Attributes>'
    )
    with pytest.raises(XMLSecurityError, match="entity declaration 'a' refused"):
        parse(text)


def test_xxe_file_is_refused_and_secret_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    text = (
        f'<!DOCTYPE Attributes [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<Attributes><Attribute name="x" type="CONST" source="&xxe;"/></Attributes>'
    )
    with pytest.raises(XMLSecurityError, match="external entity 'xxe'.*refused") as info:
        parse(text)
    assert "TOP-SECRET" not in str(info.value)


@pytest.fixture
def listening_server():
    """A local TCP server that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            hits.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_xxe_http_is_refused_without_connecting(listening_server):
    port, hits = listening_server
    text = (
        f'<!DOCTYPE hdf5_layout [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/x">]>'
        '<hdf5_layout><group name="&xxe;"/></hdf5_layout>'
    )
    with pytest.raises(XMLSecurityError, match="external entity 'xxe'"):
        parse(text)
    assert hits == []


def test_external_dtd_is_refused_without_connecting(listening_server):
    port, hits = listening_server
    text = f'<!DOCTYPE hdf5_layout SYSTEM "http://127.0.0.1:{port}/layout.dtd"><hdf5_layout/>'
    with pytest.raises(XMLSecurityError, match="external DTD refused"):
        parse(text)
    assert hits == []


def test_parameter_entity_is_refused():
    text = '<!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><Attributes/>'
    with pytest.raises(XMLSecurityError, match="external entity 'p'"):
        parse(text)


def test_undefined_entity_is_a_parse_error_with_line():
    with pytest.raises(XMLParseError, match=r"<string>:2: undefined entity"):
        parse('<Attributes>\n<Attribute name="&nope;"/></Attributes>')


def test_plain_doctype_without_entities_is_fine():
    attrs = parse_attributes(
        '<!DOCTYPE Attributes><Attributes><Attribute name="a" type="CONST" source="1"/></Attributes>'
    )
    assert attrs.names == ["a"]


def test_oversize_text_is_refused():
    text = "<Attributes>" + " " * MAX_BYTES + "</Attributes>"
    with pytest.raises(XMLSecurityError, match="over the 1048576-byte limit"):
        parse(text)


def test_oversize_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.xml"
    with open(path, "wb") as fh:
        fh.write(b"<Attributes>")
        fh.seek(50 * MAX_BYTES)
        fh.write(b"</Attributes>")
    with pytest.raises(XMLSecurityError, match=r"big\.xml:1: file is \d+ bytes, over the"):
        parse_document(path)


def test_deep_nesting_is_refused():
    depth = MAX_DEPTH + 5
    text = "<hdf5_layout>" + '<group name="g">' * depth + "</group>" * depth + "</hdf5_layout>"
    with pytest.raises(XMLSecurityError, match=f"nested deeper than {MAX_DEPTH}"):
        parse(text)


def test_malformed_xml_reports_file_and_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text('<Attributes>\n<Attribute name="a"\n</Attributes>')
    with pytest.raises(XMLParseError) as info:
        parse(path)
    assert info.value.filename == str(path) and info.value.line == 3


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.xml: cannot read XML file"):
        parse(tmp_path / "nothere.xml")


def test_validate_files_turns_hostile_input_into_a_problem(tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(BILLION_LAUGHS)
    (problem,) = validate_files([bomb])
    assert problem.filename == str(bomb) and problem.line == 3
    assert "entity declaration 'lol' refused" in problem.message


def test_attlist_defaults_are_refused():
    text = '<!DOCTYPE Attributes [<!ATTLIST Attribute type CDATA "PARAM">]><Attributes><Attribute name="a" source="X"/></Attributes>'
    with pytest.raises(
        XMLSecurityError, match="DTD attribute declaration for <Attribute type> refused"
    ):
        parse(text)


def test_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.xml"
    os.mkfifo(fifo)
    with pytest.raises(XMLSecurityError, match="pipe.xml:1: not a regular file"):
        parse(fifo)
