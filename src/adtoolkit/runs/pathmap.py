"""IOC-side path -> workstation path, for reading a run's files.

The IOC writes files under paths that make sense on the IOC host
(``/epics/data/...``); the workstation that reads them sees the same files
somewhere else (``/mnt/beamline/data/...``).  Every reader and the exporter
take a ``path_map`` argument and turn it into one callable here.  The rule that
matches a path against a prefix is the one :class:`~adtoolkit.paths.PathTemplates`
uses when the detector records a file (:func:`adtoolkit.paths.relative_parts`), so
a file maps the same way at acquisition and when it is read back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath, PureWindowsPath

from ..paths import PathTemplates, guess_semantics, relative_parts

__all__ = ["PathMap", "as_path_mapper"]

PathMap = Callable[[str], str] | Mapping[str, str] | PathTemplates | None


def as_path_mapper(path_map: PathMap) -> Callable[[str], str]:
    """Return a function mapping an IOC-side path to the workstation path.

    ``None`` maps every path to itself; a callable is used as is; a
    :class:`~adtoolkit.paths.PathTemplates` maps as the detector did
    (``to_read_path``); a mapping ``{ioc_prefix: local_prefix}`` replaces the
    longest prefix that matches whole path components (``/data`` matches
    ``/data/x.h5`` but not ``/database``), leaving other paths as they are.
    Windows IOC prefixes (``D:\\data``) match paths written with either separator,
    in any case; the part after the prefix is joined with ``/``.
    """
    if path_map is None:
        return str
    if isinstance(path_map, PathTemplates):
        return lambda path: str(path_map.to_read_path(str(path)))
    if callable(path_map):
        return lambda path: str(path_map(str(path)))
    if not isinstance(path_map, Mapping):
        raise TypeError(f"path_map must be a callable, a mapping or None, not {type(path_map)!r}")
    prefixes = sorted(
        ((str(k), guess_semantics(str(k)), str(v)) for k, v in path_map.items()),
        key=lambda entry: _depth(entry[0], entry[1]),
        reverse=True,
    )

    def mapper(path: str) -> str:
        for ioc, semantics, local in prefixes:
            rest = relative_parts(str(path), ioc, semantics)
            if rest is None:
                continue
            if not rest:
                return local
            return local.rstrip("/\\") + "/" + "/".join(rest)
        return str(path)

    return mapper


def _depth(prefix: str, semantics: str) -> int:
    """Number of components: the longest (most specific) prefix is tried first."""
    return len((PureWindowsPath if semantics == "windows" else PurePosixPath)(prefix).parts)
