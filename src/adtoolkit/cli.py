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


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first non-option word)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The ``adtoolkit`` parser.

    Only the module of the ``chosen`` sub-command is imported (``None`` imports
    every one, for complete help), so ``adtoolkit ioc`` starts without paying for
    the XML, export or demo modules.
    """
    parser = argparse.ArgumentParser(
        prog="adtoolkit",
        description="Acquire images from EPICS area detectors with ophyd and bluesky.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen is not None and name != chosen:
            continue
        module = importlib.import_module(module_name)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen_command(argv))
    args = parser.parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
