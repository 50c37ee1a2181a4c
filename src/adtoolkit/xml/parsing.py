"""Reading a file of either kind, recognised by its root element.

Apart from both file models because it is the one reader that needs the two
(``adtoolkit xml validate`` and :func:`adtoolkit.xml.parse` take either file).
"""

from __future__ import annotations

import os

from adtoolkit.adcore.xmlreader import parse_document
from adtoolkit.xml.attributesfile import Attributes, attributes_from_document
from adtoolkit.xml.layoutfile import Layout, layout_from_document
from adtoolkit.xml.xmltext import XMLStructureError


def parse(source: str | bytes | os.PathLike) -> Attributes | Layout:
    """Parse either kind of file, recognised by its root element."""
    doc = parse_document(source)
    if doc.root.tag == "Attributes":
        return attributes_from_document(doc)
    if doc.root.tag == "hdf5_layout":
        return layout_from_document(doc)
    raise XMLStructureError(
        doc.filename,
        doc.root.line,
        f"root element <{doc.root.tag}> is neither <Attributes> nor <hdf5_layout>",
    )
