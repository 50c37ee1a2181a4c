"""The one XML reader for ADCore's files: hardened, and tracking line numbers.

Attributes and layout files come from users, beamline shares, the network and any
Channel Access client (a file name, or the XML itself, put into a CHAR waveform),
so reading one must never open another file or URL, never expand entities and
never hang.  The IOC and the validator both read through here, so they see the
same tree.  We use the standard library's expat with handlers that *refuse*
rather than ignore:

- any ``<!ENTITY>`` declaration (internal ones are how "billion laughs" bombs are
  built, external ones are how XXE reads ``file://`` or ``http://``),
- a DOCTYPE with an external subset (``SYSTEM``/``PUBLIC`` DTD),
- ``<!ATTLIST>`` declarations (expat would apply their defaults, the IOC does not),
- inputs larger than :data:`MAX_BYTES` (ADCore's MAX_LAYOUT_LEN is 1 MiB too), and
  element nesting deeper than :data:`MAX_DEPTH` (both far beyond any real file),
- anything but a regular file (a FIFO or device could block or never end).

The result is a tiny tree of :class:`Node` objects that keeps, for every element,
its tag, its XML attributes in document order and the line it starts on, which is
what the validator needs to say ``file:line: message``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

#: Largest input we accept (the biggest ADCore example is 13 kB).
MAX_BYTES = 1024 * 1024
#: Deepest element nesting we accept (ADCore layouts nest ~6 levels).
MAX_DEPTH = 200

#: what names an inline document in messages, when the IOC got the XML itself
INLINE_NAME = "inline XML"


class XMLFileError(ValueError):
    """A problem in an XML file, reported as ``file:line: message``."""

    def __init__(self, filename: str, line: int, message: str):
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line
        self.message = message

    @property
    def phrase(self) -> str:
        """``file, line N: message``: the IOC's wording (it shows in a status PV)."""
        return f"{self.filename}, line {self.line}: {self.message}"


class XMLSecurityError(XMLFileError):
    """The input tried something a configuration file has no reason to do."""


class XMLParseError(XMLFileError):
    """The input is not well-formed XML; carries the file name and line."""


@dataclass
class Node:
    """One XML element as read from a file (raw strings, no interpretation)."""

    tag: str
    attrib: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False, compare=False)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)


@dataclass
class Document:
    """A parsed file: the root element plus where it came from."""

    root: Node
    filename: str


def _looks_like_text(source: str | bytes | os.PathLike, inline_marker: str | None) -> bool:
    if isinstance(source, bytes):
        return True
    if isinstance(source, os.PathLike):
        return False
    if inline_marker is not None:
        return inline_marker in source
    return source.lstrip("\ufeff \t\r\n").startswith("<")


_ENCODING_DECL = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def declared_encoding(head: str) -> str | None:
    """The ``encoding=`` of an XML declaration at the start of ``head``, if any."""
    match = _ENCODING_DECL.match(head.lstrip("\ufeff"))
    return match.group(1) if match else None


def _transcode(name: str, convert, value: str | bytes, encoding: str):
    """``convert(value, encoding)``; a failure is the XML declaration's (line 1)."""
    try:
        return convert(value, encoding)
    except (UnicodeError, LookupError) as exc:
        raise XMLParseError(
            name, 1, f"cannot use the encoding declared in the XML declaration ({encoding}): {exc}"
        ) from None


def _encode(text: str, name: str) -> bytes:
    """Literal XML as the bytes its declaration says (expat decodes by it)."""
    body = text.lstrip("\ufeff")
    return _transcode(name, str.encode, body, declared_encoding(body) or "utf-8")


