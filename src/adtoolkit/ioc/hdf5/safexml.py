"""Safe parsing of the small XML files an areaDetector IOC reads.

Layout and attributes XML arrive from Channel Access (a file name, or the XML
itself, put into a CHAR waveform), so they are untrusted input.  ADCore uses
libxml2 with its defaults; we are stricter on purpose: no DTD at all, no entity
declarations, no external references, and a size bound, so a hostile file
cannot read other files, reach the network or blow up memory ("billion laughs").
Each refusal is a :class:`XMLInputError` whose message names the file (or
"inline XML") and, for syntax errors, the line.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as DET

#: the largest XML document we accept (ADCore's MAX_LAYOUT_LEN is 1 MiB too)
MAX_XML_BYTES = 1024 * 1024


class XMLInputError(ValueError):
    """XML that cannot or must not be parsed.

    ``kind`` is ``"not_found"`` (no such file / unreadable), ``"too_large"``,
    ``"forbidden"`` (DTD, entities, external references) or ``"syntax"``.
    """

    def __init__(self, message: str, kind: str, source: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.source = source


@dataclass(frozen=True)
class XMLDocument:
    """A parsed document and where it came from (a path, or ``"inline XML"``)."""

    root: ET.Element
    source: str
    base_dir: str | None


def read_xml_text(file_or_xml: str, inline_marker: str) -> tuple[str, str, str | None]:
    """Return ``(text, source_label, base_dir)`` for a file name or inline XML.

    ``inline_marker`` is the substring that makes ADCore treat the value as XML
    rather than as a file name (``"<?xml"`` for layouts, ``"<Attributes"`` for
    attribute lists).
    """
    if inline_marker in file_or_xml:
        data = file_or_xml.encode("utf-8")
        if len(data) > MAX_XML_BYTES:
            raise XMLInputError(
                f"inline XML is {len(data)} bytes, more than the {MAX_XML_BYTES} allowed",
                "too_large",
                "inline XML",
            )
        return file_or_xml, "inline XML", None
    path = file_or_xml
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise XMLInputError(
            f"cannot open XML file {path!r}: {exc.strerror or exc}", "not_found", path
        ) from None
    if size > MAX_XML_BYTES:
        raise XMLInputError(
            f"XML file {path!r} is {size} bytes, more than the {MAX_XML_BYTES} allowed",
            "too_large",
            path,
        )
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_XML_BYTES + 1)
    except OSError as exc:
        raise XMLInputError(
            f"cannot open XML file {path!r}: {exc.strerror or exc}", "not_found", path
        ) from None
    if len(raw) > MAX_XML_BYTES:  # grew between stat and read, or a device file
        raise XMLInputError(
            f"XML file {path!r} is more than the {MAX_XML_BYTES} bytes allowed", "too_large", path
        )
    encoding = _declared_encoding(raw[:200].decode("latin-1")) or "utf-8"
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise XMLInputError(
            f"XML file {path!r} is not valid {encoding} text (declare the encoding in "
            f"<?xml ... encoding=...?> if it is not UTF-8): {exc}",
            "syntax",
            path,
        ) from None
    return text, path, os.path.dirname(os.path.abspath(path))


_ENCODING_DECL = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _declared_encoding(head: str) -> str | None:
    match = _ENCODING_DECL.match(head.lstrip("\ufeff"))
    return match.group(1) if match else None


def parse_xml_text(text: str, source: str) -> ET.Element:
    """Parse ``text`` with DTDs, entities and external references forbidden."""
    if len(text.encode("utf-8")) > MAX_XML_BYTES:
        raise XMLInputError(
            f"{source}: XML is more than the {MAX_XML_BYTES} bytes allowed", "too_large", source
        )
    # the parser decodes bytes by the XML declaration, so encode the text to match it
    body = text.lstrip("\ufeff")
    encoding = _declared_encoding(body) or "utf-8"
    try:
        data = body.encode(encoding)
    except (UnicodeEncodeError, LookupError) as exc:
        raise XMLInputError(
            f"{source}: cannot encode as {encoding}: {exc}", "syntax", source
        ) from None
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise XMLInputError(
            f"{source}: a DOCTYPE/DTD is not allowed in this XML", "forbidden", source
        ) from None
    except defusedxml.EntitiesForbidden as exc:
        raise XMLInputError(
            f"{source}: entity declaration {exc.name!r} is not allowed in this XML",
            "forbidden",
            source,
        ) from None
    except defusedxml.ExternalReferenceForbidden:
        raise XMLInputError(
            f"{source}: external references are not allowed in this XML", "forbidden", source
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise XMLInputError(
            f"{source}: forbidden XML construct: {exc}", "forbidden", source
        ) from None
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise XMLInputError(
            f"{source}: XML syntax error at line {line}, column {col}: {exc}", "syntax", source
        ) from None


def load_xml(file_or_xml: str, inline_marker: str) -> XMLDocument:
    """Read (file or inline) and safely parse an XML document."""
    text, source, base_dir = read_xml_text(file_or_xml, inline_marker)
    return XMLDocument(parse_xml_text(text, source), source, base_dir)
