"""Where the IOC writes files and where this workstation reads them.

An areaDetector IOC and the workstation that analyses its files usually see the same
storage under different mount points (``/mnt/detector/data`` on the IOC,
``/home/beamline/data`` here), and the IOC may even run on Windows (``D:\\data``).
:class:`PathTemplates` keeps both views together:

* ``write`` is the IOC-side directory template and ``read`` the workstation-side one.
  Both may contain strftime codes (ADCore does not expand them, so the client must).
* The two templates share a common tail of path components (the part with the date
  codes); what precedes that tail is the *mount point* on each side.  Any IOC-side file
  name under the IOC mount point maps to exactly one workstation path.
* Rendered directories always end with the separator, because ADCore appends one to
  FilePath_RBV and a put that waits for the readback would otherwise never match
  (ophyd issue 1037).

Validation is strict on purpose: a bad template raises :class:`PathTemplateError`
naming the template and the problem, it never yields a plausible but wrong path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Literal

__all__ = [
    "PathTemplateError",
    "PathTemplates",
    "ReadPathMissingError",
    "RenderedPaths",
    "guess_semantics",
]

Semantics = Literal["posix", "windows"]

#: strftime codes that always expand to path-safe text (digits or locale words without
#: separators).  Codes such as %c, %x, %X, %D and %T contain '/' or ':' and would change
#: the directory structure, so they are refused.
SAFE_STRFTIME_CODES = frozenset("YymdHMSjfGVuwUWbBaAp%")

#: ADCore's FilePath record is a CHAR waveform of NELM=256 (including the final NUL).
FILE_PATH_MAX_BYTES = 255

_WINDOWS_FORBIDDEN = set('<>:"|?*')
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class PathTemplateError(ValueError):
    """A write or read path template cannot be used; the message says which and why."""


class ReadPathMissingError(FileNotFoundError):
    """The file the IOC reported is not visible from this workstation."""


def guess_semantics(template: str) -> Semantics:
    """'windows' for ``C:\\...``, ``C:/...`` or UNC ``\\\\server\\share`` templates, else 'posix'."""
    if _WINDOWS_DRIVE.match(template) or template.startswith("\\\\"):
        return "windows"
    return "posix"


def _check_strftime(template: str, which: str) -> None:
    i = 0
    while i < len(template):
        if template[i] == "%":
            if i + 1 >= len(template):
                raise PathTemplateError(
                    f"{which} path template {template!r}: dangling '%' at the end "
                    "(write '%%' for a literal percent sign)"
                )
            code = template[i + 1]
            if code not in SAFE_STRFTIME_CODES:
                raise PathTemplateError(
                    f"{which} path template {template!r}: strftime code '%{code}' at "
                    f"position {i} is not allowed in a directory template; allowed: "
                    + " ".join("%" + c for c in sorted(SAFE_STRFTIME_CODES))
                )
            i += 2
        else:
            i += 1


def _pure(semantics: Semantics) -> type[PurePath]:
    return PureWindowsPath if semantics == "windows" else PurePosixPath


def relative_parts(
    path: str, root: str, semantics: Semantics | None = None
) -> tuple[str, ...] | None:
    """The components of ``path`` below ``root``; None when ``path`` is not under it.

    The one rule that maps an IOC-side path to a workstation path, used by
    :meth:`PathTemplates.to_read_path` and by the readers' and exporter's ``path_map``
    (:mod:`adtoolkit.runs.pathmap`): whole components only (``/data`` holds
    ``/data/x.h5``, not ``/database/x.h5``); ``semantics`` (guessed from ``root`` when
    not given) decides the rest -- Windows paths take either separator and ignore case.
    """
    pure = _pure(semantics or guess_semantics(root))
    try:
        return pure(path).relative_to(pure(root)).parts
    except ValueError:
        return None


def _check_template(template: object, which: str, semantics: Semantics) -> PurePath:
    if not isinstance(template, (str, os.PathLike)):
        raise PathTemplateError(
            f"{which} path template must be a str or path, not {type(template).__name__}: "
            f"{template!r}"
        )
    text = os.fspath(template)
    if not isinstance(text, str):
        raise PathTemplateError(f"{which} path template must be text, got {text!r}")
    if not text.strip():
        raise PathTemplateError(f"{which} path template is empty")
    if text != text.strip():
        raise PathTemplateError(
            f"{which} path template {text!r} has leading or trailing white space"
        )
    bad = [c for c in text if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise PathTemplateError(
            f"{which} path template {text!r} contains control character(s) {bad!r}"
        )
    _check_strftime(text, which)
    pure = _pure(semantics)(text)
    if not pure.is_absolute():
        raise PathTemplateError(
            f"{which} path template {text!r} is not an absolute {semantics} path"
        )
    parts = pure.parts[1:]
    raw = re.split(r"[\\/]" if semantics == "windows" else "/", text)
    if any(p in ("..", ".") for p in raw):
        raise PathTemplateError(
            f"{which} path template {text!r} contains '.' or '..' components; write the "
            "directory explicitly"
        )
    if semantics == "windows":
        for p in parts:
            forbidden = sorted(set(p) & _WINDOWS_FORBIDDEN)
            if forbidden:
                raise PathTemplateError(
                    f"{which} path template {text!r}: component {p!r} contains characters "
                    f"{forbidden} that Windows does not allow in file names"
                )
    return pure


def _with_sep(path: PurePath) -> str:
    sep = "\\" if isinstance(path, PureWindowsPath) else "/"
    text = str(path)
    return text if text.endswith(sep) else text + sep


@dataclass(frozen=True)
class RenderedPaths:
    """One directory as the IOC writes it and as this workstation reads it.

    Both strings end with their separator.
    """

    write_dir: str
    read_dir: str
    semantics: Semantics

    def write_file(self, file_name: str) -> str:
        """IOC-side full name of ``file_name`` in this directory."""
        return self.write_dir + file_name

    def read_file(self, file_name: str) -> Path:
        """Workstation-side full name of ``file_name`` in this directory."""
        return Path(self.read_dir) / file_name


@dataclass(frozen=True)
class PathTemplates:
    """IOC write template and workstation read template (see the module docstring).

    Parameters
    ----------
    write:
        Directory as the IOC must be told to write it, e.g. ``"/data/%Y/%m/%d/"`` or
        ``"D:\\\\data\\\\%Y\\\\"``.  strftime codes are expanded at :meth:`render`.
    read:
        The same directory as this workstation sees it.  Defaults to ``write`` (same
        mount point), which is only possible when the IOC path semantics match this OS.
    semantics:
        ``"posix"`` or ``"windows"``: how the IOC interprets paths.  Guessed from
        ``write`` when omitted.
    """

    write: str
    read: str | None = None
    semantics: Semantics | None = None
    _write_pure: PurePath = field(init=False, repr=False, compare=False)
    _read_pure: PurePath = field(init=False, repr=False, compare=False)
    _n_common: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        write = self.write
        if isinstance(write, os.PathLike):
            write = os.fspath(write)
            object.__setattr__(self, "write", write)
        semantics = self.semantics
        if semantics is None:
            semantics = guess_semantics(write) if isinstance(write, str) else "posix"
            object.__setattr__(self, "semantics", semantics)
        if semantics not in ("posix", "windows"):
            raise PathTemplateError(
                f"path semantics must be 'posix' or 'windows', not {semantics!r}"
            )
        wpure = _check_template(write, "write", semantics)
        read = self.read
        if read is None:
            local = "windows" if os.name == "nt" else "posix"
            if semantics != local:
                raise PathTemplateError(
                    f"write path template {write!r} is a {semantics} path but this "
                    f"workstation is {local}: give read= (where the workstation sees "
                    "the same directory)"
                )
            read = write
        else:
            read = os.fspath(read) if isinstance(read, os.PathLike) else read
        object.__setattr__(self, "read", read)
        local_sem: Semantics = "windows" if os.name == "nt" else "posix"
        rpure = _check_template(read, "read", local_sem)
        # The common tail (compared component by component, exact text) carries the
        # strftime codes; everything before it is the mount point on either side.
        wparts, rparts = wpure.parts, rpure.parts
        n = 0
        while (
            n < min(len(wparts), len(rparts)) - 1
            and wparts[len(wparts) - 1 - n] == rparts[len(rparts) - 1 - n]
        ):
            n += 1
        for side, parts in (("write", wparts), ("read", rparts)):
            root_parts = parts[: len(parts) - n]
            if any("%" in p for p in root_parts):
                raise PathTemplateError(
                    f"path templates write={write!r} and read={read!r}: the {side} mount "
                    f"point {str(type(wpure if side == 'write' else rpure)(*root_parts))!r} "
                    "contains strftime codes; the date-dependent part must be the same "
                    "trailing directories on both sides"
                )
        object.__setattr__(self, "_write_pure", wpure)
        object.__setattr__(self, "_read_pure", rpure)
        object.__setattr__(self, "_n_common", n)

    # -- the mapping -------------------------------------------------------------
    @property
    def write_root(self) -> str:
        """IOC-side mount point (ends with the separator)."""
        parts = self._write_pure.parts
        return _with_sep(type(self._write_pure)(*parts[: len(parts) - self._n_common]))

    @property
    def read_root(self) -> str:
        """Workstation-side mount point (ends with the separator)."""
        parts = self._read_pure.parts
        return _with_sep(type(self._read_pure)(*parts[: len(parts) - self._n_common]))

    @property
    def fixed_dirs(self) -> tuple[str, str]:
        """The deepest directory of the templates without strftime codes, as the IOC
        and as the workstation see it (each ending with the separator).

        Files that belong beside the data but not to one day's directory (the XML
        files make_detector installs) go here: with write == read the mount point is
        the filesystem root, which is nobody's data directory.
        """
        wparts, rparts = self._write_pure.parts, self._read_pure.parts
        dated = [i for i, p in enumerate(wparts) if "%" in p]
        # the strftime codes lie in the common tail, so the same number of trailing
        # components is dropped on both sides
        drop = len(wparts) - dated[0] if dated else 0
        return (
            _with_sep(type(self._write_pure)(*wparts[: len(wparts) - drop])),
            _with_sep(type(self._read_pure)(*rparts[: len(rparts) - drop])),
        )

    def describe_mapping(self) -> str:
        return f"IOC {self.write_root!r} -> workstation {self.read_root!r}"

    def render(self, when: datetime | None = None) -> RenderedPaths:
        """Expand strftime codes (at ``when``, default now) on both sides."""
        when = when or datetime.now()
        wpure = type(self._write_pure)(when.strftime(str(self._write_pure)))
        rpure = type(self._read_pure)(when.strftime(str(self._read_pure)))
        for which, before, after in (
            ("write", self._write_pure, wpure),
            ("read", self._read_pure, rpure),
        ):
            if len(after.parts) != len(before.parts):
                raise PathTemplateError(
                    f"{which} path template {str(before)!r} expanded to {str(after)!r}, "
                    "which changes the directory structure (a strftime code produced a "
                    "separator)"
                )
        write_dir = _with_sep(wpure)
        if len(write_dir.encode()) > FILE_PATH_MAX_BYTES:
            raise PathTemplateError(
                f"write path {write_dir!r} is {len(write_dir.encode())} bytes; ADCore's "
                f"FilePath record holds at most {FILE_PATH_MAX_BYTES}"
            )
        return RenderedPaths(write_dir, _with_sep(rpure), self.semantics)  # type: ignore[arg-type]

    def to_read_path(self, ioc_file: str) -> Path:
        """Workstation path of any file name the IOC reports (e.g. FullFileName_RBV)."""
        if not isinstance(ioc_file, str) or not ioc_file:
            raise PathTemplateError(f"IOC file name must be a non-empty str, not {ioc_file!r}")
        if not _pure(self.semantics)(ioc_file).is_absolute():
            raise PathTemplateError(
                f"IOC file name {ioc_file!r} is not an absolute {self.semantics} path"
            )
        rel = relative_parts(ioc_file, self.write_root, self.semantics)
        if rel is None:
            raise PathTemplateError(
                f"IOC file {ioc_file!r} is not under the IOC mount point {self.write_root!r} "
                f"({self.describe_mapping()}), so it has no workstation path"
            )
        if any(p in ("..", ".") for p in rel):
            raise PathTemplateError(f"IOC file name {ioc_file!r} contains '.' or '..'")
        return Path(self.read_root).joinpath(*rel)

    def existing_read_path(self, ioc_file: str) -> Path:
        """:meth:`to_read_path`, raising :class:`ReadPathMissingError` if it does not exist."""
        path = self.to_read_path(ioc_file)
        if not path.exists():
            raise ReadPathMissingError(
                f"file written by the IOC as {ioc_file!r} is not visible on this workstation "
                f"as {str(path)!r} (mapping {self.describe_mapping()})"
            )
        return path
