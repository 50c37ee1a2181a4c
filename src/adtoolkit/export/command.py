"""``adtoolkit export --catalog NAME UID... -o DIR``: runs from a databroker catalog to NeXus.

By default all the runs named go into one file, one NXentry each; ``--separate``
writes one file per run.  ``--path-map IOC=LOCAL`` (repeatable) maps the
directories the IOC wrote to where this machine sees them.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="databroker catalog name")
    parser.add_argument(
        "uids", nargs="+", metavar="UID", help="run uid (or unique prefix, or -1 for the last run)"
    )
    parser.add_argument("-o", "--output", required=True, help="directory for the NeXus files")
    parser.add_argument(
        "--prefix",
        default=None,
        help="file name without .h5, formatted with the start document "
        "(default '{scan_id}_{uid:.8}')",
    )
    parser.add_argument("--copy", action="store_true", help="copy the frames instead of linking")
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="IOC=LOCAL",
        help="map an IOC-side directory to the local one (repeatable)",
    )
    parser.add_argument(
        "--no-virtual",
        action="store_true",
        help="copy the frames of runs spanning several or partial files instead of "
        "making a virtual dataset (for readers without general VDS support)",
    )
    parser.add_argument("--separate", action="store_true", help="one file per run")
    parser.add_argument("--monitor", default=None, help="name of the monitor (normalisation) field")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")


def parse_path_map(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        ioc, sep, local = item.partition("=")
        if not sep or not ioc or not local:
            raise ValueError(f"--path-map {item!r}: expected IOC_DIR=LOCAL_DIR")
        mapping[ioc] = local
    return mapping


def _key(uid: str) -> str | int:
    try:
        return int(uid)  # scan id or -1, as databroker accepts
    except ValueError:
        return uid


def run(args: argparse.Namespace) -> int:
    try:
        path_map = parse_path_map(args.path_map)
    except ValueError as exc:
        print(f"adtoolkit export: {exc}", file=sys.stderr)
        return 2
    import databroker

    from .serializer import DEFAULT_PREFIX, export

    try:
        catalog = databroker.catalog[args.catalog]
    except KeyError:
        names = ", ".join(sorted(databroker.catalog)) or "none"
        print(
            f"adtoolkit export: no catalog {args.catalog!r} (known: {names}; searched "
            f"{', '.join(databroker.catalog_search_path())})",
            file=sys.stderr,
        )
        return 1
    if callable(catalog) and not hasattr(catalog, "search"):
        catalog = catalog()
    try:
        runs = [catalog[_key(uid)] for uid in args.uids]
    except (KeyError, ValueError) as exc:
        print(f"adtoolkit export: catalog {args.catalog!r}: {exc}", file=sys.stderr)
        return 1
    prefix = args.prefix or DEFAULT_PREFIX
    groups = [[r] for r in runs] if args.separate else [runs]
    try:
        for group in groups:
            art = export(
                group,
                args.output,
                prefix,
                copy=args.copy,
                virtual=not args.no_virtual,
                path_map=path_map or None,
                monitor=args.monitor,
                overwrite=args.overwrite,
            )
            for path in art["nexus"]:
                print(path)
    except (OSError, ValueError) as exc:
        print(f"adtoolkit export: {exc}", file=sys.stderr)
        return 1
    return 0
