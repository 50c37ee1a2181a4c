"""What both of ADCore's XML files share when we read and write them as text.

The attributes file (:mod:`.attributesfile`) and the layout file
(:mod:`.layoutfile`) each keep their model next to their own reading and writing;
this module holds the conventions common to the two, so that neither has to import
the other: the XML declaration, escaping of XML attributes, atomic writes, the
error for well-formed XML that is not a file we can model, and the checks builders
run before a value enters a model.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from xml.sax.saxutils import quoteattr

from adtoolkit.adcore.xmlreader import Document, Node, XMLFileError
from adtoolkit.xml.chars import check_element

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
INDENT = "  "


class XMLStructureError(XMLFileError):
    """The XML is well-formed but not an attributes or layout file we can model."""


# --------------------------------------------------------------------------- building


def check_choice(what: str, value: str | None, choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")


def check_writable(tag: str, element: object) -> None:
    """Refuse, when a builder adds it, a value the XML writer could not write (see .chars)."""
    pairs = [
        (f.name, value)
        for f in fields(element)
        if f.name != "extra" and isinstance(value := getattr(element, f.name), str)
    ]
    check_element(tag, pairs, getattr(element, "extra", {}))


# --------------------------------------------------------------------------- writing


def xml_attributes(tag: str, pairs: list[tuple[str, str | None]], extra: dict[str, str]) -> str:
    """The XML attributes of ``<tag>``, refusing what XML 1.0 cannot carry (see .chars).

    ``pairs`` are the element's own attributes (all of them, ``None`` when absent), so
    an ``extra`` key that repeats one of them, which would be a duplicate XML attribute,
    is refused too.
    """
    check_element(tag, pairs, extra)
    items = [(k, v) for k, v in pairs if v is not None] + list(extra.items())
    return "".join(
        f" {k}={quoteattr(v, {chr(10): '&#10;', chr(13): '&#13;', chr(9): '&#9;'})}"
        for k, v in items
    )


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half.

    The IOC may re-read the file at any time (every file open), so we write a
    temporary file in the same directory and ``os.replace`` it into place.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- reading


def extra_of(node: Node, known: tuple[str, ...]) -> dict[str, str]:
    """The XML attributes of ``node`` a model has no field for (kept, never lost)."""
    return {k: v for k, v in node.attrib.items() if k not in known}


def required(doc: Document, node: Node, key: str) -> str:
    value = node.get(key)
    if value is None:
        raise XMLStructureError(doc.filename, node.line, f"<{node.tag}> has no {key}=")
    return value
