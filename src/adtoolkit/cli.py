"""The ``adtoolkit`` command: ``ioc | demo | tree | xml | export``.

Each sub-command lives in the module that owns its concept and exposes two
functions, ``add_arguments(parser)`` and ``run(args) -> int``.  Those modules keep
their heavy imports (ophyd, bluesky, databroker) inside ``run`` so that, for
example, ``adtoolkit ioc`` starts without importing the device side at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: sub-command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ioc": ("adtoolkit.ioc.command", "run the simulated ADSimDetector IOC"),
    "demo": ("adtoolkit.demo", "take images with a detector and show them"),
    "tree": ("adtoolkit.readers.tree", "print the tree of an HDF5 file"),
    "xml": ("adtoolkit.xml.command", "build and validate attributes.xml / layout.xml"),
    "export": ("adtoolkit.export.command", "export bluesky runs to NeXus files"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adtoolkit",
        description="Acquire images from EPICS area detectors with ophyd and bluesky.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not built yet
            if exc.name != module_name:
                raise
            p.set_defaults(_module=None, _missing=module_name)
            continue
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = args._module
    if module is None:
        print(f"adtoolkit {args.command}: not available ({args._missing} missing)", file=sys.stderr)
        return 2
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