def read_source(
    source: str | bytes | os.PathLike,
    filename: str | None = None,
    inline_marker: str | None = None,
) -> tuple[bytes, str]:
    """Return ``(data, filename)`` for a path or literal XML, enforcing the size bound.

    By default a string starting with ``<`` (after blanks) is literal XML; with
    ``inline_marker``, a string holding that marker is (ADCore's rule for
    NDAttributesFile and XMLFileName).  Anything else is a path.  A path that
    cannot be read raises :class:`FileNotFoundError`.
    """
    if _looks_like_text(source, inline_marker):
        name = filename or ("<string>" if inline_marker is None else INLINE_NAME)
        if isinstance(source, str):
            if len(source) > MAX_BYTES:  # every character is at least one byte
                raise XMLSecurityError(name, 1, f"input is over the {MAX_BYTES}-byte limit")
            data = _encode(source, name)
        else:
            data = bytes(source)
    else:
        path = Path(source)
        name = filename or str(path)
        try:
            info = path.stat()
        except OSError as exc:
            raise FileNotFoundError(f"{name}: cannot read XML file: {exc.strerror}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise XMLSecurityError(name, 1, "not a regular file")
        size = info.st_size
        if size > MAX_BYTES:
            raise XMLSecurityError(
                name, 1, f"file is {size} bytes, over the {MAX_BYTES}-byte limit"
            )
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise FileNotFoundError(f"{name}: cannot read XML file: {exc.strerror}") from exc
    if len(data) > MAX_BYTES:
        raise XMLSecurityError(name, 1, f"input is over the {MAX_BYTES}-byte limit")
    return data, name


def _check_utf8(data: bytes, name: str) -> None:
    """Without a declared encoding the text must be UTF-8; say so, with the line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return  # a byte order mark: expat knows the encoding
    if declared_encoding(data[:200].decode("latin-1")):
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise XMLParseError(
            name,
            line,
            "not valid utf-8 text (declare the encoding in <?xml ... encoding=...?> "
            f"if it is not UTF-8): {exc.reason} at byte {exc.start}",
        ) from None


def parse_text(text: str, filename: str) -> Document:
    """Parse literal XML (e.g. a file's text after macro expansion) named ``filename``."""
    return parse_document(_encode(text, filename), filename)


def decode(data: bytes, name: str) -> str:
    """The text of ``data``, decoded as its XML declaration says (default UTF-8)."""
    _check_utf8(data, name)
    encoding = declared_encoding(data[:200].decode("latin-1")) or "utf-8"
    return _transcode(name, bytes.decode, data, encoding).lstrip("\ufeff")


def parse_document(
    source: str | bytes | os.PathLike,
    filename: str | None = None,
    inline_marker: str | None = None,
) -> Document:
    """Parse XML safely into a :class:`Document` (see the module docstring)."""
    data, name = read_source(source, filename, inline_marker)
    _check_utf8(data, name)
    parser = expat.ParserCreate()
    # Never read parameter entities or an external DTD subset.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    roots: list[Node] = []

    def refuse(message: str):
        raise XMLSecurityError(name, parser.CurrentLineNumber, message)

    def start(tag, attrs):
        if len(stack) >= MAX_DEPTH:
            refuse(f"elements nested deeper than {MAX_DEPTH} levels")
        # ordered_attributes gives [k1, v1, k2, v2, ...] in document order
        attrib = dict(zip(attrs[0::2], attrs[1::2], strict=True))
        node = Node(tag, attrib, parser.CurrentLineNumber)
        if stack:
            node.parent = stack[-1]
            stack[-1].children.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(tag):
        stack.pop()

    def doctype(doctype_name, system_id, public_id, has_internal_subset):
        if system_id or public_id:
            refuse(
                f"external DTD refused (DOCTYPE {doctype_name} "
                f"{'PUBLIC ' + public_id if public_id else 'SYSTEM'} {system_id or ''}); "
                "XML files are not allowed to load other files or URLs"
            )

    def entity_decl(entity_name, is_param, value, base, system_id, public_id, notation):
        if system_id or public_id:
            refuse(
                f"external entity {entity_name!r} ({system_id or public_id}) refused: "
                "XML files are not allowed to load other files or URLs (XXE)"
            )
        refuse(
            f"entity declaration {entity_name!r} refused: entities are not "
            "allowed in attributes/layout files (entity-expansion bomb protection)"
        )

    def attlist_decl(elname, attname, type_, default, required):
        refuse(
            f"DTD attribute declaration for <{elname} {attname}> refused: its default would "
            "change the file's meaning, and the IOC's parser does not apply it; "
            "DTD declarations are not allowed"
        )

    def external_ref(context, base, system_id, public_id):
        refuse(f"external entity reference ({system_id or public_id}) refused: not allowed (XXE)")

    parser.ordered_attributes = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity_decl
    parser.ExternalEntityRefHandler = external_ref
    parser.AttlistDeclHandler = attlist_decl
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XMLParseError(name, exc.lineno, expat.ErrorString(exc.code)) from None
    except XMLSecurityError:
        raise
    except (LookupError, ValueError) as exc:
        # An encoding expat does not know itself is looked up in Python's codecs, whose
        # errors (unknown name, a bytes-to-bytes codec such as "base64", a multi-byte
        # codec pyexpat cannot use) escape from Parse() as they are.  They can only come
        # from the encoding= of the XML declaration, which is on line 1.
        raise XMLParseError(
            name, 1, f"cannot read the encoding declared in the XML declaration: {exc}"
        ) from None
    if not roots:
        raise XMLParseError(name, 1, "no root element")
    return Document(roots[0], name)
