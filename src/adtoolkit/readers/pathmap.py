"""IOC-side path -> workstation path.

The IOC writes files under paths that make sense on the IOC host
(``/epics/data/...``); the workstation that reads them sees the same files
somewhere else (``/mnt/beamline/data/...``).  Every reader and the exporter
take a ``path_map`` argument and turn it into one callable here, so that the
mapping rule (longest matching directory prefix wins) is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

PathMap = Callable[[str], str] | Mapping[str, str] | None


def _norm(path: str) -> str:
    """Forward slashes, no trailing or doubled separator: the form prefixes are matched in."""
    text = str(path).replace("\\", "/")
    return str(PurePosixPath(text)) if text else text


def as_path_mapper(path_map: PathMap) -> Callable[[str], str]:
    """Return a function mapping an IOC-side path to the workstation path.

    ``None`` maps every path to itself; a callable is used as is; a mapping
    ``{ioc_prefix: local_prefix}`` replaces the longest prefix that matches whole
    path components (``/data`` matches ``/data/x.h5`` but not ``/database``).
    Windows IOC paths (``D:\\data\\x.h5``) match prefixes written with either
    separator; the part after the prefix is joined with ``/``.
    """
    if path_map is None:
        return str
    if callable(path_map):
        return lambda path: str(path_map(str(path)))
    if not isinstance(path_map, Mapping):
        raise TypeError(f"path_map must be a callable, a mapping or None, not {type(path_map)!r}")
    prefixes = sorted(
        ((_norm(k), str(v)) for k, v in path_map.items()),
        key=lambda kv: len(kv[0]),
        reverse=True,
    )

    def mapper(path: str) -> str:
        norm = _norm(path)
        for ioc, local in prefixes:
            if norm == ioc:
                return local
            head = ioc if ioc.endswith("/") else ioc + "/"
            if norm.startswith(head):
                return local.rstrip("/\\") + "/" + norm[len(head) :]
        return str(path)

    return mapper
