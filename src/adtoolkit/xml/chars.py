"""What XML 1.0 can carry: the characters of a value and the names of XML attributes.

A model is plain Python, so it can hold strings no XML file can carry: a C0 control
character such as ``"\\x01"``, U+FFFE/U+FFFF, a lone surrogate, or an ``extra`` key
such as ``"a b"`` that is not an XML name.  Writing those would give a file that no
parser (ours, the IOC's libxml2) can read, discovered only when the detector is
armed.  The writer and the builders refuse them here instead, with a message that
names the element, the XML attribute and the offending character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from xml.parsers import expat

# XML 1.0 (section 2.2) Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The names everybody writes; anything else is decided by expat, the parser we read with.
_ASCII_NAME = re.compile(r"\A[A-Za-z_:][A-Za-z0-9_.:-]*\Z")


def bad_char(value: str) -> str | None:
    """The first character of ``value`` that XML 1.0 cannot carry, or None."""
    match = _NOT_XML_CHAR.search(value)
    return match.group() if match else None


def _describe(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


def is_xml_name(name: str) -> bool:
    """True when ``name`` can be written as an XML attribute name and read back."""
    if _ASCII_NAME.match(name):
        return True
    if not name or bad_char(name) or any(c in name for c in " \t\r\n=<>&\"'/"):
        return False
    parser = expat.ParserCreate()
    try:
        parser.Parse(f'<a {name}=""/>'.encode(), True)
    except expat.ExpatError:
        return False
    return True


def check_value(where: str, key: str, value: str) -> None:
    """Raise ValueError when ``value`` of XML attribute ``key`` cannot be written as XML."""
    char = bad_char(value)
    if char is not None:
        raise ValueError(
            f"{where}: {key}={value!r} holds {_describe(char)}, "
            "a character XML 1.0 cannot carry (no parser could read the file back)"
        )


def check_name(where: str, key: str) -> None:
    """Raise ValueError when ``key`` is not a name an XML attribute can have."""
    if not is_xml_name(key):
        char = bad_char(key)
        detail = f" (it holds {_describe(char)})" if char else ""
        raise ValueError(
            f"{where}: {key!r} is not an XML name{detail}, so it cannot be written as an "
            "XML attribute (names start with a letter or _ and hold no spaces)"
        )


def check_element(
    tag: str, pairs: Iterable[tuple[str, str | None]], extra: Mapping[str, str]
) -> None:
    """Raise ValueError unless ``<tag>`` with these XML attributes can be written.

    ``pairs`` are the element's own XML attributes (all of them, ``None`` when absent),
    so an ``extra`` key repeating one of them, a duplicate XML attribute that no parser
    accepts, is refused too.
    """
    pairs = list(pairs)
    name = dict(pairs).get("name")
    where = f"<{tag}>" if name is None else f"<{tag} name={name!r}>"
    for key, value in [*pairs, *extra.items()]:
        if value is not None:
            check_value(where, key, value)
    known = {k for k, _ in pairs}
    for key in extra:
        check_name(where, key)
        if key in known:
            raise ValueError(f"{where}: extra key {key!r} repeats the model's own {key}= attribute")
