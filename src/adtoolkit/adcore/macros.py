"""EPICS macro substitution as ADCore applies it to NDAttributes files.

``asynNDArrayDriver::readNDAttributesFile`` runs the file's text through EPICS
macLib with the definitions of NDAttributesMacros.  What the real IOC does
(simDetector, ADCore R3-14, checked put by put):

- NDAttributesMacros empty: nothing is expanded, ``$(P)`` stays as it is;
  any other value, even blanks only, turns expansion on;
- definitions are ``A=1,B=x``: blanks around names and values are dropped,
  quotes keep commas and blanks (``B='a,b'``), empty items are skipped, an item
  without ``=`` or without a name is an error;
- ``$(NAME)`` and ``${NAME}`` expand, recursively (``C=$(A)2``); ``$(NAME=default)``
  gives the default when NAME is undefined;
- an undefined name, a recursive definition, or an unterminated ``$(`` is an
  error: NDAttributesStatus 3, "Macro substitution error".

The simulated IOC expands with this module, and ``adtoolkit.xml.install`` checks
files against it before handing them over, so both follow the same grammar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: deepest chain of macros defined by other macros before we call it recursive
MAX_DEPTH = 10

_MACRO_REF = re.compile(r"\$(?:\(([^()=]*)(?:=([^()]*))?\)|\{([^{}=]*)(?:=([^{}]*))?\})")
_MACRO_START = re.compile(r"\$[({]")


class MacroError(ValueError):
    """A ``$(NAME)`` reference with no definition, or a malformed definition list."""


def has_macro(text: str) -> bool:
    """True when ``text`` holds a ``$(`` or ``${`` macro reference."""
    return _MACRO_START.search(text) is not None


def expands(macros: str | Mapping[str, str]) -> bool:
    """Whether the IOC expands macros at all with this NDAttributesMacros value."""
    return isinstance(macros, Mapping) or macros != ""


def parse_macros(macros: str | Mapping[str, str]) -> dict[str, str]:
    """Parse an EPICS macro definition string ``"A=1,B=x"`` into a dict."""
    if isinstance(macros, Mapping):
        return {str(k): str(v) for k, v in macros.items()}
    result: dict[str, str] = {}
    for item in _split_definitions(macros):
        if not item.strip():
            continue
        if "=" not in item:
            raise MacroError(f"macro definition {item.strip()!r} has no '='")
        name, value = item.split("=", 1)
        name = name.strip()
        if not name:
            raise MacroError(f"macro definition {item.strip()!r} has no name")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[name] = value
    return result


def _split_definitions(text: str) -> list[str]:
    """Split on commas outside quotes."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def expand_macros(text: str, macros: Mapping[str, str], _depth: int = 0) -> str:
    """Expand ``$(NAME)``, ``${NAME}`` and ``$(NAME=default)``; undefined names raise."""
    if _depth > MAX_DEPTH:
        raise MacroError(
            f"macro expansion nested more than {MAX_DEPTH} levels (recursive definition?)"
        )
    pieces: list[str] = []
    end = 0
    for match in _MACRO_REF.finditer(text):
        _check_terminated(text, end, match.start())
        pieces.append(text[end : match.start()])
        name = match.group(1) if match.group(1) is not None else match.group(3)
        default = match.group(2) if match.group(1) is not None else match.group(4)
        if name in macros:
            pieces.append(expand_macros(macros[name], macros, _depth + 1))
        elif default is not None:
            pieces.append(default)
        else:
            raise MacroError(f"undefined macro $({name}) at line {_line(text, match.start())}")
        end = match.end()
    _check_terminated(text, end, len(text))
    pieces.append(text[end:])
    return "".join(pieces)


def _check_terminated(text: str, start: int, stop: int) -> None:
    """A ``$(`` or ``${`` outside any complete reference is unterminated: macLib refuses it."""
    match = _MACRO_START.search(text, start, stop)
    if match is not None:
        raise MacroError(
            f"unterminated macro reference {text[match.start() : match.start() + 20]!r} "
            f"at line {_line(text, match.start())}"
        )


def undefined_macros(text: str, macros: str | Mapping[str, str]) -> list[str]:
    """The names ``text`` uses without a definition or default (sorted, each once).

    Raises :class:`MacroError` when ``macros`` itself is malformed.
    """
    defined = parse_macros(macros)
    missing: set[str] = set()
    for match in _MACRO_REF.finditer(text):
        name = match.group(1) if match.group(1) is not None else match.group(3)
        default = match.group(2) if match.group(1) is not None else match.group(4)
        if name not in defined and default is None:
            missing.add(name)
    return sorted(missing)
