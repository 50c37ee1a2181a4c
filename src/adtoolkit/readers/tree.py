"""``adtoolkit tree FILE.h5``: print the structure of an HDF5 / NeXus file.

The layout follows ``punx tree``, which beamline scientists already know::

    example.h5 : NeXus data file
      @default = "entry"
      entry:NXentry
        @NX_class = "NXentry"
        data:NXdata
          @NX_class = "NXdata"
          data --> /entry/instrument/detector/image
        instrument:NXinstrument
          detector:NXdetector
            image:NX_UINT8[1024,1024] = __array
              __array = [
                  [76, 77, 78, '...', 75]
                  ...
                ]
              @target = "/entry/instrument/detector/image"

* groups print as ``name:NX_class`` (just ``name`` when they have no NX_class);
* datasets print as ``name:NX_TYPE[shape] = value``; scalars show their value,
  small arrays their values, large arrays a corner preview read by slicing (never
  the whole dataset, so a 10 GB image stack costs a few reads);
* attributes print as ``@name = value``, truncated to a readable width;
* an object reachable by several hard links is printed in full once, at its
  ``@target`` path when it has one (the NeXus convention ADCore follows) or else
  at its first path, and every other path prints ``name --> /canonical/path``;
* soft links print ``name --> /path (soft link)`` and external links
  ``name --> file.h5:/path (external link)``; a link whose target is missing
  says ``dangling``.

Children and attributes are sorted by name, so the output is stable and diffable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: longest attribute / value text printed on one line before truncation
MAX_VALUE_CHARS = 80
#: arrays with at most this many elements are printed in full
MAX_FULL_ELEMENTS = 10
#: rows / columns shown at the start of a previewed array (plus the last one)
PREVIEW_ITEMS = 3

#: numpy dtype ``kind + itemsize`` -> NeXus type name, as punx prints them
_NX_TYPES: dict[tuple[str, int], str] = {
    **{("i", n): f"NX_INT{8 * n}" for n in (1, 2, 4, 8)},
    **{("u", n): f"NX_UINT{8 * n}" for n in (1, 2, 4, 8)},
    **{("f", n): f"NX_FLOAT{8 * n}" for n in (2, 4, 8, 16)},
    **{("c", n): f"NX_COMPLEX{8 * n}" for n in (8, 16, 32)},
}


def nx_type_name(dtype: Any) -> str:
    """NeXus name of an HDF5 dataset's type (``NX_UINT8``, ``NX_CHAR``, ...).

    Types NeXus has no name for (compound, enum, opaque) fall back to numpy's
    ``dtype.str`` so nothing is hidden.
    """
    import h5py
    import numpy as np

    dtype = np.dtype(dtype)
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU":
        return "NX_CHAR"
    if dtype.kind == "b":
        return "NX_BOOLEAN"
    name = _NX_TYPES.get((dtype.kind, dtype.itemsize))
    return name if name is not None else dtype.str


def _truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _format_scalar(value: Any) -> str:
    """One value as text: strings quoted, numpy scalars as plain Python numbers."""
    import numpy as np

    value = _decode(value)
    if isinstance(value, str):
        return '"' + value.replace("\n", "\\n") + '"'
    if isinstance(value, np.generic):
        value = value.item()
    value = _decode(value)
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)


def _format_flat(values: Any) -> str:
    """A 1-D sequence as ``[a, b, c]``; long ones as ``[a, b, c, '...', z]``."""
    items = [_format_scalar(v) for v in values]
    if len(items) > MAX_FULL_ELEMENTS:
        items = [*items[:PREVIEW_ITEMS], "'...'", items[-1]]
    return "[" + ", ".join(items) + "]"


def _format_value(value: Any) -> str:
    """An attribute value (scalar or array) as one, possibly truncated, line."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _truncate(_format_scalar(value[()]))
        if value.size == 1:
            return _truncate(_format_scalar(value.reshape(-1)[0]))
        if value.ndim == 1:
            return _truncate(_format_flat(value))
        return _truncate("[" + ", ".join(_format_flat(row) for row in value[:PREVIEW_ITEMS]) + "]")
    return _truncate(_format_scalar(value))


def _attribute_lines(obj: Any, indent: str) -> Iterator[str]:
    for name in sorted(obj.attrs):
        try:
            text = _format_value(obj.attrs[name])
        except (OSError, TypeError, ValueError) as exc:  # unreadable type: say so
            text = f"<unreadable attribute: {exc}>"
        yield f"{indent}@{name} = {text}"


def _preview_2d(dataset: Any, indent: str) -> Iterator[str]:
    """Corner preview of a 2-D dataset: first rows and columns plus the last ones.

    Only the rows shown are read (one slice per row), never the whole array.
    """
    n_rows, n_cols = dataset.shape
    if n_cols > MAX_FULL_ELEMENTS:
        columns = list(range(min(PREVIEW_ITEMS, n_cols))) + [n_cols - 1]
    else:
        columns = list(range(n_cols))
    if n_rows > PREVIEW_ITEMS + 1:
        rows: list[int | None] = [*range(PREVIEW_ITEMS), None, n_rows - 1]
    else:
        rows = list(range(n_rows))
    yield f"{indent}__array = ["
    for row in rows:
        if row is None:
            yield f"{indent}    ..."
            continue
        data = dataset[row, :]
        values = [_format_scalar(data[c]) for c in columns]
        if n_cols > MAX_FULL_ELEMENTS:
            values.insert(len(values) - 1, "'...'")
        yield f"{indent}    [" + ", ".join(values) + "]"
    yield f"{indent}  ]"


def _dataset_lines(name: str, dataset: Any, indent: str, show_values: bool) -> Iterator[str]:
    type_name = nx_type_name(dataset.dtype)
    shape = dataset.shape
    if shape is None:  # HDF5 null dataspace
        yield f"{indent}{name}:{type_name} = (empty)"
        yield from _attribute_lines(dataset, indent + "  ")
        return
    is_string = type_name == "NX_CHAR"
    if shape == () and is_string:
        header = f"{indent}{name}:{type_name}"
    else:
        header = f"{indent}{name}:{type_name}[{','.join(str(n) for n in shape)}]"
    preview: list[str] = []
    if not show_values:
        yield header
    else:
        try:
            if dataset.size == 0:
                yield header + " = []"
            elif shape == ():
                yield header + " = " + _format_value(dataset[()])
            elif len(shape) == 1:
                if shape[0] > MAX_FULL_ELEMENTS:
                    # only the values shown are read
                    head = [_format_scalar(v) for v in dataset[:PREVIEW_ITEMS]]
                    tail = _format_scalar(dataset[shape[0] - 1])
                    yield header + " = " + _truncate("[" + ", ".join([*head, "'...'", tail]) + "]")
                else:
                    yield header + " = " + _format_value(dataset[()])
            elif len(shape) == 2 and dataset.size <= MAX_FULL_ELEMENTS:
                yield header + " = " + _format_value(dataset[()])
            elif len(shape) == 2:
                yield header + " = __array"
                preview = list(_preview_2d(dataset, indent + "  "))
            else:  # 3-D and up (image stacks): shape and type say it all
                yield header
        except (OSError, ValueError, TypeError) as exc:
            # typically a compression filter that is not installed: report, carry on
            yield header + f" = <unreadable: {exc}>"
    yield from preview
    yield from _attribute_lines(dataset, indent + "  ")


def _object_key(obj: Any) -> tuple[int, int]:
    """Identity of an HDF5 object independent of the path it was reached by."""
    import h5py

    info = h5py.h5o.get_info(obj.id)
    return (obj.file.id.fileno, getattr(info, "addr", None) or hash(obj.id))


def _canonical_paths(root: Any) -> dict[tuple[int, int], str]:
    """Choose, for every object with several hard links, the path shown in full.

    Prefer the ``@target`` attribute (NeXus and ADCore write it on linked data)
    when it names a path that really leads to the same object; otherwise the first
    path met in the same sorted depth-first walk the printer uses.
    """
    import h5py

    paths: dict[tuple[int, int], list[str]] = {}
    targets: dict[tuple[int, int], str] = {}

    def walk(group: Any, prefix: str) -> None:
        for name in sorted(group):
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                continue
            obj = group.get(name)
            path = f"{prefix}/{name}"
            key = _object_key(obj)
            seen = key in paths
            paths.setdefault(key, []).append(path)
            if "target" in obj.attrs:
                target = _decode(obj.attrs["target"])
                if isinstance(target, str):
                    targets[key] = target
            if isinstance(obj, h5py.Group) and not seen:
                walk(obj, path)

    walk(root, "")
    canonical = {}
    for key, found in paths.items():
        if len(found) < 2:
            continue
        target = targets.get(key)
        canonical[key] = target if target in found else found[0]
    return canonical


def _group_lines(
    group: Any,
    prefix: str,
    indent: str,
    canonical: dict[tuple[int, int], str],
    show_values: bool,
) -> Iterator[str]:
    import h5py

    for name in sorted(group):
        path = f"{prefix}/{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            state = "" if group.get(name) is not None else ", dangling"
            yield f"{indent}{name} --> {link.path} (soft link{state})"
            continue
        if isinstance(link, h5py.ExternalLink):
            try:
                state = "" if group.get(name) is not None else ", dangling"
            except (KeyError, OSError):
                state = ", dangling"
            yield f"{indent}{name} --> {link.filename}:{link.path} (external link{state})"
            continue
        obj = group.get(name)
        shown_at = canonical.get(_object_key(obj))
        if shown_at is not None and shown_at != path:
            yield f"{indent}{name} --> {shown_at}"
            continue
        if isinstance(obj, h5py.Group):
            nx_class = _decode(obj.attrs.get("NX_class", ""))
            yield f"{indent}{name}:{nx_class}" if nx_class else f"{indent}{name}"
            yield from _attribute_lines(obj, indent + "  ")
            yield from _group_lines(obj, path, indent + "  ", canonical, show_values)
        elif isinstance(obj, h5py.Dataset):
            yield from _dataset_lines(name, obj, indent, show_values)
        else:  # committed datatype
            yield f"{indent}{name} (named datatype)"


def format_tree(path_or_h5file: str | os.PathLike[str] | Any, *, show_values: bool = True) -> str:
    """Return the tree of an HDF5 file as text (see the module docstring).

    ``path_or_h5file`` is a path or an open ``h5py.File`` (or group: its subtree
    is printed).  With ``show_values=False`` only structure, types, shapes and
    attributes are printed, no dataset values.
    """
    import h5py

    try:  # registers the compression filters ADCore writes (LZ4, Blosc, bitshuffle)
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass

    if isinstance(path_or_h5file, h5py.Group):
        return _format_open(path_or_h5file, show_values)
    path = Path(path_or_h5file)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"not an HDF5 file: {path}")
    with h5py.File(path, "r") as h5file:
        return _format_open(h5file, show_values)


def _format_open(group: Any, show_values: bool) -> str:
    import h5py

    if isinstance(group, h5py.File):
        is_nexus = any(
            _decode(child.attrs.get("NX_class", "")) == "NXentry"
            for child in group.values()
            if isinstance(child, h5py.Group)
        )
        kind = "NeXus data file" if is_nexus else "HDF5 file"
        title = f"{Path(group.filename).name} : {kind}"
        prefix = ""
    else:
        title = f"{Path(group.file.filename).name}:{group.name}"
        prefix = group.name.rstrip("/")
    canonical = _canonical_paths(group.file)
    lines = [title]
    lines.extend(_attribute_lines(group, "  "))
    lines.extend(_group_lines(group, prefix, "  ", canonical, show_values))
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="HDF5 / NeXus file to describe")
    parser.add_argument(
        "--no-values",
        dest="show_values",
        action="store_false",
        help="print structure, types, shapes and attributes only (no dataset values)",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        text = format_tree(args.file, show_values=args.show_values)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"adtoolkit tree: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
